"""``RawISPImageProcessor``: a transformers image processor that develops raw Bayer mosaics.

Where a transformers image processor turns 8-bit RGB pictures into ``pixel_values``, this one
takes raw sensor frames (uint16 Bayer mosaics or the same in normalised float units) and runs
the project's static ISP (:class:`raw_isp.StaticISP`) on them before the usual resize and
normalisation. The ISP runs once per call on the whole batch, as tensors, on the chosen device.

    raw (B, H, W) uint16 --/raw_scale--> [0, 1] --StaticISP--> RGB (B, 3, H, W) in [0, 1]
        --resize--> (B, 3, h, w) --(x - mean) / std--> pixel_values

Loading with ``AutoImageProcessor``
    Importing :mod:`raw_isp` registers this class with ``transformers.AutoImageProcessor`` (under
    a marker config, :class:`RawISPProcessorConfig`), so that in any process that has run
    ``import raw_isp``, ``AutoImageProcessor.from_pretrained(folder)`` returns a
    ``RawISPImageProcessor`` for a folder written by :meth:`RawISPImageProcessor.save_pretrained`,
    offline and without ``trust_remote_code``. ``save_pretrained`` also writes a two-line module
    (``image_processing_raw_isp.py``, which only imports this class from the installed package)
    and an ``auto_map`` entry, so a process that has not imported :mod:`raw_isp` can still load the
    folder with ``AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)``. A saved
    setting this version does not know is left out with a warning (:meth:`~RawISPImageProcessor.from_dict`).
    A third file, ``video_preprocessor_config.json``, only says that there is no video processor:
    without it ``transformers.pipeline()`` would ask whether to run custom code (see
    ``_NO_VIDEO_NOTE``).

Input
    Raw frames only: 8-bit data (uint8 arrays, PIL images in mode "L", RGB pictures) is refused
    with a message, because it is almost always a picture that has been developed already; an
    8-bit raw mosaic is developed when ``raw_scale`` says so (``raw_scale=255``).

Exposure metadata
    With ``exposure="metadata"`` (the training scripts' default) each frame is developed with gain
    1 / its intensity ratio: ``intensity=`` if given, else the ratio the frame carries (a file
    written by ``raw_isp.write_raw(path, raw, intensity=0.05)``, or the :class:`raw_isp.io.RawFrame`
    that ``raw_isp.read_raw`` returns), else ``default_intensity`` (1.0, the training reference,
    saved in the config) with a warning the first time.

Pipelines
    transformers' built-in ``ImageClassificationPipeline`` decodes a file path with PIL and
    converts it to 8-bit RGB before the image processor sees it, which destroys a 16-bit raw; it
    passes arrays (``raw_isp.read_raw(path)``) through untouched. After ``import raw_isp`` the
    ``"image-classification"`` task runs :class:`~raw_isp.models.pipelines.RawImageClassificationPipeline`
    instead, which hands paths to this processor and takes ``intensity=`` (and is the built-in
    pipeline for other image processors); ``"raw-image-classification"`` names it too.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoImageProcessor
from transformers.configuration_utils import PreTrainedConfig
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.processing_utils import ImagesKwargs

from ..isp.config import CAMERAS, ISP_VARIANTS, CameraPreset, ISPConfig
from ..io import RawFrame, check_intensity, raw_to_unit, read_raw_with_pattern
from ..isp.exposure import check_exposure
from ..isp.static import StaticISP

__all__ = [
    "RawISPImageProcessor",
    "RawISPProcessorConfig",
    "RESIZE_MODES",
    "RESAMPLE_MODES",
    "DEFAULT_INTENSITY",
    "CAMERA_NORMALIZATION",
]

#: Values of ``resize_mode`` and the ``torch.nn.functional.interpolate`` mode each one uses.
#: "nearest" is the pixel-centre-aligned variant ("nearest-exact"), like PIL's NEAREST.
RESIZE_MODES = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest-exact", "area": "area"}

#: Suggested ``image_mean`` / ``image_std`` per camera (statistics of ISP output in [0, 1]).
#: The defaults of the processor are the neutral 0.5 / 0.5 of ViT; pass these to centre the data.
CAMERA_NORMALIZATION = {
    "microscopy": {"image_mean": [0.91, 0.84, 0.94], "image_std": [0.08, 0.12, 0.05]},
}

_SHIM_MODULE = "image_processing_raw_isp"
_SHIM_SOURCE = (
    "# Written by raw_isp.RawISPImageProcessor.save_pretrained: lets AutoImageProcessor find the class\n"
    "# (with trust_remote_code=True) in a process that has not imported raw_isp. The code itself is the\n"
    "# installed raw-isp-toolkit package; nothing else is defined here.\n"
    "from raw_isp.models.processor import RawISPImageProcessor  # noqa: F401\n"
)
_AUTO_MAP = {"AutoImageProcessor": f"{_SHIM_MODULE}.RawISPImageProcessor"}
# transformers' VIDEO_PROCESSOR_NAME (not importable from transformers 4.x before video processors).
_VIDEO_CONFIG_NAME = "video_preprocessor_config.json"
#: Content of the ``video_preprocessor_config.json`` that save_pretrained writes. Why: for every
#: vision task, ``transformers.pipeline()`` also tries ``AutoVideoProcessor.from_pretrained``
#: (an optional component; failures are ignored). In a folder without a video processor config,
#: AutoVideoProcessor reads ``preprocessor_config.json`` and, for backward compatibility, turns its
#: ``auto_map["AutoImageProcessor"]`` into a video-processor class reference; nothing local matches
#: that name, so it counts as remote code and ``resolve_trust_remote_code`` asks "Do you wish to
#: run the custom code? [y/N]" (15 s in a terminal), even after ``import raw_isp``. With this file
#: present AutoVideoProcessor reads it instead, finds no video processor and gives up quietly.
#: The ``auto_map`` itself must stay in ``preprocessor_config.json``: it is what lets a process
#: without raw_isp load the processor with ``trust_remote_code=True``.
_NO_VIDEO_NOTE = {
    "raw_isp_note": (
        "No video processor. Written by raw_isp.RawISPImageProcessor.save_pretrained so that transformers' "
        "AutoVideoProcessor reads this file instead of preprocessor_config.json, whose auto_map (for "
        "AutoImageProcessor) it would otherwise take for remote video code and ask whether to run it."
    )
}
# What to_dict / save_pretrained store (all JSON values).
_SETTINGS = (
    "isp", "camera", "exposure", "default_intensity", "raw_scale", "do_resize", "size", "resize_mode", "do_normalize",
    "image_mean", "image_std",
)  # fmt: skip
#: The intensity ratio of the training reference (full light): what a frame without exposure
#: metadata is developed as under ``exposure="metadata"``, unless ``default_intensity`` says otherwise.
DEFAULT_INTENSITY = 1.0
#: PIL resampling filters (``resample=``, as transformers' processors take it) -> ``resize_mode``.
#: LANCZOS (1) and HAMMING (5) have no ``torch.nn.functional.interpolate`` counterpart.
RESAMPLE_MODES = {0: "nearest", 2: "bilinear", 3: "bicubic", 4: "area"}
#: BaseImageProcessor arguments that do not apply to raw mosaics, and why (refused unless they
#: ask for nothing: False / None).
_NOT_FOR_RAW = {
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
_SERVICE_KEYS = ("image_processor_type", "auto_map", "processor_class", "feature_extractor_type")


class RawISPImageProcessorKwargs(ImagesKwargs, total=False):
    """Keyword arguments of :class:`RawISPImageProcessor` beyond the standard ``ImagesKwargs``.

    transformers uses this TypedDict (``valid_kwargs``) to decide which keyword arguments of
    ``from_pretrained`` override saved settings.
    """

    isp: str | dict | None
    camera: str | dict | None
    raw_scale: float | None
    resize_mode: str | None
    exposure: str | float | None
    default_intensity: float | None
    intensity: Any


class RawISPProcessorConfig(PreTrainedConfig):
    """Marker config: the key under which :class:`RawISPImageProcessor` is registered with
    ``AutoImageProcessor``. It holds no settings and belongs to no model."""

    model_type = "raw_isp_processor"


@dataclass(frozen=True)
class _Options:
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


# ------------------------------------------------------------------------- argument checks


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_isp(isp: Any) -> ISPConfig:
    if isinstance(isp, str) and isp not in ISP_VARIANTS:
        raise ValueError(
            f"isp: unknown ISP variant {isp!r}; expected one of {', '.join(ISP_VARIANTS)} or an ISPConfig dict"
        )
    try:
        return ISPConfig.parse(isp)
    except TypeError as e:
        raise TypeError(f"isp: {e}") from None
    except ValueError as e:
        raise ValueError(f"isp: invalid ISP configuration: {e}") from None


def _check_camera(camera: Any) -> CameraPreset:
    if isinstance(camera, str) and camera not in CAMERAS:
        raise ValueError(
            f"camera: unknown camera {camera!r}; expected one of {sorted(CAMERAS)} or a dict with "
            "black_level, white_balance, colour_matrix"
        )
    try:
        return CameraPreset.parse(camera)
    except TypeError as e:
        raise TypeError(f"camera: {e}") from None
    except ValueError as e:
        raise ValueError(f"camera: invalid camera preset: {e}") from None


def _with_exposure(config: ISPConfig, exposure: Any) -> ISPConfig:
    """The ISP config with the processor's ``exposure`` setting merged in (see ISPConfig.with_exposure)."""
    try:
        return config.with_exposure(check_exposure(exposure))
    except ValueError as e:
        raise ValueError(f"exposure: {e}") from None


def _check_raw_scale(raw_scale: Any) -> float:
    if isinstance(raw_scale, bool) or not isinstance(raw_scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"raw_scale must be a number (the white level of integer raws), got {raw_scale!r}")
    if not (math.isfinite(raw_scale) and raw_scale > 0):
        raise ValueError(f"raw_scale must be a positive finite number, got {raw_scale!r}")
    return float(raw_scale)


def _check_size(size: Any) -> dict[str, int]:
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


def _check_resize_mode(mode: Any) -> str:
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode: unknown mode {mode!r}; expected one of {list(RESIZE_MODES)}")
    return mode


def _check_stats(value: Any, name: str, positive: bool) -> list[float]:
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


def _check_device(device: Any) -> torch.device:
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


def _check_return_tensors(return_tensors: Any) -> str | None:
    if return_tensors is None:
        return None
    value = getattr(return_tensors, "value", return_tensors)  # transformers.TensorType
    if value not in ("pt", "np"):
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
    return value


def _check_default_intensity(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return check_intensity(value, "default_intensity")
    except TypeError as e:
        raise TypeError(f"{e} (or None to require intensity= with exposure='metadata')") from None


def _check_resample(resample: Any) -> str:
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


def _check_rescale(do_rescale: Any, rescale_factor: Any, raw_scale: float | None) -> float | None:
    """``rescale_factor`` -> ``raw_scale`` (its inverse); ``do_rescale`` must leave integers scaled."""
    if do_rescale is not None and not _check_bool(do_rescale, "do_rescale"):
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


def _check_data_format(value: Any, name: str) -> str | None:
    if value is None:
        return None
    value = getattr(value, "value", value)  # transformers.image_utils.ChannelDimension
    if value not in ("channels_first", "channels_last"):
        raise ValueError(f"{name} must be 'channels_first', 'channels_last' or None, got {value!r}")
    return value


def _refuse_not_for_raw(kwargs: dict[str, Any], where: str) -> None:
    """Refuse BaseImageProcessor arguments that do not apply to raw input; a typo is a TypeError."""
    for key, value in kwargs.items():
        if key in _NOT_FOR_RAW:
            if value is None or value is False:
                continue
            raise ValueError(f"{where}: {key}={value!r} does not apply to raw input: {_NOT_FOR_RAW[key]}")
        if key in ("default_to_square", "disable_grouping"):
            if key == "default_to_square" and value is False:
                raise ValueError(f"{where}: default_to_square=False: size is always (height, width) here")
            continue
        raise TypeError(f"{where} got an unexpected keyword argument {key!r}")


def _strip_channel_axis(images: Any, input_data_format: str | None) -> Any:
    """Drop the singleton channel axis that ``input_data_format`` declares on array inputs."""
    if input_data_format is None:
        return images

    def strip(item: Any, batched: bool, where: str) -> Any:
        if not isinstance(item, (np.ndarray, torch.Tensor)):
            return item  # paths and PIL images have no channel axis to declare
        axis = (-3 if input_data_format == "channels_first" else -1)
        if item.ndim not in ((3, 4) if batched else (3,)) or item.shape[axis] != 1:
            expected = "(1, H, W) or (B, 1, H, W)" if input_data_format == "channels_first" else "(H, W, 1) or (B, H, W, 1)"
            raise ValueError(
                f"{where}: input_data_format={input_data_format!r} declares a channel axis, so a raw mosaic must have "
                f"shape {expected} (one channel), got {tuple(item.shape)}; leave input_data_format out for (H, W) or "
                "(B, H, W) mosaics"
            )
        return item.squeeze(axis) if isinstance(item, torch.Tensor) else np.squeeze(item, axis=axis)

    if isinstance(images, (list, tuple)):
        return [strip(item, False, f"images[{i}]") for i, item in enumerate(images)]
    return strip(images, True, "images")


def _package(data: dict[str, torch.Tensor], return_tensors: str | None) -> BatchFeature:
    """Batched outputs as ``return_tensors`` asks: "pt" stacked tensors where they were
    computed; "np" stacked numpy arrays; None a list of one numpy array per image (what
    transformers' ViTImageProcessor returns)."""
    if return_tensors == "pt":
        return BatchFeature(data=data, tensor_type="pt")
    arrays = {key: value.cpu().numpy() for key, value in data.items()}
    if return_tensors == "np":
        return BatchFeature(data=arrays, tensor_type="np")
    return BatchFeature(data={key: list(value) for key, value in arrays.items()})


# ---------------------------------------------------------------------------- input reading


def _describe_pil(image: Any) -> str | None:
    """The mode of a PIL image, or None if ``image`` is not one (PIL is imported only if loaded)."""
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(image, pil.Image):
        return image.mode
    return None


def _to_tensor(item: Any, where: str) -> torch.Tensor:
    """One 2-D (or, for the whole input, 3-D) array-like as a torch tensor of its own dtype."""
    mode = _describe_pil(item)
    if mode is not None:
        if mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA", "RGBX", "1"):
            raise ValueError(
                f"{where}: got a PIL image in mode {mode!r}, but RawISPImageProcessor takes raw Bayer mosaics "
                "(a single-channel uint16 array, tensor, or the path of a raw TIFF/DNG). If this came from "
                "transformers.pipeline('image-classification') called with a file path, transformers has already "
                "decoded the file to 8-bit RGB: call the pipeline on raw_isp.read_raw(path) instead, or build it "
                "with pipeline_class=raw_isp.models.pipelines.RawImageClassificationPipeline"
            )
        # Single-channel modes ("I;16", "I", "F") hold the raw values; "L" (8-bit) is refused
        # later unless raw_scale says the data are 8-bit (_refuse_8_bit).
        item = np.asarray(item)
    if isinstance(item, torch.Tensor):
        t = item.detach()
    elif isinstance(item, (np.ndarray, list, tuple)):
        arr = np.asarray(item)
        if arr.dtype.kind == "O":
            raise TypeError(f"{where}: could not read as a numeric array (ragged or mixed nested sequence)")
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{where}: raw values must be integer or floating point, got dtype {arr.dtype}")
        if arr.dtype.byteorder not in ("=", "|"):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype.kind == "u" and arr.dtype.itemsize > 2:
            arr = arr.astype(np.int64)  # torch has few kernels for uint32/uint64
        with warnings.catch_warnings():
            # Read-only arrays (PIL, datasets) are fine: the data is only ever read, then copied.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        raise TypeError(
            f"{where}: expected a raw mosaic as a numpy array, torch tensor, single-channel PIL image or a file "
            f"path (str or os.PathLike), got {type(item).__name__}"
        )
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{where}: raw values must be integer or floating point, got dtype {t.dtype}")
    return t


def _refuse_8_bit(tensors: list[torch.Tensor], batched: bool, raw_scale: float) -> None:
    """8-bit input (uint8 / int8: a PIL "L" image, a PNG or JPEG) is almost always a developed
    picture, not a sensor frame; divided by the 16-bit white level it would come out nearly black.
    It is developed only when ``raw_scale`` declares 8-bit data (at most 255)."""
    if raw_scale <= 255:
        return
    for i, t in enumerate(tensors):
        if t.dtype in (torch.uint8, torch.int8):
            where = "images" if batched else f"images[{i}]"
            raise ValueError(
                f"{where}: 8-bit data (dtype {str(t.dtype).removeprefix('torch.')}), but RawISPImageProcessor develops "
                f"raw sensor frames: integer digital numbers up to raw_scale={raw_scale:g} (16-bit by default) or "
                "floats in [0, 1]. 8-bit data is usually an already developed picture (a PIL image in mode 'L', a "
                "PNG or JPEG). Pass the raw frame instead (raw_isp.read_raw(path), or the uint16 'image' column of "
                "the dataset); if this really is an 8-bit raw mosaic, say so with raw_scale=255"
            )


def _check_mosaic_shape(t: torch.Tensor, where: str, batched: bool) -> None:
    if t.ndim == 3 and t.shape[-1] in (3, 4) and min(t.shape[0], t.shape[1]) > 4:
        raise ValueError(
            f"{where}: shape {tuple(t.shape)} looks like a channels-last RGB(A) image; RawISPImageProcessor "
            "expects raw Bayer mosaics of shape (H, W) or a batch (B, H, W)"
        )
    if t.ndim not in ((2, 3) if batched else (2,)):
        expected = "(H, W) or a batch (B, H, W)" if batched else "(H, W)"
        raise ValueError(f"{where}: expected a raw mosaic of shape {expected}, got shape {tuple(t.shape)}")
    h, w = t.shape[-2:]
    if t.numel() == 0:
        raise ValueError(f"{where}: empty image, shape {tuple(t.shape)}")
    if h % 2 or w % 2:
        raise ValueError(f"{where}: size {h}x{w} (HxW) is odd; a Bayer mosaic needs even height and width")


def _is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def _gather_with_intensity(images: Any, name: str, pattern: str | None) -> tuple[list[torch.Tensor], bool, list]:
    """:func:`_gather`, plus the intensity ratio each image carries (a file's exposure metadata
    or a :class:`raw_isp.io.RawFrame`'s ``intensity``; None where there is none), one per image."""
    found: list = []
    tensors, batched = _gather(images, name, pattern, found)
    if batched:
        found = found * tensors[0].shape[0] if len(found) == 1 else [None] * tensors[0].shape[0]
    return tensors, batched, found


def _gather(images: Any, name: str, pattern: str | None, intensities: list | None = None) -> tuple[list[torch.Tensor], bool]:
    """Turn the ``images`` argument into tensors.

    Returns ``(tensors, batched)``: a list of 2-D tensors, or one 3-D tensor with ``batched``.
    ``pattern`` (the ISP's CFA pattern) is checked against what a raw file declares. Into
    ``intensities`` (if given) goes each input's stored intensity ratio or None.
    """
    note = (lambda item: None) if intensities is None else (  # noqa: E731
        lambda item: intensities.append(item.intensity if isinstance(item, RawFrame) else None)
    )

    def read(path: str | os.PathLike, where: str) -> torch.Tensor:
        if isinstance(path, str) and _is_url(path):
            raise ValueError(f"{where}: URLs are not read (offline by design); download {path!r} first")
        raw, file_pattern = read_raw_with_pattern(path)
        if pattern is not None and file_pattern is not None and file_pattern != pattern:
            raise ValueError(
                f"{os.fspath(path)}: the file declares CFA pattern {file_pattern} but the ISP is set up for "
                f"{pattern}; pass isp={{..., 'pattern': '{file_pattern}'}}"
            )
        note(raw)
        return torch.from_numpy(np.asarray(raw))

    if isinstance(images, (str, os.PathLike)):
        return [read(images, name)], False
    if isinstance(images, (np.ndarray, torch.Tensor)) or _describe_pil(images) is not None:
        note(images)
        t = _to_tensor(images, name)
        _check_mosaic_shape(t, name, batched=True)
        return ([t], True) if t.ndim == 3 else ([t], False)
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"{name}: got an empty list")
        out = []
        for i, item in enumerate(images):
            where = f"{name}[{i}]"
            if isinstance(item, (str, os.PathLike)):
                t = read(item, where)
            else:
                note(item)
                t = _to_tensor(item, where)
            _check_mosaic_shape(t, where, batched=False)
            if out and t.shape != out[0].shape:
                raise ValueError(
                    f"{name}: all images of one call must have the same shape, got {tuple(out[0].shape)} at "
                    f"{name}[0] and {tuple(t.shape)} at {where}; call the processor once per shape"
                )
            out.append(t)
        return out, False
    raise TypeError(
        f"{name}: expected a raw mosaic (numpy array, torch tensor, single-channel PIL image, file path) or a "
        f"list of them, got {type(images).__name__}"
    )


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _is_our_video_note(path: str) -> bool:
    """True if ``path`` is absent or a note written by save_pretrained (so it may be written)."""
    if not os.path.exists(path):
        return True
    try:
        with open(path, encoding="utf-8") as fh:
            content = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and set(content) == set(_NO_VIDEO_NOTE)


def _as_spec(value: Any) -> Any:
    """A config object as its dict, so that every stored setting is a JSON value."""
    if isinstance(value, (ISPConfig, CameraPreset)):
        return value.to_dict()
    return dict(value) if isinstance(value, Mapping) else value


# ----------------------------------------------------------------------------- ISP caching


def _camera_key(camera: CameraPreset) -> str:
    # The preset's name does not change the output, so it is not part of the key.
    d = camera.to_dict()
    d.pop("name", None)
    return json.dumps(d, sort_keys=True)


@functools.lru_cache(maxsize=16)
def _cached_isp(isp_json: str, camera_json: str, device: str) -> StaticISP:
    config = ISPConfig.from_dict(json.loads(isp_json))
    camera = CameraPreset(**json.loads(camera_json))
    return StaticISP(config, camera=camera, device=torch.device(device), dtype=torch.float32)


def _isp_for(config: ISPConfig, camera: CameraPreset, device: torch.device) -> StaticISP:
    return _cached_isp(json.dumps(config.to_dict(), sort_keys=True), _camera_key(camera), str(device))


# ------------------------------------------------------------------------------- processor


class RawISPImageProcessor(BaseImageProcessor):
    r"""Develops raw Bayer mosaics with :class:`raw_isp.StaticISP`, then resizes and normalises.

    Args:
        isp: the ISP, a variant name of :data:`raw_isp.ISP_VARIANTS` (e.g. ``"bi_s_ga"``,
            ``"ma_s_me"``) or an ``ISPConfig`` as a dict (``ISPConfig.to_dict()``; an
            ``ISPConfig`` instance is stored as its dict). Explicit luma kernels
            (``"sharpening": "kernel"`` with ``"sharpen_kernel"``, ``"denoising": "kernel"`` with
            ``"blur_kernel"``, k x k nested lists) are stored as JSON lists; this is how a
            trained :class:`raw_isp.ParametrizedISP` is saved:
            ``RawISPImageProcessor(**isp.processor_settings(), size=...)`` develops raws as
            that module does (to float32 rounding).
        camera: colour parameters, ``"neutral"``, ``"drone"``, ``"microscopy"`` (see
            :data:`raw_isp.CAMERAS`) or a dict with ``black_level`` (4), ``white_balance`` (3),
            ``colour_matrix`` (9 row-major) in normalised units.
        exposure: the ISP's exposure stage (:mod:`raw_isp.isp.exposure`): None (default: the
            ``isp`` config's own setting, none for the study's variants), ``"metadata"`` (gain
            1 / intensity ratio: the ratio comes from ``intensity=``, else from the frame's own
            metadata, a file written by ``raw_isp.write_raw(path, raw, intensity=...)`` or the
            :class:`raw_isp.io.RawFrame` that ``read_raw`` returns, else ``default_intensity``),
            ``"auto"`` (auto-exposure from each frame) or a positive fixed gain. It must not
            contradict an ``exposure`` inside an ``isp`` dict.
        default_intensity: the intensity ratio a frame without one is developed as under
            ``exposure="metadata"`` (default 1.0, :data:`DEFAULT_INTENSITY`: the training
            reference, full light), with a warning the first time; None makes a missing ratio an
            error instead. Saved with the other settings.
        raw_scale: integer raws are divided by this to reach [0, 1] (default 65535 for uint16
            frames). Floating-point inputs are taken as already normalised to [0, 1].
        do_resize: resize the developed RGB batch to ``size``.
        size: ``{"height": h, "width": w}`` (an int n or a pair (h, w) is accepted and stored as
            that dict).
        resize_mode: ``"bilinear"`` (antialiased), ``"bicubic"`` (antialiased, result clipped to
            [0, 1]), ``"nearest"`` or ``"area"``; done with ``torch.nn.functional.interpolate``.
        do_normalize: apply ``(x - image_mean) / image_std`` per channel.
        image_mean, image_std: 3 values (or one for all channels). Defaults 0.5 / 0.5 as for
            ViT. For Raw-Microscopy, statistics of the ISP output are about mean
            ``[0.91, 0.84, 0.94]`` and std ``[0.08, 0.12, 0.05]`` (:data:`CAMERA_NORMALIZATION`).

    All settings are JSON values; they are what :meth:`to_dict` and :meth:`save_pretrained`
    store. The device is chosen per call and is never stored.

    transformers' common arguments: ``resample`` (a PIL filter, mapped to ``resize_mode``:
    NEAREST, BILINEAR, BICUBIC, BOX), ``rescale_factor`` (``1 / raw_scale``), ``do_rescale``
    (True only: integer DN are always scaled, floats never), ``data_format`` (``"channels_first"``
    or ``"channels_last"`` pixel values), ``input_data_format`` (a singleton channel axis on the
    mosaics), ``return_tensors``, ``device``. Arguments that do not apply to a raw mosaic
    (``do_convert_rgb``, ``do_center_crop`` / ``crop_size``, ``do_pad`` / ``pad_size``, ...) are
    refused with the reason unless they ask for nothing (False / None).
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = RawISPImageProcessorKwargs

    def __init__(
        self,
        isp: str | Mapping | ISPConfig = "bi_s_ga",
        camera: str | Mapping | CameraPreset = "neutral",
        raw_scale: float = 65535.0,
        do_resize: bool = True,
        size: int | Sequence[int] | Mapping[str, int] | None = None,
        resize_mode: str = "bilinear",
        do_normalize: bool = True,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        exposure: str | float | None = None,
        default_intensity: float | None = DEFAULT_INTENSITY,
        **kwargs: Any,
    ) -> None:
        for key in _SERVICE_KEYS:
            kwargs.pop(key, None)
        # transformers' names for two of the settings, converted to the stored ones.
        if kwargs.get("resample") is not None:
            resize_mode = _check_resample(kwargs.pop("resample"))
        raw_scale = _check_rescale(kwargs.pop("do_rescale", None), kwargs.pop("rescale_factor", None),
                                   None if raw_scale == 65535.0 else raw_scale) or raw_scale
        kwargs.pop("resample", None)
        unknown = sorted(k for k in kwargs if k not in _NOT_FOR_RAW and k not in ("default_to_square", "disable_grouping"))
        if unknown:
            raise TypeError(f"RawISPImageProcessor got unknown settings {unknown}")
        _refuse_not_for_raw(kwargs, "RawISPImageProcessor")
        super().__init__()
        self.isp = _as_spec(isp)
        self.camera = _as_spec(camera)
        self.exposure = _with_exposure(ISPConfig(), exposure).exposure  # validated, a number as float
        self.default_intensity = _check_default_intensity(default_intensity)
        self._warned_default_intensity = False
        self.raw_scale = raw_scale
        self.do_resize = do_resize
        self.size = {"height": 224, "width": 224} if size is None else size
        self.resize_mode = resize_mode
        self.do_normalize = do_normalize
        self.image_mean = [0.5, 0.5, 0.5] if image_mean is None else image_mean
        self.image_std = [0.5, 0.5, 0.5] if image_std is None else image_std
        opts = self._options()  # fail now rather than at the first call
        # Store the canonical JSON forms.
        self.raw_scale, self.size = opts.raw_scale, opts.size
        self.image_mean, self.image_std = opts.image_mean, opts.image_std

    # ------------------------------------------------------------------ settings

    def _options(self, **overrides: Any) -> _Options:
        """Defaults from ``self`` with non-None ``overrides``, all validated."""
        get = lambda k: overrides[k] if overrides.get(k) is not None else getattr(self, k)  # noqa: E731
        return _Options(
            isp=_with_exposure(_check_isp(get("isp")), get("exposure")),
            camera=_check_camera(get("camera")),
            raw_scale=_check_raw_scale(get("raw_scale")),
            do_resize=_check_bool(get("do_resize"), "do_resize"),
            size=_check_size(get("size")),
            resize_mode=_check_resize_mode(get("resize_mode")),
            do_normalize=_check_bool(get("do_normalize"), "do_normalize"),
            image_mean=_check_stats(get("image_mean"), "image_mean", positive=False),
            image_std=_check_stats(get("image_std"), "image_std", positive=True),
            default_intensity=_check_default_intensity(get("default_intensity")),
        )

    def get_isp(self, isp: Any = None, camera: Any = None, device: Any = None, exposure: Any = None) -> StaticISP:
        """The :class:`StaticISP` this processor runs (defaults, or the given overrides).

        Built once per (ISP config, camera values, device) and cached for the process, so
        repeated calls (and copies of the processor) do not rebuild kernels.
        """
        exposure = self.exposure if exposure is None else exposure
        cfg = _with_exposure(_check_isp(self.isp if isp is None else isp), exposure)
        cam = _check_camera(self.camera if camera is None else camera)
        return _isp_for(cfg, cam, _check_device("cpu" if device is None else device))

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values, plus ``image_processor_type`` and ``auto_map``."""
        settings = json.loads(json.dumps({key: getattr(self, key) for key in _SETTINGS}))
        return {"image_processor_type": type(self).__name__, "auto_map": dict(_AUTO_MAP), **settings}

    @classmethod
    def from_dict(cls, image_processor_dict: dict[str, Any], **kwargs: Any) -> RawISPImageProcessor:
        """Build from saved settings (``from_pretrained`` passes the content of
        ``preprocessor_config.json`` here).

        Keys that this version does not know (written by a newer version, or added by another
        tool) are left out with a ``UserWarning`` instead of failing, so a saved folder keeps
        loading across versions as transformers' own image processors do. Calling the
        constructor with an unknown setting is still a ``TypeError`` (a typo there is a bug).
        """
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        unknown = sorted(set(image_processor_dict) - known - set(_SERVICE_KEYS))
        if unknown:
            warnings.warn(
                f"{cls.__name__}: ignoring saved settings that this version of raw_isp does not know: {unknown} "
                "(probably written by a newer version); the processor is built from the others",
                UserWarning,
                stacklevel=2,
            )
            image_processor_dict = {k: v for k, v in image_processor_dict.items() if k not in unknown}
        return super().from_dict(image_processor_dict, **kwargs)

    def save_pretrained(
        self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs: Any
    ) -> list[str]:
        """Write ``preprocessor_config.json``, the ``image_processing_raw_isp.py`` import shim
        and ``video_preprocessor_config.json`` (a note that there is no video processor).

        The shim lets ``AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)``
        work in a process that has not imported :mod:`raw_isp`; with ``import raw_isp`` the
        registered class is used and ``trust_remote_code`` is not needed. The video note keeps
        ``transformers.pipeline()`` from asking about custom code: see :data:`_NO_VIDEO_NOTE`.
        A ``video_preprocessor_config.json`` of another origin in the folder is left as it is.
        """
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory: {os.fspath(save_directory)} is a file, not a folder")
        os.makedirs(save_directory, exist_ok=True)
        shim = os.path.join(save_directory, f"{_SHIM_MODULE}.py")
        _write_atomic(shim, _SHIM_SOURCE)
        written = [shim]
        video = os.path.join(save_directory, _VIDEO_CONFIG_NAME)
        if _is_our_video_note(video):
            _write_atomic(video, json.dumps(_NO_VIDEO_NOTE, indent=2) + "\n")
            written.append(video)
        files = super().save_pretrained(save_directory, push_to_hub=False)
        if push_to_hub:
            # push_to_hub saves into a temporary folder (shim included) and uploads all of it.
            repo_id = kwargs.pop("repo_id", os.path.basename(os.path.abspath(save_directory)))
            self.push_to_hub(repo_id, **kwargs)
        return [*files, *written]

    @classmethod
    def register_for_auto_class(cls, auto_class: str | type = "AutoImageProcessor") -> None:
        """Kept for API compatibility: :meth:`save_pretrained` always writes the ``auto_map``."""
        name = auto_class if isinstance(auto_class, str) else auto_class.__name__
        if name != "AutoImageProcessor":
            raise ValueError(f"auto_class: RawISPImageProcessor registers only with AutoImageProcessor, got {name!r}")

    # ---------------------------------------------------------------- processing

    def preprocess(
        self,
        images: Any,
        segmentation_maps: Any = None,
        *,
        isp: str | Mapping | ISPConfig | None = None,
        camera: str | Mapping | CameraPreset | None = None,
        raw_scale: float | None = None,
        do_resize: bool | None = None,
        size: int | Sequence[int] | Mapping[str, int] | None = None,
        resize_mode: str | None = None,
        do_normalize: bool | None = None,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        return_tensors: str | None = "pt",
        device: str | torch.device | None = None,
        exposure: str | float | None = None,
        intensity: Any = None,
        default_intensity: float | None = None,
        resample: Any = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        data_format: str | None = "channels_first",
        input_data_format: str | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Develop, resize and normalise a raw or a batch of raws.

        Args:
            images: one raw or a batch: numpy array / torch tensor ``(H, W)`` or ``(B, H, W)``,
                a list of ``(H, W)`` arrays/tensors, single-channel PIL images (mode ``"I;16"``
                etc.), or paths (str / ``os.PathLike``) of raw TIFF/DNG files (read with
                :func:`raw_isp.read_raw`; a DNG's CFA pattern must match the ISP's). Integer
                values are divided by ``raw_scale``; floating-point values must already be in
                [0, 1]. H and W even, one shape per call.
            segmentation_maps: optional integer class maps, one ``(H, W)`` per image, same
                H and W as the raws; resized with nearest-neighbour and returned as ``labels``.
            isp, camera, raw_scale, do_resize, size, resize_mode, do_normalize, image_mean,
                image_std, exposure: override the stored settings for this call only.
            intensity: the intensity ratio of each image (one number, or one per image: a list,
                array or tensor ``(B,)``, e.g. a dataset batch's ``"intensity"``), all positive;
                used when the exposure is ``"metadata"`` (gain 1 / ratio), ignored otherwise. It
                overrides the ratio a frame carries (a file written with ``write_raw(...,
                intensity=)``, a ``RawFrame``); a frame with neither is developed as
                ``default_intensity`` (1.0 unless set; a warning the first time), or refused
                when that is None.
            resample: a PIL resampling filter, instead of ``resize_mode`` (see the class).
            do_rescale, rescale_factor: transformers' names: ``rescale_factor = 1 / raw_scale``;
                ``do_rescale=False`` is refused (integer DN are always scaled).
            data_format: ``"channels_first"`` (default, ``(B, 3, h, w)``) or ``"channels_last"``
                (``(B, h, w, 3)``).
            input_data_format: None (mosaics ``(H, W)`` / ``(B, H, W)``), or
                ``"channels_first"`` / ``"channels_last"`` for arrays that carry a singleton
                channel axis (``(1, H, W)`` / ``(H, W, 1)``, batched ``(B, 1, H, W)`` /
                ``(B, H, W, 1)``), which is dropped.
            return_tensors: ``"pt"`` (default: stacked torch tensors, on ``device``), ``"np"``
                (stacked numpy arrays) or None (a list of one numpy array per image, as
                transformers' ``ViTImageProcessor`` returns). The default differs from ViT's
                (None) because the ISP runs in torch and the output feeds a torch model.
            device: where the ISP runs (e.g. ``"cpu"``, ``"cuda"``); ``"pt"`` outputs stay there.
                Default: the device of a tensor input, else the CPU.

        Returns:
            ``BatchFeature`` with ``pixel_values`` float32 ``(B, 3, h, w)`` and, with
            segmentation maps, ``labels`` int64 ``(B, h, w)`` (for ``return_tensors=None``:
            lists of B arrays ``(3, h, w)`` and ``(h, w)``).

        Raises:
            ValueError / TypeError naming the argument: unknown ISP variant or camera, bad
            size, RGB images, 8-bit data (unless ``raw_scale <= 255``), odd or mixed sizes,
            negative or non-finite values, integers above ``raw_scale``, floats above 1,
            unsupported ``return_tensors``, a missing or
            non-positive ``intensity`` with ``exposure="metadata"``.
        """
        _refuse_not_for_raw(kwargs, "RawISPImageProcessor.preprocess")
        if resample is not None:
            resize_mode = _check_resample(resample)
        raw_scale = _check_rescale(do_rescale, rescale_factor, raw_scale)
        data_format = _check_data_format(data_format, "data_format") or "channels_first"
        input_data_format = _check_data_format(input_data_format, "input_data_format")
        opts = self._options(
            isp=isp, camera=camera, raw_scale=raw_scale, do_resize=do_resize, size=size, resize_mode=resize_mode,
            do_normalize=do_normalize, image_mean=image_mean, image_std=image_std, exposure=exposure,
            default_intensity=default_intensity,
        )  # fmt: skip
        return_tensors = _check_return_tensors(return_tensors)
        dev = None if device is None else _check_device(device)

        images = _strip_channel_axis(images, input_data_format)
        tensors, batched, stored = _gather_with_intensity(images, "images", opts.isp.pattern)
        if opts.isp.exposure == "metadata" and intensity is None:
            intensity = self._stored_or_default(stored, opts.default_intensity)
        if dev is None:
            on_device = [t.device for t in tensors if t.device.type != "cpu"]
            dev = _check_device(on_device[0]) if on_device else torch.device("cpu")
        raw = self._normalise(tensors, batched, opts.raw_scale, dev)

        isp_module = _isp_for(opts.isp, opts.camera, dev)
        with torch.no_grad():
            developed = isp_module(raw) if intensity is None else isp_module(raw, intensity=intensity)
            rgb = self._finish(developed, opts)

        if data_format == "channels_last":
            rgb = rgb.permute(0, 2, 3, 1)
        data: dict[str, torch.Tensor] = {"pixel_values": rgb}
        if segmentation_maps is not None:
            data["labels"] = self._labels(segmentation_maps, raw.shape, opts, dev)
        return _package(data, return_tensors)

    def _stored_or_default(self, stored: list, default: float | None) -> list[float]:
        """Per image: the intensity ratio it carries, else ``default`` (warned about once)."""
        missing = sum(ratio is None for ratio in stored)
        if missing and default is None:
            raise ValueError(
                "intensity: exposure='metadata' develops each image with gain 1 / its intensity ratio, and "
                f"{missing} of the {len(stored)} images carry none (no intensity= argument, no intensity in the file's "
                "metadata) while default_intensity is None; pass intensity= (one ratio, or one per image such as a "
                "batch's 'intensity' column) or write the frames with raw_isp.write_raw(path, raw, intensity=...)"
            )
        if missing and not getattr(self, "_warned_default_intensity", False):
            self._warned_default_intensity = True
            warnings.warn(
                f"RawISPImageProcessor: exposure='metadata' develops each image with gain 1 / its intensity ratio, and "
                f"{missing} of the {len(stored)} images carry none (no intensity= argument, no intensity in the file's "
                f"metadata); developing them as intensity {default:g} (default_intensity, the training reference: full "
                "light). Pass intensity= for frames taken at another light level, or write them with "
                "raw_isp.write_raw(path, raw, intensity=...). Shown once per processor.",
                UserWarning,
                stacklevel=4,
            )
        return [default if ratio is None else ratio for ratio in stored]

    @staticmethod
    def _normalise(tensors: list[torch.Tensor], batched: bool, raw_scale: float, device: torch.device) -> torch.Tensor:
        """Float32 ``(B, H, W)`` on ``device`` in [0, 1]; checks ranges per image."""
        _refuse_8_bit(tensors, batched, raw_scale)
        # Integer DN -> [0, 1] on the host, before moving (accelerators have few uint16
        # kernels), by the one conversion (raw_isp.io.raw_to_unit); floats pass through.
        integer = [not t.is_floating_point() for t in tensors]
        if batched:
            x = raw_to_unit(tensors[0], raw_scale).to(device)
        else:
            x = torch.stack([raw_to_unit(t, raw_scale).to(device) for t in tensors])
        is_int = integer * x.shape[0] if batched else integer
        name = (lambda i: "images") if batched and x.shape[0] == 1 else (lambda i: f"images[{i}]")  # noqa: E731
        lo, hi = x.amin(dim=(1, 2)), x.amax(dim=(1, 2))
        finite = torch.isfinite(x).flatten(1).all(dim=1)
        for i, (ok, low, high, ints) in enumerate(zip(finite.tolist(), lo.tolist(), hi.tolist(), is_int)):
            if not ok:
                raise ValueError(f"{name(i)}: contains NaN or infinite values")
            if low < 0:
                raise ValueError(f"{name(i)}: raw values must be non-negative, found minimum {low * (raw_scale if ints else 1):g}")
            if high > 1:
                if ints:
                    raise ValueError(
                        f"{name(i)}: integer raw values exceed raw_scale={raw_scale:g} (maximum {high * raw_scale:g}); "
                        "set raw_scale to the white level of the sensor"
                    )
                raise ValueError(
                    f"{name(i)}: floating-point raws are taken as normalised to [0, 1], but the maximum is {high:g}; "
                    "pass integer raws (divided by raw_scale) or normalise first"
                )
        return x

    def to_pixel_values(self, rgb: torch.Tensor) -> torch.Tensor:
        """Resize and normalise developed views with this processor's settings.

        The second half of :meth:`preprocess`, for callers that develop the raws themselves
        (a learnable ISP inside a model): ``rgb (B, 3, H, W)`` in [0, 1] -> ``pixel_values
        (B, 3, h, w)``, differentiable, on ``rgb``'s device.
        """
        return self._finish(rgb, self._options())

    def _finish(self, rgb: torch.Tensor, opts: _Options) -> torch.Tensor:
        if opts.do_resize:
            rgb = self._resize(rgb, opts.size, opts.resize_mode)
        if opts.do_normalize:
            mean = torch.tensor(opts.image_mean, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
            std = torch.tensor(opts.image_std, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
            rgb = (rgb - mean) / std
        return rgb

    @staticmethod
    def _resize(rgb: torch.Tensor, size: dict[str, int], resize_mode: str) -> torch.Tensor:
        target = (size["height"], size["width"])
        if tuple(rgb.shape[-2:]) == target:
            return rgb
        mode = RESIZE_MODES[resize_mode]
        if mode in ("bilinear", "bicubic"):
            out = F.interpolate(rgb, size=target, mode=mode, align_corners=False, antialias=True)
            return out.clamp_(0.0, 1.0) if mode == "bicubic" else out
        return F.interpolate(rgb, size=target, mode=mode)

    def _labels(self, maps: Any, raw_shape: torch.Size, opts: _Options, device: torch.device) -> torch.Tensor:
        """Integer maps ``(B, H, W)`` -> int64 ``(B, h, w)`` on ``device`` (nearest resize)."""
        name = "segmentation_maps"
        items = maps if isinstance(maps, (list, tuple)) else [maps]
        if any(isinstance(m, (str, os.PathLike)) for m in items):
            raise TypeError(f"{name}: paths are not read; pass the masks as arrays or tensors")
        tensors, batched = _gather(maps, name, None)
        m = tensors[0] if batched else torch.stack(tensors)
        if m.is_floating_point():
            raise TypeError(f"{name}: masks must hold integer class ids, got dtype {m.dtype}")
        if m.shape[0] != raw_shape[0]:
            raise ValueError(f"{name}: got {m.shape[0]} maps for {raw_shape[0]} images")
        if tuple(m.shape[-2:]) != tuple(raw_shape[-2:]):
            raise ValueError(
                f"{name}: maps of size {tuple(m.shape[-2:])} do not match the images' size {tuple(raw_shape[-2:])}"
            )
        m = m.to(torch.int64).to(device)
        target = (opts.size["height"], opts.size["width"])
        if opts.do_resize and tuple(m.shape[-2:]) != target:
            # float32 holds class ids exactly (< 2**24); nearest only copies values.
            m = F.interpolate(m[:, None].to(torch.float32), size=target, mode="nearest-exact")[:, 0]
            m = m.round().to(torch.int64)
        return m

    # ------------------------------------------------------------- post-processing

    def post_process_semantic_segmentation(
        self, outputs: Any, target_sizes: Sequence[Sequence[int]] | torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Class maps from segmentation logits.

        Args:
            outputs: a model output with ``logits`` (or a dict with ``"logits"``, or the logits
                tensor), float ``(B, C, h, w)``.
            target_sizes: optional ``(H, W)`` per image (a list or a ``(B, 2)`` tensor); the
                logits are upsampled bilinearly to it before the argmax.

        Returns:
            list of B int64 tensors ``(H, W)`` (or ``(h, w)`` without ``target_sizes``).
        """
        if isinstance(outputs, torch.Tensor):
            logits = outputs
        elif isinstance(outputs, Mapping) and "logits" in outputs:
            logits = outputs["logits"]
        elif hasattr(outputs, "logits"):
            logits = outputs.logits
        else:
            raise TypeError(f"outputs: expected a model output with logits, got {type(outputs).__name__}")
        if not isinstance(logits, torch.Tensor) or logits.ndim != 4:
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"outputs: logits must be a tensor (B, C, h, w), got {got}")
        if target_sizes is None:
            return list(logits.argmax(dim=1))
        if isinstance(target_sizes, torch.Tensor):
            target_sizes = target_sizes.tolist()
        if len(target_sizes) != logits.shape[0]:
            raise ValueError(f"target_sizes: got {len(target_sizes)} sizes for a batch of {logits.shape[0]} logits")
        sizes = []
        for i, s in enumerate(target_sizes):
            if len(s) != 2 or any(int(v) != v or v < 1 for v in s):
                raise ValueError(f"target_sizes[{i}]: expected (height, width) positive integers, got {s!r}")
            sizes.append((int(s[0]), int(s[1])))
        if len(set(sizes)) == 1:
            up = F.interpolate(logits, size=sizes[0], mode="bilinear", align_corners=False)
            return list(up.argmax(dim=1))
        return [
            F.interpolate(logits[i : i + 1], size=s, mode="bilinear", align_corners=False)[0].argmax(dim=0)
            for i, s in enumerate(sizes)
        ]


def register_auto_class() -> None:
    """Make ``AutoImageProcessor`` know :class:`RawISPImageProcessor` (idempotent).

    Called by :mod:`raw_isp._hooks` as soon as transformers has loaded its auto image-processing
    module, and when this module is imported.
    """
    params = inspect.signature(AutoImageProcessor.register).parameters
    if "image_processor_classes" in params:  # transformers 5: one class per backend name
        classes = {"torchvision": RawISPImageProcessor, "pil": RawISPImageProcessor}
        AutoImageProcessor.register(RawISPProcessorConfig, image_processor_classes=classes, exist_ok=True)
    else:
        AutoImageProcessor.register(
            RawISPProcessorConfig, slow_image_processor_class=RawISPImageProcessor, exist_ok=True
        )


register_auto_class()


def __getattr__(name: str) -> Any:
    # The pipeline class moved to raw_isp.models.pipelines (it needs transformers.pipelines,
    # which a processor alone does not); the old import path keeps working.
    if name == "RawImageClassificationPipeline":
        from .pipelines import RawImageClassificationPipeline

        return RawImageClassificationPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
