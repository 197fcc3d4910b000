"""MicroscopySimulator: labels, scenes, the camera's fixed pattern, raw frames at every intensity."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from raw_isp.isp.cfa import mosaic
from raw_isp.sensor import SENSORS

from .constants import (
    _COLUMN_GAIN,
    _DARK_E,
    _HOT_E,
    _HOT_FRACTION,
    _PRNU,
    _REFERENCE_SIZE,
    BACKGROUND_LEVEL,
    CLASS_NAMES,
    FIELD_PX,
    INTENSITIES,
    NUM_REAL_EXAMPLES,
    PSF_SIGMA_PX,
)
from .painters import paint
from .scene import _Scene
from .seeds import _seed_sequence_seed
from .slides import _check_index, _check_seed, _slide, label_assignment, label_of, slide_of


@functools.lru_cache(maxsize=2)  # 32 MB each at the default size
def _camera_pattern(seed: int, field: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed pattern of the camera for ``seed``: per-pixel gain and dark signal (e-), ``(field, field)``."""
    rng = np.random.default_rng([seed, 0xCA3E7A])
    gain = rng.standard_normal((field, field), dtype=np.float32) * np.float32(_PRNU)
    gain += rng.standard_normal((1, field), dtype=np.float32) * np.float32(_COLUMN_GAIN) + np.float32(1.0)
    dark = np.full((field, field), _DARK_E, dtype=np.float32)
    hot = rng.random((field, field), dtype=np.float32) < _HOT_FRACTION
    dark[hot] += rng.exponential(_HOT_E, int(hot.sum())).astype(np.float32)
    gain.setflags(write=False)
    dark.setflags(write=False)
    return gain, dark


class _View(NamedTuple):
    """What the objective delivers for one example (see :meth:`MicroscopySimulator.transmission`)."""

    transmission: np.ndarray  # (3, H, W) in (0, 1]
    illumination: np.ndarray  # (H, W), lamp x vignetting, about 1
    origin: tuple[int, int]  # crop's top-left pixel in the field of view
    granules: int  # granules drawn in the white cell


class MicroscopySimulator:
    """Deterministic synthetic Raw-Microscopy.

    A seed fixes the camera (its fixed-pattern noise), the :data:`NUM_SLIDES` slides (staining,
    lamp, crowding), every cell and every noise draw.

    Args:
        seed: non-negative integer; example ``i`` of a seed is always the same scene and noise.
        num_examples: length of the set (default 940, the real size; the first 940 have the real
            class counts exactly).
        size: frame height and width in pixels (even; 256 as in the real data). Cell geometry,
            the field of view and the PSF scale with ``size / 256``.
        sensor: a ``raw_isp.SensorModel``; default ``raw_isp.SENSORS["microscopy"]``.
        psf_sigma: Gaussian PSF sigma at 525 nm in pixels of a 256-pixel frame (the red and blue
            captures get it times 620/525 and 450/525).
        background: background signal per channel (R, G, B) as a fraction of full scale.
    """

    def __init__(
        self,
        seed: int = 0,
        num_examples: int = NUM_REAL_EXAMPLES,
        size: int = 256,
        sensor: Any = None,
        psf_sigma: float = PSF_SIGMA_PX,
        background: Sequence[float] = BACKGROUND_LEVEL,
    ) -> None:
        self.seed = _check_seed(seed)
        if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 0:
            raise ValueError(f"num_examples must be a non-negative integer, got {num_examples!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16 or size % 2:
            raise ValueError(f"size must be an even integer >= 16 (a Bayer frame), got {size!r}")
        background = np.asarray(background, dtype=np.float32)
        if background.shape != (3,) or not np.all((background > 0) & (background <= 1)):
            raise ValueError(f"background must be three fractions in (0, 1], got {background.tolist()}")
        if psf_sigma < 0:
            raise ValueError(f"psf_sigma must be >= 0, got {psf_sigma}")
        self.num_examples = int(num_examples)
        self.size = int(size)
        self.psf_sigma = float(psf_sigma)
        self.background = background
        self.sensor = SENSORS["microscopy"] if sensor is None else sensor
        self.field_px = max(self.size, 2 * round(FIELD_PX * self.size / _REFERENCE_SIZE / 2))

    @property
    def full_scale_electrons(self) -> float:
        """Photo-electrons that bring a pixel from the black level to the white level."""
        sensor = self.sensor
        return float(sensor.white_level - sensor.black_level) / float(sensor.gain)

    def __len__(self) -> int:
        return self.num_examples

    def _check(self, i: int) -> int:
        i = _check_index(i)
        if i >= self.num_examples:
            raise IndexError(f"example index {i} out of range for num_examples={self.num_examples}")
        return i

    def label(self, i: int) -> int:
        """Class index of example ``i`` (into :data:`CLASS_NAMES`); renders nothing."""
        return label_of(self._check(i), self.seed)

    def labels(self) -> np.ndarray:
        """Labels of all examples, int64 ``(num_examples,)``."""
        return label_assignment(self.num_examples, self.seed)

    def slide(self, i: int) -> int:
        """Slide (smear) of example ``i``, in ``0 .. NUM_SLIDES-1``; renders nothing."""
        return slide_of(self._check(i), self.seed)

    def _scene(self, i: int) -> _Scene:
        i = self._check(i)
        return _Scene(self.size, np.random.default_rng([self.seed, i]), _slide(self.seed, slide_of(i, self.seed)),
                      self.field_px)

    def _render(self, i: int) -> _View:
        scene = self._scene(i)
        paint(scene, CLASS_NAMES[label_of(i, self.seed)])
        trans, illumination = scene.optics(self.psf_sigma * self.size / _REFERENCE_SIZE, self.field_px)
        return _View(trans, illumination, scene.origin, scene.granule_count)

    def crop_origin(self, i: int) -> tuple[int, int]:
        """(row, column) of example ``i``'s top-left pixel in the camera's field of view."""
        return self._scene(i).origin

    def granule_count(self, i: int) -> int:
        """Number of granules drawn in example ``i``'s white cell (0 for agranular cells)."""
        return self._render(i).granules

    def transmission(self, i: int) -> np.ndarray:
        """Noise-free specimen transmission of example ``i`` through the objective: float32 ``(3, H, W)``.

        Channels are the captures through the 620, 525 and 450 nm filters, each after its PSF and
        lateral colour; values lie in (0, 1], 1 where the glass is clear (the background), lower
        where stain absorbs.
        """
        return self._render(i).transmission

    def signal(self, i: int) -> np.ndarray:
        """Noise-free expected signal of example ``i`` at ratio 1.0: float32 ``(3, H, W)``.

        Transmission times the illumination (slide's lamp, vignetting) times :attr:`background`,
        as a fraction of the sensor's full scale (white level above black level).
        """
        view = self._render(i)
        return view.transmission * (view.illumination[None] * self.background[:, None, None])

    def sensor_pattern(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The camera's fixed pattern under example ``i``'s crop: float32 ``(H, W)`` each.

        ``(gain, dark)``: relative gain of each pixel (mean 1: PRNU and column gains) and its
        dark signal in electrons per exposure at ratio 1.0 (hot pixels included).
        """
        return self._pattern(self.crop_origin(i))

    def _pattern(self, origin: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        gain, dark = _camera_pattern(self.seed, self.field_px)
        window = (slice(origin[0], origin[0] + self.size), slice(origin[1], origin[1] + self.size))
        return gain[window], dark[window]

    def mean_electrons(self, i: int) -> np.ndarray:
        """Expected photo-electrons per pixel of the RGGB mosaic at ratio 1.0, float32 ``(H, W)``.

        ``mosaic(signal) * full_scale_electrons * gain + dark`` with the fixed pattern of
        :meth:`sensor_pattern`.
        """
        view = self._render(i)
        signal = view.transmission * (view.illumination[None] * self.background[:, None, None])
        planes = mosaic(torch.from_numpy(signal)[None], "RGGB")[0].numpy()
        gain, dark = self._pattern(view.origin)
        return planes * np.float32(self.full_scale_electrons) * gain + dark

    def raws(self, i: int, intensities: Sequence[float] = INTENSITIES, noise_seed: int | None = None
             ) -> dict[float, np.ndarray]:
        """Raw frames of example ``i`` at each ratio: ``{ratio: uint16 (H, W)}``.

        The ratio-1.0 frame is exposed once; every other ratio thins its photons with the
        sensor's ``scale_intensity``. ``noise_seed`` replaces the seed derived from
        ``(seed, i)`` to draw a different noise realisation of the same scene.
        """
        i = self._check(i)
        ratios = [float(r) for r in intensities]
        for r in ratios:
            if not 0 < r <= 1:
                raise ValueError(f"intensity ratios must lie in (0, 1], got {r}")
        base = _seed_sequence_seed(self.seed, i, 0xE1) if noise_seed is None else _check_seed(noise_seed)
        full = np.asarray(self.sensor.expose(self.mean_electrons(i), seed=base))
        out: dict[float, np.ndarray] = {}
        for r in ratios:
            if r == 1.0:
                out[r] = full
            else:
                thinned = self.sensor.scale_intensity(full, r, seed=_seed_sequence_seed(base, round(r * 1e6)))
                out[r] = np.asarray(thinned)
        return out

    def raw(self, i: int, intensity: float = 1.0, noise_seed: int | None = None) -> np.ndarray:
        """Raw RGGB frame of example ``i`` at one intensity ratio: uint16 ``(H, W)``."""
        return self.raws(i, (intensity,), noise_seed=noise_seed)[float(intensity)]

    def example(self, i: int, intensities: Sequence[float] = INTENSITIES) -> dict[str, Any]:
        """``{"image_id": str, "label": int, "raws": {ratio: uint16 (H, W)}}`` for example ``i``."""
        i = self._check(i)
        return {"image_id": f"synthetic-{self.seed}-{i:05d}", "label": self.label(i), "raws": self.raws(i, intensities)}

    def examples(self, intensities: Sequence[float] = INTENSITIES, indices: Sequence[int] | None = None
                 ) -> Iterator[dict[str, Any]]:
        """Yield :meth:`example` for ``indices`` (default all, in order)."""
        for i in range(self.num_examples) if indices is None else indices:
            yield self.example(i, intensities)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.examples()
