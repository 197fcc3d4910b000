"""Independent per-image reference of the static ISP chain (tests and benchmarks only).

This module re-states the processing chain of the Raw2Logit study (Oala et al., "Data Models
for Dataset Drift Controls in Machine Learning With Optical Images", TMLR 2023) one image at a
time, in float64 numpy, by calling the established libraries for each stage:

1. black level      subtract ``black_level[k]`` at positional CFA site k = 2*(row % 2) + (col % 2)
2. demosaicing      ``colour_demosaicing.demosaicing_CFA_Bayer_bilinear``,
                    ``demosaicing_CFA_Bayer_Malvar2004`` or
                    ``demosaicing_CFA_Bayer_Menon2007(..., refining_step=True)``
3. white balance    multiply channel c by ``white_balance[c]`` (no clipping)
4. colour matrix    ``out[..., c] = sum_k M[c, k] * in[..., k]`` with M = colour_matrix (3x3, row-major)
5. sharpening       on the Y channel of ``skimage.color.rgb2yuv``:
                    ``scipy.signal.convolve2d`` with the 3x3 kernel [[0,-1,0],[-1,5,-1],[0,-1,0]]
                    (zero fill), or ``skimage.filters.unsharp_mask(preserve_range=True)``;
                    back with ``skimage.color.yuv2rgb``
6. denoising        on the Y channel: ``scipy.ndimage.gaussian_filter``,
                    ``scipy.ndimage.median_filter`` or an FFT low-pass (``numpy.fft.fft2``/``ifft2``)
7. output           clip to [0, 1], then ``x ** (1 / gamma)``

It deliberately shares no code with ``raw_isp``: it is the per-image baseline that the batched
``raw_isp.StaticISP`` is checked and timed against. The camera presets and variant names are
written out here a second time for the same reason.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.ndimage
import scipy.signal
import skimage.color
import skimage.filters
from colour_demosaicing import (
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
    demosaicing_CFA_Bayer_Menon2007,
)

# Camera presets in normalised units (raw / 65535), RGGB sensors. Black levels are positional:
# (0,0), (0,1), (1,0), (1,1).
REFERENCE_CAMERAS: dict[str, dict[str, list[float]]] = {
    "neutral": {
        "black_level": [0.0, 0.0, 0.0, 0.0],
        "white_balance": [1.0, 1.0, 1.0],
        "colour_matrix": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
    },
    "drone": {
        "black_level": [0.0625, 0.0626, 0.0625, 0.0626],
        "white_balance": [2.86653646, 1.0, 1.73079425],
        "colour_matrix": [
            1.50768983, -0.33571374, -0.17197604,
            -0.23048614, 1.70698738, -0.47650126,
            -0.03119153, -0.32803956, 1.35923111,
        ],
    },
    "microscopy": {
        "black_level": [9.834368023181512e-06] * 4,
        "white_balance": [-0.6567, 1.9673, 3.5304],
        "colour_matrix": [
            -2.0338, 0.0933, 0.4157,
            -0.0286, 2.6464, -0.0574,
            -0.5516, -0.0947, 2.9308,
        ],
    },
}

# Defaults of the stage parameters (the study's settings).
REFERENCE_DEFAULTS: dict[str, Any] = {
    "pattern": "RGGB",
    "sharpen_radius": 1.0,
    "sharpen_amount": 1.0,
    "gaussian_sigma": 0.5,
    "median_size": 3,
    "fft_keep_fraction": 0.3,
    "gamma": 2.2,
}

_DEMOSAIC_CODES = {"bi": "bilinear", "ma": "malvar2004", "me": "menon2007"}
_SHARPEN_CODES = {"s": "sharpening_filter", "u": "unsharp_masking"}
_DENOISE_CODES = {"ga": "gaussian", "me": "median"}

REFERENCE_VARIANTS: tuple[str, ...] = tuple(
    f"{d}_{s}_{n}" for d in _DEMOSAIC_CODES for s in _SHARPEN_CODES for n in _DENOISE_CODES
)

_SHARPEN_KERNEL = np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])


def variant_config(name: str) -> dict[str, Any]:
    """Config dict of a study variant such as ``"ma_s_me"`` (demosaic_sharpening_denoising)."""
    parts = name.split("_")
    if len(parts) != 3 or parts[0] not in _DEMOSAIC_CODES or parts[1] not in _SHARPEN_CODES \
            or parts[2] not in _DENOISE_CODES:
        raise ValueError(f"variant name {name!r} is not one of {REFERENCE_VARIANTS}")
    return {
        "demosaic": _DEMOSAIC_CODES[parts[0]],
        "sharpening": _SHARPEN_CODES[parts[1]],
        "denoising": _DENOISE_CODES[parts[2]],
        **REFERENCE_DEFAULTS,
    }


def _camera_dict(camera: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(camera, str):
        if camera not in REFERENCE_CAMERAS:
            raise ValueError(f"camera {camera!r} is not one of {sorted(REFERENCE_CAMERAS)}")
        return REFERENCE_CAMERAS[camera]
    return camera


def reference_demosaic(cfa: np.ndarray, method: str, pattern: str = "RGGB") -> np.ndarray:
    """Demosaic one (H, W) mosaic with colour-demosaicing: -> (H, W, 3) float64."""
    if method == "bilinear":
        return demosaicing_CFA_Bayer_bilinear(cfa, pattern)
    if method == "malvar2004":
        return demosaicing_CFA_Bayer_Malvar2004(cfa, pattern)
    if method == "menon2007":
        return demosaicing_CFA_Bayer_Menon2007(cfa, pattern, refining_step=True)
    raise ValueError(f"demosaic method {method!r} is not bilinear, malvar2004 or menon2007")


def _sharpen_luma(y: np.ndarray, method: str | None, cfg: Mapping[str, Any]) -> np.ndarray:
    if method is None:
        return y
    if method == "sharpening_filter":
        return scipy.signal.convolve2d(y, _SHARPEN_KERNEL, mode="same", boundary="fill", fillvalue=0)
    if method == "unsharp_masking":
        return skimage.filters.unsharp_mask(
            y, radius=cfg["sharpen_radius"], amount=cfg["sharpen_amount"], preserve_range=True
        )
    raise ValueError(f"sharpening {method!r} is not sharpening_filter, unsharp_masking or None")


def _fft_lowpass(y: np.ndarray, keep: float) -> np.ndarray:
    spectrum = np.fft.fft2(y)
    rows, cols = y.shape
    spectrum[int(rows * keep): int(rows * (1 - keep)), :] = 0
    spectrum[:, int(cols * keep): int(cols * (1 - keep))] = 0
    return np.fft.ifft2(spectrum).real


def _denoise_luma(y: np.ndarray, method: str | None, cfg: Mapping[str, Any]) -> np.ndarray:
    if method is None:
        return y
    if method == "gaussian":
        return scipy.ndimage.gaussian_filter(y, cfg["gaussian_sigma"])
    if method == "median":
        return scipy.ndimage.median_filter(y, size=cfg["median_size"])
    if method == "fft":
        return _fft_lowpass(y, cfg["fft_keep_fraction"])
    raise ValueError(f"denoising {method!r} is not gaussian, median, fft or None")


def _on_luma(rgb: np.ndarray, fn) -> np.ndarray:
    yuv = skimage.color.rgb2yuv(rgb)
    yuv[..., 0] = fn(yuv[..., 0])
    return skimage.color.yuv2rgb(yuv)


def reference_isp(
    raw: np.ndarray, config: Mapping[str, Any] | str, camera: str | Mapping[str, Any] = "neutral"
) -> np.ndarray:
    """Run the static ISP chain on one raw frame.

    Args:
        raw: (H, W) Bayer mosaic, float in [0, 1] (normalised units), H and W even.
        config: a variant name (see ``REFERENCE_VARIANTS``) or a dict with keys ``demosaic``,
            ``sharpening``, ``denoising`` and optionally the keys of ``REFERENCE_DEFAULTS``.
        camera: a name in ``REFERENCE_CAMERAS`` or a dict with ``black_level`` (4 positional
            floats), ``white_balance`` (3 floats, RGB), ``colour_matrix`` (9 floats, row-major).

    Returns:
        (H, W, 3) float64 RGB in [0, 1].
    """
    cfg = variant_config(config) if isinstance(config, str) else {**REFERENCE_DEFAULTS, **config}
    cam = _camera_dict(camera)
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 2:
        raise ValueError(f"raw must be a (H, W) mosaic, got shape {raw.shape}")

    # 1. black level, per positional CFA site
    black = np.asarray(cam["black_level"], dtype=np.float64).reshape(2, 2)
    rows = np.arange(raw.shape[0]) % 2
    cols = np.arange(raw.shape[1]) % 2
    cfa = raw - black[rows[:, None], cols[None, :]]

    # 2. demosaicing
    rgb = np.asarray(reference_demosaic(cfa, cfg["demosaic"], cfg["pattern"]), dtype=np.float64)

    # 3. white balance
    rgb = rgb * np.asarray(cam["white_balance"], dtype=np.float64)

    # 4. colour correction
    matrix = np.asarray(cam["colour_matrix"], dtype=np.float64).reshape(3, 3)
    rgb = np.einsum("ijk,lk->ijl", rgb, matrix)

    # 5. sharpening on luma, 6. denoising on luma
    rgb = _on_luma(rgb, lambda y: _sharpen_luma(y, cfg["sharpening"], cfg))
    rgb = _on_luma(rgb, lambda y: _denoise_luma(y, cfg["denoising"], cfg))

    # 7. clip and gamma
    return np.clip(rgb, 0.0, 1.0) ** (1.0 / cfg["gamma"])


def reference_batch(
    raws: np.ndarray, config: Mapping[str, Any] | str, camera: str | Mapping[str, Any] = "neutral"
) -> np.ndarray:
    """``reference_isp`` applied image by image: (B, H, W) -> (B, H, W, 3) float64."""
    raws = np.asarray(raws)
    if raws.ndim != 3:
        raise ValueError(f"raws must be a (B, H, W) stack of mosaics, got shape {raws.shape}")
    return np.stack([reference_isp(raw, config, camera) for raw in raws])


# --- synthetic test data (shared by the agreement tests and the benchmark) -------------------

_PATTERN_CHANNELS = {"R": 0, "G": 1, "B": 2}


def mosaic_numpy(rgb: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Keep, at each site, the channel the CFA ``pattern`` puts there: (..., H, W, 3) -> (..., H, W)."""
    if sorted(pattern) != ["B", "G", "G", "R"]:
        raise ValueError(f"pattern {pattern!r} is not a Bayer pattern such as 'RGGB'")
    out = np.empty(rgb.shape[:-1], dtype=rgb.dtype)
    for site, colour in enumerate(pattern):
        r, c = divmod(site, 2)
        out[..., r::2, c::2] = rgb[..., r::2, c::2, _PATTERN_CHANNELS[colour]]
    return out


def synthetic_raws(
    batch: int,
    height: int,
    width: int,
    camera: str | Mapping[str, Any] = "neutral",
    pattern: str = "RGGB",
    seed: int = 0,
    noise: float = 0.002,
    level: float = 0.5,
) -> np.ndarray:
    """Realistic raw mosaics whose ISP output stays mostly inside (0, 1).

    A smooth random colour field (a few low-frequency waves) with sharp-edged shapes on top is
    drawn around ``level`` as the *target* linear RGB in [0.05, 0.95] (use a high ``level``, such
    as 0.8, for bright-field microscopy: a bright background with darker objects); it is mapped back through the camera's
    colour matrix and white balance, mosaicked, the black level is added, then mild Gaussian
    read noise (``noise``, normalised units). Returns (batch, height, width) float64 in [0, 1].
    """
    cam = _camera_dict(camera)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    target = np.empty((batch, height, width, 3))
    for b in range(batch):
        field = np.full((height, width, 3), float(level))
        for _ in range(4):
            freq = rng.uniform(0.5, 3.0, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * (freq[0] * yy + freq[1] * xx) + phase)
            field += 0.1 * wave[..., None] * rng.uniform(-1, 1, size=3)
        for _ in range(3):  # rectangles and a disk: edges in every direction
            r0, c0 = rng.integers(0, height - 8), rng.integers(0, width - 8)
            r1, c1 = r0 + rng.integers(6, height // 2), c0 + rng.integers(6, width // 2)
            field[r0:r1, c0:c1] += rng.uniform(-0.25, 0.25, size=3)
        cy, cx, rad = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width, height / 5
        disk = (np.arange(height)[:, None] - cy) ** 2 + (np.arange(width)[None, :] - cx) ** 2 < rad**2
        field[disk] += rng.uniform(-0.25, 0.25, size=3)
        target[b] = np.clip(field, 0.05, 0.95)
    forward = np.asarray(cam["colour_matrix"], float).reshape(3, 3) @ np.diag(cam["white_balance"])
    linear = target @ np.linalg.inv(forward).T
    black = np.asarray(cam["black_level"], float).reshape(2, 2)
    raw = mosaic_numpy(linear, pattern) + np.tile(black, (height // 2, width // 2))
    raw += rng.normal(0.0, noise, size=raw.shape)
    return np.clip(raw, 0.0, 1.0)
