"""Synthetic Raw-Microscopy: bright-field images of stained white blood cells as raw Bayer frames.

The real Raw-Microscopy set (Zenodo, DOI 10.5281/zenodo.5235536) holds 940 single-cell crops of
256x256 pixels from a custom bright-field microscope, nine morphological classes, each frame at
seven intensity ratios. The crops were cut from larger frames of a few smears (file names such as
``Ma190c_lame3_zone13_...``: slide 3, field 13). This package renders data of the same kind from
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

Measured figures (seed 0; "before" is this simulator at commit 243afda, without the fine
structure, slides, lateral colour and fixed pattern; its speed is in
``benchmarks/bench_synthetic.py``):

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

Modules: ``constants`` (classes, stains, optics and sensor figures), ``slides`` (labels, slides
and their staining draws), ``helpers``, ``canvas`` and ``scene`` (steps 2 and 3: density maps,
the cell parts, the optics), ``painters`` (one painter function per class, in a table),
``simulator`` (:class:`MicroscopySimulator`: capture and sensor) and ``seeds`` (the derived
seeds of the noise).
"""

from .constants import (
    BACKGROUND_LEVEL,
    CLASS_COUNTS,
    CLASS_NAMES,
    FIELD_PX,
    INTENSITIES,
    LATERAL_COLOUR,
    NUM_SLIDES,
    PIXEL_UM,
    PSF_SIGMA_PX,
    STAIN_ABSORBANCE,
    WAVELENGTHS_NM,
)
from .simulator import MicroscopySimulator
from .slides import label_assignment, label_of, slide_of

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
