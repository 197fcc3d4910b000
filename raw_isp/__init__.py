"""Raw Bayer images on the Hugging Face stack: a batched, differentiable ISP and what is built on it.

The subpackages follow the data flow, raw -> ISP -> model -> metrics -> drift report:

    raw_isp.sensor, raw_isp.io   sensor physics; raw TIFF/DNG files and the one raw -> [0, 1] conversion
    raw_isp.isp                  CFA, colour, filters, demosaicing, configs, StaticISP, ParametrizedISP, LearnedISP
    raw_isp.data                 uint16 frames in ``datasets``, safe archives and downloads, splits, builder base
    raw_isp.models               RawISPImageProcessor (transformers), RawISPModel, presets, save / load
    raw_isp.registry             the datasets and tasks as data (what the rest looks up)
    raw_isp.training             RawTrainingArguments, the accelerate loop, the Trainer path
    raw_isp.metrics              offline ``evaluate`` modules, SSIM
    raw_isp.drift                corruptions, drift synthesis, drift forensics, drift optimisation
    raw_isp.explorer             the raw-to-logit explorer (views, predictions, the Gradio page)

``import raw_isp`` loads only the ISP core (torch, numpy, tifffile). The names that need
transformers, datasets or evaluate (:class:`RawISPImageProcessor`, the subpackages ``models``,
``training``, ``data``, ``metrics``, ``drift``) load on first use. Loading :mod:`raw_isp.models`
(``import raw_isp.models``, or the first use of ``raw_isp.RawISPImageProcessor``) registers the
project's classes with ``AutoImageProcessor`` and ``pipeline()``
(:func:`raw_isp.models.registration.register`): do that before
``AutoImageProcessor.from_pretrained(folder)`` or ``pipeline(..., model=folder)``. ``import
raw_isp`` alone registers nothing; a folder then loads with ``trust_remote_code=True``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .isp import (
    CAMERAS,
    DEMOSAIC_METHODS,
    ISP_VARIANTS,
    PARAMETER_GROUPS,
    PATTERNS,
    STAGE_NAMES,
    CameraPreset,
    ISPConfig,
    LearnedISP,
    ParametrizedISP,
    StaticISP,
    demosaic,
    merge_planes,
    mosaic,
    run_stages,
    split_planes,
)
from .io import RawFileError, RawFrame, normalize_raw, read_raw, read_raw_with_pattern, write_dng, write_raw
from .sensor import INTENSITY_RATIOS, SENSORS, SensorModel

__all__ = [
    "CAMERAS", "DEMOSAIC_METHODS", "ISP_VARIANTS", "PARAMETER_GROUPS", "PATTERNS", "STAGE_NAMES",
    "CameraPreset", "ISPConfig", "LearnedISP", "ParametrizedISP", "StaticISP", "demosaic", "merge_planes",
    "mosaic", "run_stages", "split_planes",
    "RawFileError", "RawFrame", "normalize_raw", "read_raw", "read_raw_with_pattern", "write_dng", "write_raw",
    "INTENSITY_RATIOS", "SENSORS", "SensorModel",
    "RawISPImageProcessor",
]  # fmt: skip

# Names that load on first use, and the module that holds each.
_LAZY = {"RawISPImageProcessor": "raw_isp.models.processor"}
_SUBPACKAGES = ("isp", "data", "models", "training", "metrics", "drift", "explorer", "testing")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))
