"""Synthetic Raw-Microscopy: bright-field images of stained white blood cells as raw Bayer frames.

The real Raw-Microscopy set (Zenodo, DOI 10.5281/zenodo.5235536) holds 940 single-cell crops of
256x256 pixels from a custom bright-field microscope, nine morphological classes, each frame at
seven intensity ratios. This module renders data of the same kind from an explicit optical model:

1. **Scene.** A stained blood smear is a stack of stain *density* maps (white-cell nucleus,
   cytoplasm, granules, red cells, platelets). Each stain has a base-10 absorbance at the three
   filter wavelengths 620, 525 and 450 nm (:data:`STAIN_ABSORBANCE`); the optical density is their
   sum (Beer-Lambert), and the specimen transmits ``10 ** -OD`` (1 on clear glass).
2. **Optics.** The transmission of each channel is blurred by a Gaussian PSF (sigma
   :data:`PSF_SIGMA_PX` pixels; out-of-focus "unclear" cells get more) and multiplied by the
   illumination: a gently vignetted field at :data:`BACKGROUND_LEVEL` of the sensor's full
   scale per channel (lamp spectrum times filter transmissivity).
3. **Capture.** As in the real data, three captures through red, green and blue filters are
   mosaicked to RGGB by keeping complementary pixels (:func:`raw_isp.isp.cfa.mosaic`).
4. **Sensor.** The mosaic, in units of the full-scale signal, becomes photo-electrons and is
   digitised by ``raw_isp.SENSORS["microscopy"].expose`` (shot noise, read noise, 16-bit DN).
   Lower intensities thin the photons of the ratio-1.0 frame with ``scale_intensity``, so the same
   scene at lower light is the same photons, fewer of them, as in the real set.

Classes, in label order :data:`CLASS_NAMES`, with the real counts :data:`CLASS_COUNTS`:

- ``NGS`` segmented neutrophil: 2-5 (mostly 3-4) nuclear lobes joined by thin strands, lilac
  cytoplasm, fine granules.
- ``NGB`` band neutrophil: one curved C- or S-shaped band nucleus, same cytoplasm as NGS.
- ``LYT`` typical lymphocyte: small cell, round dense clumped nucleus, thin blue cytoplasm rim.
- ``LYA`` atypical lymphocyte: larger, abundant deep-blue cytoplasm darker at the rim, looser chromatin.
- ``MON`` monocyte: large, kidney-shaped or folded lacy nucleus, grey-blue cytoplasm with vacuoles.
- ``EOS`` eosinophil: bilobed nucleus, cytoplasm packed with coarse orange-red granules.
- ``BAS`` basophil: dark purple coarse granules over a faint nucleus.
- ``KSC`` smudge cell / debris: ruptured, streaky smeared nuclear material, no membrane.
- ``UNC`` unclear: a cell of another class made ambiguous (defocused, faded, fragmented or
  overlapped by a second nucleus).

Within each class, size, shape, orientation, position, stain strength and hue, chromatin texture
and the neighbouring red cells (pale discs with central pallor, some cut by the frame edge)
vary. Example ``i`` of a seed is rendered from ``numpy.random.default_rng([seed, i])`` alone, so it
is the same image whenever and in whatever order it is generated; its label comes from a seeded
permutation of the real label list (:func:`label_of`), so the first 940 examples have exactly the
real class counts, and each further block of 940 again has them.

Measured figures (seed 0 unless stated; a shared 2-core machine, numpy/torch single-threaded):

- Speed: rendering a scene takes about 11 ms of CPU; a full example (scene, one exposure and six
  ``scale_intensity`` thinnings) about 52 ms, of which the sensor readouts are about 40 ms. The
  whole set, 940 examples x 7 intensities = 6,580 raw frames, took 49 CPU-seconds: about 25 s
  wall-clock in two worker processes on two free cores (single-process: about 50 s).
- Through ``StaticISP("bi_s_ga", camera="microscopy")`` the per-channel means of the views are
  (0.91, 0.84, 0.94) by construction (see :data:`BACKGROUND_LEVEL`); the stds are
  (0.097, 0.128, 0.064) against the real (0.08, 0.12, 0.05): slightly more contrast.
- Learnable but not trivial: logistic regression on colour and texture statistics of the central
  region of the ``bi_s_ga`` view (tests/test_synthetic_microscopy.py), class-balanced draw, 2/3
  train, 1/3 test. 256x256, 50 per class (300/150): accuracy 0.79, 0.77, 0.81 for seeds 0, 1, 2
  (majority rate 0.12). 128x128, 30 per class (180/90): 0.87, 0.83, 0.82 (majority 0.14).
  Residual confusions: NGS/NGB, LYT/LYA/MON and UNC with everything.
- ISP matters: the same raw frames through ``bi_s_ga`` and ``me_u_me`` differ by a mean absolute
  difference of about 0.006 (PSNR about 40-42 dB) at every intensity.

What is not modelled, compared with the real data: measured stain spectra and filter bandwidths
(each filter is a single wavelength, each stain three absorbances), the real objective's PSF
(a fixed Gaussian here), chromatic aberration, refraction and phase halos at cell edges, depth of
field through a 3-D cell, dust and fixed-pattern or dark-current noise, and the real sensor's
calibration (``SENSORS["microscopy"]`` is an assumption). Morphology is procedural 2-D shapes
whose class-conditional ranges are guesses, not fitted to real images; examples are independent,
whereas real crops come from a few slides; labels carry no annotator noise beyond the stylised
UNC class.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from raw_isp.isp.cfa import mosaic
from raw_isp.isp.filters import gaussian_kernel1d
from raw_isp.sensor import SENSORS

__all__ = [
    "CLASS_NAMES",
    "CLASS_COUNTS",
    "INTENSITIES",
    "WAVELENGTHS_NM",
    "STAIN_ABSORBANCE",
    "BACKGROUND_LEVEL",
    "PSF_SIGMA_PX",
    "label_of",
    "label_assignment",
    "MicroscopySimulator",
]

CLASS_NAMES: tuple[str, ...] = ("BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC")
CLASS_COUNTS: dict[str, int] = {
    "BAS": 18, "EOS": 54, "KSC": 163, "LYA": 30, "LYT": 230, "MON": 191, "NGB": 8, "NGS": 216, "UNC": 30,
}
NUM_REAL_EXAMPLES = sum(CLASS_COUNTS.values())  # 940
INTENSITIES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)
WAVELENGTHS_NM: tuple[int, int, int] = (620, 525, 450)  # centres of the R, G, B capture filters

# Base-10 absorbance of one unit of stain density at (620, 525, 450) nm. Romanowsky-type staining:
# the azure/haematoxylin-DNA complex of nuclei absorbs green most and passes some red and blue
# (purple); eosin in red cells and eosinophil granules absorbs green and blue (pink to
# orange-red); basophilic (RNA-rich) cytoplasm takes methylene blue, which absorbs red (blue).
STAIN_ABSORBANCE: dict[str, tuple[float, float, float]] = {
    "nucleus": (0.45, 0.75, 0.20),      # purple chromatin
    "cyto_blue": (0.36, 0.22, 0.07),    # lymphocyte cytoplasm
    "cyto_grey": (0.24, 0.22, 0.13),    # monocyte cytoplasm, grey-blue
    "cyto_lilac": (0.09, 0.16, 0.08),   # neutrophil cytoplasm, pale lilac
    "eos_granule": (0.06, 0.36, 0.46),  # eosinophil granules, orange-red
    "bas_granule": (0.72, 0.92, 0.42),  # basophil granules, dark purple-blue
    "rbc": (0.035, 0.20, 0.09),         # haemoglobin + eosin, pinkish
}
_STAINS = tuple(STAIN_ABSORBANCE)
_STAIN_INDEX = {name: k for k, name in enumerate(_STAINS)}

# Background signal per channel (R, G, B) as a fraction of the sensor's full scale: the lamp
# through clear glass and each capture filter. The real raw values are not published as
# statistics, but the real *processed* images are: Raw2Logit normalises the ISP output of
# Raw-Microscopy with per-channel means (0.91, 0.84, 0.94) and stds (0.08, 0.12, 0.05). With the
# dataset's camera preset (raw_isp.CAMERAS["microscopy"]: white balance and colour matrix that
# amplify green about 5x and blue about 10x) only a red-heavy, dim-blue raw background gives such
# a view, so these levels were fitted to reproduce those means through
# StaticISP("bi_s_ga", camera="microscopy") (fit over 120 synthetic examples, noise-free).
BACKGROUND_LEVEL: tuple[float, float, float] = (0.580, 0.1638, 0.0763)
PSF_SIGMA_PX = 1.25  # Gaussian PSF of the objective, pixels (256x256 frames)
_VIGNETTING = 0.035  # relative fall-off of illumination at the frame corner
_REFERENCE_SIZE = 256  # lengths below are in pixels of a 256x256 frame and scale with `size`


# --------------------------------------------------------------------------- labels


@functools.lru_cache(maxsize=64)
def _label_block(seed: int, block: int) -> np.ndarray:
    """Labels of examples ``940*block .. 940*block+939``: a seeded permutation of the real list."""
    labels = np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int64), [CLASS_COUNTS[c] for c in CLASS_NAMES])
    perm = np.random.default_rng([seed, block, 0x1A8E1]).permutation(labels)
    perm.setflags(write=False)
    return perm


def _check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_index(i: Any) -> int:
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or i < 0:
        raise ValueError(f"example index must be a non-negative integer, got {i!r}")
    return int(i)


def label_of(i: int, seed: int = 0) -> int:
    """Class index (into :data:`CLASS_NAMES`) of example ``i`` for ``seed``; renders nothing.

    Examples come in blocks of 940, each a seeded permutation of the real label list, so any
    940 consecutive examples starting at a multiple of 940 have exactly :data:`CLASS_COUNTS`.
    """
    i, seed = _check_index(i), _check_seed(seed)
    return int(_label_block(seed, i // NUM_REAL_EXAMPLES)[i % NUM_REAL_EXAMPLES])


def label_assignment(num_examples: int = NUM_REAL_EXAMPLES, seed: int = 0) -> np.ndarray:
    """Labels of examples ``0 .. num_examples-1`` as an int64 array."""
    if num_examples < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples}")
    seed = _check_seed(seed)
    blocks = -(-num_examples // NUM_REAL_EXAMPLES)
    if blocks == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([_label_block(seed, b) for b in range(blocks)])[:num_examples].copy()


def _derived_seed(*parts: int) -> int:
    """A 32-bit integer seed derived from integer parts (stable across runs and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint32)[0])


# --------------------------------------------------------------------------- image helpers


@functools.lru_cache(maxsize=32)
def _gaussian_kernel(sigma: float) -> np.ndarray:
    """Taps of a Gaussian PSF, float32, truncated at 3 sigma (rounded up)."""
    return gaussian_kernel1d(sigma, radius=max(1, math.ceil(3.0 * sigma))).numpy()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of ``(..., H, W)`` float32, reflecting at the edges (sigma in px)."""
    image = np.asarray(image, dtype=np.float32)
    if sigma <= 0:
        return image
    k = _gaussian_kernel(round(float(sigma), 3))
    h, w = image.shape[-2:]
    r = min(len(k) // 2, h - 1, w - 1)  # reflection needs r < size; tiny frames get a clipped kernel
    if r < len(k) // 2:
        k = k[len(k) // 2 - r: len(k) // 2 + r + 1]
        k = k / k.sum()
    pad = [(0, 0)] * (image.ndim - 2) + [(r, r), (r, r)]
    p = np.pad(image, pad, mode="reflect")
    # Shifted sums: for the small kernels used here this beats FFT and conv2d on a CPU.
    rows = k[0] * p[..., :, 0:w]
    for j in range(1, len(k)):
        rows += k[j] * p[..., :, j:j + w]
    out = k[0] * rows[..., 0:h, :]
    for j in range(1, len(k)):
        out += k[j] * rows[..., j:j + h, :]
    return out


@functools.lru_cache(maxsize=32)
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
    """Zero-mean, unit-std Gaussian random field with Gaussian correlation (periodic), float32."""
    h, w = shape
    sy = sigma if sigma_y is None else sigma_y
    white = rng.standard_normal((h, w), dtype=np.float32)
    field = np.fft.irfft2(np.fft.rfft2(white) * _spectral_gaussian(h, w, round(sy, 2), round(sigma, 2),
                                                                    round(angle, 3)), s=(h, w))
    field = field.astype(np.float32)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def _inside(out):
    """A shape centred on the white cell always meets the frame; fail loudly if it does not."""
    if out is None:
        raise RuntimeError("internal error: a white-cell shape fell outside the frame")
    return out


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
        cx: float,
        cy: float,
        radius: float,
        count: int,
        sigma: float,
        amp: tuple[float, float],
        weight: np.ndarray | None = None,
    ) -> None:
        """Scatter ``count`` Gaussian granules (peak density ~``amp``) uniformly over ``region`` > 0.5."""
        rng, n = self.rng, self.size
        # Candidate positions in the disc around the cell, kept where the region mask is set.
        k = 3 * count + 8
        r = radius * np.sqrt(rng.random(k))
        a = rng.random(k) * 2 * math.pi
        x = np.round(cx + r * np.cos(a)).astype(np.int64)
        y = np.round(cy + r * np.sin(a)).astype(np.int64)
        ok = (x >= 0) & (x < n) & (y >= 0) & (y < n)
        x, y = x[ok], y[ok]
        inside = region[y, x] > 0.5
        x, y = x[inside][:count], y[inside][:count]
        if x.size == 0:
            return
        peaks = rng.uniform(amp[0], amp[1], x.size).astype(np.float32)
        if weight is not None:
            peaks *= weight[y, x]
        impulses = np.zeros((n, n), dtype=np.float32)
        np.add.at(impulses, (y, x), peaks * np.float32(2 * math.pi * sigma * sigma))
        self.density[_STAIN_INDEX[stain]] += gaussian_blur(impulses, sigma) * np.minimum(region * 1.5, 1.0)


# --------------------------------------------------------------------------- scene


class _Scene:
    """Renders one example: red cells, platelets, then the white cell of the given class."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.c = _Canvas(size, rng)
        self.rng = rng
        self.s = self.c.scale
        self.extra_blur = 0.0
        # Slide-level staining variation: overall strength per stain family, slight hue shift.
        self.nuc_strength = rng.uniform(0.7, 1.3)
        self.cyto_strength = rng.uniform(0.7, 1.3)
        self.rbc_strength = rng.uniform(0.7, 1.3)
        self.hue = (1.0 + rng.normal(0.0, 0.06, size=(len(_STAINS), 3))).astype(np.float32)

    # -- shared parts -------------------------------------------------------------------------

    def _harmonics(self, amp: float, ks: Sequence[int] = (2, 3, 4)) -> list[tuple[int, float, float]]:
        rng = self.rng
        return [(k, float(rng.uniform(0, amp) / (1 + 0.5 * (k - 2))), float(rng.uniform(0, 2 * math.pi))) for k in ks]

    def red_cells(self, wbc_x: float, wbc_y: float, wbc_r: float) -> None:
        rng, s, n = self.rng, self.s, self.c.size
        count = int(rng.integers(2, 9))
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
            out = self.c.blob(x, y, r * (1 + e), r * (1 - e), rng.uniform(0, math.pi), self._harmonics(0.03), 1.5 * s)
            if out is None:
                continue
            win, mask, rn = out
            pallor = rng.uniform(0.35, 0.7) * np.exp(-0.5 * (rn / rng.uniform(0.3, 0.45)) ** 2)
            rim = 1.0 + 0.25 * np.clip(rn, 0, 1) ** 4
            self.c.add("rbc", win, mask * (rng.uniform(0.75, 1.05) * (1 - pallor) * rim).astype(np.float32))

    def platelets(self) -> None:
        rng, s, n = self.rng, self.s, self.c.size
        for _ in range(int(rng.choice([0, 0, 0, 1, 1, 2]))):
            x, y = rng.uniform(0, n, size=2)
            r = rng.uniform(5, 10) * s
            out = self.c.blob(x, y, r, r * rng.uniform(0.6, 1.0), rng.uniform(0, math.pi), self._harmonics(0.2), s)
            if out is not None:
                win, mask, _ = out
                self.c.add("nucleus", win, mask * np.float32(rng.uniform(0.25, 0.5)))

    def body(self, cx: float, cy: float, r: float, stain: str, density: float, irregular: float = 0.04,
             rim_darkening: float = 0.0, mix: tuple[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The cell body (cytoplasm), optionally a fraction ``mix[1]`` of it in stain ``mix[0]``.

        Returns full-frame ``(mask, rn)`` (see :meth:`_Canvas.blob`).
        """
        rng = self.rng
        e = rng.uniform(0.0, 0.1)
        out = self.c.blob(cx, cy, r * (1 + e), r * (1 - e), rng.uniform(0, math.pi), self._harmonics(irregular),
                          1.5 * self.s)
        out = _inside(out)
        win, mask, rn = out
        texture = 1.0 + 0.12 * _smooth_noise(rng, mask.shape, 5.0 * self.s)
        prof = density * self.cyto_strength * texture * (1.0 + rim_darkening * np.clip(rn, 0, 1) ** 3)
        values = (mask * prof).astype(np.float32)
        if mix is None:
            self.c.add(stain, win, values)
        else:
            self.c.add(stain, win, values * np.float32(1.0 - mix[1]))
            self.c.add(mix[0], win, values * np.float32(mix[1]))
        return self.c.full_mask(win, mask), self.c.full_mask(win, rn)

    def chromatin(self, mask: np.ndarray, density: float, contrast: float, grain: float) -> np.ndarray:
        """Add nuclear stain over ``mask`` with clumped texture; returns the added density map."""
        tex = _smooth_noise(self.rng, mask.shape, grain * self.s)
        d = mask * np.float32(density * self.nuc_strength) * np.clip(1.0 + contrast * tex, 0.2, None)
        self.c.density[_STAIN_INDEX["nucleus"]] += d
        return d

    def lobe_chain(self, centres: np.ndarray, sizes: np.ndarray, angles: np.ndarray, strand: float) -> np.ndarray:
        """Union mask of elliptic lobes joined by thin strands (tubes) between consecutive lobes."""
        n = self.c.size
        nuc = np.zeros((n, n), dtype=np.float32)
        for (x, y), (a, b), th in zip(centres, sizes, angles):
            out = self.c.blob(x, y, a, b, th, self._harmonics(0.06), self.s)
            if out is not None:
                win, m, _ = out
                np.maximum(nuc[win], m, out=nuc[win])
        if len(centres) > 1 and strand > 0:
            out = self.c.tube(centres, [strand] * len(centres), 0.8 * self.s)
            if out is not None:
                win, m = out
                np.maximum(nuc[win], m, out=nuc[win])
        return nuc

    # -- classes ------------------------------------------------------------------------------

    def render(self, label: str) -> None:
        rng, s, n = self.rng, self.s, self.c.size
        cx = n / 2 + rng.normal(0, 7) * s
        cy = n / 2 + rng.normal(0, 7) * s
        radius = {
            "LYT": (34, 52), "LYA": (42, 66), "MON": (50, 76), "NGS": (48, 64), "NGB": (48, 64),
            "EOS": (50, 68), "BAS": (42, 58), "KSC": (36, 78), "UNC": (40, 70),
        }[label]
        r = rng.uniform(*radius) * s
        self.red_cells(cx, cy, r if label != "KSC" else 0.8 * r)
        self.platelets()
        getattr(self, "_" + label.lower())(cx, cy, r)

    def _lyt(self, cx: float, cy: float, r: float) -> None:
        rng = self.rng
        self.body(cx, cy, r, "cyto_blue", rng.uniform(0.6, 1.2), mix=("cyto_grey", rng.uniform(0.0, 0.6)))
        k = rng.uniform(0.7, 0.9)
        off, ang = rng.uniform(0, 0.12) * r, rng.uniform(0, 2 * math.pi)
        e = rng.uniform(0, 0.08)
        out = self.c.blob(cx + off * math.cos(ang), cy + off * math.sin(ang), k * r * (1 + e), k * r * (1 - e),
                          rng.uniform(0, math.pi), self._harmonics(0.05), self.s)
        out = _inside(out)
        self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.85, 1.3), rng.uniform(0.2, 0.4), 2.5)

    def _lya(self, cx: float, cy: float, r: float) -> None:
        rng = self.rng
        self.body(cx, cy, r, "cyto_blue", rng.uniform(0.6, 1.4), irregular=0.12, rim_darkening=rng.uniform(0.1, 0.6),
                  mix=("cyto_grey", rng.uniform(0.0, 0.7)))
        k = rng.uniform(0.5, 0.75)
        off, ang = rng.uniform(0.05, 0.25) * r, rng.uniform(0, 2 * math.pi)
        e = rng.uniform(0, 0.15)
        out = self.c.blob(cx + off * math.cos(ang), cy + off * math.sin(ang), k * r * (1 + e), k * r * (1 - e),
                          rng.uniform(0, math.pi), self._harmonics(0.1), self.s)
        out = _inside(out)
        self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.7, 1.05), rng.uniform(0.1, 0.25), 1.6)

    def _mon(self, cx: float, cy: float, r: float) -> None:
        rng, s = self.rng, self.s
        cell, _ = self.body(cx, cy, r, "cyto_grey", rng.uniform(0.6, 1.2), irregular=0.08,
                            mix=("cyto_blue", rng.uniform(0.0, 0.7)))
        ang = rng.uniform(0, 2 * math.pi)
        off = rng.uniform(0.05, 0.2) * r
        nx, ny = cx + off * math.cos(ang), cy + off * math.sin(ang)
        k = rng.uniform(0.52, 0.64)
        out = self.c.blob(nx, ny, k * r * rng.uniform(1.0, 1.2), k * r * rng.uniform(0.8, 1.0), ang + math.pi / 2,
                          self._harmonics(0.1), s)
        out = _inside(out)
        nuc = self.c.full_mask(out[0], out[1])
        if rng.random() < 0.65:  # kidney: a notch bitten out of the nucleus on the cell-centre side
            nr = k * r * rng.uniform(0.35, 0.55)
            d = k * r * rng.uniform(0.75, 1.0)
            notch = self.c.blob(nx - d * math.cos(ang), ny - d * math.sin(ang), nr, nr * 1.2, ang, (), 1.5 * s)
            if notch is not None:
                nuc[notch[0]] *= 1.0 - notch[1]
        else:  # folded: a lighter crease across the nucleus
            th = rng.uniform(0, math.pi)
            L = k * r
            pts = np.array([[nx - L * math.cos(th), ny - L * math.sin(th)], [nx, ny + rng.normal(0, 0.2) * L],
                            [nx + L * math.cos(th), ny + L * math.sin(th)]])
            crease = self.c.tube(pts, [2.0 * s] * 3, 1.5 * s)
            if crease is not None:
                nuc[crease[0]] *= 1.0 - 0.55 * crease[1]
        self.chromatin(nuc, rng.uniform(0.6, 0.95), rng.uniform(0.2, 0.3), 1.4)
        # Vacuoles: small clear holes in the cytoplasm.
        for _ in range(int(rng.integers(0, 9))):
            a, rr = rng.uniform(0, 2 * math.pi), r * math.sqrt(rng.uniform(0.2, 0.8))
            vr = rng.uniform(2.5, 6.0) * s
            out = self.c.blob(cx + rr * math.cos(a), cy + rr * math.sin(a), vr, vr, 0.0, (), s)
            if out is not None:
                win, m, _ = out
                keep = 1.0 - 0.8 * m * cell[win] * (1.0 - np.minimum(nuc[win] * 2, 1.0))
                for stain in ("cyto_grey", "cyto_blue"):
                    self.c.density[_STAIN_INDEX[stain]][win] *= keep

    def _neutrophil_body(self, cx: float, cy: float, r: float) -> np.ndarray:
        rng = self.rng
        cell, _ = self.body(cx, cy, r, "cyto_lilac", rng.uniform(0.8, 1.2))
        grains = np.clip(_smooth_noise(rng, cell.shape, 0.8 * self.s), 0, None)
        self.c.density[_STAIN_INDEX["cyto_lilac"]] += cell * grains * np.float32(rng.uniform(0.25, 0.45))
        return cell

    def _ngs(self, cx: float, cy: float, r: float) -> None:
        rng = self.rng
        self._neutrophil_body(cx, cy, r)
        n_lobes = int(rng.choice([2, 3, 3, 3, 4, 4, 4, 5]))
        arc = rng.uniform(0.36, 0.48) * r
        start = rng.uniform(0, 2 * math.pi)
        steps = np.radians(rng.uniform(62, 92, n_lobes - 1)) * rng.choice([-1, 1])
        angles = start + np.concatenate([[0.0], np.cumsum(steps)])
        angles -= (angles[-1] - angles[0]) / 2  # centre the chain on the cell
        radial = arc * rng.uniform(0.8, 1.2, n_lobes)
        centres = np.stack([cx + radial * np.cos(angles), cy + radial * np.sin(angles)], axis=1)
        sizes = np.stack([rng.uniform(0.2, 0.27, n_lobes) * r, rng.uniform(0.14, 0.19, n_lobes) * r], axis=1)
        nuc = self.lobe_chain(centres, sizes, angles + rng.normal(0, 0.3, n_lobes),
                              rng.uniform(1.0, 2.0) * self.s)
        self.chromatin(nuc, rng.uniform(0.95, 1.2), rng.uniform(0.25, 0.35), 2.0)

    def _ngb(self, cx: float, cy: float, r: float) -> None:
        rng = self.rng
        self._neutrophil_body(cx, cy, r)
        t = np.linspace(-1.0, 1.0, 15)
        rad = rng.uniform(0.35, 0.5) * r
        if rng.random() < 0.7:  # C-shape: an arc of 150-260 degrees
            half = np.radians(rng.uniform(150, 260)) / 2
            local = np.stack([rad * np.cos(half * t), rad * np.sin(half * t)], axis=1)
        else:  # S-shape: one period of a sine along a straight axis
            local = np.stack([rad * 1.1 * t, rad * rng.uniform(0.35, 0.6) * np.sin(math.pi * t)], axis=1)
        rot = rng.uniform(0, 2 * math.pi)
        c, sn = math.cos(rot), math.sin(rot)
        pts = local @ np.array([[c, sn], [-sn, c]])
        pts += np.array([cx, cy]) - pts.mean(0)
        width = rng.uniform(0.12, 0.17) * r
        hw = width * (1.0 - 0.3 * (2 * np.linspace(-0.5, 0.5, len(pts))) ** 4) * rng.uniform(0.9, 1.1, len(pts))
        out = self.c.tube(pts, hw, self.s)
        out = _inside(out)
        self.chromatin(self.c.full_mask(*out), rng.uniform(0.95, 1.2), rng.uniform(0.25, 0.35), 2.0)

    def _eos(self, cx: float, cy: float, r: float) -> None:
        rng, s = self.rng, self.s
        cell, _ = self.body(cx, cy, r, "cyto_lilac", rng.uniform(0.3, 0.6))
        axis = rng.uniform(0, math.pi)
        sep = rng.uniform(0.28, 0.4) * r
        bend = rng.normal(0, 0.12) * r
        ox, oy = math.cos(axis), math.sin(axis)
        centres = np.array([[cx - sep * ox - bend * oy, cy - sep * oy + bend * ox],
                            [cx + sep * ox - bend * oy, cy + sep * oy + bend * ox]])
        sizes = np.stack([rng.uniform(0.26, 0.33, 2) * r, rng.uniform(0.19, 0.25, 2) * r], axis=1)
        nuc = self.lobe_chain(centres, sizes, np.array([axis + math.pi / 2] * 2) + rng.normal(0, 0.3, 2),
                              rng.uniform(1.0, 2.5) * s)
        self.chromatin(nuc, rng.uniform(0.8, 1.0), rng.uniform(0.2, 0.3), 2.0)
        count = int(rng.uniform(0.5, 1.0) * (r / (3.2 * s)) ** 2)
        peak = rng.uniform(0.35, 1.0)
        self.c.granules("eos_granule", cell, cx, cy, r, count, rng.uniform(1.8, 2.4) * s, (0.6 * peak, 1.1 * peak),
                        weight=1.0 - 0.6 * nuc)

    def _bas(self, cx: float, cy: float, r: float) -> None:
        rng, s = self.rng, self.s
        cell, _ = self.body(cx, cy, r, "cyto_lilac", rng.uniform(0.4, 0.8))
        out = self.c.blob(cx + rng.normal(0, 0.08) * r, cy + rng.normal(0, 0.08) * r, 0.6 * r, 0.5 * r,
                          rng.uniform(0, math.pi), self._harmonics(0.2), 2 * s)
        out = _inside(out)
        self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.45, 0.7), 0.15, 2.5)
        count = int(rng.uniform(0.1, 0.6) * (r / (3.0 * s)) ** 2)
        peak = rng.uniform(0.5, 1.0)
        # Coarse granules of mixed size: two populations.
        self.c.granules("bas_granule", cell, cx, cy, r, count, rng.uniform(1.6, 2.2) * s, (0.5 * peak, 1.3 * peak))
        self.c.granules("bas_granule", cell, cx, cy, r, count // 4, rng.uniform(2.6, 3.4) * s, (0.4 * peak, 0.9 * peak))

    def _ksc(self, cx: float, cy: float, r: float) -> None:
        rng, s, n = self.rng, self.s, self.c.size
        e = rng.uniform(0.0, 0.35)
        theta = rng.uniform(0, math.pi)
        out = self.c.blob(cx, cy, r * (1 + e), r * (1 - e), theta, self._harmonics(0.35, (2, 3, 4, 5, 7)),
                          rng.uniform(5, 12) * s)
        out = _inside(out)
        env = self.c.full_mask(out[0], out[1])
        streaks = _smooth_noise(rng, (n, n), rng.uniform(6, 12) * s, rng.uniform(2.0, 3.5) * s,
                                theta + rng.normal(0, 0.4))
        blotches = _smooth_noise(rng, (n, n), rng.uniform(3, 8) * s)
        mix = rng.uniform(0.2, 0.8)
        fibres = np.clip(0.6 + 0.45 * (mix * streaks + (1 - mix) * blotches), 0, None)
        self.c.density[_STAIN_INDEX["nucleus"]] += env * fibres * np.float32(rng.uniform(0.3, 0.7) *
                                                                              self.nuc_strength)
        if rng.random() < 0.35:  # a denser remnant core
            out = self.c.blob(cx + rng.normal(0, 0.2) * r, cy + rng.normal(0, 0.2) * r, 0.3 * r, 0.22 * r,
                              rng.uniform(0, math.pi), self._harmonics(0.2), 3 * s)
            if out is not None:
                self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.4, 0.8), 0.3, 2.0)
        if rng.random() < 0.25:  # traces of cytoplasm
            self.c.density[_STAIN_INDEX["cyto_lilac"]] += env * np.float32(rng.uniform(0.3, 0.7))

    def _unc(self, cx: float, cy: float, r: float) -> None:
        rng, s = self.rng, self.s
        base = str(rng.choice(["LYT", "LYA", "MON", "NGS", "EOS", "KSC"]))
        r_base = float(np.clip(r, 36 * s, 76 * s))
        getattr(self, "_" + base.lower())(cx, cy, r_base)
        mode = rng.integers(0, 4)
        if mode == 0 or rng.random() < 0.3:  # out of focus
            self.extra_blur = rng.uniform(2.5, 6.0) * s
        if mode == 1:  # faded, poorly stained
            self.c.density[:] *= np.float32(rng.uniform(0.4, 0.7))
        elif mode == 2:  # pyknotic / fragmented nucleus: a few small dark round pieces
            for _ in range(int(rng.integers(2, 6))):
                a, rr = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.5) * r_base
                fr = rng.uniform(0.1, 0.2) * r_base
                out = self.c.blob(cx + rr * math.cos(a), cy + rr * math.sin(a), fr, fr, 0.0, (), s)
                if out is not None:
                    self.c.add("nucleus", out[0], out[1] * np.float32(rng.uniform(0.8, 1.3)))
        elif mode == 3:  # a second, overlapping nucleus from a neighbouring cell
            a = rng.uniform(0, 2 * math.pi)
            d = rng.uniform(0.6, 1.0) * r_base
            out = self.c.blob(cx + d * math.cos(a), cy + d * math.sin(a), 0.5 * r_base, 0.4 * r_base,
                              rng.uniform(0, math.pi), self._harmonics(0.1), s)
            if out is not None:
                self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.6, 1.0), 0.25, 2.0)

    # -- optics -------------------------------------------------------------------------------

    def optics(self, psf_sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """Specimen transmission ``(3, H, W)`` after the PSF, and the illumination field ``(H, W)``.

        The field is smooth (gentle vignetting, the crop's place in the field of view varies), so
        blurring the transmission alone and multiplying by the field afterwards is exact enough.
        """
        n, rng = self.c.size, self.rng
        absorbance = np.array([STAIN_ABSORBANCE[k] for k in _STAINS], dtype=np.float32) * self.hue
        strength = np.ones(len(_STAINS), dtype=np.float32)
        strength[_STAIN_INDEX["rbc"]] = self.rbc_strength
        absorbance *= strength[:, None]
        # OD per channel as explicit multiply-adds: BLAS (tensordot) is no faster on 7 layers
        # and slows badly when its threads compete for a busy CPU.
        od = np.empty((3, n, n), dtype=np.float32)
        for ch in range(3):
            acc = absorbance[0, ch] * self.c.density[0]
            for k in range(1, len(_STAINS)):
                acc += absorbance[k, ch] * self.c.density[k]
            od[ch] = acc
        trans = np.exp(od * np.float32(-math.log(10.0)))  # 10 ** -OD
        x = (np.arange(n, dtype=np.float32) - n / 2) / n + np.float32(rng.normal(0, 0.15))
        y = (np.arange(n, dtype=np.float32) - n / 2) / n + np.float32(rng.normal(0, 0.15))
        field = 1.0 - np.float32(_VIGNETTING * 2.0) * (y[:, None] ** 2 + x[None, :] ** 2)
        return gaussian_blur(trans, math.hypot(psf_sigma, self.extra_blur)), field


# --------------------------------------------------------------------------- simulator


class MicroscopySimulator:
    """Deterministic synthetic Raw-Microscopy.

    Args:
        seed: non-negative integer; example ``i`` of a seed is always the same scene and noise.
        num_examples: length of the set (default 940, the real size; the first 940 have the real
            class counts exactly).
        size: frame height and width in pixels (even; 256 as in the real data). Cell geometry
            scales with ``size / 256``.
        sensor: a ``raw_isp.SensorModel``; default ``raw_isp.SENSORS["microscopy"]``.
        psf_sigma: Gaussian PSF sigma in pixels of a 256-pixel frame.
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

    def _render(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        i = self._check(i)
        scene = _Scene(self.size, np.random.default_rng([self.seed, i]))
        scene.render(CLASS_NAMES[label_of(i, self.seed)])
        return scene.optics(self.psf_sigma * self.size / _REFERENCE_SIZE)

    def transmission(self, i: int) -> np.ndarray:
        """Noise-free specimen transmission of example ``i`` after the PSF: float32 ``(3, H, W)``.

        Channels are the captures through the 620, 525 and 450 nm filters; values lie in (0, 1],
        1 where the glass is clear (the background), lower where stain absorbs.
        """
        return self._render(i)[0]

    def signal(self, i: int) -> np.ndarray:
        """Noise-free expected signal of example ``i`` at ratio 1.0: float32 ``(3, H, W)``.

        Transmission times the illumination field times :attr:`background`, as a fraction of the
        sensor's full scale (white level above black level).
        """
        trans, field = self._render(i)
        return trans * (field[None] * self.background[:, None, None])

    def mean_electrons(self, i: int) -> np.ndarray:
        """Expected photo-electrons per pixel of the RGGB mosaic at ratio 1.0, float32 ``(H, W)``."""
        planes = mosaic(torch.from_numpy(self.signal(i))[None], "RGGB")[0].numpy()
        return planes * np.float32(self.full_scale_electrons)

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
        base = _derived_seed(self.seed, i, 0xE1) if noise_seed is None else _check_seed(noise_seed)
        full = np.asarray(self.sensor.expose(self.mean_electrons(i), seed=base))
        out: dict[float, np.ndarray] = {}
        for r in ratios:
            if r == 1.0:
                out[r] = full
            else:
                thinned = self.sensor.scale_intensity(full, r, seed=_derived_seed(base, round(r * 1e6)))
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
