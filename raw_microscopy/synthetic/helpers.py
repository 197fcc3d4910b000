"""Image helpers of the scene: random fields, boxes, sub-pixel splats, lattices, cubic resampling."""

from __future__ import annotations

import functools
import math

import numpy as np


@functools.lru_cache(maxsize=64)
def _spectral_gaussian(h: int, w: int, sigma_y: float, sigma_x: float, angle: float) -> np.ndarray:
    """Transfer function on an ``rfft2`` grid of an (optionally rotated) anisotropic Gaussian."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    c, s = math.cos(angle), math.sin(angle)
    fu = fx * c + fy * s
    fv = -fx * s + fy * c
    g = np.exp(-2.0 * math.pi**2 * ((fu * sigma_x) ** 2 + (fv * sigma_y) ** 2))
    return g.astype(np.complex64)


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float, sigma_y: float | None = None, angle: float = 0.0
) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with Gaussian correlation, float32 ``shape``.

    Drawn periodic on a grid rounded up to multiples of 32 (a few FFT sizes, cached transfer
    functions) and cropped, so a window's field does not wrap round from edge to edge.
    """
    h, w = shape
    gh, gw = 32 * -(-(h + 8) // 32), 32 * -(-(w + 8) // 32)
    sy = sigma if sigma_y is None else sigma_y
    white = rng.standard_normal((gh, gw), dtype=np.float32)
    transfer = _spectral_gaussian(gh, gw, round(sy, 2), round(sigma, 2), round(angle, 2))
    field = np.fft.irfft2(np.fft.rfft2(white) * transfer, s=(gh, gw))[:h, :w].astype(np.float32)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def _bbox(mask: np.ndarray, threshold: float, pad: int = 0) -> tuple[slice, slice] | None:
    """Rows and columns of the box around ``mask > threshold``, grown by ``pad``; None if empty."""
    rows = np.flatnonzero((mask > threshold).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((mask[rows[0]:rows[-1] + 1] > threshold).any(axis=0))
    h, w = mask.shape
    return (slice(max(0, rows[0] - pad), min(h, rows[-1] + 1 + pad)),
            slice(max(0, cols[0] - pad), min(w, cols[-1] + 1 + pad)))


def _splat(y: np.ndarray, x: np.ndarray, weights: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Point masses at sub-pixel positions ``(y, x)`` shared bilinearly among their 4 pixels."""
    h, w = shape
    y0, x0 = np.floor(y), np.floor(x)
    fy, fx = (y - y0).astype(np.float32), (x - x0).astype(np.float32)
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    index = np.concatenate([y0 * w + x0, y0 * w + x0 + 1, (y0 + 1) * w + x0, (y0 + 1) * w + x0 + 1])
    share = np.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx]) * np.tile(weights, 4)
    return np.bincount(index, share, minlength=h * w).reshape(h, w).astype(np.float32)


def _hex_sites(rng: np.random.Generator, shape: tuple[int, int], spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Sites ``(y, x)`` of a hexagonal lattice of ``spacing`` px over ``shape``, randomly shifted and
    turned, each moved by a Gaussian of 12 % of the spacing."""
    h, w = shape
    reach = math.hypot(h, w) / 2 + 2 * spacing
    k = np.arange(-math.ceil(reach / spacing), math.ceil(reach / spacing) + 1)
    i, j = np.meshgrid(k, np.arange(-math.ceil(reach / (0.866 * spacing)), math.ceil(reach / (0.866 * spacing)) + 1))
    u = (i + 0.5 * (j % 2)) * spacing + rng.uniform(0, spacing)
    v = j * (0.8660254 * spacing) + rng.uniform(0, spacing)
    a = rng.uniform(0, math.pi / 3)
    y = (h - 1) / 2 + u.ravel() * math.sin(a) + v.ravel() * math.cos(a)
    x = (w - 1) / 2 + u.ravel() * math.cos(a) - v.ravel() * math.sin(a)
    y = y + rng.normal(0, 0.12 * spacing, y.size)
    x = x + rng.normal(0, 0.12 * spacing, x.size)
    inside = (y >= -0.5) & (y < h - 0.5) & (x >= -0.5) & (x < w - 0.5)
    return y[inside], x[inside]


def _keys_resample(image: np.ndarray, source: np.ndarray, axis: int) -> np.ndarray:
    """Resample ``(H, W)`` along ``axis`` at fractional ``source`` positions (Keys cubic, a = -0.5).

    ``source[j]`` is where output index ``j`` reads the input; positions beyond the edge read the
    edge pixel. The image here is already PSF-blurred (well sampled), so cubic interpolation is
    accurate to well under a percent of the local contrast.
    """
    n = image.shape[axis]
    i0 = np.floor(source).astype(np.int64)
    t = (source - i0).astype(np.float32)
    t2, t3 = t * t, t * t * t
    taps = ((-1, -0.5 * t3 + t2 - 0.5 * t), (0, 1.5 * t3 - 2.5 * t2 + 1.0),
            (1, -1.5 * t3 + 2.0 * t2 + 0.5 * t), (2, 0.5 * t3 - 0.5 * t2))
    out = np.zeros_like(image)
    for offset, weight in taps:
        picked = np.take(image, np.clip(i0 + offset, 0, n - 1), axis=axis)
        out += picked * (weight[:, None] if axis == 0 else weight[None, :])
    return out


def _inside(out):
    """A shape centred on the white cell always meets the frame; fail loudly if it does not."""
    if out is None:
        raise RuntimeError("internal error: a white-cell shape fell outside the frame")
    return out
