"""Batched, differentiable image signal processing for raw Bayer data.

Public API (see the README): :func:`demosaic`, :data:`ISP_VARIANTS`, :class:`ISPConfig`,
:class:`StaticISP`, :class:`ParametrizedISP`, :data:`CAMERAS`, :class:`SensorModel`,
:data:`SENSORS`, :func:`read_raw`, :class:`RawISPImageProcessor`, :class:`LearnedISP`; the
submodules :mod:`raw_isp.modeling` (the ISP-in-the-loop model), :mod:`raw_isp.corruptions`,
:mod:`raw_isp.forensics` and :mod:`raw_isp.metrics`.
"""

from . import cfa, color, filters
from .cfa import PATTERNS, merge_planes, mosaic, split_planes
from .config import CAMERAS, ISP_VARIANTS, CameraPreset, ISPConfig
from .demosaic import DEMOSAIC_METHODS, demosaic
from .pipeline import STAGE_NAMES, StaticISP, run_stages
from .parametrized import PARAMETER_GROUPS, ParametrizedISP
from .sensor import SensorModel, SENSORS, INTENSITY_RATIOS
from .io import read_raw, read_raw_with_pattern, write_raw, write_dng, RawFileError, normalize_raw
from .processor import RawISPImageProcessor
from .learned import LearnedISP
from . import corruptions, forensics, modeling
