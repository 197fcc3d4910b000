"""One example's scene: the field, focus and staining of the crop, the shared cell parts, and its optics."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from raw_isp.isp.filters import gaussian_blur_numpy

from .canvas import _Canvas
from .constants import (
    _DEFOCUS_PX,
    _STAIN_INDEX,
    _STAINS,
    _VIGNETTING,
    LATERAL_COLOUR,
    PIXEL_UM,
    STAIN_ABSORBANCE,
    WAVELENGTHS_NM,
)
from .helpers import _bbox, _inside, _keys_resample, _smooth_noise
from .slides import _Slide


class _Scene:
    """One example's crop, focus and staining, and the parts that cells are made of; the class
    painters (:mod:`.painters`) draw the white cell with them."""

    def __init__(self, size: int, rng: np.random.Generator, slide: _Slide, field: int) -> None:
        self.c = _Canvas(size, rng)
        self.rng = rng
        self.s = self.c.scale
        self.extra_blur = 0.0
        # Where the crop lies in the camera's field of view (top-left pixel), and its focus.
        self.origin = (int(rng.integers(0, field - size + 1)), int(rng.integers(0, field - size + 1)))
        self.defocus = float(rng.uniform(0.0, _DEFOCUS_PX)) * self.s
        # The slide's staining with a smaller local variation (smear thickness, fixation).
        self.strength = slide.strength * np.exp(rng.normal(0.0, 0.08, len(_STAINS))).astype(np.float32)
        self.hue = slide.hue * (1.0 + rng.normal(0.0, 0.02, size=(len(_STAINS), 3))).astype(np.float32)
        self.lamp = slide.lamp
        self.crowding = slide.crowding
        self.granule_count = 0  # granules of the white cell, for the record

    def um(self, length: float) -> float:
        """A length in micrometres, in pixels of this frame."""
        return length / PIXEL_UM * self.s

    # -- shared parts -------------------------------------------------------------------------

    def harmonics(self, amp: float, ks: Sequence[int] = (2, 3, 4)) -> list[tuple[int, float, float]]:
        rng = self.rng
        return [(k, float(rng.uniform(0, amp) / (1 + 0.5 * (k - 2))), float(rng.uniform(0, 2 * math.pi))) for k in ks]

    def red_cells(self, wbc_x: float, wbc_y: float, wbc_r: float) -> None:
        rng, s, n = self.rng, self.s, self.c.size
        count = max(1, round(int(rng.integers(2, 9)) * self.crowding))
        placed: list[tuple[float, float, float]] = []
        for _ in range(count * 6):
            if len(placed) >= count:
                break
            r = rng.uniform(36, 46) * s
            x, y = rng.uniform(-0.3 * r, n + 0.3 * r, size=2)
            # Red cells touch or slightly overlap the white cell and each other, never cover it.
            if math.hypot(x - wbc_x, y - wbc_y) < wbc_r + 0.75 * r:
                continue
            if any(math.hypot(x - px, y - py) < 0.85 * (r + pr) for px, py, pr in placed):
                continue
            placed.append((x, y, r))
            e = rng.uniform(0.0, 0.12)
            out = self.c.blob(x, y, r * (1 + e), r * (1 - e), rng.uniform(0, math.pi), self.harmonics(0.03), s)
            if out is None:
                continue
            win, mask, rn = out
            pallor = rng.uniform(0.35, 0.7) * np.exp(-0.5 * (rn / rng.uniform(0.3, 0.45)) ** 2)
            rim = 1.0 + 0.25 * np.clip(rn, 0, 1) ** 4
            self.c.add("rbc", win, mask * (rng.uniform(0.75, 1.05) * (1 - pallor) * rim).astype(np.float32))

    def platelets(self) -> None:
        """Platelets: a pale hyalomere with a central granulomere of fine azurophilic granules."""
        rng, s, n = self.rng, self.s, self.c.size
        for _ in range(int(rng.choice([0, 0, 0, 1, 1, 2]))):
            x, y = rng.uniform(0, n, size=2)
            r = rng.uniform(5, 10) * s
            out = self.c.blob(x, y, r, r * rng.uniform(0.6, 1.0), rng.uniform(0, math.pi), self.harmonics(0.2), s)
            if out is not None:
                win, mask, rn = out
                self.c.add("nucleus", win, mask * np.float32(rng.uniform(0.12, 0.25)))
                core = self.c.full_mask(win, mask * (rn < 0.6))
                self.c.granules("nucleus", core, 0.2, 0.3, 1.0, (0.4, 0.9))

    def body(self, cx: float, cy: float, r: float, stain: str, density: float, irregular: float = 0.04,
             rim_darkening: float = 0.0, mix: tuple[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The cell body (cytoplasm), optionally a fraction ``mix[1]`` of it in stain ``mix[0]``.

        Returns full-frame ``(mask, rn)`` (see :meth:`_Canvas.blob`).
        """
        rng = self.rng
        e = rng.uniform(0.0, 0.1)
        out = self.c.blob(cx, cy, r * (1 + e), r * (1 - e), rng.uniform(0, math.pi), self.harmonics(irregular),
                          self.s)
        out = _inside(out)
        win, mask, rn = out
        texture = 1.0 + 0.12 * _smooth_noise(rng, mask.shape, 5.0 * self.s)
        prof = density * texture * (1.0 + rim_darkening * np.clip(rn, 0, 1) ** 3)
        values = (mask * prof).astype(np.float32)
        if mix is None:
            self.c.add(stain, win, values)
        else:
            self.c.add(stain, win, values * np.float32(1.0 - mix[1]))
            self.c.add(mix[0], win, values * np.float32(mix[1]))
        return self.c.full_mask(win, mask), self.c.full_mask(win, rn)

    def chromatin(self, mask: np.ndarray, density: float, style: str = "clumped", grain_um: float = 0.25,
                  contrast: float = 0.5, rim: float = 0.4) -> np.ndarray:
        """Add nuclear stain over ``mask``; returns the added full-frame density map.

        ``style="clumped"``: heterochromatin clumps (a random field of correlation length
        ``grain_um`` thresholded at its median with a ~1-px soft edge) at ``density`` and pale
        parachromatin between them at ``(1 - contrast) * density``. ``"lacy"``: thin strands
        along the zero lines of such a field (a few px apart, about 1 px wide) over a paler
        ground. ``rim``: extra density, as a fraction, of the heterochromatin lining the nuclear
        envelope (a band about 1.5 px wide inside the border). The mean density over the nucleus
        is about ``density`` times what the pattern leaves (0.5 + contrast / 2 for clumps).
        """
        out = np.zeros_like(mask)
        window = _bbox(mask, 0.01, pad=math.ceil(4.5 * self.s) + 1)
        if window is None:
            return out
        m = mask[window]
        field = _smooth_noise(self.rng, m.shape, self.um(grain_um))
        if style == "clumped":
            pattern = (1.0 - contrast) + contrast * (0.5 + 0.5 * np.tanh(field / np.float32(0.3)))
        elif style == "lacy":
            pattern = (1.0 - contrast) + contrast * 2.5 * np.exp(-0.5 * (field / np.float32(0.35)) ** 2)
        else:
            raise ValueError(f"unknown chromatin style {style!r}")
        if rim > 0:
            envelope = np.clip(m - gaussian_blur_numpy(m, 1.5 * self.s), 0.0, None) * np.float32(2.0)
            pattern = pattern * (1.0 + rim * envelope)
        out[window] = m * np.float32(density) * pattern
        self.c.density[_STAIN_INDEX["nucleus"]] += out
        return out

    def lobe_chain(self, centres: np.ndarray, sizes: np.ndarray, angles: np.ndarray, strand: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Masks of elliptic lobes and of the filaments (half-width ``strand``) that join them in order.

        The filament mask holds only what lies outside the lobes. Filaments are condensed
        chromatin and nuclear envelope, drawn without the lobes' clump texture.
        """
        n = self.c.size
        nuc = np.zeros((n, n), dtype=np.float32)
        for (x, y), (a, b), th in zip(centres, sizes, angles):
            out = self.c.blob(x, y, a, b, th, self.harmonics(0.06), self.s)
            if out is not None:
                win, m, _ = out
                np.maximum(nuc[win], m, out=nuc[win])
        strands = np.zeros_like(nuc)
        if len(centres) > 1 and strand > 0:
            out = self.c.tube(centres, [strand] * len(centres), 0.7 * self.s)
            if out is not None:
                win, m = out
                strands[win] = np.clip(m - nuc[win], 0.0, None)
        return nuc, strands

    def filaments(self, strands: np.ndarray, density: float) -> None:
        """Add the filaments of :meth:`lobe_chain` as untextured nuclear stain of ``density``."""
        window = _bbox(strands, 0.0)
        if window is not None:
            self.c.add("nucleus", window, strands[window] * np.float32(density))

    def azurophilic(self, region: np.ndarray, count: int, diameter_um: tuple[float, float]) -> None:
        """A few discrete azurophilic (reddish-purple) granules, as in granular lymphocytes."""
        self.granule_count += self.c.granules("nucleus", region, self.rng.uniform(*diameter_um), 0.2, 0.0,
                                              (0.6, 1.1), count=count)

    # -- optics -------------------------------------------------------------------------------

    def optics(self, psf_sigma: float, field: int) -> tuple[np.ndarray, np.ndarray]:
        """Specimen transmission ``(3, H, W)`` through the objective, and the illumination ``(H, W)``.

        Per channel: Beer-Lambert transmission, a Gaussian PSF of sigma ``psf_sigma`` (at 525 nm)
        scaled with the wavelength and combined with the field's defocus, then the channel's
        lateral colour about the axis of a ``field``-pixel square field of view. The
        illumination is the slide's lamp level times the vignetting at the crop's place in the
        field; it varies slowly, so multiplying it in after the blur is exact enough.
        """
        n = self.c.size
        absorbance = np.array([STAIN_ABSORBANCE[k] for k in _STAINS], dtype=np.float32) * self.hue
        absorbance *= self.strength[:, None]
        # OD per channel as explicit multiply-adds: BLAS (tensordot) is no faster on 7 layers
        # and slows badly when its threads compete for a busy CPU.
        trans = np.empty((3, n, n), dtype=np.float32)
        axis = field / 2.0
        rows = self.origin[0] + np.arange(n, dtype=np.float64) + 0.5 - axis  # from the optical axis, px
        cols = self.origin[1] + np.arange(n, dtype=np.float64) + 0.5 - axis
        for ch in range(3):
            acc = absorbance[0, ch] * self.c.density[0]
            for k in range(1, len(_STAINS)):
                acc += absorbance[k, ch] * self.c.density[k]
            t = np.exp(acc * np.float32(-math.log(10.0)))  # 10 ** -OD
            sigma = math.hypot(psf_sigma * WAVELENGTHS_NM[ch] / 525.0, self.defocus, self.extra_blur)
            t = gaussian_blur_numpy(t, sigma)
            if LATERAL_COLOUR[ch]:
                # The image of field point P is at axis + (1 + m)(P - axis): pixel X reads P = X - m(X - axis).
                m = LATERAL_COLOUR[ch]
                t = _keys_resample(t, np.arange(n) - m * rows, axis=0)
                t = _keys_resample(t, np.arange(n) - m * cols, axis=1)
            trans[ch] = t
        np.clip(trans, 1e-6, 1.0, out=trans)  # cubic interpolation may overshoot clear glass slightly
        radius2 = (rows[:, None] ** 2 + cols[None, :] ** 2) / (2.0 * axis * axis)  # 1 at the field's corner
        illumination = (self.lamp * (1.0 - _VIGNETTING * radius2)).astype(np.float32)
        return trans, illumination
