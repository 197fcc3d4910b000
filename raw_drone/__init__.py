"""Raw-Drone: aerial raw Bayer frames with cars, cut into 256x256 tiles (segmentation and classification).

:mod:`raw_drone.synthetic` renders a physically modelled stand-in for the real data;
:mod:`raw_drone.builder` makes it (or the real data) a Hugging Face dataset.
"""

from raw_drone.synthetic import (
    CLASS_NAMES,
    INTENSITIES,
    NUM_CLASSIFICATION_TILES,
    NUM_SEGMENTATION_TILES,
    DroneSimulator,
    TileInfo,
)

from raw_drone.builder import CONFIG_NAMES, RawDrone, load_dataset

__all__ = [
    "CONFIG_NAMES",
    "RawDrone",
    "load_dataset",
    "CLASS_NAMES",
    "INTENSITIES",
    "NUM_CLASSIFICATION_TILES",
    "NUM_SEGMENTATION_TILES",
    "DroneSimulator",
    "TileInfo",
]
