"""Raw-Microscopy: bright-field white-blood-cell crops as raw Bayer frames, nine classes.

:mod:`raw_microscopy.synthetic` renders a physically modelled stand-in for the real data;
:mod:`raw_microscopy.builder` makes it (or the real data) a Hugging Face dataset.
"""

from raw_microscopy.synthetic import (
    CLASS_COUNTS,
    CLASS_NAMES,
    INTENSITIES,
    MicroscopySimulator,
    label_assignment,
    label_of,
)

from raw_microscopy.builder import CONFIG_NAMES, RawMicroscopy, load_dataset

__all__ = [
    "CLASS_COUNTS", "CLASS_NAMES", "INTENSITIES", "MicroscopySimulator", "label_assignment", "label_of",
    "CONFIG_NAMES", "RawMicroscopy", "load_dataset",
]
