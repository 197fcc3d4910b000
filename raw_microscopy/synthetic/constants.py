"""Classes, stains, optics and sensor figures of the simulator (real-set figures and assumptions)."""

from __future__ import annotations

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
