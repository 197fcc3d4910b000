"""Input reading of :class:`~raw_isp.models.processor.RawISPImageProcessor`: what a caller passes
(frames, paths, arrays, tensors, PIL images, a ``datasets`` row's ``RawFrame``) as tensors.

    images (one raw or a batch, in any of those kinds) --gather--> 2-D tensors or one 3-D tensor
        --to_unit_batch--> float32 (B, H, W) in [0, 1] on the device, every range checked

Raw files are read with :func:`raw_isp.read_raw_with_pattern` (their exposure metadata kept);
8-bit data and RGB pictures are refused with a message, as are URLs (offline by design).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..io import RawFrame, raw_to_unit, read_raw_with_pattern

def strip_channel_axis(images: Any, input_data_format: str | None) -> Any:
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


def gather_with_intensity(images: Any, name: str, pattern: str | None) -> tuple[list[torch.Tensor], bool, list]:
    """:func:`gather`, plus the intensity ratio each image carries (a file's exposure metadata
    or a :class:`raw_isp.io.RawFrame`'s ``intensity``; None where there is none), one per image."""
    found: list = []
    tensors, batched = gather(images, name, pattern, found)
    if batched:
        found = found * tensors[0].shape[0] if len(found) == 1 else [None] * tensors[0].shape[0]
    return tensors, batched, found


def gather(images: Any, name: str, pattern: str | None, intensities: list | None = None) -> tuple[list[torch.Tensor], bool]:
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


def stored_or_default(stored: list, default: float | None, warn: bool) -> list[float]:
    """Per image: the intensity ratio it carries (``stored``, None for none), else ``default``;
    a UserWarning if any image takes the default and ``warn`` (the processor warns once)."""
    missing = sum(ratio is None for ratio in stored)
    if missing and default is None:
        raise ValueError(
            "intensity: exposure='metadata' develops each image with gain 1 / its intensity ratio, and "
            f"{missing} of the {len(stored)} images carry none (no intensity= argument, no intensity in the file's "
            "metadata) while default_intensity is None; pass intensity= (one ratio, or one per image such as a "
            "batch's 'intensity' column) or write the frames with raw_isp.write_raw(path, raw, intensity=...)"
        )
    if missing and warn:
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


def to_unit_batch(tensors: list[torch.Tensor], batched: bool, raw_scale: float, device: torch.device) -> torch.Tensor:
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


def read_labels(
    maps: Any, raw_shape: torch.Size, size: dict[str, int], do_resize: bool, device: torch.device
) -> torch.Tensor:
    """Integer maps ``(B, H, W)`` -> int64 ``(B, h, w)`` on ``device`` (nearest resize)."""
    name = "segmentation_maps"
    items = maps if isinstance(maps, (list, tuple)) else [maps]
    if any(isinstance(m, (str, os.PathLike)) for m in items):
        raise TypeError(f"{name}: paths are not read; pass the masks as arrays or tensors")
    tensors, batched = gather(maps, name, None)
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
    target = (size["height"], size["width"])
    if do_resize and tuple(m.shape[-2:]) != target:
        # float32 holds class ids exactly (< 2**24); nearest only copies values.
        m = F.interpolate(m[:, None].to(torch.float32), size=target, mode="nearest-exact")[:, 0]
        m = m.round().to(torch.int64)
    return m
