"""Units, light and the fixed figures of the real set, shared by the whole simulator."""

from __future__ import annotations

import numpy as np

from raw_isp.sensor import INTENSITY_RATIOS

#: Intensity ratios of the real set.
INTENSITIES: tuple[float, ...] = tuple(INTENSITY_RATIOS)
GSD_M = 0.06  # ground sampling distance, metres per pixel (250 m flying height)
PX_PER_M = 1.0 / GSD_M
PSF_SIGMA_PX = 2.52  # Gaussian PSF sigma of the datasheet, pixels
REAL_FRAME_SHAPE = (3648, 5472)
DEFAULT_FRAME_SHAPE = (2560, 3840)
NUM_SCENES = 12
NUM_SEGMENTATION_TILES = 548
NUM_CLASSIFICATION_TILES = 930
#: Signal of a white Lambertian surface in full sun (60 degrees elevation), fraction of full well.
WHITE_FRACTION = 0.85
CLASS_NAMES = ("no_car", "car")

_SUN_RGB = np.array([1.03, 1.0, 0.93], dtype=np.float32)  # direct sunlight colour (linear sRGB)
_SKY_RGB = np.array([0.78, 1.0, 1.38], dtype=np.float32)  # diffuse skylight colour
_SUN_SHARE = 0.82  # share of the direct sun in the irradiance at 60 degrees elevation
_SKY_SHARE = 0.18
_HAZE_RGB = 0.012 * np.array([0.8, 0.95, 1.25], dtype=np.float32)  # path radiance of 250 m of air
_SHADOW_CELL = 4  # pixels per cell of the height map used for ray marching
_CAR_BODY_M = 0.8  # height of a car's body (bonnet, boot, sides), metres
_CAR_SKY_REACH_M = 2.0  # how far beside a car its sides still hide some sky, metres


def _m(metres: float) -> float:
    """Metres on the ground to pixels."""
    return metres * PX_PER_M
