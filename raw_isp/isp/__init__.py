"""The image signal processor: raw Bayer mosaic ``(B, H, W)`` in [0, 1] -> RGB ``(B, 3, H, W)`` in [0, 1].

Modules, in the order of the pipeline's stages:

    cfa           Bayer patterns, plane split / merge, mosaicking
    color         black level, white balance, colour matrix, YUV and HSV, gamma
    exposure      the exposure stage: a digital gain after black level (None, "metadata", "auto", fixed)
    filters       one Gaussian kernel factory, padding, sharpening, blurs, median
    demosaic      bilinear, Malvar (2004) and Menon (2007) demosaicing
    config        ISPConfig (the 12 variants of the study), CameraPreset and CAMERAS
    static        run_stages (the one implementation of the stage chain) and StaticISP
    parametrized  ParametrizedISP: the same chain with learnable parameters
    learned       LearnedISP: a small U-Net from the Bayer planes to RGB
    corruptions   ImageNet-C-style corruptions of the developed RGB view (the augmentation baseline
                  of drift synthesis, and a training augmentation); imported on use
"""

from .cfa import PATTERNS, merge_planes, mosaic, split_planes
from .config import CAMERAS, ISP_VARIANTS, CameraPreset, ISPConfig
from .demosaic import DEMOSAIC_METHODS, demosaic
from .exposure import EXPOSURE_MODES
from .learned import LearnedISP
from .parametrized import PARAMETER_GROUPS, ParametrizedISP
from .static import STAGE_NAMES, StaticISP, run_stages

__all__ = [
    "PATTERNS", "merge_planes", "mosaic", "split_planes", "CAMERAS", "ISP_VARIANTS", "CameraPreset", "ISPConfig",
    "DEMOSAIC_METHODS", "demosaic", "EXPOSURE_MODES", "LearnedISP", "PARAMETER_GROUPS", "ParametrizedISP", "STAGE_NAMES",
    "StaticISP", "run_stages",
]  # fmt: skip
