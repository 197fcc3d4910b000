"""The stain density maps of one scene and the vectorised shape primitives that paint them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from raw_isp.isp.filters import gaussian_blur_numpy

from .constants import _REFERENCE_SIZE, _SPHERE_SIGMA, _STAIN_INDEX, _STAINS, PIXEL_UM
from .helpers import _bbox, _hex_sites, _splat


class _Canvas:
    """Stain density maps of one scene and the shape primitives that paint them (all vectorised)."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.scale = size / _REFERENCE_SIZE
        self.rng = rng
        self.density = np.zeros((len(_STAINS), size, size), dtype=np.float32)

    # -- geometry ---------------------------------------------------------------------------

    def _window(self, cx: float, cy: float, reach: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        n = self.size
        y0, y1 = max(0, int(math.floor(cy - reach))), min(n, int(math.ceil(cy + reach)) + 1)
        x0, x1 = max(0, int(math.floor(cx - reach))), min(n, int(math.ceil(cx + reach)) + 1)
        if y0 >= y1 or x0 >= x1:
            return None
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        return slice(y0, y1), slice(x0, x1), ys, xs

    def blob(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        theta: float = 0.0,
        harmonics: Sequence[tuple[int, float, float]] = (),
        edge: float = 1.0,
    ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
        """Soft mask of a rotated ellipse whose radius is modulated by ``(k, amplitude, phase)`` harmonics.

        Returns ``((rows, cols), mask, rn)`` on the bounding window, with ``mask`` in [0, 1]
        (edge ramp ``edge`` px wide) and ``rn`` the radial coordinate normalised to the
        boundary (0 at the centre, 1 on the edge), or None if the shape misses the frame.
        """
        bulge = 1.0 + sum(abs(a) for _, a, _ in harmonics)
        win = self._window(cx, cy, max(rx, ry) * bulge + 2.0 * edge + 1.0)
        if win is None:
            return None
        rows, cols, ys, xs = win
        c, s = math.cos(theta), math.sin(theta)
        u = (xs * c + ys * s) / np.float32(rx)
        v = (-xs * s + ys * c) / np.float32(ry)
        rho = np.sqrt(u * u + v * v)
        boundary = np.ones_like(rho)
        if harmonics:
            phi = np.arctan2(v, u)
            for k, a, p in harmonics:
                boundary += np.float32(a) * np.cos(k * phi + np.float32(p))
        mask = np.clip((boundary - rho) * np.float32(math.sqrt(rx * ry) / edge) + 0.5, 0.0, 1.0)
        return (rows, cols), mask, rho / boundary

    def tube(self, points: np.ndarray, half_widths: Sequence[float], edge: float = 1.0
             ) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Soft mask of a polyline ``points`` (n, 2) as (x, y), with half-width interpolated per vertex."""
        pts = np.asarray(points, dtype=np.float32)
        hw = np.asarray(half_widths, dtype=np.float32)
        lo, hi = pts.min(0), pts.max(0)
        centre = (lo + hi) / 2
        reach = float((hi - lo).max() / 2 + hw.max() + 2 * edge + 1)
        win = self._window(float(centre[0]), float(centre[1]), reach)
        if win is None:
            return None
        rows, cols, ys, xs = win
        ys = ys + centre[1]
        xs = xs + centre[0]
        best = np.full(np.broadcast_shapes(ys.shape, xs.shape), -1e6, dtype=np.float32)
        for (ax, ay), (bx, by), wa, wb in zip(pts[:-1], pts[1:], hw[:-1], hw[1:]):
            dx, dy = bx - ax, by - ay
            l2 = max(dx * dx + dy * dy, 1e-6)
            t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / l2, 0.0, 1.0)
            px, py = xs - (ax + t * dx), ys - (ay + t * dy)
            signed = (wa + t * (wb - wa)) - np.sqrt(px * px + py * py)
            np.maximum(best, signed, out=best)
        return (rows, cols), np.clip(best / np.float32(edge) + 0.5, 0.0, 1.0)

    # -- painting ---------------------------------------------------------------------------

    def add(self, stain: str, window: tuple[slice, slice], values: np.ndarray) -> None:
        self.density[_STAIN_INDEX[stain]][window] += values

    def full_mask(self, window: tuple[slice, slice], mask: np.ndarray) -> np.ndarray:
        out = np.zeros((self.size, self.size), dtype=np.float32)
        out[window] = mask
        return out

    def granules(
        self,
        stain: str,
        region: np.ndarray,
        diameter_um: float,
        spread: float,
        coverage: float,
        peak: tuple[float, float],
        weight: np.ndarray | None = None,
        count: int | None = None,
        packed: bool = False,
    ) -> int:
        """Scatter spherical granules over ``region > 0.5``; returns how many.

        Diameters are log-normal with mean ``diameter_um`` (um) and coefficient of variation
        ``spread``; each granule is a Gaussian of sigma ``0.37 * diameter`` whose peak density
        is drawn from ``peak`` (times ``weight`` at its centre, if given). Positions are
        independent and uniform (their number ``count`` or, by default, Poisson with mean
        ``coverage`` x the region's area over one granule's cross-section; coverage > 1: several
        layers seen through each other), or with ``packed`` the sites of a randomly placed and
        turned hexagonal lattice at area fraction ``coverage``, each moved by 12 % of the spacing
        (closely packed granules that touch but rarely overlap). Positions are continuous; each
        granule is shared bilinearly among its 4 nearest pixels before the blur (at most
        0.25 px^2 of extra variance per axis, against sigma^2 + the PSF's).
        """
        rng, s = self.rng, self.scale
        window = _bbox(region, 0.01)
        if window is None:
            return 0
        sub = region[window]
        ys, xs = np.nonzero(sub > 0.5)
        d_mean = diameter_um / PIXEL_UM * s
        if ys.size == 0:
            return 0
        if packed:
            y, x = _hex_sites(rng, sub.shape, d_mean * math.sqrt(math.pi / (2 * math.sqrt(3) * coverage)))
            keep = sub[np.clip(np.rint(y).astype(np.int64), 0, sub.shape[0] - 1),
                       np.clip(np.rint(x).astype(np.int64), 0, sub.shape[1] - 1)] > 0.5
            y, x = y[keep], x[keep]
            count = y.size
            if count == 0:
                return 0
            at = (np.clip(np.rint(y).astype(np.int64), 0, sub.shape[0] - 1),
                  np.clip(np.rint(x).astype(np.int64), 0, sub.shape[1] - 1))
        else:
            if count is None:
                count = int(rng.poisson(coverage * ys.size / (math.pi * d_mean * d_mean / 4)))
            if count <= 0:
                return 0
            pick = rng.integers(0, ys.size, count)
            y = ys[pick] + rng.random(count) - 0.5
            x = xs[pick] + rng.random(count) - 0.5
            at = (ys[pick], xs[pick])
        log_sd = math.sqrt(math.log1p(spread * spread))
        sigma = np.maximum(_SPHERE_SIGMA * d_mean * np.exp(rng.normal(-0.5 * log_sd**2, log_sd, count)), 0.3)
        mass = rng.uniform(peak[0], peak[1], count) * (2 * math.pi) * sigma * sigma
        if weight is not None:
            mass *= weight[window][at]
        # Granules of similar size share one blur (bins 1.35x wide in sigma).
        step = math.log(1.35)
        rank = np.floor(np.log(sigma / sigma.min()) / step).astype(np.int64)
        pad = math.ceil(3 * float(sigma.max())) + 2
        shape = (sub.shape[0] + 2 * pad, sub.shape[1] + 2 * pad)
        total = np.zeros(shape, dtype=np.float32)
        for k in np.unique(rank):
            sel = rank == k
            sk = round(float(np.exp(np.log(sigma[sel]).mean())) * 20) / 20  # a few cached kernels
            total += gaussian_blur_numpy(_splat(y[sel] + pad, x[sel] + pad, mass[sel], shape), sk)
        self.density[_STAIN_INDEX[stain]][window] += total[pad:-pad, pad:-pad] * np.minimum(sub * 1.5, 1.0)
        return count
