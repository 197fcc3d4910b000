"""A trained model folder as the explorer uses it: the model's own processor and task model on
developed views, its task read from the folder (``isp_config.json``, via the registry)."""

from __future__ import annotations

import os

import numpy as np
import torch

from ..models.modeling import load_raw_model, logits_at, parse_isp
from ..registry import foreground_index, get_task, label_from_mask
from .frames import Frame

__all__ = ["Predictor", "truth_for"]


class Predictor:
    """A model folder from the training scripts, applied to developed views.

    The views go through the model's own processor (``RawISPModel.processor.to_pixel_values``:
    resize and normalisation) and task model, as ``RawISPModel.forward`` does after its ISP, so
    a view developed by ``StaticISP(variant, camera)`` from ``raw_isp.io.raw_to_unit(raw)`` gets
    the prediction of ``model.with_isp(StaticISP(variant, camera))(raw)``.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = str(folder)
        self.model, self.info = load_raw_model(folder)
        self.task = self.info["task"]
        config = self.model.model.config
        self.label_names = [str(config.id2label[i]) for i in range(len(config.id2label))]
        spec = parse_isp(self.info["isp"])
        self.isp_spec = str(spec)
        self.training_variant = spec.variant if spec.kind == "static" else None
        #: The model's exposure stage (None, "metadata", "auto" or a gain): the explorer develops
        #: the views it predicts on with it, as the model's own ISP did in training.
        self.exposure = self.info.get("exposure")
        self.camera_name = str(self.info.get("camera", {}).get("name", "?"))
        #: The class a segmentation model's car mask (its foreground) is read from.
        self.car_index = foreground_index(self.label_names)

    @property
    def key(self) -> str:
        return self.folder

    @property
    def dense(self) -> bool:
        """A per-pixel (segmentation) model."""
        return get_task(self.task).dense

    def describe(self) -> str:
        n = sum(p.numel() for p in self.model.model.parameters())
        return (f"Model `{self.folder}`: {type(self.model.model).__name__} ({self.task}), {n / 1e6:.2f} M parameters, "
                f"labels {', '.join(self.label_names)}; trained behind `{self.isp_spec}` with the "
                f"{self.camera_name} camera" + (f", exposure {self.exposure}." if self.exposure is not None else "."))

    @torch.inference_mode()
    def predict(self, rgb: torch.Tensor, chunk: int = 28) -> np.ndarray:
        """Developed views ``(N, 3, H, W)`` in [0, 1] -> class probabilities ``(N, C)``
        (classification) or car masks ``(N, H, W)`` bool (segmentation, at the view's size)."""
        outs = []
        for part in rgb.split(chunk):
            logits = self.model.model(pixel_values=self.model.processor.to_pixel_values(part)).logits.float()
            if self.dense:
                outs.append((logits_at(logits, part.shape[-2:]).argmax(1) == self.car_index).cpu().numpy())
            else:
                outs.append(logits.softmax(-1).cpu().numpy())
        return np.concatenate(outs)


def truth_for(frame: Frame, predictor: Predictor) -> str | None:
    """The frame's ground-truth class in the model's label names, when it has one."""
    if predictor.dense:
        return None
    if frame.label is not None and frame.label in predictor.label_names:
        return frame.label
    if frame.mask is not None:
        return label_from_mask(predictor.label_names, bool(frame.mask.any()))
    return None
