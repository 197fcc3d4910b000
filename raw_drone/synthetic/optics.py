"""Optics and camera: scene radiance to camera RGB, the Gaussian PSF evaluated at the RGGB sites."""

from __future__ import annotations

import numpy as np

from raw_isp.isp.cfa import pattern_colours
from raw_isp.isp.config import CAMERAS
from raw_isp.isp.filters import gaussian_taps_numpy

from .constants import PSF_SIGMA_PX
from .geometry import _strips


def _camera_from_scene() -> np.ndarray:
    """3x3 matrix from linear sRGB radiance to camera RGB of the drone preset.

    The ISP computes ``colour_matrix @ (white_balance * camera_rgb)``, so the inverse of both
    makes the preset reproduce the scene; the matrix is non-negative (the preset's matrix rows
    sum to 1, so white stays white), and a white surface gives camera RGB ``1 / white_balance``.
    """
    cam = CAMERAS["drone"]
    matrix = np.asarray(cam.colour_matrix, np.float64).reshape(3, 3)
    inv = np.linalg.inv(matrix) / np.asarray(cam.white_balance, np.float64)[:, None]
    return np.clip(inv, 0.0, None).astype(np.float32)


# Sites of the RGGB tile: (row parity, column parity, colour channel), from raw_isp's definition.
_RGGB_SITES = tuple((k // 2, k % 2, c) for k, c in enumerate(pattern_colours("RGGB")))


def _psf_mosaic(cam: np.ndarray, sigma: float = PSF_SIGMA_PX) -> np.ndarray:
    """Blur camera RGB (3, H, W) by a Gaussian PSF and sample it through an RGGB filter: (H, W).

    The separable blur (reflecting at the frame edges) is evaluated only where the mosaic keeps
    a sample, which halves the work; the result equals ``raw_isp.isp.cfa.mosaic`` of the fully blurred
    image, :func:`raw_isp.isp.filters.gaussian_blur_numpy` with the same taps, to float rounding
    (checked in the tests).
    """
    taps = gaussian_taps_numpy(sigma)
    r = len(taps) // 2
    _, h, w = cam.shape
    if r >= min(h, w):
        raise ValueError(f"frame {h}x{w} is too small for a PSF of sigma {sigma} px")
    out = np.empty((h, w), np.float32)
    for i0, i1 in _strips(h):
        lo, hi = i0 - r, i1 + r
        rows = np.abs(np.arange(lo, hi))
        rows = np.where(rows > h - 1, 2 * (h - 1) - rows, rows)
        n = (i1 - i0) // 2
        for ch in range(3):
            block = cam[ch, lo:hi] if lo >= 0 and hi <= h else cam[ch][rows]
            for dy, dx, site_ch in _RGGB_SITES:
                if site_ch != ch:
                    continue
                # Vertical pass on the rows of this parity only, then horizontal on its columns.
                v = block[dy: dy + 2 * n: 2] * taps[0]
                tmp = np.empty_like(v)
                for j in range(1, len(taps)):
                    np.multiply(block[dy + j: dy + j + 2 * n: 2], taps[j], out=tmp)
                    v += tmp
                vp = np.pad(v, ((0, 0), (r, r)), mode="reflect")
                acc = vp[:, dx: dx + w: 2] * taps[0]
                tmp = np.empty_like(acc)
                for j in range(1, len(taps)):
                    np.multiply(vp[:, dx + j: dx + j + w: 2], taps[j], out=tmp)
                    acc += tmp
                out[i0 + dy: i1: 2, dx::2] = acc
    return out


def _mean_electrons(cam: np.ndarray, full_well: float, white_fraction: float) -> np.ndarray:
    """Expected photo-electrons of the RGGB mosaic, float32 (H, W), from camera RGB (3, H, W)."""
    electrons = _psf_mosaic(cam)
    electrons *= np.float32(full_well * white_fraction)
    np.maximum(electrons, 0.0, out=electrons)
    return electrons
