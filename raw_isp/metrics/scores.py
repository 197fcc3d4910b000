"""Classification and segmentation scores from a confusion matrix.

``cm`` is a square int64 matrix with ``cm[t, p]`` = number of samples whose reference is ``t``
and whose prediction is ``p`` (see :mod:`raw_isp.metrics.confusion`). The definitions match the
Hugging Face Hub metrics:

* ``accuracy`` (Hub ``accuracy``, sklearn ``accuracy_score``): ``trace(cm) / cm.sum()``.
* F1 per class (Hub ``f1``, sklearn ``f1_score(average=None, zero_division=0)``):
  ``2 TP / (2 TP + FP + FN)``, and 0 for a class that is neither predicted nor present.
  ``macro_f1`` is their unweighted mean over all ``K`` classes (``labels=range(K)``), or over the
  classes present in references or predictions when ``present_only=True`` (sklearn's default
  ``labels=None``).
* IoU per class (Hub ``mean_iou``): intersection / union summed over the whole dataset, with
  intersection ``cm[c, c]``, union ``cm[c, :].sum() + cm[:, c].sum() - cm[c, c]``; NaN for a
  class absent from both references and predictions. ``mean_iou`` is the NaN-mean, so absent
  classes are left out while a class that is only predicted counts with IoU 0.
  Accuracy per class is ``cm[c, c] / cm[c, :].sum()`` (NaN when the class has no reference
  pixel); ``mean_accuracy`` its NaN-mean; ``overall_accuracy`` (= ``pixel_accuracy``) is
  ``trace(cm) / cm.sum()`` over the non-ignored pixels.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

__all__ = ["classification_scores", "segmentation_scores", "check_label_names", "jsonable"]


def classification_scores(
    cm: Any, label_names: Sequence[str] | None = None, present_only: bool = False
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class F1 and the confusion matrix.

    Args:
        cm: ``(K, K)`` confusion matrix (numpy or torch), rows = references.
        label_names: ``K`` class names; adds one ``f1_<name>`` entry per class.
        present_only: average F1 over the classes that occur in references or predictions
            only (sklearn's ``labels=None``) instead of over all ``K`` classes.

    Returns:
        ``accuracy`` (float in [0, 1], NaN without samples), ``macro_f1`` (float),
        ``per_class_f1`` (float64 array ``(K,)``), ``f1_<name>`` (floats),
        ``confusion_matrix`` (int64 ``(K, K)``), ``num_samples`` (int).
    """
    cm = _as_matrix(cm)
    names = check_label_names(label_names, cm.shape[0])
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)  # TP + FN
    predicted = cm.sum(axis=0).astype(np.float64)  # TP + FP
    denom = support + predicted
    per_class_f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    total = int(cm.sum())
    averaged = per_class_f1[denom > 0] if present_only else per_class_f1
    results: dict[str, Any] = {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "macro_f1": float(np.mean(averaged)) if averaged.size else float("nan"),
        "per_class_f1": per_class_f1,
    }
    for name, value in zip(names, per_class_f1):
        results[f"f1_{name}"] = float(value)
    results["confusion_matrix"] = cm
    results["num_samples"] = total
    return results


def segmentation_scores(cm: Any, label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Mean IoU, per-class IoU and accuracy, pixel accuracy, as the Hub ``mean_iou`` defines them.

    Args:
        cm: ``(K, K)`` confusion matrix over non-ignored pixels (numpy or torch).
        label_names: ``K`` class names; adds one ``iou_<name>`` entry per class (e.g. ``iou_car``).

    Returns:
        ``mean_iou``, ``mean_accuracy``, ``overall_accuracy`` and its alias ``pixel_accuracy``
        (floats in [0, 1], or NaN), ``per_category_iou`` and ``per_category_accuracy``
        (float64 ``(K,)``, NaN for undefined classes), ``iou_<name>`` (floats),
        ``confusion_matrix`` (int64 ``(K, K)``), ``num_pixels`` (int, non-ignored pixels).
    """
    cm = _as_matrix(cm)
    names = check_label_names(label_names, cm.shape[0])
    intersect = np.diag(cm).astype(np.float64)
    area_label = cm.sum(axis=1).astype(np.float64)
    area_pred = cm.sum(axis=0).astype(np.float64)
    union = area_label + area_pred - intersect
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN vector
        iou = intersect / union
        acc = intersect / area_label
        overall = intersect.sum() / area_label.sum()
        results: dict[str, Any] = {
            "mean_iou": float(np.nanmean(iou)) if iou.size else float("nan"),
            "mean_accuracy": float(np.nanmean(acc)) if acc.size else float("nan"),
            "overall_accuracy": float(overall),
        }
    results["pixel_accuracy"] = results["overall_accuracy"]
    results["per_category_iou"] = iou
    results["per_category_accuracy"] = acc
    for name, value in zip(names, iou):
        results[f"iou_{name}"] = float(value)
    results["confusion_matrix"] = cm
    results["num_pixels"] = int(cm.sum())
    return results


def check_label_names(label_names: Sequence[str] | None, num_labels: int) -> list[str]:
    """Validate ``label_names`` (``None`` -> ``[]``): ``num_labels`` distinct non-empty strings."""
    if label_names is None:
        return []
    if isinstance(label_names, str):
        raise ValueError(f"label_names must be a list of strings, got the string {label_names!r}")
    names = list(label_names)
    if len(names) != num_labels:
        raise ValueError(f"label_names has {len(names)} names but there are {num_labels} labels: {names}")
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"label_names must be distinct non-empty strings, got {names}")
    return names


def jsonable(results: dict[str, Any]) -> dict[str, Any]:
    """Results with numpy arrays as (nested) lists and numpy scalars as Python numbers (NaN kept)."""
    out: dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, np.ndarray):
            out[key] = value.tolist()
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def _as_matrix(cm: Any) -> np.ndarray:
    if hasattr(cm, "detach"):  # torch tensor, possibly on an accelerator
        cm = cm.detach().cpu().numpy()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square 2-D confusion matrix, got shape {cm.shape}")
    if not np.issubdtype(cm.dtype, np.integer):
        raise ValueError(f"cm must hold integer counts, got dtype {cm.dtype}")
    return cm.astype(np.int64, copy=False)
