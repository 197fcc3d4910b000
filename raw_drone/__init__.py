"""Raw-Drone: aerial raw Bayer frames with cars, cut into 256x256 tiles (segmentation and classification).

:mod:`raw_drone.synthetic` renders a physically modelled stand-in for the real data.
"""

from raw_drone.synthetic import (
    CLASS_NAMES,
    INTENSITIES,
    NUM_CLASSIFICATION_TILES,
    NUM_SEGMENTATION_TILES,
    DroneSimulator,
    TileInfo,
)

__all__ = [
    "CLASS_NAMES",
    "INTENSITIES",
    "NUM_CLASSIFICATION_TILES",
    "NUM_SEGMENTATION_TILES",
    "DroneSimulator",
    "TileInfo",
]
