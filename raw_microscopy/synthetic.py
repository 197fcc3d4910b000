"""Synthetic Raw-Microscopy: bright-field images of stained white blood cells as raw Bayer frames.

The real Raw-Microscopy set (Zenodo, DOI 10.5281/zenodo.5235536) holds 940 single-cell crops of
256x256 pixels from a custom bright-field microscope, nine morphological classes, each frame at
seven intensity ratios. The crops were cut from larger frames of a few smears (file names such as
``Ma190c_lame3_zone13_...``: slide 3, field 13). This module renders data of the same kind from
an explicit optical model:

1. **Slides.** Every example lies on one of :data:`NUM_SLIDES` smears (:func:`slide_of`; the
   cells of each class are spread evenly over the slides). A slide fixes the strength of its
   azure, eosin and methylene-blue staining and their balance (the buffer pH shifts a smear
   toward red or blue), a small lamp-level difference of its imaging session and how crowded
   its red cells are; each cell adds a smaller variation of its own (local smear thickness).
2. **Scene.** A stained smear is a stack of stain *density* maps (white-cell nucleus,
   cytoplasm, granules, red cells, platelets). Each stain has a base-10 absorbance at the three
   filter wavelengths 620, 525 and 450 nm (:data:`STAIN_ABSORBANCE`); the optical density is their
   sum (Beer-Lambert), and the specimen transmits ``10 ** -OD`` (1 on clear glass). Lengths are
   drawn in micrometres and converted with :data:`PIXEL_UM` (0.1 um per pixel of a 256-pixel
   frame), so the fine structure has the size it has under the objective:

   - granules are spheres of a class-specific diameter and number density, rendered as
     Gaussians (sigma 0.37 x diameter, the width of a sphere's projected thickness) at
     sub-pixel positions: neutrophil granules 0.2-0.3 um (2-3 px, many layers, pale), monocyte
     azurophilic "dust" 0.1-0.2 um, eosinophil granules 0.55-0.8 um (uniform, packed,
     orange-red), basophil granules 0.2-1.2 um (very variable, dark, over the nucleus);
   - chromatin is a thresholded random field: clumps with sharp edges and pale parachromatin
     between them (coarse in lymphocytes and neutrophils, looser in atypical lymphocytes), a
     lace of thin strands in monocytes, and a thin dense heterochromatin rim at the nuclear
     envelope; neutrophil lobes are joined by filaments 1.6-3.2 px wide, band nuclei are not;
   - cell and nuclear borders are 1-px ramps, sharper than the PSF, so the optics set their width.
3. **Optics.** Each channel's transmission is blurred by a Gaussian PSF whose sigma scales with
   the wavelength (:data:`PSF_SIGMA_PX` at 525 nm, as a diffraction-limited objective; a small
   per-field defocus and, for "unclear" cells, more), then displaced by lateral chromatic
   aberration: red and blue are magnified by :data:`LATERAL_COLOUR` relative to green about the
   optical axis, so a crop far from the axis has its red and blue images shifted by up to about
   2 px in opposite directions. Each crop sits at a random place of a :data:`FIELD_PX`-pixel
   square field of view; the illumination there is the lamp times a vignetting that falls off by
   4.5 % toward the field's corners, at :data:`BACKGROUND_LEVEL` of the sensor's full scale per
   channel (lamp spectrum times filter transmissivity).
4. **Capture.** As in the real data, three captures through red, green and blue filters are
   mosaicked to RGGB by keeping complementary pixels (:func:`raw_isp.isp.cfa.mosaic`).
5. **Sensor.** The mosaic, in units of the full-scale signal, becomes photo-electrons through
   the camera's fixed pattern under the crop (per-pixel gain PRNU 0.6 % rms and per-column gain
   0.2 % rms, dark signal 0.5 e- with rare hot pixels; one pattern per seed, the same for all
   examples, each crop seeing its own window of it) and is digitised by
   ``raw_isp.SENSORS["microscopy"].expose`` (shot noise, read noise, 16-bit DN). Lower
   intensities thin the photons of the ratio-1.0 frame with ``scale_intensity``, so the same
   scene at lower light is the same photons, fewer of them, as in the real set (the dark signal
   is thinned with them, as a scaling of the recorded frame does).

Classes, in label order :data:`CLASS_NAMES`, with the real counts :data:`CLASS_COUNTS`:

- ``NGS`` segmented neutrophil: 2-5 (mostly 3-4) coarsely clumped lobes joined by thin
  filaments, lilac cytoplasm full of fine, barely resolved granules.
- ``NGB`` band neutrophil: one curved C- or S-shaped band nucleus without filaments, same
  cytoplasm as NGS.
- ``LYT`` typical lymphocyte: small cell, round nucleus of dense coarse chromatin clumps with a
  dark rim, thin blue cytoplasm rim, no granules.
- ``LYA`` atypical lymphocyte: larger, abundant deep-blue cytoplasm darker at the rim, looser
  chromatin, sometimes pale nucleoli and a few azurophilic granules.
- ``MON`` monocyte: large, kidney-shaped or folded nucleus of lacy chromatin with dark fold
  lines, grey-blue cytoplasm with fine azurophilic dust and vacuoles.
- ``EOS`` eosinophil: bilobed nucleus (lobes joined by a filament), cytoplasm packed with large
  uniform orange-red granules.
- ``BAS`` basophil: dark purple granules of very mixed size over a faint nucleus.
- ``KSC`` smudge cell / debris: ruptured, streaky smeared nuclear material, often a basket-like
  net of thin strands, no membrane.
- ``UNC`` unclear: a cell of another class made ambiguous (defocused, faded, fragmented or
  overlapped by a second nucleus).

Within each class, size, shape, orientation, position, stain strength and hue, chromatin texture,
granule load and the neighbouring red cells (pale discs with central pallor, some cut by the
frame edge) vary. Example ``i`` of a seed is rendered from ``numpy.random.default_rng([seed, i])``
and its slide's draw alone, so it is the same image whenever and in whatever order it is
generated; its label comes from a seeded permutation of the real label list (:func:`label_of`), so
the first 940 examples have exactly the real class counts, and each further block of 940 again
has them.

Measured figures (seed 0; a shared 2-core Intel Xeon, numpy/torch single-threaded; "before" is
this simulator at commit 243afda, without the fine structure, slides, lateral colour and fixed
pattern):

- Speed: a scene (the noise-free signal) takes about 11 ms of CPU, the 940 scenes 8.4 CPU-s
  against 7.6 before (x1.11, measured interleaved); a full example (scene, one exposure and six
  ``scale_intensity`` thinnings) about 50 ms, most of it the sensor readouts.
  ``benchmarks/bench_synthetic.py``: 940 examples x 7 intensities in 51 s wall, 48 CPU-s
  (before: 47 s, 47 CPU-s).
- Through ``StaticISP("bi_s_ga", camera="microscopy")`` the per-channel means of the views are
  (0.908, 0.836, 0.938), the real normalisation's (0.91, 0.84, 0.94); the stds (0.106, 0.142,
  0.078) against the real (0.08, 0.12, 0.05): more contrast than the real views (before 0.093,
  0.125, 0.063).
- Where the class evidence lives (``benchmarks/probe_synthetic.py``: 940 cells, logistic
  regression, 5-fold CV; accuracy / balanced accuracy, majority rate 0.245). Colour statistics
  alone: 0.931 / 0.681 (before 0.903 / 0.644), so colour still nearly separates the classes.
  Fine-structure features alone: 0.953 / 0.772 (before 0.920 / 0.720); both: 0.970 / 0.819
  (before 0.956 / 0.778). Trained on ``bi_s_ga`` views and scored on ``ma_u_me`` / ``me_s_me``
  views of the same cells, the colour probe keeps 0.93 / 0.92, the fine-structure probe falls to
  0.32 / 0.35 and the combined one to 0.50 / 0.60 (before 0.24 / 0.39).
- The 1-3 px structure (luma minus its sigma-1.5 blur; noise-free views, central 160x160): rms
  0.016 through ``bi_s_ga`` (before 0.012); by class NGS 0.019, NGB 0.019, MON 0.018, BAS 0.022,
  LYT 0.014, EOS 0.013. ``ma_u_me`` keeps 0.71 of its energy and differs from ``bi_s_ga`` by 0.24
  of it; ``me_s_me`` keeps 0.88 and differs by 0.58 (before 0.80 / 0.21 and 0.83 / 0.53).
- The tests' colour-and-texture probe of the central region (tests/test_synthetic_microscopy.py),
  2/3 train, 1/3 test: 128x128, 30 per class: 0.71, 0.87, 0.81 for seeds 0, 1, 2 (majority 0.14);
  256x256, 50 per class: 0.82 (majority 0.12).
- The same raw frames through ``bi_s_ga`` and ``me_u_me`` differ by a mean absolute difference
  of 0.0069 (median PSNR 39 dB; before 0.0059, 40.5 dB).

What is not modelled, compared with the real data: measured stain spectra and filter bandwidths
(each filter is a single wavelength, each stain three absorbances); the real objective's PSF (a
Gaussian scaled with wavelength here) and its axial colour (one focus for all three captures);
refraction and phase: refractile granules and cell edges show bright and dark fringes under the
slightest defocus, whereas here every granule is an absorber only, which is why the closely
packed eosinophil granules carry less 1-3 px contrast than the sparser basophil ones; depth of
field through a 3-D cell; dust, stain precipitate and debris on the glass; the real sensor and
optics (``SENSORS["microscopy"]``, the pixel pitch, field size, lateral colour, vignetting and
fixed pattern are assumptions, not calibration); how Jetraw scaled the real frames to lower
light (here binomial thinning, the dark signal thinned with the light). Morphology is procedural
2-D drawing whose class-by-class ranges come from textbook descriptions, not from fits to the
real images; the number of slides and how the classes spread over them are assumptions, and the
crops are otherwise independent (the real ones share fields of view, so a neighbour may appear
in two crops); labels carry no annotator noise beyond the stylised UNC class.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

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
    "PIXEL_UM",
    "NUM_SLIDES",
    "FIELD_PX",
    "LATERAL_COLOUR",
    "label_of",
    "label_assignment",
    "slide_of",
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
# Neutrophil granules take the lilac "neutral" mixture of the cytoplasm; azurophilic granules
# (monocyte dust, granular lymphocytes, platelets) take the azure of the nucleus.
STAIN_ABSORBANCE: dict[str, tuple[float, float, float]] = {
    "nucleus": (0.45, 0.75, 0.20),      # purple chromatin
    "cyto_blue": (0.36, 0.22, 0.07),    # lymphocyte cytoplasm
    "cyto_grey": (0.24, 0.22, 0.13),    # monocyte cytoplasm, grey-blue
    "cyto_lilac": (0.09, 0.16, 0.08),   # neutrophil cytoplasm and granules, pale lilac
    "eos_granule": (0.06, 0.36, 0.46),  # eosinophil granules, orange-red
    "bas_granule": (0.72, 0.92, 0.42),  # basophil granules, dark purple-blue
    "rbc": (0.035, 0.20, 0.09),         # haemoglobin + eosin, pinkish
}
_STAINS = tuple(STAIN_ABSORBANCE)
_STAIN_INDEX = {name: k for k, name in enumerate(_STAINS)}
# Which dye of the slide's stain bath each stain takes: the slide's draw of that dye scales it.
_STAIN_DYES: dict[str, tuple[str, ...]] = {
    "nucleus": ("azure",), "cyto_blue": ("blue",), "cyto_grey": ("azure", "blue"),
    "cyto_lilac": ("azure", "eosin"), "eos_granule": ("eosin",), "bas_granule": ("azure",), "rbc": ("eosin",),
}

# Background signal per channel (R, G, B) as a fraction of the sensor's full scale: the lamp
# through clear glass and each capture filter. The real raw values are not published as
# statistics, but the real *processed* images are: Raw2Logit normalises the ISP output of
# Raw-Microscopy with per-channel means (0.91, 0.84, 0.94) and stds (0.08, 0.12, 0.05). With the
# dataset's camera preset (raw_isp.CAMERAS["microscopy"]: white balance and colour matrix that
# amplify green about 5x and blue about 10x) only a red-heavy, dim-blue raw background gives such
# a view, so these levels were fitted to reproduce those means through
# StaticISP("bi_s_ga", camera="microscopy") (fit over 120 synthetic examples, noise-free).
BACKGROUND_LEVEL: tuple[float, float, float] = (0.580, 0.1638, 0.0763)
PSF_SIGMA_PX = 1.25  # Gaussian PSF sigma at 525 nm, pixels of a 256x256 frame; scales with wavelength
# ASSUMPTIONS (the datasheet gives no optical or sensor figures for the microscope):
PIXEL_UM = 0.1  # specimen-plane pitch of a 256-px frame: red cells drawn 72-92 px wide are 7-9 um
NUM_SLIDES = 4  # "a few slides": the one published file name is of slide 3
FIELD_PX = 2048  # side of the square field of view the crops are cut from (a 4-megapixel camera)
# Chromatic difference of magnification of R, G, B relative to green (an uncorrected tube lens):
# 0.16 % between red and blue, so up to 2.3 px of red-blue displacement at the field's corner.
LATERAL_COLOUR: tuple[float, float, float] = (8e-4, 0.0, -8e-4)
_VIGNETTING = 0.045  # relative fall-off of illumination at the corner of the field of view
_DEFOCUS_PX = 0.4  # largest extra blur (sigma, px) of a field's focus against the best focus
_PRNU = 0.006  # per-pixel gain non-uniformity, rms
_COLUMN_GAIN = 0.002  # per-column gain non-uniformity (column amplifiers), rms
_DARK_E = 0.5  # mean dark signal per pixel in the exposure, e-
_HOT_FRACTION = 1e-4  # share of hot pixels ...
_HOT_E = 150.0  # ... and their mean extra dark signal (exponentially distributed), e-
_REFERENCE_SIZE = 256  # lengths below are in pixels of a 256x256 frame and scale with `size`
_SPHERE_SIGMA = 0.37  # Gaussian sigma of a sphere's projected thickness, per unit diameter


# --------------------------------------------------------------------------- labels, slides


@functools.lru_cache(maxsize=64)
def _label_block(seed: int, block: int) -> np.ndarray:
    """Labels of examples ``940*block .. 940*block+939``: a seeded permutation of the real list."""
    labels = np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int64), [CLASS_COUNTS[c] for c in CLASS_NAMES])
    perm = np.random.default_rng([seed, block, 0x1A8E1]).permutation(labels)
    perm.setflags(write=False)
    return perm


@functools.lru_cache(maxsize=64)
def _slide_block(seed: int, block: int) -> np.ndarray:
    """Slides of the examples of a block: each class dealt round the slides from a seeded start."""
    labels = _label_block(seed, block)
    start = np.random.default_rng([seed, block, 0x511DE]).integers(0, NUM_SLIDES, len(CLASS_NAMES))
    slides = np.empty(len(labels), dtype=np.int64)
    for c in range(len(CLASS_NAMES)):
        members = np.flatnonzero(labels == c)
        slides[members] = (start[c] + np.arange(len(members))) % NUM_SLIDES
    slides.setflags(write=False)
    return slides


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


def slide_of(i: int, seed: int = 0) -> int:
    """Slide (smear) of example ``i``, in ``0 .. NUM_SLIDES-1``; renders nothing.

    Within each block of 940, the examples of each class are dealt round the slides in turn
    (from a seeded first slide), so every class is spread as evenly as its count allows.
    """
    i, seed = _check_index(i), _check_seed(seed)
    return int(_slide_block(seed, i // NUM_REAL_EXAMPLES)[i % NUM_REAL_EXAMPLES])


def _derived_seed(*parts: int) -> int:
    """A 32-bit integer seed derived from integer parts (stable across runs and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint32)[0])


class _Slide(NamedTuple):
    """What one smear and its imaging session fix for all of its cells."""

    strength: np.ndarray  # (n_stains,) multiplier of each stain's absorbance
    hue: np.ndarray  # (n_stains, 3) multiplier per stain and channel (dye spectra shift slightly)
    lamp: float  # lamp level of the session relative to nominal
    crowding: float  # multiplier of the number of red cells around a white cell


@functools.lru_cache(maxsize=256)
def _slide(seed: int, slide: int) -> _Slide:
    """The seeded draw of one slide: dyes +-10 % (log-normal), azure/eosin balance +-8 %, lamp +-1.5 %.

    One supplier and one protocol (datasheet), so the spread is modest; the lamp's is small because
    the datasheet states identical illumination for all samples.
    """
    rng = np.random.default_rng([seed, slide, 0x5713E])
    dye = dict(zip(("azure", "eosin", "blue"), np.exp(rng.normal(0.0, 0.10, 3))))
    balance = math.exp(rng.normal(0.0, 0.08))  # buffer pH: > 1 favours eosin (redder), < 1 azure (bluer)
    dye["azure"] /= balance
    dye["eosin"] *= balance
    strength = np.array([math.prod(dye[d] for d in _STAIN_DYES[k]) ** (1 / len(_STAIN_DYES[k])) for k in _STAINS],
                        dtype=np.float32)
    hue = (1.0 + rng.normal(0.0, 0.04, size=(len(_STAINS), 3))).astype(np.float32)
    return _Slide(strength, hue, float(1.0 + rng.normal(0.0, 0.015)), float(rng.uniform(0.6, 1.4)))


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


# --------------------------------------------------------------------------- image helpers


@functools.lru_cache(maxsize=64)
def _gaussian_kernel(sigma: float) -> np.ndarray:
    """Taps of a Gaussian, float32, truncated at 3 sigma (rounded up)."""
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
            total += gaussian_blur(_splat(y[sel] + pad, x[sel] + pad, mass[sel], shape), sk)
        self.density[_STAIN_INDEX[stain]][window] += total[pad:-pad, pad:-pad] * np.minimum(sub * 1.5, 1.0)
        return count


# --------------------------------------------------------------------------- scene


class _Scene:
    """Renders one example: red cells, platelets, then the white cell of the given class."""

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

    def _harmonics(self, amp: float, ks: Sequence[int] = (2, 3, 4)) -> list[tuple[int, float, float]]:
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
            out = self.c.blob(x, y, r * (1 + e), r * (1 - e), rng.uniform(0, math.pi), self._harmonics(0.03), s)
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
            out = self.c.blob(x, y, r, r * rng.uniform(0.6, 1.0), rng.uniform(0, math.pi), self._harmonics(0.2), s)
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
        out = self.c.blob(cx, cy, r * (1 + e), r * (1 - e), rng.uniform(0, math.pi), self._harmonics(irregular),
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
            envelope = np.clip(m - gaussian_blur(m, 1.5 * self.s), 0.0, None) * np.float32(2.0)
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
            out = self.c.blob(x, y, a, b, th, self._harmonics(0.06), self.s)
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
        # Dense, coarsely clumped ("soccer ball") chromatin with a marked rim.
        contrast = rng.uniform(0.45, 0.65)
        self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.85, 1.3) / (1 - contrast / 2), "clumped",
                       rng.uniform(0.16, 0.24), contrast, rng.uniform(0.3, 0.6))

    def _lya(self, cx: float, cy: float, r: float) -> None:
        rng, s = self.rng, self.s
        cell, _ = self.body(cx, cy, r, "cyto_blue", rng.uniform(0.6, 1.4), irregular=0.12,
                            rim_darkening=rng.uniform(0.1, 0.6), mix=("cyto_grey", rng.uniform(0.0, 0.7)))
        k = rng.uniform(0.5, 0.75)
        off, ang = rng.uniform(0.05, 0.25) * r, rng.uniform(0, 2 * math.pi)
        nx, ny = cx + off * math.cos(ang), cy + off * math.sin(ang)
        e = rng.uniform(0, 0.15)
        out = self.c.blob(nx, ny, k * r * (1 + e), k * r * (1 - e), rng.uniform(0, math.pi), self._harmonics(0.1), s)
        out = _inside(out)
        nuc = self.c.full_mask(out[0], out[1])
        # Looser (less condensed) chromatin; sometimes pale nucleoli.
        for _ in range(int(rng.choice([0, 0, 1, 2]))):
            a, rr = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.5) * k * r
            nr = self.um(rng.uniform(0.4, 0.8))
            spot = self.c.blob(nx + rr * math.cos(a), ny + rr * math.sin(a), nr, nr * rng.uniform(0.8, 1.0), 0.0, (), s)
            if spot is not None:
                nuc[spot[0]] *= 1.0 - 0.35 * spot[1]
        contrast = rng.uniform(0.2, 0.35)
        self.chromatin(nuc, rng.uniform(0.7, 1.05) / (1 - contrast / 2), "clumped", rng.uniform(0.13, 0.2),
                       contrast, rng.uniform(0.15, 0.35))
        if rng.random() < 0.3:  # large granular lymphocyte: a few azurophilic granules
            self.azurophilic(cell * (1.0 - np.minimum(nuc * 2, 1.0)), int(rng.integers(3, 16)), (0.3, 0.5))

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
        # Lacy, delicate chromatin.
        density = rng.uniform(0.6, 0.95)
        self.chromatin(nuc, density, "lacy", rng.uniform(0.12, 0.18), rng.uniform(0.35, 0.55), rng.uniform(0.1, 0.3))
        # Folds ("brain-like convolutions"): the envelope seen edge-on, thin dark lines.
        for _ in range(int(rng.integers(1, 4))):
            th = rng.uniform(0, math.pi)
            L = k * r * rng.uniform(0.5, 1.0)
            bend = rng.normal(0, 0.25) * L
            px, py = nx + rng.normal(0, 0.25) * k * r, ny + rng.normal(0, 0.25) * k * r
            pts = np.array([[px - L * math.cos(th), py - L * math.sin(th)],
                            [px - bend * math.sin(th), py + bend * math.cos(th)],
                            [px + L * math.cos(th), py + L * math.sin(th)]])
            fold = self.c.tube(pts, [rng.uniform(0.5, 1.0) * s] * 3, 0.7 * s)
            if fold is not None:
                self.c.add("nucleus", fold[0], fold[1] * nuc[fold[0]] * np.float32(density * rng.uniform(0.4, 0.8)))
        # Ground-glass cytoplasm: fine azurophilic dust below the resolution.
        cyto = cell * (1.0 - np.minimum(nuc * 2, 1.0))
        self.granule_count += self.c.granules("nucleus", cyto, rng.uniform(0.1, 0.2), 0.3, rng.uniform(0.3, 0.8),
                                              (0.25, 0.5))
        # Vacuoles: small clear holes in the cytoplasm.
        for _ in range(int(rng.integers(0, 9))):
            a, rr = rng.uniform(0, 2 * math.pi), r * math.sqrt(rng.uniform(0.2, 0.8))
            vr = rng.uniform(2.5, 6.0) * s
            out = self.c.blob(cx + rr * math.cos(a), cy + rr * math.sin(a), vr, vr, 0.0, (), s)
            if out is not None:
                win, m, _ = out
                # 1 over the nucleus; "nucleus" here clears the azurophilic dust of the cytoplasm.
                keep = 1.0 - 0.8 * m * cell[win] * (1.0 - np.minimum(nuc[win] * 2, 1.0))
                for stain in ("cyto_grey", "cyto_blue", "nucleus"):
                    self.c.density[_STAIN_INDEX[stain]][win] *= keep

    def _neutrophil_body(self, cx: float, cy: float, r: float) -> np.ndarray:
        """Pale lilac cytoplasm packed with fine neutral granules, 0.2-0.3 um, barely resolved."""
        rng = self.rng
        cell, _ = self.body(cx, cy, r, "cyto_lilac", rng.uniform(0.5, 0.9))
        self.granule_count += self.c.granules("cyto_lilac", cell, rng.uniform(0.2, 0.3), 0.25,
                                              rng.uniform(1.5, 3.0), (0.5, 1.0))
        return cell

    def _segmented_chromatin(self, nuc: np.ndarray) -> float:
        """Coarsely clumped, condensed neutrophil chromatin; returns its mean density."""
        rng = self.rng
        contrast = rng.uniform(0.4, 0.6)
        density = rng.uniform(0.95, 1.2)
        self.chromatin(nuc, density / (1 - contrast / 2), "clumped", rng.uniform(0.16, 0.24),
                       contrast, rng.uniform(0.2, 0.4))
        return density

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
        # Lobes joined by filaments 1.6-3.2 px (0.15-0.3 um) wide, near the resolution limit.
        nuc, strands = self.lobe_chain(centres, sizes, angles + rng.normal(0, 0.3, n_lobes),
                                       rng.uniform(0.8, 1.6) * self.s)
        self.filaments(strands, self._segmented_chromatin(nuc))

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
        # A band: no narrowing to a filament anywhere (the width varies by < 1/3).
        width = rng.uniform(0.12, 0.17) * r
        hw = width * (1.0 - 0.3 * (2 * np.linspace(-0.5, 0.5, len(pts))) ** 4) * rng.uniform(0.9, 1.1, len(pts))
        out = self.c.tube(pts, hw, self.s)
        out = _inside(out)
        self._segmented_chromatin(self.c.full_mask(*out))

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
        nuc, strands = self.lobe_chain(centres, sizes, np.array([axis + math.pi / 2] * 2) + rng.normal(0, 0.3, 2),
                                       rng.uniform(0.8, 1.6) * s)
        contrast = rng.uniform(0.3, 0.5)
        density = rng.uniform(0.8, 1.0)
        self.chromatin(nuc, density / (1 - contrast / 2), "clumped", rng.uniform(0.16, 0.24), contrast,
                       rng.uniform(0.2, 0.4))
        self.filaments(strands, density)
        # Large, uniform, closely packed granules; they lie mostly beside the nucleus.
        self.granule_count += self.c.granules("eos_granule", cell, rng.uniform(0.55, 0.8), 0.15,
                                              rng.uniform(0.6, 0.85), (0.6, 1.1), weight=1.0 - 0.6 * nuc,
                                              packed=True)

    def _bas(self, cx: float, cy: float, r: float) -> None:
        rng, s = self.rng, self.s
        cell, _ = self.body(cx, cy, r, "cyto_lilac", rng.uniform(0.4, 0.8))
        out = self.c.blob(cx + rng.normal(0, 0.08) * r, cy + rng.normal(0, 0.08) * r, 0.6 * r, 0.5 * r,
                          rng.uniform(0, math.pi), self._harmonics(0.2), 2 * s)
        out = _inside(out)
        self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.45, 0.7), "clumped", 0.3, 0.2, 0.1)
        # Coarse granules of very mixed size, over the nucleus as much as beside it.
        self.granule_count += self.c.granules("bas_granule", cell, rng.uniform(0.45, 0.6), 0.5,
                                              rng.uniform(0.25, 0.9), (0.6, 1.3))

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
        if rng.random() < 0.5:  # basket cell: a net of thin chromatin strands
            net = _smooth_noise(rng, (n, n), rng.uniform(2.0, 3.5) * s, rng.uniform(1.2, 2.0) * s,
                                theta + rng.normal(0, 0.6))
            fibres += np.float32(rng.uniform(0.4, 0.9)) * np.exp(-0.5 * (net / np.float32(0.3)) ** 2)
        self.c.density[_STAIN_INDEX["nucleus"]] += env * fibres * np.float32(rng.uniform(0.3, 0.7))
        if rng.random() < 0.35:  # a denser remnant core
            out = self.c.blob(cx + rng.normal(0, 0.2) * r, cy + rng.normal(0, 0.2) * r, 0.3 * r, 0.22 * r,
                              rng.uniform(0, math.pi), self._harmonics(0.2), 3 * s)
            if out is not None:
                self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.4, 0.8), "clumped", 0.3, 0.4, 0.0)
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
                self.chromatin(self.c.full_mask(out[0], out[1]), rng.uniform(0.6, 1.0), "clumped", 0.25, 0.4, 0.3)

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
            t = gaussian_blur(t, sigma)
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


# --------------------------------------------------------------------------- simulator
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
        scene.render(CLASS_NAMES[label_of(i, self.seed)])
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
