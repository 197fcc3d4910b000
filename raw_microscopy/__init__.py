"""Raw-Microscopy: bright-field white-blood-cell crops as raw Bayer frames, nine classes.

:mod:`raw_microscopy.synthetic` renders a physically modelled stand-in for the real data.
"""

from raw_microscopy.synthetic import (
    CLASS_COUNTS,
    CLASS_NAMES,
    INTENSITIES,
    MicroscopySimulator,
    label_assignment,
    label_of,
)

__all__ = ["CLASS_COUNTS", "CLASS_NAMES", "INTENSITIES", "MicroscopySimulator", "label_assignment", "label_of"]
