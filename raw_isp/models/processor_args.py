"""The argument checks of :class:`~raw_isp.models.processor.RawISPImageProcessor`.

Each ``check_*`` takes one setting as a user passes it (to ``__init__``, ``preprocess`` or
``from_pretrained``) and returns its canonical form or raises a ValueError / TypeError that names
the argument; :class:`Options` holds one call's validated settings. transformers' names for two
settings (``resample``, ``rescale_factor``) are converted here, and the ``BaseImageProcessor``
arguments that do not apply to a raw mosaic are refused with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..io import check_intensity
from ..isp.config import CAMERAS, ISP_VARIANTS, CameraPreset, ISPConfig
from ..isp.exposure import check_exposure

#: Values of ``resize_mode`` and the ``torch.nn.functional.interpolate`` mode each one uses.
#: "nearest" is the pixel-centre-aligned variant ("nearest-exact"), like PIL's NEAREST.
RESIZE_MODES = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest-exact", "area": "area"}

#: PIL resampling filters (``resample=``, as transformers' processors take it) -> ``resize_mode``.
#: LANCZOS (1) and HAMMING (5) have no ``torch.nn.functional.interpolate`` counterpart.
RESAMPLE_MODES = {0: "nearest", 2: "bilinear", 3: "bicubic", 4: "area"}
#: BaseImageProcessor arguments that do not apply to raw mosaics, and why (refused unless they
#: ask for nothing: False / None).
NOT_FOR_RAW = {
    "do_convert_rgb": "a raw Bayer mosaic has one channel and the ISP makes the RGB view; leave it out",
    "do_center_crop": "crop the raw mosaic before (at even offsets, so the CFA pattern is kept), or resize with size=",
    "crop_size": "crop the raw mosaic before (at even offsets, so the CFA pattern is kept), or resize with size=",
    "do_pad": "pad the raw mosaic before (by even amounts, so the CFA pattern is kept)",
    "pad_size": "pad the raw mosaic before (by even amounts, so the CFA pattern is kept)",
    "image_seq_length": "it is a setting of multimodal processors",
    "size_divisor": "give size= as {'height': h, 'width': w}",
    "do_reduce_labels": "class ids are passed through as they are",
}
# Keys that transformers writes into (or passes through) a saved config; not settings of ours.
SERVICE_KEYS = ("image_processor_type", "auto_map", "processor_class", "feature_extractor_type")


@dataclass(frozen=True)
class Options:
    """Validated settings of one call (defaults merged with per-call overrides)."""

    isp: ISPConfig
    camera: CameraPreset
    raw_scale: float
    do_resize: bool
    size: dict[str, int]
    resize_mode: str
    do_normalize: bool
    image_mean: list[float]
    image_std: list[float]
    default_intensity: float | None


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _parse(parse: Any, value: Any, name: str, what: str) -> Any:
    """``parse(value)`` with its TypeError / ValueError prefixed by the argument's name."""
    try:
        return parse(value)
    except TypeError as e:
        raise TypeError(f"{name}: {e}") from None
    except ValueError as e:
        raise ValueError(f"{name}: invalid {what}: {e}") from None


def check_isp(isp: Any) -> ISPConfig:
    if isinstance(isp, str) and isp not in ISP_VARIANTS:
        raise ValueError(
            f"isp: unknown ISP variant {isp!r}; expected one of {', '.join(ISP_VARIANTS)} or an ISPConfig dict"
        )
    return _parse(ISPConfig.parse, isp, "isp", "ISP configuration")


def check_camera(camera: Any) -> CameraPreset:
    if isinstance(camera, str) and camera not in CAMERAS:
        raise ValueError(
            f"camera: unknown camera {camera!r}; expected one of {sorted(CAMERAS)} or a dict with "
            "black_level, white_balance, colour_matrix"
        )
    return _parse(CameraPreset.parse, camera, "camera", "camera preset")


def with_exposure(config: ISPConfig, exposure: Any) -> ISPConfig:
    """The ISP config with the processor's ``exposure`` setting merged in (see ISPConfig.with_exposure)."""
    try:
        return config.with_exposure(check_exposure(exposure))
    except ValueError as e:
        raise ValueError(f"exposure: {e}") from None


def check_raw_scale(raw_scale: Any) -> float:
    if isinstance(raw_scale, bool) or not isinstance(raw_scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"raw_scale must be a number (the white level of integer raws), got {raw_scale!r}")
    if not (math.isfinite(raw_scale) and raw_scale > 0):
        raise ValueError(f"raw_scale must be a positive finite number, got {raw_scale!r}")
    return float(raw_scale)


def check_size(size: Any) -> dict[str, int]:
    """``int`` n -> n x n; ``(h, w)``; or ``{"height": h, "width": w}``; positive integers."""
    if isinstance(size, Mapping):
        if set(size) != {"height", "width"}:
            raise ValueError(f"size must be a dict with exactly the keys 'height' and 'width', got keys {sorted(size)}")
        h, w = size["height"], size["width"]
    elif isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = size
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        h, w = size
    else:
        raise ValueError(
            f"size must be an int, a (height, width) pair or a dict with 'height' and 'width', got {size!r}"
        )
    for name, v in (("height", h), ("width", w)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"size: {name} must be a positive integer, got {v!r}")
    return {"height": int(h), "width": int(w)}


def check_resize_mode(mode: Any) -> str:
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode: unknown mode {mode!r}; expected one of {list(RESIZE_MODES)}")
    return mode


def check_stats(value: Any, name: str, positive: bool) -> list[float]:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        values = [float(value)] * 3
    elif isinstance(value, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(value, str) and len(value) == 3:
        values = [float(v) for v in value]
    else:
        raise ValueError(f"{name} must be a number or 3 numbers (R, G, B), got {value!r}")
    if not all(math.isfinite(v) for v in values) or (positive and min(values) <= 0):
        kind = "positive finite" if positive else "finite"
        raise ValueError(f"{name} must hold {kind} numbers, got {values}")
    return values


def check_device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device: {device!r} is not a torch device ({e})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def check_return_tensors(return_tensors: Any) -> str | None:
    if return_tensors is None:
        return None
    value = getattr(return_tensors, "value", return_tensors)  # transformers.TensorType
    if value not in ("pt", "np"):
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
    return value


def check_default_intensity(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return check_intensity(value, "default_intensity")
    except TypeError as e:
        raise TypeError(f"{e} (or None to require intensity= with exposure='metadata')") from None


def check_resample(resample: Any) -> str:
    """A PIL resampling filter (``PILImageResampling`` or its int) -> a ``resize_mode``."""
    code = getattr(resample, "value", resample)
    if isinstance(code, bool) or not isinstance(code, (int, np.integer)):
        raise TypeError(f"resample must be a PIL resampling filter (PILImageResampling or its int), got {resample!r}")
    if int(code) not in RESAMPLE_MODES:
        names = {0: "NEAREST", 1: "LANCZOS", 2: "BILINEAR", 3: "BICUBIC", 4: "BOX", 5: "HAMMING"}
        raise ValueError(
            f"resample={names.get(int(code), code)} has no counterpart in the processor's torch resize; use NEAREST, "
            f"BILINEAR, BICUBIC or BOX (or resize_mode= one of {list(RESIZE_MODES)})"
        )
    return RESAMPLE_MODES[int(code)]


def check_rescale(do_rescale: Any, rescale_factor: Any, raw_scale: float | None) -> float | None:
    """``rescale_factor`` -> ``raw_scale`` (its inverse); ``do_rescale`` must leave integers scaled."""
    if do_rescale is not None and not check_bool(do_rescale, "do_rescale"):
        raise ValueError(
            "do_rescale=False: integer raw DN are always divided by raw_scale (the white level) to reach [0, 1], and "
            "floating-point raws are taken as normalised already (never rescaled); pass floats in [0, 1] instead"
        )
    if rescale_factor is None:
        return raw_scale
    if isinstance(rescale_factor, bool) or not isinstance(rescale_factor, (int, float, np.integer, np.floating)) or not (
        math.isfinite(rescale_factor) and rescale_factor > 0
    ):
        raise ValueError(f"rescale_factor must be a positive number (1 / the white level), got {rescale_factor!r}")
    scale = 1.0 / float(rescale_factor)
    if raw_scale is not None and not math.isclose(float(raw_scale), scale, rel_tol=1e-6):
        raise ValueError(f"rescale_factor={rescale_factor!r} contradicts raw_scale={raw_scale!r} (raw_scale = 1 / rescale_factor)")
    return scale


def check_data_format(value: Any, name: str) -> str | None:
    if value is None:
        return None
    value = getattr(value, "value", value)  # transformers.image_utils.ChannelDimension
    if value not in ("channels_first", "channels_last"):
        raise ValueError(f"{name} must be 'channels_first', 'channels_last' or None, got {value!r}")
    return value


def refuse_not_for_raw(kwargs: dict[str, Any], where: str) -> None:
    """Refuse BaseImageProcessor arguments that do not apply to raw input; a typo is a TypeError."""
    for key, value in kwargs.items():
        if key in NOT_FOR_RAW:
            if value is None or value is False:
                continue
            raise ValueError(f"{where}: {key}={value!r} does not apply to raw input: {NOT_FOR_RAW[key]}")
        if key in ("default_to_square", "disable_grouping"):
            if key == "default_to_square" and value is False:
                raise ValueError(f"{where}: default_to_square=False: size is always (height, width) here")
            continue
        raise TypeError(f"{where} got an unexpected keyword argument {key!r}")


def as_spec(value: Any) -> Any:
    """A config object as its dict, so that every stored setting is a JSON value."""
    if isinstance(value, (ISPConfig, CameraPreset)):
        return value.to_dict()
    return dict(value) if isinstance(value, Mapping) else value
