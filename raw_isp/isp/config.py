"""ISP configurations, the 12 named variants of the Raw2Logit study, and camera presets."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .cfa import check_pattern
from .demosaic import DEMOSAIC_METHODS, SUPPORT
from .exposure import AUTO_EXPOSURE_MAX_GAIN, AUTO_EXPOSURE_TARGET, AUTO_EXPOSURE_TRIM, EXPOSURE_MODES, check_exposure
from .filters import gaussian_radius

__all__ = ["ISPConfig", "CameraPreset", "CAMERAS", "ISP_VARIANTS", "SHARPENING_METHODS", "DENOISING_METHODS"]

SHARPENING_METHODS = ("sharpening_filter", "unsharp_masking", "kernel")
DENOISING_METHODS = ("gaussian", "median", "fft", "kernel")
# Fields holding explicit kernels: given exactly when the stage's method is "kernel".
_KERNEL_FIELDS = {"sharpen_kernel": "sharpening", "blur_kernel": "denoising"}
# Exposure fields and their defaults; to_dict leaves out those at their default, so a config
# without exposure gives the same dict as before the stage existed.
_EXPOSURE_DEFAULTS = {
    "exposure": None,
    "exposure_scale": 1.0,
    "auto_exposure_trim": AUTO_EXPOSURE_TRIM,
    "auto_exposure_target": AUTO_EXPOSURE_TARGET,
    "auto_exposure_max_gain": AUTO_EXPOSURE_MAX_GAIN,
}

Kernel = tuple[tuple[float, ...], ...]

_DEMOSAIC_CODES = {"bi": "bilinear", "ma": "malvar2004", "me": "menon2007"}
_SHARPEN_CODES = {"s": "sharpening_filter", "u": "unsharp_masking"}
_DENOISE_CODES = {"ga": "gaussian", "me": "median"}

#: The 12 static pipelines of the study: ``<demosaic>_<sharpening>_<denoising>``.
ISP_VARIANTS = tuple(f"{d}_{s}_{n}" for d in _DEMOSAIC_CODES for s in _SHARPEN_CODES for n in _DENOISE_CODES)


@dataclass(frozen=True)
class ISPConfig:
    """A static ISP: which algorithm runs at each stage, and its settings.

    Stage order: black level, exposure, demosaic, white balance, colour matrix, sharpening on
    luma, denoising on luma, clip to [0, 1] and gamma.

    - ``demosaic``: "bilinear" | "malvar2004" | "menon2007".
    - ``sharpening``: "sharpening_filter" (fixed 3x3 kernel) | "unsharp_masking"
      (``sharpen_radius`` in pixels, ``sharpen_amount``) | "kernel" (``sharpen_kernel``) | None.
    - ``denoising``: "gaussian" (``gaussian_sigma`` in pixels) | "median"
      (``median_size`` x ``median_size`` window) | "fft" (keep the lowest
      ``fft_keep_fraction`` of frequencies per axis) | "kernel" (``blur_kernel``) | None.
    - ``sharpen_kernel``, ``blur_kernel``: explicit ``k x k`` correlation kernels on luma (k odd,
      finite weights, not necessarily separable or normalised), applied with scipy-reflect
      borders (``out[i, j] = sum_uv K[u][v] * Y[i + u - k//2, j + v - k//2]``); given exactly
      when the stage's method is "kernel", else None. Stored as tuples of tuples of floats
      (the config stays hashable); any nested sequence, numpy array or tensor is accepted.
      This is how a trained :class:`raw_isp.ParametrizedISP` is written down
      (:meth:`raw_isp.ParametrizedISP.static_config`).
    - ``pattern``: Bayer pattern of the input mosaic; ``gamma``: output is ``x ** (1/gamma)``.
    - ``exposure``: the digital gain on the black-subtracted mosaic (:mod:`raw_isp.isp.exposure`):
      None (no stage: the study's pipelines, unchanged) | "metadata" (gain
      ``exposure_scale / intensity``, the intensity ratio passed per image to the ISP's forward)
      | "auto" (gain ``exposure_scale * auto_exposure_target / s``, ``s`` the trimmed mean of the
      2x2-tile means with ``auto_exposure_trim`` cut at each end, at most ``auto_exposure_max_gain``)
      | a positive number (that fixed gain). No clipping after the gain.
    - ``exposure_scale``: a fixed factor on the gain of "metadata" or "auto" (1 otherwise); this
      is how a trained :class:`raw_isp.ParametrizedISP` log-gain on top of those modes is written down.
    - ``auto_exposure_trim`` (in [0, 0.5)), ``auto_exposure_target`` (> 0),
      ``auto_exposure_max_gain`` (> 0): settings of "auto", left at their defaults otherwise.
    """

    demosaic: str = "bilinear"
    sharpening: str | None = "sharpening_filter"
    denoising: str | None = "gaussian"
    pattern: str = "RGGB"
    sharpen_radius: float = 1.0
    sharpen_amount: float = 1.0
    gaussian_sigma: float = 0.5
    median_size: int = 3
    fft_keep_fraction: float = 0.3
    gamma: float = 2.2
    sharpen_kernel: Kernel | None = None
    blur_kernel: Kernel | None = None
    exposure: str | float | None = None
    exposure_scale: float = 1.0
    auto_exposure_trim: float = AUTO_EXPOSURE_TRIM
    auto_exposure_target: float = AUTO_EXPOSURE_TARGET
    auto_exposure_max_gain: float = AUTO_EXPOSURE_MAX_GAIN

    def __post_init__(self):
        if self.demosaic not in DEMOSAIC_METHODS:
            raise ValueError(f"demosaic={self.demosaic!r} is unknown; expected one of {DEMOSAIC_METHODS}")
        if self.sharpening not in (*SHARPENING_METHODS, None):
            raise ValueError(f"sharpening={self.sharpening!r} is unknown; expected one of {SHARPENING_METHODS} or None")
        if self.denoising not in (*DENOISING_METHODS, None):
            raise ValueError(f"denoising={self.denoising!r} is unknown; expected one of {DENOISING_METHODS} or None")
        object.__setattr__(self, "pattern", check_pattern(self.pattern))
        for name in ("sharpen_radius", "gaussian_sigma", "gamma"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if not (isinstance(self.sharpen_amount, (int, float)) and math.isfinite(self.sharpen_amount)):
            raise ValueError(f"sharpen_amount must be a finite number, got {self.sharpen_amount!r}")
        if not (isinstance(self.median_size, int) and self.median_size >= 1 and self.median_size % 2 == 1):
            raise ValueError(f"median_size must be a positive odd integer, got {self.median_size!r}")
        if not (isinstance(self.fft_keep_fraction, (int, float)) and 0 < self.fft_keep_fraction <= 1):
            raise ValueError(f"fft_keep_fraction must be in (0, 1], got {self.fft_keep_fraction!r}")
        for name, stage in _KERNEL_FIELDS.items():
            value, method = getattr(self, name), getattr(self, stage)
            if method == "kernel" and value is None:
                raise ValueError(f"{name} is required when {stage}='kernel' (an odd square kernel, k x k floats)")
            if method != "kernel" and value is not None:
                raise ValueError(f"{name} is only used with {stage}='kernel', but {stage}={method!r}; leave it None")
            if value is not None:
                object.__setattr__(self, name, _check_kernel(value, name))
        self._check_exposure()

    def _check_exposure(self) -> None:
        object.__setattr__(self, "exposure", check_exposure(self.exposure))
        for name in ("exposure_scale", "auto_exposure_trim", "auto_exposure_target", "auto_exposure_max_gain"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        for name in ("exposure_scale", "auto_exposure_target", "auto_exposure_max_gain"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.auto_exposure_trim < 0.5:
            raise ValueError(f"auto_exposure_trim must be in [0, 0.5), got {self.auto_exposure_trim!r}")
        if self.exposure_scale != 1.0 and self.exposure not in EXPOSURE_MODES:
            raise ValueError(
                f"exposure_scale={self.exposure_scale!r} only applies to exposure 'metadata' or 'auto', but "
                f"exposure={self.exposure!r}; for a fixed gain put it in exposure (e.g. exposure=2.0)"
            )
        if self.exposure != "auto":
            for name in ("auto_exposure_trim", "auto_exposure_target", "auto_exposure_max_gain"):
                if getattr(self, name) != _EXPOSURE_DEFAULTS[name]:
                    raise ValueError(f"{name} is only used with exposure='auto', but exposure={self.exposure!r}")

    def with_exposure(self, exposure) -> "ISPConfig":
        """This config with the exposure setting ``exposure`` (None leaves the config as it is).

        How the ISPs' and the processor's ``exposure=`` argument is merged into a config. Raises
        ValueError if the config already has a different exposure setting (it is given once).
        """
        if exposure is None:
            return self
        exposure = check_exposure(exposure)
        if self.exposure is not None and self.exposure != exposure:
            raise ValueError(
                f"exposure={exposure!r} conflicts with the ISP config's exposure={self.exposure!r}; give it once"
            )
        return dataclasses.replace(self, exposure=exposure)

    @classmethod
    def from_variant(cls, name: str, **overrides) -> "ISPConfig":
        """Config of a named variant such as ``"ma_s_me"`` (see :data:`ISP_VARIANTS`)."""
        if name not in ISP_VARIANTS:
            raise ValueError(f"unknown ISP variant {name!r}; expected one of {', '.join(ISP_VARIANTS)}")
        d, s, n = name.split("_")
        return cls(demosaic=_DEMOSAIC_CODES[d], sharpening=_SHARPEN_CODES[s], denoising=_DENOISE_CODES[n], **overrides)

    @classmethod
    def from_dict(cls, d: Mapping) -> "ISPConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ISPConfig keys {sorted(unknown)}; expected some of {sorted(names)}")
        return cls(**dict(d))

    @classmethod
    def parse(cls, spec: "str | Mapping | ISPConfig") -> "ISPConfig":
        """Accept a variant name, a dict or a config."""
        if isinstance(spec, ISPConfig):
            return spec
        if isinstance(spec, str):
            return cls.from_variant(spec)
        if isinstance(spec, Mapping):
            return cls.from_dict(spec)
        raise TypeError(f"an ISP config must be a variant name, a dict or an ISPConfig, got {type(spec).__name__}")

    def to_dict(self) -> dict:
        """The settings as JSON values (kernels as nested lists; a kernel field that is None
        and an exposure field at its default are left out, so configs without kernels or
        exposure give the same dict as before those existed)."""
        d = dataclasses.asdict(self)
        for name in _KERNEL_FIELDS:
            if d[name] is None:
                del d[name]
            else:
                d[name] = [list(row) for row in d[name]]
        for name, default in _EXPOSURE_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d

    @property
    def variant(self) -> str | None:
        """The study's name for this config, or None if it is not one of the 12 defaults
        (an exposure setting makes it another pipeline than the study's)."""
        for name in ISP_VARIANTS:
            if ISPConfig.from_variant(name, pattern=self.pattern) == self:
                return name
        return None

    @property
    def base_variant(self) -> str | None:
        """The study's name of the pipeline this config runs after its exposure stage: the
        :attr:`variant` with every exposure setting (``exposure``, ``exposure_scale``,
        ``auto_exposure_*``) put back to its default, or None if that is none of the 12."""
        return dataclasses.replace(self, **_EXPOSURE_DEFAULTS).variant

    @property
    def sharpen_support(self) -> int:
        """Radius in pixels of the sharpening stage."""
        if self.sharpening == "sharpening_filter":
            return 1
        if self.sharpening == "unsharp_masking":
            return gaussian_radius(self.sharpen_radius)
        if self.sharpening == "kernel":
            return len(self.sharpen_kernel) // 2
        return 0

    @property
    def denoise_support(self) -> int:
        """Radius in pixels of the denoising stage (0 for the global FFT filter)."""
        if self.denoising == "gaussian":
            return gaussian_radius(self.gaussian_sigma)
        if self.denoising == "median":
            return self.median_size // 2
        if self.denoising == "kernel":
            return len(self.blur_kernel) // 2
        return 0

    @property
    def support(self) -> int:
        """Radius of the whole chain: an output pixel depends on raw pixels this far away."""
        return SUPPORT[self.demosaic] + self.sharpen_support + self.denoise_support


def _check_kernel(value, name: str) -> Kernel:
    """An odd square kernel of finite real numbers as a tuple of tuples of floats."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # numpy array, torch tensor
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a square k x k kernel (nested sequence of floats), got {value!r}")
    k = len(value)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"{name} must have an odd number of rows (k x k, k = 1, 3, 5, ...), got {k} rows")
    rows = []
    for i, row in enumerate(value):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != k:
            got = f"{len(row)} values" if isinstance(row, Sequence) else repr(row)
            raise ValueError(f"{name} must be square ({k} x {k}), but row {i} has {got}")
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{name}[{i}][{j}] must be a finite number, got {v!r}")
        rows.append(tuple(float(v) for v in row))
    return tuple(rows)


@dataclass(frozen=True)
class CameraPreset:
    """Colour parameters of a camera in normalised units (raw / 65535).

    ``black_level``: 4 values for the positional CFA sites (0,0), (0,1), (1,0), (1,1);
    ``white_balance``: R, G, B gains; ``colour_matrix``: 3x3 row-major (camera RGB -> output RGB).
    """

    black_level: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    colour_matrix: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    name: str = field(default="custom", compare=False)

    def __post_init__(self):
        for attr, n in (("black_level", 4), ("white_balance", 3), ("colour_matrix", 9)):
            v = tuple(float(x) for x in getattr(self, attr))
            if len(v) != n or not all(math.isfinite(x) for x in v):
                raise ValueError(f"{attr} must have {n} finite values, got {getattr(self, attr)!r}")
            object.__setattr__(self, attr, v)

    @classmethod
    def parse(cls, spec: "str | Mapping | CameraPreset") -> "CameraPreset":
        if isinstance(spec, CameraPreset):
            return spec
        if isinstance(spec, str):
            if spec not in CAMERAS:
                raise ValueError(f"unknown camera {spec!r}; expected one of {sorted(CAMERAS)} or a dict")
            return CAMERAS[spec]
        if isinstance(spec, Mapping):
            names = {"black_level", "white_balance", "colour_matrix", "name"}
            unknown = set(spec) - names
            if unknown:
                raise ValueError(f"unknown camera keys {sorted(unknown)}; expected some of {sorted(names)}")
            return cls(**dict(spec))
        raise TypeError(f"camera must be a preset name, a dict or a CameraPreset, got {type(spec).__name__}")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "black_level": list(self.black_level),
            "white_balance": list(self.white_balance),
            "colour_matrix": list(self.colour_matrix),
        }


def _preset(name: str, black_level: Sequence[float], white_balance: Sequence[float], colour_matrix: Sequence[float]):
    return CameraPreset(tuple(black_level), tuple(white_balance), tuple(colour_matrix), name=name)


#: Camera presets of both datasets (RGGB, normalised units) and a neutral one.
CAMERAS: dict[str, CameraPreset] = {
    "drone": _preset(
        "drone",
        [0.0625, 0.0626, 0.0625, 0.0626],
        [2.86653646, 1.0, 1.73079425],
        [1.50768983, -0.33571374, -0.17197604, -0.23048614, 1.70698738, -0.47650126, -0.03119153, -0.32803956, 1.35923111],
    ),
    "microscopy": _preset(
        "microscopy",
        [9.834368023181512e-06] * 4,
        [-0.6567, 1.9673, 3.5304],
        [-2.0338, 0.0933, 0.4157, -0.0286, 2.6464, -0.0574, -0.5516, -0.0947, 2.9308],
    ),
    "neutral": CameraPreset(name="neutral"),
}
