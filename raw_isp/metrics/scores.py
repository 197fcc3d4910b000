"""Classification and segmentation scores from a confusion matrix.

``cm`` is a square int64 matrix with ``cm[t, p]`` = number of samples whose reference is ``t``
and whose prediction is ``p`` (see :mod:`raw_isp.metrics.confusion`). The definitions match the
Hugging Face Hub metrics:

* ``accuracy`` (Hub ``accuracy``, sklearn ``accuracy_score``): ``trace(cm) / cm.sum()``.
* F1 per class (Hub ``f1``, sklearn ``f1_score(average=None, zero_division=0)``):
  ``2 TP / (2 TP + FP + FN)``, and 0 for a class that is neither predicted nor present.
  ``macro_f1`` is their unweighted mean over all ``K`` classes (``labels=range(K)``), or over the
  classes present in references or predictions when ``present_only=True`` (sklearn's default
  ``labels=None``). :func:`averaged_f1` gives sklearn's ``f1_score(labels=..., average=...)``
  for any class list and ``average`` in ``"macro"``, ``"micro"``, ``"weighted"``, ``None``.
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

__all__ = [
    "classification_scores", "segmentation_scores", "averaged_f1", "F1_AVERAGES", "check_labels", "check_average",
    "check_label_names", "check_names_cover", "jsonable",
]  # fmt: skip

#: Values of ``average`` that :func:`averaged_f1` accepts (sklearn's, less "binary" and "samples").
F1_AVERAGES = ("macro", "micro", "weighted", None)


def classification_scores(
    cm: Any,
    label_names: Sequence[str] | None = None,
    present_only: bool = False,
    labels: Sequence[int] | None = None,
    average: str | None = "macro",
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class F1, F1 averaged as asked, and the confusion matrix.

    Args:
        cm: ``(K, K)`` confusion matrix (numpy or torch), rows = references.
        label_names: ``K`` class names; adds one ``f1_<name>`` entry per class.
        present_only: average F1 over the classes that occur in references or predictions
            only (sklearn's ``labels=None``) instead of over all ``K`` classes.
        labels, average: what ``f1`` holds, as in :func:`averaged_f1`. ``labels=None`` means
            the classes ``macro_f1`` averages (all ``K``, or the present ones with
            ``present_only``), so that with the default ``average="macro"`` ``f1 == macro_f1``.

    Returns:
        ``accuracy`` (float in [0, 1], NaN without samples), ``macro_f1`` (float), ``f1``
        (float, or float64 array ``(len(labels),)`` for ``average=None``), ``per_class_f1``
        (float64 array ``(K,)``, indexed by class id), ``f1_<name>`` (floats),
        ``confusion_matrix`` (int64 ``(K, K)``), ``num_samples`` (int).
    """
    cm = _as_matrix(cm)
    names = check_label_names(label_names, cm.shape[0])
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)  # TP + FN
    predicted = cm.sum(axis=0).astype(np.float64)  # TP + FP
    per_class_f1 = _f1(tp, support, predicted)
    total = int(cm.sum())
    averaged = per_class_f1[support + predicted > 0] if present_only else per_class_f1
    if labels is None and not present_only and cm.shape[0]:
        labels = range(cm.shape[0])
    results: dict[str, Any] = {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "macro_f1": float(np.mean(averaged)) if averaged.size else float("nan"),
        "f1": averaged_f1(cm, labels=labels, average=average),
        "per_class_f1": per_class_f1,
    }
    for name, value in zip(names, per_class_f1):
        results[f"f1_{name}"] = float(value)
    results["confusion_matrix"] = cm
    results["num_samples"] = total
    return results


def averaged_f1(cm: Any, labels: Sequence[int] | None = None, average: str | None = "macro") -> float | np.ndarray:
    """F1 over chosen classes: sklearn's ``f1_score(references, predictions, labels=labels,
    average=average, zero_division=0)`` on the samples that ``cm`` counts.

    Args:
        cm: ``(K, K)`` confusion matrix (numpy or torch), rows = references.
        labels: class ids to score, in the order of the per-class output (repeats allowed, as in
            sklearn). An id ``>= K`` is a class that never occurs (F1 0, no references).
            ``None``: the classes that occur in references or predictions, in increasing order
            (sklearn's default).
        average: ``"macro"``: unweighted mean of the per-class F1 over ``labels``;
            ``"weighted"``: mean weighted by each class' number of references (0 when no
            reference is among ``labels``); ``"micro"``: ``2 TP / (2 TP + FP + FN)`` with the
            counts summed over ``labels`` (equal to accuracy when ``labels`` holds every class);
            ``None``: the per-class F1 scores.

    Returns:
        A float in [0, 1] (NaN for an average over no class: ``labels=None`` and no samples),
        or for ``average=None`` a float64 array ``(len(labels),)``.

    Raises:
        ValueError naming ``labels`` or ``average`` when either is malformed.
    """
    cm = _as_matrix(cm)
    average = check_average(average)
    if labels is None:
        ids = np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))
    else:
        ids = check_labels(labels)
    if ids.size and ids.max() >= cm.shape[0]:
        size = int(ids.max()) + 1
        cm = np.pad(cm, ((0, size - cm.shape[0]), (0, size - cm.shape[0])))
    tp = np.diag(cm)[ids].astype(np.float64)
    support = cm.sum(axis=1)[ids].astype(np.float64)
    predicted = cm.sum(axis=0)[ids].astype(np.float64)
    per_class = _f1(tp, support, predicted)
    if average is None:
        return per_class
    if not ids.size:
        return float("nan")
    if average == "macro":
        return float(per_class.mean())
    if average == "weighted":
        weight = support.sum()
        return float((per_class * support).sum() / weight) if weight else 0.0
    denom = support.sum() + predicted.sum()  # micro
    return float(2.0 * tp.sum() / denom) if denom else 0.0


def check_average(average: Any) -> str | None:
    """Validate ``average`` (one of :data:`F1_AVERAGES`)."""
    if average in F1_AVERAGES and (average is None or isinstance(average, str)):
        return average
    hint = ""
    if average == "binary":
        hint = "; for the F1 of one class c (sklearn's binary F1 with pos_label=c) pass labels=[c]"
    elif average == "samples":
        hint = "; 'samples' is for multi-label targets, and these are single-label classes"
    raise ValueError(f"average must be one of {list(F1_AVERAGES)}, got {average!r}{hint}")


def check_labels(labels: Any, num_labels: int | None = None) -> np.ndarray:
    """Validate ``labels`` (class ids to score): a non-empty 1-D sequence of non-negative
    integers, each below ``num_labels`` when that is known. Returns them as int64 ``(n,)``."""
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    if isinstance(labels, (str, bytes)) or np.ndim(labels) != 1:
        raise ValueError(f"labels must be a 1-D sequence of integer class ids, got {labels!r}")
    ids = np.asarray(list(labels) if isinstance(labels, range) else labels)
    if ids.size == 0:
        raise ValueError("labels is empty; pass the class ids to score, or None for all classes")
    if ids.dtype == np.bool_ or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"labels must hold integer class ids, got {list(labels)!r}")
    bad = ids[(ids < 0) | (ids >= num_labels)] if num_labels is not None else ids[ids < 0]
    if bad.size:
        allowed = f"[0, {num_labels}) (num_labels={num_labels})" if num_labels is not None else "[0, inf)"
        raise ValueError(f"labels: class ids {sorted(set(bad.tolist()))} are outside {allowed}")
    return ids.astype(np.int64)


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


def check_names_cover(cm: Any, label_names: Sequence[str]) -> None:
    """Fail, naming ``label_names``, when the data hold more classes than there are names.

    For metrics whose number of classes was taken from ``label_names`` (no ``num_labels``):
    ``cm`` is the matrix counted without a class limit, so labels beyond the names show up as
    extra rows (references) or columns (predictions).
    """
    cm = _as_matrix(cm)
    n = len(label_names)
    if cm.shape[0] <= n:
        return
    extra_ref = np.flatnonzero(cm[n:, :].sum(axis=1)) + n
    extra_pred = np.flatnonzero(cm[:, n:].sum(axis=0)) + n
    where = [f"{name} hold {ids.tolist()[:10]}" for name, ids in (("references", extra_ref), ("predictions", extra_pred)) if ids.size]
    raise ValueError(
        f"label_names has {n} names (classes 0 to {n - 1}), but the {' and the '.join(where)}; give one name per "
        "class, or pass num_labels"
    )


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


def _f1(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-class ``2 TP / (2 TP + FP + FN)`` = ``2 TP / (support + predicted)``, 0 where both are 0."""
    denom = support + predicted
    return np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def _as_matrix(cm: Any) -> np.ndarray:
    if hasattr(cm, "detach"):  # torch tensor, possibly on an accelerator
        cm = cm.detach().cpu().numpy()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square 2-D confusion matrix, got shape {cm.shape}")
    if not np.issubdtype(cm.dtype, np.integer):
        raise ValueError(f"cm must hold integer counts, got dtype {cm.dtype}")
    return cm.astype(np.int64, copy=False)
