"""What the explorer page does, without the page: :class:`Explorer` develops a frame through the
12 ISP variants at the 7 light intensities (and through a ParametrizedISP with the panel's
settings), and asks a trained model what it sees in each view.

Every view is developed from ``raw_isp.io.raw_to_unit(raw)``, the conversion the model itself
uses, so the explorer's prediction for a view is the model's prediction for that ISP.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.archive import inside
from ..io import raw_to_unit
from ..isp.config import ISP_VARIANTS, ISPConfig
from ..isp.parametrized import ParametrizedISP
from ..isp.static import StaticISP
from ..sensor import INTENSITY_RATIOS, SENSORS
from ..registry import get_dataset
from .frames import DATASET_NAMES, ExampleSource, ExplorerError, Frame, read_upload
from .pictures import iou, overlay_mask, to_uint8
from .predictor import Predictor, truth_for

__all__ = ["VARIANTS", "RATIOS", "PARAM_DEFAULTS", "TOP_K", "Rendered", "DriftTable", "Explorer"]

logger = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = tuple(ISP_VARIANTS)
RATIOS: tuple[float, ...] = tuple(INTENSITY_RATIOS)
TOP_K = 3
#: Slider defaults of the ParametrizedISP panel (multipliers of the camera's white balance and of
#: the variant's sharpening; the gamma and blur sigma of the default ISPConfig).
PARAM_DEFAULTS = {"wb_red": 1.0, "wb_blue": 1.0, "gamma": ISPConfig().gamma, "sharpen": 1.0,
                  "blur_sigma": ISPConfig().gaussian_sigma}
_RENDER_CACHE_SIZE = 28


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


def ratio_of(ratio_index: Any) -> float:
    """The intensity ratio of slider step ``ratio_index`` (0 to 6)."""
    try:
        i = int(ratio_index)
    except (TypeError, ValueError):
        raise ExplorerError(f"intensity step {ratio_index!r}: expected 0 to {len(RATIOS) - 1}") from None
    if not 0 <= i < len(RATIOS):
        raise ExplorerError(f"intensity step {i}: expected 0 to {len(RATIOS) - 1}")
    return RATIOS[i]


def at_intensity(frame: Frame, ratio: float) -> np.ndarray:
    """The frame at relative exposure ``ratio``: uint16 ``(H, W)``, photons thinned physically
    (``SensorModel.scale_intensity``, fixed seed so a view is the same every time)."""
    if ratio == 1.0:
        return frame.raw
    return SENSORS[frame.camera].scale_intensity(frame.raw, ratio, seed=0)


def _top_classes(probs: np.ndarray, names: list[str]) -> list[str]:
    return [f"{names[j]} {100 * probs[j]:.1f}%" for j in np.argsort(-probs, kind="stable")[:TOP_K]]


def _classification_summary(frame: Frame, predictor: Predictor, outcome: np.ndarray) -> tuple[list, str]:
    names, truth = predictor.label_names, truth_for(frame, predictor)
    top = outcome.argmax(-1)  # (12, 7)
    rows = [[VARIANTS[v]] + [f"{names[t]} {100 * p[t]:.0f}%" for t, p in zip(tops, probs)]
            for v, (tops, probs) in enumerate(zip(top, outcome))]
    counts = np.bincount(top.ravel(), minlength=len(names))
    common = ", ".join(f"{names[i]} ({counts[i]})" for i in np.argsort(-counts, kind="stable")[:3] if counts[i])
    summary = f"Top class in the {top.size} views: {common}."
    if truth is not None:
        right = int((top == names.index(truth)).sum())
        summary = f"Ground truth **{truth}**: predicted in {right} of {top.size} views. " + summary
    elif frame.label is not None:
        summary += f" (The frame's label {frame.label} is not one of the model's labels.)"
    return rows, summary


def _segmentation_summary(frame: Frame, outcome: np.ndarray) -> tuple[list, str]:
    if frame.mask is None:
        rows = [[VARIANTS[v]] + [f"car {100 * outcome[v, j].mean():.1f}%" for j in range(len(RATIOS))]
                for v in range(len(VARIANTS))]
        return rows, "No ground-truth mask for this frame: cells give the predicted car-pixel share."
    mask = frame.mask.astype(bool)
    scores = np.array([[iou(outcome[v, j], mask) for j in range(len(RATIOS))] for v in range(len(VARIANTS))])
    rows = [[VARIANTS[v]] + [f"IoU {s:.2f}" for s in scores[v]] for v in range(len(VARIANTS))]
    summary = ("Ground truth: the car mask. Mean IoU over the 12 variants per intensity: "
               + ", ".join(f"{r:g}: {m:.2f}" for r, m in zip(RATIOS, scores.mean(0))) + ".")
    return rows, summary


class Explorer:
    """Everything the page does, without the page: load frames and models, develop, predict.

    Args:
        source: where dataset examples come from.
        device: torch device for the ISP and the model (CPU by default).
    """

    ratio_of = staticmethod(ratio_of)
    at_intensity = staticmethod(at_intensity)

    def __init__(self, source: ExampleSource | None = None, device: str = "cpu",
                 model_roots: list[str | os.PathLike] | None = None) -> None:
        self.source = source or ExampleSource()
        self.device = torch.device(device)
        #: Folders the page may load models from (:meth:`load_page_model`); None: set by the page.
        self.model_roots = [Path(r).expanduser().resolve() for r in model_roots] if model_roots else None
        self._isps: dict[tuple[str, str, str], StaticISP] = {}
        self._predictors: dict[str, Predictor] = {}
        self._rendered: OrderedDict[tuple, Rendered] = OrderedDict()
        self._lock = threading.Lock()

    # -------------------------------------------------- inputs

    def example(self, dataset: str, split: str, index: Any) -> Frame:
        return self.source.example(dataset, split, index)

    def upload(self, path: str | os.PathLike | None, dataset: str) -> Frame:
        if not path:
            raise ExplorerError("no file uploaded")
        if dataset not in DATASET_NAMES:
            raise ExplorerError(f"dataset {dataset!r}: expected one of {list(DATASET_NAMES)}")
        return read_upload(path, camera=get_dataset(dataset).camera)

    def load_page_model(self, folder: str | None) -> Predictor | None:
        """:meth:`load_model` for a path typed into the page: only a folder inside one of
        :attr:`model_roots` (symbolic links resolved) is looked at; any other path gets the same
        answer whether or not it exists, so the page tells nothing about the server's disk."""
        if folder is None or not str(folder).strip():
            return None
        path = Path(str(folder).strip()).expanduser()
        roots = self.model_roots or []
        if not any(inside(path, root) for root in roots):
            raise ExplorerError(f"model folder {str(folder).strip()}: outside the folders this explorer loads models "
                                "from (give them with --model_root when starting it)")
        return self.load_model(path)

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

    def isp(self, variant: str, pattern: str, camera: str, exposure: str | float | None = None) -> StaticISP:
        key = (variant, pattern, camera, exposure)
        if key not in self._isps:
            self._isps[key] = StaticISP(ISPConfig.from_variant(variant, pattern=pattern), camera=camera,
                                        device=self.device, exposure=exposure)
        return self._isps[key]

    def develop(self, raws: np.ndarray, frame: Frame, ratios: list[float] | None = None,
                exposure: str | float | None = None) -> torch.Tensor:
        """``raws`` uint16 ``(N, H, W)`` through all 12 variants: float ``(12, N, 3, H, W)`` in [0, 1]
        (each variant runs once on the whole batch).

        ``exposure``: the exposure stage of the ISPs (None: the study's pipelines; a model's own
        setting, so that a model trained with ``--exposure metadata`` or ``auto`` sees views
        developed as in training); ``ratios``: the ``N`` frames' intensity ratios, the gain of
        ``"metadata"`` exposure.
        """
        x = raw_to_unit(torch.from_numpy(np.ascontiguousarray(raws)).to(self.device))
        intensity = None if ratios is None else torch.tensor(ratios, dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            return torch.stack([self.isp(v, frame.pattern, frame.camera, exposure)(x, intensity=intensity)
                                for v in VARIANTS])

    def _finish(self, frame: Frame, ratio: float, rgb: torch.Tensor, predictor: Predictor | None,
                outcome: np.ndarray | None) -> Rendered:
        """Pictures, captions and the per-view table of 12 developed views ``(12, 3, H, W)``."""
        views = to_uint8(rgb)
        marked = [f"{v} (training view)" if predictor is not None and v == predictor.training_variant else v
                  for v in VARIANTS]
        if predictor is None:
            return Rendered(ratio, views, marked)
        captions, rows = [], []
        if not predictor.dense:
            columns = ["variant"] + [f"top {k + 1}" for k in range(min(TOP_K, len(predictor.label_names)))]
            for name, probs in zip(marked, outcome):
                tops = _top_classes(probs, predictor.label_names)
                captions.append(f"{name}: {tops[0]}")
                rows.append([name] + tops)
            return Rendered(ratio, views, captions, columns, rows, outcome)
        columns = ["variant", "car pixels"] + (["IoU with the mask"] if frame.mask is not None else [])
        overlays = []
        for name, view, pred in zip(marked, views, outcome):
            overlays.append(overlay_mask(view, pred))
            row = [name, f"{100 * pred.mean():.1f}%"]
            if frame.mask is not None:
                row.append(f"{iou(pred, frame.mask.astype(bool)):.3f}")
            rows.append(row)
            captions.append(f"{name}: car {row[1]}" + (f", IoU {row[2]}" if len(row) > 2 else ""))
        return Rendered(ratio, np.stack(overlays), captions, columns, rows, outcome)

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

    def render(self, frame: Frame, ratio_index: int, predictor: Predictor | None = None) -> Rendered:
        """The 12 views of ``frame`` at intensity ``RATIOS[ratio_index]``, with predictions."""
        ratio = ratio_of(ratio_index)
        key = (frame.key, ratio, predictor.key if predictor else None)
        hit = self._cache_get(key)
        if hit is not None:
            return hit
        exposure = predictor.exposure if predictor is not None else None
        rgb = self.develop(at_intensity(frame, ratio)[None], frame, [ratio], exposure)[:, 0]
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
        raws = np.stack([at_intensity(frame, r) for r in RATIOS])
        rgb = self.develop(raws, frame, list(RATIOS), predictor.exposure)  # (12, 7, 3, H, W)
        flat = predictor.predict(rgb.flatten(0, 1))  # (84, C) probabilities or (84, H, W) masks
        outcome = flat.reshape(len(VARIANTS), len(RATIOS), *flat.shape[1:])
        for j, r in enumerate(RATIOS):
            key = (frame.key, r, predictor.key)
            if self._cache_get(key) is None:
                self._cache_put(key, self._finish(frame, r, rgb[:, j], predictor, outcome[:, j]))
        columns = ["variant"] + [f"intensity {r:g}" for r in RATIOS]
        if predictor.dense:
            rows, summary = _segmentation_summary(frame, outcome)
        else:
            rows, summary = _classification_summary(frame, predictor, outcome)
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
        for name, value in (("white balance (red)", wb_red), ("white balance (blue)", wb_blue), ("gamma", gamma),
                            ("blur sigma", blur_sigma)):
            if not np.isfinite(value) or value <= 0:
                raise ExplorerError(f"{name} must be a positive number, got {value}")
        if not np.isfinite(sharpen) or sharpen < 0:
            raise ExplorerError(f"sharpening must be a number >= 0, got {sharpen}")
        ratio = ratio_of(ratio_index)
        config = ISPConfig.from_variant(variant, pattern=frame.pattern, gaussian_sigma=blur_sigma)
        exposure = predictor.exposure if predictor is not None else None
        isp = ParametrizedISP(config, camera=frame.camera, learn=(), exposure=exposure).to(self.device)
        with torch.no_grad():
            isp.white_balance.mul_(torch.tensor([wb_red, 1.0, wb_blue], dtype=isp.white_balance.dtype))
            isp.gamma.fill_(gamma)
            k = isp.sharpen_kernel
            identity = torch.zeros_like(k)
            identity[k.shape[0] // 2, k.shape[1] // 2] = 1.0
            k.copy_(identity + sharpen * (k - identity))
            rgb = isp(raw_to_unit(torch.from_numpy(at_intensity(frame, ratio)[None]).to(self.device)),
                      intensity=torch.tensor([ratio], dtype=torch.float32, device=self.device))
        picture = to_uint8(rgb)[0]
        blur = f"blur σ {blur_sigma:.2f}" if isp.blur_kernel is not None else "blur n/a (median denoiser)"
        caption = (f"ParametrizedISP {variant} at intensity {ratio:g}: white balance R x{wb_red:.2f}, "
                   f"B x{wb_blue:.2f}; gamma {gamma:.2f}; sharpening x{sharpen:.2f}; {blur}")
        if predictor is None:
            return picture, caption
        out = predictor.predict(rgb)[0]
        if not predictor.dense:
            return picture, caption + " — prediction: " + ", ".join(_top_classes(out, predictor.label_names))
        caption += f" — predicted car pixels {100 * out.mean():.1f}%"
        if frame.mask is not None:
            caption += f", IoU {iou(out, frame.mask.astype(bool)):.3f}"
        return overlay_mask(picture, out), caption
