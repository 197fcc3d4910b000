"""The project's metrics, as offline ``evaluate`` modules and as plain functions.

``evaluate.load("accuracy")`` fetches its code from the Hugging Face Hub, which fails offline. The
two modules bundled here load from a local path, need no network (``HF_HUB_OFFLINE=1`` is fine)
and give the Hub's results:

* ``raw_classification``: accuracy, F1, macro-F1, per-class F1, confusion matrix
  (Hub ``accuracy`` and ``f1``; ``labels=`` and ``average=`` ``"macro"`` / ``"micro"`` /
  ``"weighted"`` / ``None`` with sklearn's semantics, ``zero_division=0``).
* ``raw_segmentation``: mean IoU, per-class IoU, mean/per-class accuracy, pixel accuracy
  (Hub ``mean_iou``), streamed into a confusion matrix with one ``bincount`` per batch.

Usage::

    import raw_isp.metrics
    metric = raw_isp.metrics.load("segmentation", num_labels=2, label_names=["background", "car"])
    for batch in loader:
        metric.add_batch(predictions=logits.argmax(1), references=batch["labels"])
    results = metric.compute()   # {"mean_iou": ..., "iou_car": ..., "pixel_accuracy": ...}

``evaluate.load(raw_isp.metrics.MODULE_PATHS["segmentation"])`` is the same thing. The module
files import their arithmetic from this package (:func:`confusion_matrix`,
:func:`classification_scores`, :func:`segmentation_scores`), so there is one implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .confusion import add_confusion_matrices, confusion_matrix
from .scores import averaged_f1, check_label_names, classification_scores, jsonable, segmentation_scores
from .ssim import ssim

__all__ = [
    "MODULE_PATHS",
    "load",
    "confusion_matrix",
    "add_confusion_matrices",
    "classification_scores",
    "averaged_f1",
    "segmentation_scores",
    "check_label_names",
    "jsonable",
    "ssim",
]

_HERE = Path(__file__).resolve().parent

#: Folder of each bundled evaluate module (``evaluate.load`` accepts the folder).
MODULE_PATHS: dict[str, str] = {
    "classification": str(_HERE / "raw_classification"),
    "segmentation": str(_HERE / "raw_segmentation"),
}


def load(name: str, **kwargs: Any):
    """``evaluate.load`` of a bundled metric module, offline.

    Args:
        name: ``"classification"`` or ``"segmentation"`` (``"raw_classification"`` and
            ``"raw_segmentation"`` are accepted too).
        **kwargs: passed to ``evaluate.load``: its own options (``cache_dir``, ``experiment_id``,
            ``num_process``, ``process_id``, ``keep_in_memory``, ...) and the metric's settings
            (``num_labels``, ``label_names``; ``labels`` and ``average`` for classification;
            ``ignore_index`` for segmentation, default 255).

    Returns:
        An ``evaluate.EvaluationModule``.
    """
    key = name[len("raw_") :] if name.startswith("raw_") else name
    if key not in MODULE_PATHS:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(MODULE_PATHS)}")
    import evaluate  # imported here: evaluate pulls in datasets, which raw_isp does not need otherwise

    return evaluate.load(MODULE_PATHS[key], **kwargs)
