"""Raw-to-logit explorer: one raw frame through the 12 ISP variants, 7 light levels and a trained model.

    pip install -e ".[demo]"
    python scripts/explorer.py                                   # synthetic Raw-Microscopy / Raw-Drone, no model
    python scripts/explorer.py --model outputs/classification    # with a folder written by train_classification.py
    python scripts/explorer.py --dataset raw_drone --data_dir /data/raw-drone --model outputs/segmentation

A Gradio app (http://127.0.0.1:7860 by default) that shows a raw Bayer frame (a dataset example or
an uploaded 16-bit TIFF / DNG) as its false-colour CFA mosaic, developed by the 12 ISP variants of
the Raw2Logit study side by side, at each of the 7 intensity ratios (the photons thinned with
``SensorModel.scale_intensity``), and through a :class:`raw_isp.ParametrizedISP` whose white
balance, gamma, sharpening and blur are sliders. With a trained model folder it shows what the
model predicts on every view and a table of how that changes across variants and intensities.

The work is done by :class:`Explorer`, which knows nothing of Gradio (the unit tests call it
directly); :func:`build_app` wires it to a ``gradio.Blocks`` page. Gradio is the optional
``demo`` extra of the project.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

import raw_isp
from raw_isp.models.modeling import load_raw_model, logits_at

logger = logging.getLogger("explorer")

#: Dataset keys (the training scripts' ``--dataset`` values) and their display names.
DATASETS: dict[str, str] = {"raw_microscopy": "Raw-Microscopy", "raw_drone": "Raw-Drone"}
SPLITS = ("train", "validation", "test")
VARIANTS: tuple[str, ...] = tuple(raw_isp.ISP_VARIANTS)
RATIOS: tuple[float, ...] = tuple(raw_isp.INTENSITY_RATIOS)
#: Uploaded frames larger than this (either side) are centre-cropped, keeping the CFA phase.
MAX_SIDE = 512
#: Smallest frame the ISP variants develop meaningfully (their filters need a few pixels of margin).
MIN_SIDE = 32
TOP_K = 3
#: Slider defaults of the ParametrizedISP panel (multipliers of the camera's white balance and of
#: the variant's sharpening; the gamma and blur sigma of the default ISPConfig).
PARAM_DEFAULTS = {"wb_red": 1.0, "wb_blue": 1.0, "gamma": raw_isp.ISPConfig().gamma, "sharpen": 1.0,
                  "blur_sigma": raw_isp.ISPConfig().gaussian_sigma}
_RENDER_CACHE_SIZE = 28
#: Page style (Gradio 6 takes it at launch): the message box in red.
CSS = "#message p { color: #b00020; font-size: 1.05em; }"


class ExplorerError(Exception):
    """A problem with the user's input, shown in the page as it is (no stack trace)."""


# ---------------------------------------------------------------- frames


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
        raw, pattern = raw_isp.read_raw_with_pattern(path)
    except raw_isp.RawFileError as err:
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
    """Examples of Raw-Microscopy and Raw-Drone, each split loaded once per process.

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
        if folder is not None:
            return f"{DATASETS[dataset]}: local copy at `{folder}`"
        if dataset == "raw_microscopy":
            return f"{DATASETS[dataset]}: synthetic ({self.num_examples} simulated cells)"
        return (f"{DATASETS[dataset]}: synthetic ({self.num_tiles} car tiles from {self.num_scenes} simulated "
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
        folder = self.data_dirs.get(dataset)
        kwargs: dict[str, Any] = {"split": split, "cache_dir": self.cache_dir}
        if folder is not None:
            kwargs.update(source="local", data_dir=folder)
        try:
            if dataset == "raw_microscopy":
                import raw_microscopy

                if folder is None:
                    kwargs["num_examples"] = self.num_examples
                return raw_microscopy.load_dataset("raw-100", **kwargs)
            import raw_drone

            if folder is None:
                kwargs.update(num_tiles=self.num_tiles, num_scenes=self.num_scenes, frame_height=self.frame_size,
                              frame_width=self.frame_size)
            return raw_drone.load_dataset("segmentation-100", **kwargs)
        except (ValueError, OSError) as err:
            where = f"the local copy at {folder}" if folder is not None else "the synthetic source"
            raise ExplorerError(f"{DATASETS[dataset]} {split} split from {where} could not be loaded: {err}") from None

    def example(self, dataset: str, split: str, index: Any) -> Frame:
        """Example ``index`` of a split as a :class:`Frame` (with its label or car mask)."""
        ds = self.split(dataset, split)
        whole = isinstance(index, (int, np.integer)) and not isinstance(index, bool)
        if isinstance(index, float) and index.is_integer():
            whole = True
        if not whole:
            raise ExplorerError(f"example index {index!r}: enter a whole number from 0 to {len(ds) - 1}")
        i = int(index)
        if not 0 <= i < len(ds):
            raise ExplorerError(f"example index {i} is beyond the {split} split of {DATASETS[dataset]} "
                                f"({len(ds)} examples: 0 to {len(ds) - 1})")
        ex = ds[i]
        raw = np.asarray(ex["image"], dtype=np.uint16)
        if dataset == "raw_microscopy":
            label = ds.features["label"].names[int(ex["label"])]
            return Frame(raw=raw, camera="microscopy", pattern="RGGB", label=label,
                         title=f"{DATASETS[dataset]} {split} #{i} ({ex['image_id']})")
        return Frame(raw=raw, camera="drone", pattern="RGGB", mask=np.asarray(ex["mask"], dtype=np.uint8),
                     title=f"{DATASETS[dataset]} {split} #{i} ({ex['tile_id']})")


# ---------------------------------------------------------------- pictures


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``(..., 3, H, W)`` float in [0, 1] -> ``(..., H, W, 3)`` uint8 (rounded)."""
    x = (rgb.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def cfa_false_colour(raw: np.ndarray, pattern: str = "RGGB", camera: str = "neutral") -> np.ndarray:
    """The raw mosaic as a picture: each pixel in the colour its CFA site samples.

    ``raw`` uint16 ``(H, W)`` -> uint8 ``(H, W, 3)``: black level (of the camera preset) removed,
    scaled so the 99.5th percentile is white, a 1/2.2 power for visibility; the other two
    channels of each pixel are 0.
    """
    cam = raw_isp.CAMERAS[camera] if isinstance(camera, str) else camera
    x = raw_isp.normalize_raw(raw).astype(np.float32)
    h, w = x.shape
    black = np.tile(np.asarray(cam.black_level, dtype=np.float32).reshape(2, 2), (h // 2, w // 2))
    x = np.maximum(x - black, 0)
    top = float(np.percentile(x, 99.5))
    x = np.clip(x / top, 0, 1) ** (1 / 2.2) if top > 0 else x
    masks = raw_isp.isp.cfa.cfa_masks(h, w, pattern).numpy()
    return (masks * x[None] * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def overlay_mask(view: np.ndarray, mask: np.ndarray, colour=(255, 40, 40), alpha: float = 0.45) -> np.ndarray:
    """``view (H, W, 3)`` uint8 with ``mask (H, W)`` bool tinted in ``colour``."""
    out = view.astype(np.float32)
    m = mask.astype(bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, dtype=np.float32)
    return (out + 0.5).astype(np.uint8)


def mask_picture(mask: np.ndarray) -> np.ndarray:
    """A 0/1 mask as a black-and-white uint8 ``(H, W, 3)`` picture."""
    return np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=-1)


# ---------------------------------------------------------------- the model


class Predictor:
    """A model folder from the training scripts, applied to developed views.

    The views go through the model's own processor (``RawISPModel.processor.to_pixel_values``:
    resize and normalisation) and task model, as in ``RawISPModel.forward`` with a static ISP,
    so a view's prediction equals ``model.with_isp(StaticISP(variant, camera))(raw)``.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = str(folder)
        self.model, self.info = load_raw_model(folder)
        config = self.model.model.config
        self.task = "segmentation" if getattr(config, "model_type", "") == "segformer" else "classification"
        self.label_names = [str(config.id2label[i]) for i in range(len(config.id2label))]
        spec = raw_isp.models.modeling.parse_isp(self.info["isp"])
        self.isp_spec = str(spec)
        self.training_variant = spec.variant if spec.kind == "static" else None
        self.camera_name = str(self.info.get("camera", {}).get("name", "?"))
        self.car_index = self.label_names.index("car") if "car" in self.label_names else len(self.label_names) - 1

    @property
    def key(self) -> str:
        return self.folder

    def describe(self) -> str:
        kind = ("SegFormer" if self.task == "segmentation" else "ViT") + f" {self.task}"
        n = sum(p.numel() for p in self.model.model.parameters())
        return (f"Model `{self.folder}`: {kind}, {n / 1e6:.2f} M parameters, labels {', '.join(self.label_names)}; "
                f"trained behind `{self.isp_spec}` with the {self.camera_name} camera.")

    @torch.inference_mode()
    def predict(self, rgb: torch.Tensor, chunk: int = 28) -> np.ndarray:
        """Developed views ``(N, 3, H, W)`` in [0, 1] -> class probabilities ``(N, C)``
        (classification) or car masks ``(N, H, W)`` bool (segmentation, at the view's size)."""
        outs = []
        for part in rgb.split(chunk):
            logits = self.model.model(pixel_values=self.model.processor.to_pixel_values(part)).logits.float()
            if self.task == "classification":
                outs.append(logits.softmax(-1).numpy())
            else:
                outs.append((logits_at(logits, part.shape[-2:]).argmax(1) == self.car_index).numpy())
        return np.concatenate(outs)


def truth_for(frame: Frame, predictor: Predictor) -> str | None:
    """The frame's ground-truth class in the model's label names, when it has one."""
    if predictor.task != "classification":
        return None
    if frame.label is not None and frame.label in predictor.label_names:
        return frame.label
    if frame.mask is not None and {"car", "no_car"} <= set(predictor.label_names):
        return "car" if frame.mask.any() else "no_car"
    return None


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


# ---------------------------------------------------------------- the explorer


@dataclass
class Rendered:
    """The 12 views of a frame at one intensity and, with a model, what it predicts on each.

    ``views``: uint8 ``(12, H, W, 3)`` in :data:`VARIANTS` order (with the predicted car mask
    tinted in, for a segmentation model); ``captions``: one per view; ``table``: one row per
    view (``columns`` names them), empty without a model; ``outcome``: the raw predictions
    (probabilities ``(12, C)`` or masks ``(12, H, W)``), None without a model.
    """

    ratio: float
    views: np.ndarray
    captions: list[str]
    columns: list[str] = field(default_factory=list)
    table: list[list[Any]] = field(default_factory=list)
    outcome: np.ndarray | None = None

    @property
    def gallery(self) -> list[tuple[np.ndarray, str]]:
        return list(zip(list(self.views), self.captions))


@dataclass
class DriftTable:
    """How the prediction changes across variants (rows) and intensities (columns)."""

    summary: str
    columns: list[str]
    rows: list[list[Any]]


class Explorer:
    """Everything the page does, without the page: load frames and models, develop, predict.

    Args:
        source: where dataset examples come from.
        device: torch device for the ISP and the model (CPU by default).
    """

    def __init__(self, source: ExampleSource | None = None, device: str = "cpu") -> None:
        self.source = source or ExampleSource()
        self.device = torch.device(device)
        self._isps: dict[tuple[str, str, str], raw_isp.StaticISP] = {}
        self._predictors: dict[str, Predictor] = {}
        self._rendered: OrderedDict[tuple, Rendered] = OrderedDict()
        self._lock = threading.Lock()

    # -------------------------------------------------- inputs

    def example(self, dataset: str, split: str, index: Any) -> Frame:
        return self.source.example(dataset, split, index)

    def upload(self, path: str | os.PathLike | None, dataset: str) -> Frame:
        if not path:
            raise ExplorerError("no file uploaded")
        if dataset not in DATASETS:
            raise ExplorerError(f"dataset {dataset!r}: expected one of {list(DATASETS)}")
        return read_upload(path, camera=dataset.removeprefix("raw_"))

    def load_model(self, folder: str | os.PathLike | None) -> Predictor | None:
        """The model in ``folder`` (loaded once per process), or None for an empty path."""
        if folder is None or not str(folder).strip():
            return None
        path = Path(str(folder).strip()).expanduser()
        key = str(path.resolve())
        with self._lock:
            if key in self._predictors:
                return self._predictors[key]
        if not path.is_dir():
            raise ExplorerError(f"model folder {path}: no such folder")
        try:
            predictor = Predictor(path)
        except Exception as err:  # transformers and safetensors signal bad folders many ways
            logger.info("could not load %s", path, exc_info=True)
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ExplorerError(f"model folder {path}: not a model folder written by the training scripts "
                                f"(train_classification.py / train_segmentation.py): {msg}") from None
        predictor.model.to(self.device)
        with self._lock:
            self._predictors[key] = predictor
        return predictor

    # -------------------------------------------------- developing

    def isp(self, variant: str, pattern: str, camera: str) -> raw_isp.StaticISP:
        key = (variant, pattern, camera)
        if key not in self._isps:
            config = raw_isp.ISPConfig.from_variant(variant, pattern=pattern)
            self._isps[key] = raw_isp.StaticISP(config, camera=camera, device=self.device)
        return self._isps[key]

    @staticmethod
    def at_intensity(frame: Frame, ratio: float) -> np.ndarray:
        """The frame at relative exposure ``ratio``: uint16 ``(H, W)``, photons thinned physically
        (``SensorModel.scale_intensity``, fixed seed so a view is the same every time)."""
        if ratio == 1.0:
            return frame.raw
        return raw_isp.SENSORS[frame.camera].scale_intensity(frame.raw, ratio, seed=0)

    def develop(self, raws: np.ndarray, frame: Frame) -> torch.Tensor:
        """``raws`` uint16 ``(N, H, W)`` through all 12 variants: float ``(12, N, 3, H, W)`` in [0, 1]
        (each variant runs once on the whole batch)."""
        x = torch.from_numpy(raw_isp.normalize_raw(raws)).to(self.device)
        with torch.inference_mode():
            return torch.stack([self.isp(v, frame.pattern, frame.camera)(x) for v in VARIANTS])

    def _finish(self, frame: Frame, ratio: float, rgb: torch.Tensor, predictor: Predictor | None,
                outcome: np.ndarray | None) -> Rendered:
        """Pictures, captions and the per-view table of 12 developed views ``(12, 3, H, W)``."""
        views = to_uint8(rgb)
        marked = [f"{v} (training view)" if predictor is not None and v == predictor.training_variant else v
                  for v in VARIANTS]
        if predictor is None:
            return Rendered(ratio, views, marked)
        captions, rows = [], []
        if predictor.task == "classification":
            columns = ["variant"] + [f"top {k + 1}" for k in range(min(TOP_K, len(predictor.label_names)))]
            for name, probs in zip(marked, outcome):
                order = np.argsort(-probs, kind="stable")[:TOP_K]
                tops = [f"{predictor.label_names[j]} {100 * probs[j]:.1f}%" for j in order]
                captions.append(f"{name}: {tops[0]}")
                rows.append([name] + tops)
        else:
            columns = ["variant", "car pixels"] + (["IoU with the mask"] if frame.mask is not None else [])
            overlays = []
            for name, view, pred in zip(marked, views, outcome):
                overlays.append(overlay_mask(view, pred))
                row = [name, f"{100 * pred.mean():.1f}%"]
                if frame.mask is not None:
                    row.append(f"{iou(pred, frame.mask.astype(bool)):.3f}")
                rows.append(row)
                captions.append(f"{name}: car {row[1]}" + (f", IoU {row[2]}" if len(row) > 2 else ""))
            views = np.stack(overlays)
        return Rendered(ratio, views, captions, columns, rows, outcome)

    def _cache_get(self, key: tuple) -> Rendered | None:
        with self._lock:
            hit = self._rendered.get(key)
            if hit is not None:
                self._rendered.move_to_end(key)
            return hit

    def _cache_put(self, key: tuple, value: Rendered) -> None:
        with self._lock:
            self._rendered[key] = value
            while len(self._rendered) > _RENDER_CACHE_SIZE:
                self._rendered.popitem(last=False)

    def clear_cache(self) -> None:
        with self._lock:
            self._rendered.clear()

    @staticmethod
    def ratio_of(ratio_index: Any) -> float:
        try:
            i = int(ratio_index)
        except (TypeError, ValueError):
            raise ExplorerError(f"intensity step {ratio_index!r}: expected 0 to {len(RATIOS) - 1}") from None
        if not 0 <= i < len(RATIOS):
            raise ExplorerError(f"intensity step {i}: expected 0 to {len(RATIOS) - 1}")
        return RATIOS[i]

    def render(self, frame: Frame, ratio_index: int, predictor: Predictor | None = None) -> Rendered:
        """The 12 views of ``frame`` at intensity ``RATIOS[ratio_index]``, with predictions."""
        ratio = self.ratio_of(ratio_index)
        key = (frame.key, ratio, predictor.key if predictor else None)
        hit = self._cache_get(key)
        if hit is not None:
            return hit
        rgb = self.develop(self.at_intensity(frame, ratio)[None], frame)[:, 0]
        outcome = predictor.predict(rgb) if predictor is not None else None
        result = self._finish(frame, ratio, rgb, predictor, outcome)
        self._cache_put(key, result)
        return result

    def drift_table(self, frame: Frame, predictor: Predictor | None) -> DriftTable:
        """Predictions for all 12 variants x 7 intensities (84 views, one ISP batch per variant).

        Cells: top class and its probability (classification) or the IoU with the car mask
        (segmentation; the predicted car-pixel share when no mask is known). The rendered views
        of every intensity are cached, so moving the intensity slider afterwards costs nothing.
        """
        if predictor is None:
            return DriftTable("No model loaded: start with `--model FOLDER` (a folder written by "
                              "`scripts/train_classification.py` or `scripts/train_segmentation.py`) or load "
                              "one above to see predictions.", [], [])
        raws = np.stack([self.at_intensity(frame, r) for r in RATIOS])
        rgb = self.develop(raws, frame)  # (12, 7, 3, H, W)
        flat = predictor.predict(rgb.flatten(0, 1))  # (84, C) probabilities or (84, H, W) masks
        outcome = flat.reshape(len(VARIANTS), len(RATIOS), *flat.shape[1:])
        for j, r in enumerate(RATIOS):
            key = (frame.key, r, predictor.key)
            if self._cache_get(key) is None:
                self._cache_put(key, self._finish(frame, r, rgb[:, j], predictor, outcome[:, j]))
        columns = ["variant"] + [f"intensity {r:g}" for r in RATIOS]
        rows = []
        names = predictor.label_names
        if predictor.task == "classification":
            truth = truth_for(frame, predictor)
            top = outcome.argmax(-1)  # (12, 7)
            for v, (tops, probs) in enumerate(zip(top, outcome)):
                rows.append([VARIANTS[v]] + [f"{names[t]} {100 * p[t]:.0f}%" for t, p in zip(tops, probs)])
            counts = np.bincount(top.ravel(), minlength=len(names))
            common = ", ".join(f"{names[i]} ({counts[i]})" for i in np.argsort(-counts, kind="stable")[:3] if counts[i])
            summary = f"Top class in the {top.size} views: {common}."
            if truth is not None:
                right = int((top == names.index(truth)).sum())
                summary = f"Ground truth **{truth}**: predicted in {right} of {top.size} views. " + summary
            elif frame.label is not None:
                summary += f" (The frame's label {frame.label} is not one of the model's labels.)"
        else:
            mask = frame.mask.astype(bool) if frame.mask is not None else None
            for v in range(len(VARIANTS)):
                if mask is not None:
                    rows.append([VARIANTS[v]] + [f"IoU {iou(outcome[v, j], mask):.2f}" for j in range(len(RATIOS))])
                else:
                    rows.append([VARIANTS[v]] + [f"car {100 * outcome[v, j].mean():.1f}%" for j in range(len(RATIOS))])
            if mask is not None:
                means = [np.mean([iou(outcome[v, j], mask) for v in range(len(VARIANTS))]) for j in range(len(RATIOS))]
                summary = ("Ground truth: the car mask. Mean IoU over the 12 variants per intensity: "
                           + ", ".join(f"{r:g}: {m:.2f}" for r, m in zip(RATIOS, means)) + ".")
            else:
                summary = "No ground-truth mask for this frame: cells give the predicted car-pixel share."
        if predictor.training_variant is not None:
            summary += f" The model was trained on the `{predictor.training_variant}` view at intensity 1."
        if predictor.camera_name != frame.camera:
            summary += (f" Note: the model was trained with the {predictor.camera_name} camera; this frame is "
                        f"developed with the {frame.camera} camera.")
        return DriftTable(summary, columns, rows)

    def parametrized_view(self, frame: Frame, ratio_index: int, predictor: Predictor | None, variant: str,
                          wb_red: float = 1.0, wb_blue: float = 1.0, gamma: float | None = None,
                          sharpen: float = 1.0, blur_sigma: float | None = None) -> tuple[np.ndarray, str]:
        """One view through a :class:`raw_isp.ParametrizedISP` with the panel's settings.

        ``wb_red``, ``wb_blue``: multipliers of the camera's red and blue white-balance gains;
        ``gamma``: the gamma parameter; ``sharpen``: scales the sharpening kernel's deviation
        from the identity (0 = no sharpening, 1 = the variant's); ``blur_sigma``: sigma in pixels
        of the Gaussian denoiser (variants ending in ``_ga``; the median ones have no blur kernel).
        With the defaults (1, 1, 2.2, 1, 0.5) the view equals the static variant's.

        Returns a uint8 ``(H, W, 3)`` picture (car mask tinted in for a segmentation model) and
        a caption with the settings and the prediction.
        """
        if variant not in VARIANTS:
            raise ExplorerError(f"ISP variant {variant!r}: expected one of {', '.join(VARIANTS)}")
        gamma = PARAM_DEFAULTS["gamma"] if gamma is None else float(gamma)
        blur_sigma = PARAM_DEFAULTS["blur_sigma"] if blur_sigma is None else float(blur_sigma)
        for name, value, low in (("white balance (red)", wb_red, 0.0), ("white balance (blue)", wb_blue, 0.0),
                                 ("gamma", gamma, 0.0), ("blur sigma", blur_sigma, 0.0)):
            if not np.isfinite(value) or value <= low:
                raise ExplorerError(f"{name} must be a positive number, got {value}")
        if not np.isfinite(sharpen) or sharpen < 0:
            raise ExplorerError(f"sharpening must be a number >= 0, got {sharpen}")
        ratio = self.ratio_of(ratio_index)
        config = raw_isp.ISPConfig.from_variant(variant, pattern=frame.pattern, gaussian_sigma=blur_sigma)
        isp = raw_isp.ParametrizedISP(config, camera=frame.camera, learn=()).to(self.device)
        with torch.no_grad():
            isp.white_balance.mul_(torch.tensor([wb_red, 1.0, wb_blue], dtype=isp.white_balance.dtype))
            isp.gamma.fill_(gamma)
            k = isp.sharpen_kernel
            identity = torch.zeros_like(k)
            identity[k.shape[0] // 2, k.shape[1] // 2] = 1.0
            k.copy_(identity + sharpen * (k - identity))
            x = torch.from_numpy(raw_isp.normalize_raw(self.at_intensity(frame, ratio)[None])).to(self.device)
            rgb = isp(x)
        picture = to_uint8(rgb)[0]
        blur = f"blur σ {blur_sigma:.2f}" if isp.blur_kernel is not None else "blur n/a (median denoiser)"
        caption = (f"ParametrizedISP {variant} at intensity {ratio:g}: white balance R x{wb_red:.2f}, "
                   f"B x{wb_blue:.2f}; gamma {gamma:.2f}; sharpening x{sharpen:.2f}; {blur}")
        if predictor is not None:
            out = predictor.predict(rgb)[0]
            if predictor.task == "classification":
                order = np.argsort(-out, kind="stable")[:TOP_K]
                tops = (f"{predictor.label_names[j]} {100 * out[j]:.1f}%" for j in order)
                caption += " — prediction: " + ", ".join(tops)
            else:
                picture = overlay_mask(picture, out)
                caption += f" — predicted car pixels {100 * out.mean():.1f}%"
                if frame.mask is not None:
                    caption += f", IoU {iou(out, frame.mask.astype(bool)):.3f}"
        return picture, caption


# ---------------------------------------------------------------- the page


_MARKDOWN_SPECIALS = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|"})


def error_markdown(message: str) -> str:
    """The error box's text (Markdown): the message as plain text (a file name such as
    ``*_v2.tif`` is not read as emphasis), the file or field named first."""
    return f"**Error:** {message.translate(_MARKDOWN_SPECIALS)}"


def build_app(explorer: Explorer, model: str | None = None, dataset: str = "raw_microscopy", split: str = "test"):
    """The Gradio Blocks page over ``explorer``; ``model``: folder loaded at start (optional).

    Every callback catches what goes wrong and shows it in the message box (``#message``);
    unexpected errors are logged with their traceback on the server, never sent to the page.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    def fail(err: Exception) -> str:
        if isinstance(err, ExplorerError):
            return error_markdown(str(err))
        logger.exception("unexpected error in a callback")
        return error_markdown(f"unexpected {type(err).__name__}: {err}".rstrip(": "))

    def predictor_of(model_dir: str | None) -> Predictor | None:
        return explorer.load_model(model_dir) if model_dir else None

    def intensity_text(ratio_index: int, frame: Frame | None) -> str:
        ratio = explorer.ratio_of(ratio_index)
        sensor = f" with the {frame.camera} sensor model" if frame is not None else ""
        if ratio == 1.0:
            return "Intensity ratio **1** (the frame as captured)."
        return f"Intensity ratio **{ratio:g}**: photons thinned physically (`SensorModel.scale_intensity`){sensor}."

    def table_value(columns: list[str], rows: list[list[Any]]):
        import pandas as pd

        return pd.DataFrame(rows, columns=columns) if columns else pd.DataFrame()

    def prediction_update(rendered: Rendered):
        return gr.update(value=table_value(rendered.columns, rendered.table), visible=bool(rendered.columns))

    frame_outputs_count = 8

    def show(frame: Frame, ratio_index: int, model_dir: str | None) -> tuple:
        rendered = explorer.render(frame, ratio_index, predictor_of(model_dir))
        truth = gr.update(value=mask_picture(frame.mask), visible=True) if frame.mask is not None else \
            gr.update(value=None, visible=False)
        return ("", frame, frame.describe(), cfa_false_colour(frame.raw, frame.pattern, frame.camera), truth,
                rendered.gallery, prediction_update(rendered), intensity_text(ratio_index, frame))

    def on_example(dataset_key, split_name, index, ratio_index, model_dir):
        try:
            return show(explorer.example(dataset_key, split_name, index), ratio_index, model_dir)
        except Exception as err:  # shown in the page, never raised to Gradio
            return (fail(err),) + (gr.skip(),) * (frame_outputs_count - 1)

    def on_upload(file, dataset_key, ratio_index, model_dir):
        try:
            path = getattr(file, "name", file)
            return show(explorer.upload(path, dataset_key), ratio_index, model_dir)
        except Exception as err:
            return (fail(err),) + (gr.skip(),) * (frame_outputs_count - 1)

    def on_intensity(frame, ratio_index, model_dir):
        try:
            if frame is None:
                return gr.skip(), gr.skip(), gr.skip(), intensity_text(ratio_index, None)
            rendered = explorer.render(frame, ratio_index, predictor_of(model_dir))
            return gr.skip(), rendered.gallery, prediction_update(rendered), intensity_text(ratio_index, frame)
        except Exception as err:
            return fail(err), gr.skip(), gr.skip(), gr.skip()

    def on_drift(frame, model_dir):
        try:
            if frame is None:
                return gr.skip(), gr.skip(), gr.skip()
            table = explorer.drift_table(frame, predictor_of(model_dir))
            return gr.skip(), table.summary, table_value(table.columns, table.rows)
        except Exception as err:
            return fail(err), gr.skip(), gr.skip()

    def on_param(frame, ratio_index, model_dir, variant, wb_red, wb_blue, gamma, sharpen, blur_sigma):
        try:
            if frame is None:
                return gr.skip(), gr.skip(), gr.skip()
            picture, caption = explorer.parametrized_view(frame, ratio_index, predictor_of(model_dir), variant,
                                                          wb_red, wb_blue, gamma, sharpen, blur_sigma)
            return gr.skip(), picture, caption
        except Exception as err:
            return fail(err), gr.skip(), gr.skip()

    def on_load_model(model_dir):
        try:
            predictor = explorer.load_model(model_dir)
            info = predictor.describe() if predictor is not None else "No model: views only."
            variant = predictor.training_variant if predictor is not None and predictor.training_variant else gr.skip()
            return "", (predictor.folder if predictor is not None else ""), info, variant
        except Exception as err:
            return fail(err), gr.skip(), gr.skip(), gr.skip()

    start_model = explorer.load_model(model) if model else None
    start_variant = start_model.training_variant if start_model is not None and start_model.training_variant \
        else VARIANTS[0]

    # delete_cache: every interaction writes its pictures to Gradio's cache; drop those older than 1 h.
    with gr.Blocks(title="Raw-to-logit explorer", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        frame_state = gr.State(None)
        model_state = gr.State(start_model.folder if start_model is not None else "")
        gr.Markdown("# Raw-to-logit explorer\nThe same photons, different pictures: a raw Bayer frame through the "
                    "12 ISP variants of the Raw2Logit study, at 7 light levels, and what a trained model makes of "
                    "each view.")
        message = gr.Markdown("", elem_id="message")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                dataset_in = gr.Radio([(label, key) for key, label in DATASETS.items()], value=dataset,
                                      label="Dataset", elem_id="dataset")
                gr.Markdown("  \n".join(explorer.source.describe(d) for d in DATASETS), elem_id="sources")
                with gr.Row():
                    split_in = gr.Dropdown(list(SPLITS), value=split, label="Split", elem_id="split")
                    index_in = gr.Number(0, precision=0, minimum=0, label="Example index", elem_id="index")
                show_btn = gr.Button("Show example", variant="primary", elem_id="show-example")
                upload_in = gr.File(label="...or upload a raw frame (16-bit TIFF or DNG)", elem_id="upload")
                with gr.Row():
                    model_in = gr.Textbox(start_model.folder if start_model is not None else "",
                                          label="Model folder (from the training scripts)", elem_id="model-dir",
                                          scale=3)
                    load_btn = gr.Button("Load model", elem_id="load-model", scale=1)
                model_info = gr.Markdown(start_model.describe() if start_model is not None else "No model: views only.",
                                         elem_id="model-info")
            with gr.Column(scale=2):
                frame_info = gr.Markdown(elem_id="frame-info")
                with gr.Row():
                    mosaic = gr.Image(label="Raw mosaic (false-colour CFA)", interactive=False, elem_id="mosaic",
                                      format="png", height=300)
                    truth_img = gr.Image(label="Ground-truth car mask", interactive=False, visible=False,
                                         elem_id="truth", format="png", height=300)
        intensity = gr.Slider(0, len(RATIOS) - 1, value=0, step=1, elem_id="intensity",
                              label="Light level: step 0-6 over the intensity ratios "
                                    + ", ".join(f"{r:g}" for r in RATIOS))
        intensity_info = gr.Markdown(intensity_text(0, None), elem_id="intensity-info")
        views = gr.Gallery(label="The 12 ISP variants ({bi,ma,me}_{s,u}_{ga,me}: demosaicing, sharpening, denoising)",
                           columns=6, height="auto", allow_preview=True, object_fit="contain", elem_id="views",
                           interactive=False)
        predictions = gr.Dataframe(label="Prediction per view", interactive=False, elem_id="predictions",
                                   visible=start_model is not None)
        drift_summary = gr.Markdown(elem_id="drift-summary")
        drift = gr.Dataframe(label="Prediction across ISP variants (rows) and intensities (columns)",
                             interactive=False, elem_id="drift-table")
        with gr.Accordion("ParametrizedISP: white balance, gamma, sharpening, blur", open=True):
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    p_variant = gr.Dropdown(list(VARIANTS), value=start_variant, label="Base variant",
                                            elem_id="param-variant")
                    p_wb_red = gr.Slider(0.25, 4.0, value=PARAM_DEFAULTS["wb_red"], step=0.05,
                                         label="White balance: red gain x", elem_id="param-wb-red")
                    p_wb_blue = gr.Slider(0.25, 4.0, value=PARAM_DEFAULTS["wb_blue"], step=0.05,
                                          label="White balance: blue gain x", elem_id="param-wb-blue")
                    p_gamma = gr.Slider(1.0, 3.0, value=PARAM_DEFAULTS["gamma"], step=0.05, label="Gamma",
                                        elem_id="param-gamma")
                    p_sharpen = gr.Slider(0.0, 4.0, value=PARAM_DEFAULTS["sharpen"], step=0.1,
                                          label="Sharpening x (0 = none, 1 = the variant's)", elem_id="param-sharpen")
                    p_blur = gr.Slider(0.3, 2.0, value=PARAM_DEFAULTS["blur_sigma"], step=0.05,
                                       label="Blur sigma (px; Gaussian variants only)", elem_id="param-blur")
                with gr.Column(scale=2):
                    p_image = gr.Image(label="Live view", interactive=False, elem_id="param-view", height=360)
                    p_caption = gr.Markdown(elem_id="param-caption")

        frame_outputs = [message, frame_state, frame_info, mosaic, truth_img, views, predictions, intensity_info]
        param_inputs = [frame_state, intensity, model_state, p_variant, p_wb_red, p_wb_blue, p_gamma, p_sharpen, p_blur]
        param_outputs = [message, p_image, p_caption]
        drift_outputs = [message, drift_summary, drift]

        def chain(event):
            return (event.then(on_drift, [frame_state, model_state], drift_outputs, show_progress="minimal")
                    .then(on_param, param_inputs, param_outputs, show_progress="hidden"))

        example_inputs = [dataset_in, split_in, index_in, intensity, model_state]
        chain(show_btn.click(on_example, example_inputs, frame_outputs))
        # A new dataset starts at its first example (the old index may be beyond its split).
        chain(dataset_in.change(lambda: 0, None, index_in).then(on_example, example_inputs, frame_outputs))
        chain(demo.load(on_example, example_inputs, frame_outputs))
        chain(upload_in.upload(on_upload, [upload_in, dataset_in, intensity, model_state], frame_outputs))
        intensity.change(on_intensity, [frame_state, intensity, model_state],
                         [message, views, predictions, intensity_info], trigger_mode="always_last",
                         show_progress="minimal").then(on_param, param_inputs, param_outputs, show_progress="hidden")
        for slider in (p_variant, p_wb_red, p_wb_blue, p_gamma, p_sharpen, p_blur):
            slider.change(on_param, param_inputs, param_outputs, trigger_mode="always_last", show_progress="hidden")
        load_event = load_btn.click(on_load_model, [model_in], [message, model_state, model_info, p_variant])
        chain(load_event.then(on_intensity, [frame_state, intensity, model_state],
                              [message, views, predictions, intensity_info]))
    return demo


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None,
                   help="a folder written by scripts/train_classification.py or train_segmentation.py (optional)")
    p.add_argument("--dataset", choices=list(DATASETS), default=None,
                   help="dataset shown first (default: the model's, else raw_microscopy)")
    p.add_argument("--data_dir", default=None,
                   help="a local copy of the real --dataset (folder or .zip); default: the synthetic simulator")
    p.add_argument("--cache_dir", default=None, help="datasets cache folder (default: the Hugging Face cache)")
    p.add_argument("--num_examples", type=int, default=60, help="synthetic Raw-Microscopy cells (default 60)")
    p.add_argument("--num_tiles", type=int, default=24, help="synthetic Raw-Drone tiles (default 24)")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to serve on (default 127.0.0.1, or $GRADIO_SERVER_NAME; 0.0.0.0 serves other "
                        "machines, as a Space does)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                   help="port (default 7860, or $GRADIO_SERVER_PORT)")
    p.add_argument("--device", default="cpu", help="torch device for the ISP and the model (default cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the fastest for the small per-interaction batches on "
                        "a shared 2-core machine; see benchmarks/bench_explorer.py)")
    p.add_argument("--no_warmup", action="store_true", help="skip rendering the first example before serving")
    args = p.parse_args(argv)
    if args.data_dir is not None and not Path(args.data_dir).exists():
        p.error(f"--data_dir {args.data_dir}: no such file or folder")
    if args.model is not None and not Path(args.model).is_dir():
        p.error(f"--model {args.model}: no such folder")
    for name in ("num_examples", "num_tiles", "threads"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    torch.set_num_threads(args.threads)
    explorer = Explorer(device=args.device)
    try:
        predictor = explorer.load_model(args.model)
    except ExplorerError as err:
        print(f"error: --model: {err}", file=sys.stderr)
        return 2
    dataset = args.dataset or ("raw_drone" if predictor is not None and (
        predictor.task == "segmentation" or "car" in predictor.label_names) else "raw_microscopy")
    explorer.source = ExampleSource({dataset: args.data_dir}, cache_dir=args.cache_dir,
                                    num_examples=args.num_examples, num_tiles=args.num_tiles)
    if not args.no_warmup:
        # The first pass through each ISP and the model is several times slower than the next
        # ones (lazy kernel set-up); pay it before the first visitor does.
        try:
            frame = explorer.example(dataset, "test", 0)
            explorer.render(frame, 0, predictor)
            explorer.drift_table(frame, predictor)
            explorer.parametrized_view(frame, 0, predictor, VARIANTS[0])
        except ExplorerError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    demo = build_app(explorer, model=args.model, dataset=dataset)
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name=args.host, server_port=args.port, share=False, ssr_mode=False, show_error=False,
                css=CSS, footer_links=[], inbrowser=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
