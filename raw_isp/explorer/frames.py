"""The explorer's inputs: raw frames from the datasets or uploaded files.

    Frame          a uint16 Bayer mosaic with its camera, CFA pattern, label or car mask
    read_upload    an uploaded TIFF / DNG as a Frame (checked, centre-cropped when large)
    ExampleSource  dataset examples (synthetic or a local copy), each split loaded once per process
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..io import RawFileError, read_raw_with_pattern
from ..training.data import SPLITS
from ..registry import DATASETS, get_dataset

__all__ = ["ExplorerError", "Frame", "MAX_SIDE", "MIN_SIDE", "UPLOAD_MAX_PIXELS", "UPLOAD_MAX_BYTES", "centre_crop",
           "read_upload",
           "ExampleSource", "DATASET_NAMES"]

#: Dataset keys (the training scripts' ``--dataset`` values) and their display names.
DATASET_NAMES: dict[str, str] = {key: info.display_name for key, info in DATASETS.items()}
#: Uploaded frames larger than this (either side) are centre-cropped, keeping the CFA phase.
MAX_SIDE = 512
#: Largest upload decoded (pixels): twice a full Raw-Drone frame (3648 x 5472). The size is read
#: from the file's header and checked before anything is decoded (``raw_isp.io.check_frame_size``),
#: so a small compressed file that declares a huge frame costs nothing.
UPLOAD_MAX_PIXELS = 2 * 3648 * 5472
#: Largest upload the server accepts at all (bytes): the uncompressed 16-bit frame of
#: :data:`UPLOAD_MAX_PIXELS` plus 1 MiB of header and metadata (about 81 MB). Gradio stops
#: receiving a file at this size (``max_file_size``), before anything is decoded.
UPLOAD_MAX_BYTES = 2 * UPLOAD_MAX_PIXELS + (1 << 20)
#: Smallest frame the ISP variants develop meaningfully (their filters need a few pixels of margin).
MIN_SIDE = 32


class ExplorerError(Exception):
    """A problem with the user's input, shown in the page as it is (no stack trace)."""


@dataclass(frozen=True, eq=False)
class Frame:
    """A raw frame at full light and what is known about it.

    Attributes:
        raw: uint16 ``(H, W)`` Bayer mosaic in DN, H and W even.
        camera: the preset that develops it and the sensor that scales its intensity
            ("microscopy" or "drone": a key of both ``raw_isp.CAMERAS`` and ``raw_isp.SENSORS``).
        pattern: CFA pattern ("RGGB", ...).
        title: one line naming where the frame comes from.
        label: class name when known (Raw-Microscopy examples).
        mask: uint8 ``(H, W)`` 0/1 car mask when known (Raw-Drone examples).
        note: anything the page should say about the frame (e.g. that it was cropped).
    """

    raw: np.ndarray
    camera: str
    pattern: str
    title: str
    label: str | None = None
    mask: np.ndarray | None = None
    note: str = ""

    @cached_property
    def key(self) -> str:
        """Content hash: frames with the same pixels, camera and pattern share cached views."""
        h = hashlib.blake2b(self.raw.tobytes(), digest_size=12)
        h.update(f"{self.raw.shape}|{self.camera}|{self.pattern}".encode())
        return h.hexdigest()

    def describe(self) -> str:
        h, w = self.raw.shape
        parts = [f"**{self.title}**", f"{h}x{w} uint16 {self.pattern} mosaic, {self.camera} camera"]
        if self.label is not None:
            parts.append(f"label **{self.label}**")
        if self.mask is not None:
            parts.append(f"car pixels {100 * float(self.mask.mean()):.1f}% (mask below)")
        text = " · ".join(parts)
        return f"{text}\n\n{self.note}" if self.note else text


def centre_crop(raw: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Crop ``raw (H, W)`` to at most ``max_side`` per side around its centre, at even offsets
    (so the CFA pattern is unchanged). Returns the crop and its offsets (None if uncropped)."""
    h, w = raw.shape
    if h <= max_side and w <= max_side:
        return raw, None
    ch, cw = min(h, max_side) & ~1, min(w, max_side) & ~1
    y, x = ((h - ch) // 2) & ~1, ((w - cw) // 2) & ~1
    return np.ascontiguousarray(raw[y:y + ch, x:x + cw]), (y, x)


def read_upload(path: str | os.PathLike, camera: str, name: str | None = None) -> Frame:
    """An uploaded raw TIFF / DNG as a :class:`Frame` developed with ``camera``.

    Raises :class:`ExplorerError` naming the file (``name``, default the file's own name) and
    the problem for anything that is not a single even-sized uint16 Bayer mosaic of at least
    ``MIN_SIDE`` pixels a side. Frames above ``MAX_SIDE`` are centre-cropped.
    """
    name = name or Path(path).name
    try:
        raw, pattern = read_raw_with_pattern(path, max_pixels=UPLOAD_MAX_PIXELS)
    except RawFileError as err:
        raise ExplorerError(f"{name}: {err.problem}") from None
    h, w = raw.shape
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ExplorerError(f"{name}: size {h}x{w} (HxW) is too small; the explorer needs at least "
                            f"{MIN_SIDE}x{MIN_SIDE} pixels")
    raw, offset = centre_crop(raw)
    note = ""
    if offset is not None:
        note = (f"The file is {h}x{w}; shown is its centre {raw.shape[0]}x{raw.shape[1]} "
                f"(from row {offset[0]}, column {offset[1]}).")
    if pattern is None:
        pattern = "RGGB"
        note = (note + " " if note else "") + "The file does not name its CFA pattern; RGGB is assumed."
    return Frame(raw=raw, camera=camera, pattern=pattern, title=f"uploaded {name}", note=note)


class ExampleSource:
    """Examples of the registry's datasets, each split loaded once per process, with the labels
    of the dataset's primary task (Raw-Microscopy: the class; Raw-Drone: the car mask).

    Args:
        data_dirs: dataset key -> local copy of the real data (``source="local"``); datasets not
            named come from the synthetic simulators.
        cache_dir: ``datasets`` cache folder (default: the Hugging Face cache).
        num_examples: synthetic Raw-Microscopy cells (split into train / validation / test).
        num_tiles, num_scenes, frame_size: size of the synthetic Raw-Drone source.
    """

    def __init__(self, data_dirs: dict[str, str | os.PathLike | None] | None = None, cache_dir: str | None = None,
                 num_examples: int = 60, num_tiles: int = 24, num_scenes: int = 10, frame_size: int = 512) -> None:
        self.data_dirs = {k: v for k, v in (data_dirs or {}).items() if v is not None}
        unknown = set(self.data_dirs) - set(DATASETS)
        if unknown:
            raise ValueError(f"data_dirs: unknown datasets {sorted(unknown)}; expected some of {list(DATASETS)}")
        self.cache_dir = cache_dir
        self.num_examples, self.num_tiles = num_examples, num_tiles
        self.num_scenes, self.frame_size = num_scenes, frame_size
        self._splits: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def describe(self, dataset: str) -> str:
        folder = self.data_dirs.get(dataset)
        info = get_dataset(dataset)
        if folder is not None:
            return f"{info.display_name}: local copy at `{folder}`"
        if not info.synthetic_scene_kwargs:
            return f"{info.display_name}: synthetic ({self.num_examples} simulated cells)"
        return (f"{info.display_name}: synthetic ({self.num_tiles} car tiles from {self.num_scenes} simulated "
                f"{self.frame_size}x{self.frame_size} frames)")

    def split(self, dataset: str, split: str):
        """The ``datasets.Dataset`` of one split at intensity 1.0 (frames as numpy uint16)."""
        if dataset not in DATASETS:
            raise ExplorerError(f"dataset {dataset!r}: expected one of {list(DATASETS)}")
        if split not in SPLITS:
            raise ExplorerError(f"split {split!r}: expected one of {list(SPLITS)}")
        with self._lock:
            if (dataset, split) not in self._splits:
                self._splits[dataset, split] = self._load(dataset, split)
            return self._splits[dataset, split]

    def _load(self, dataset: str, split: str):
        info = get_dataset(dataset)
        folder = self.data_dirs.get(dataset)
        kwargs: dict[str, Any] = {"split": split, "cache_dir": self.cache_dir, "intensity": 1.0}
        if folder is not None:
            kwargs.update(source="local", data_dir=folder)
        elif info.synthetic_scene_kwargs:
            kwargs.update({info.size_kwarg: self.num_tiles, "num_scenes": self.num_scenes,
                           "frame_height": self.frame_size, "frame_width": self.frame_size})
        else:
            kwargs[info.size_kwarg] = self.num_examples
        try:
            return info.module().load_dataset(info.task(info.primary_task).config, **kwargs)
        except (ValueError, OSError) as err:
            where = f"the local copy at {folder}" if folder is not None else "the synthetic source"
            raise ExplorerError(f"{info.display_name} {split} split from {where} could not be loaded: {err}") from None

    def example(self, dataset: str, split: str, index: Any) -> Frame:
        """Example ``index`` of a split as a :class:`Frame` (with its label or car mask)."""
        ds = self.split(dataset, split)
        whole = isinstance(index, (int, np.integer)) and not isinstance(index, bool)
        if isinstance(index, float) and index.is_integer():
            whole = True
        if not whole:
            raise ExplorerError(f"example index {index!r}: enter a whole number from 0 to {len(ds) - 1}")
        i = int(index)
        info = get_dataset(dataset)
        if not 0 <= i < len(ds):
            raise ExplorerError(f"example index {i} is beyond the {split} split of {info.display_name} "
                                f"({len(ds)} examples: 0 to {len(ds) - 1})")
        ex = ds[i]
        column = info.task(info.primary_task).label_column
        truth: dict[str, Any] = {}
        if column == "mask":
            truth["mask"] = np.asarray(ex["mask"], dtype=np.uint8)
        else:
            truth["label"] = ds.features[column].names[int(ex[column])]
        return Frame(raw=np.asarray(ex["image"], dtype=np.uint16), camera=info.camera, pattern="RGGB",
                     title=f"{info.display_name} {split} #{i} ({ex[info.id_column]})", **truth)
