"""Confusion matrices from integer label arrays, with one ``bincount`` per batch.

Every metric in :mod:`raw_isp.metrics` is a function of a confusion matrix ``cm`` of shape
``(K, K)`` and dtype int64, where ``cm[t, p]`` counts the samples (images or pixels) whose
reference label is ``t`` and whose predicted label is ``p`` (scikit-learn's convention: rows are
the truth). Counts add up across batches and across processes, so a streaming or distributed
evaluation only has to sum these matrices.

Inputs may be numpy arrays, torch tensors (any device), or lists of either (e.g. segmentation maps
of different sizes); any integer or bool dtype. CPU data is counted with numpy (torch's CPU
``bincount`` is several times slower); tensors on an accelerator are counted there with
``torch.bincount`` and only the ``(K, K)`` result is returned on that device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["confusion_matrix", "add_confusion_matrices"]

# Above this many bins the single-bincount fast path (which keeps ignored pixels in their own
# rows instead of masking them out) would allocate more than it saves; mask instead.
_MAX_DIRECT_BINS = 1 << 20


def confusion_matrix(
    predictions: Any,
    references: Any,
    num_labels: int | None = None,
    ignore_index: int | None = None,
) -> np.ndarray | torch.Tensor:
    """Count ``(reference, prediction)`` label pairs into a ``(K, K)`` int64 matrix.

    Args:
        predictions: predicted labels, any shape, integer or bool dtype; numpy, torch, nested
            lists, or a list/tuple of arrays or tensors (flattened and concatenated in order).
        references: reference labels, same shape(s) as ``predictions``.
        num_labels: ``K``, the number of classes. Labels must lie in ``[0, K)``. ``None`` infers
            ``K`` as the largest label seen (predictions and non-ignored references) plus one.
        ignore_index: reference value whose samples are left out entirely, whatever was predicted
            there (the Hub ``mean_iou`` semantics: the mask is taken from the references only).
            Predictions at ignored samples may hold any value (e.g. 255 too).

    Returns:
        ``cm`` with ``cm[t, p]`` = number of non-ignored samples with reference ``t`` and
        prediction ``p``: a numpy int64 array, or an int64 tensor on the input's device when
        the inputs are torch tensors.

    Raises:
        ValueError: shapes differ, a dtype is not integer, ``num_labels`` is not a positive int,
            or a label outside ``[0, K)`` occurs at a non-ignored sample.
    """
    if num_labels is not None:
        if isinstance(num_labels, bool) or not isinstance(num_labels, (int, np.integer)) or num_labels < 1:
            raise ValueError(f"num_labels must be a positive int or None, got {num_labels!r}")
        num_labels = int(num_labels)
    if ignore_index is not None:
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise ValueError(f"ignore_index must be an int or None, got {ignore_index!r}")
        ignore_index = int(ignore_index)

    pred, ref, device = _flatten_pair(predictions, references)
    cm = _count(pred, ref, num_labels, ignore_index)
    if device is None and (_has_tensor(predictions) or _has_tensor(references)):
        return torch.from_numpy(cm)
    return cm


def add_confusion_matrices(*matrices: np.ndarray | None) -> np.ndarray:
    """Sum square int64 matrices of possibly different sizes, padding each to the largest.

    A matrix of size ``k`` holds the classes ``0 .. k-1``; a smaller one simply never saw the
    higher classes, so padding with zeros is exact. ``None`` entries are skipped.
    """
    present = [np.asarray(m, dtype=np.int64) for m in matrices if m is not None]
    size = max((m.shape[0] for m in present), default=0)
    total = np.zeros((size, size), dtype=np.int64)
    for m in present:
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"confusion matrices must be square 2-D arrays, got shape {m.shape}")
        total[: m.shape[0], : m.shape[1]] += m
    return total


# --------------------------------------------------------------------------- input handling


def _is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def _is_array(x: Any) -> bool:
    return _is_tensor(x) or isinstance(x, np.ndarray)


def _has_tensor(x: Any) -> bool:
    return _is_tensor(x) or (isinstance(x, (list, tuple)) and any(_is_tensor(e) for e in x))


def _is_list_of_maps(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and any(_is_array(e) for e in x)


def _shape(x: Any) -> tuple[int, ...]:
    if _is_array(x):
        return tuple(x.shape)
    try:
        return np.shape(x)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"cannot read a shape from the input: {err}") from None


def _flatten_one(x: Any, name: str) -> np.ndarray | torch.Tensor:
    """One array-like -> 1-D numpy array (CPU data) or tensor (accelerator) of integer dtype."""
    if _is_tensor(x):
        x = x.detach()
        if x.device.type == "cpu":
            x = x.numpy()  # zero copy; numpy's bincount is the fast one on CPU
        else:
            if x.dtype == torch.bool:
                x = x.to(torch.uint8)
            if x.is_floating_point() or x.is_complex():
                raise ValueError(f"{name} must hold integer labels, got dtype {x.dtype}")
            return x.reshape(-1)
    a = np.asarray(x)
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {a.dtype}")
    return a.reshape(-1)


def _flatten_pair(predictions: Any, references: Any) -> tuple[Any, Any, torch.device | None]:
    """Flatten both inputs to 1-D, check that their shapes agree, and pick where to count.

    Returns ``(pred, ref, device)``: numpy arrays and ``device=None`` for CPU data, or tensors
    on ``device`` when any input lives on an accelerator.
    """
    if predictions is None or references is None:
        raise ValueError("both predictions and references are required")
    if _is_list_of_maps(predictions) or _is_list_of_maps(references):
        # A list of maps (possibly of different sizes): pair them up, then concatenate.
        if len(predictions) != len(references):
            raise ValueError(f"got {len(predictions)} prediction maps but {len(references)} reference maps")
        preds, refs = [], []
        for i, (p, r) in enumerate(zip(predictions, references)):
            if _shape(p) != _shape(r):
                raise ValueError(f"predictions[{i}] has shape {_shape(p)} but references[{i}] has shape {_shape(r)}")
            preds.append(_flatten_one(p, f"predictions[{i}]"))
            refs.append(_flatten_one(r, f"references[{i}]"))
        pred, ref = _concat(preds), _concat(refs)
    else:
        if _shape(predictions) != _shape(references):
            raise ValueError(
                f"predictions have shape {_shape(predictions)} but references have shape {_shape(references)}"
            )
        pred = _flatten_one(predictions, "predictions")
        ref = _flatten_one(references, "references")
    return _same_place(pred, ref)


def _concat(parts: list[Any]) -> Any:
    if not parts:
        return np.zeros(0, dtype=np.int64)
    if any(_is_tensor(p) for p in parts):
        device = next(p.device for p in parts if _is_tensor(p))
        return torch.cat([p.to(device) if _is_tensor(p) else torch.from_numpy(p).to(device) for p in parts])
    return np.concatenate(parts)


def _same_place(pred: Any, ref: Any) -> tuple[Any, Any, torch.device | None]:
    """Numpy for CPU data; otherwise move everything to the accelerator of the first tensor."""
    if not (_is_tensor(pred) or _is_tensor(ref)):
        return pred, ref, None
    device = pred.device if _is_tensor(pred) else ref.device
    pred = pred.to(device) if _is_tensor(pred) else torch.from_numpy(np.ascontiguousarray(pred)).to(device)
    ref = ref.to(device) if _is_tensor(ref) else torch.from_numpy(np.ascontiguousarray(ref)).to(device)
    return pred, ref, device


def _range_error(name: str, values: Any, num_labels: int | None, ignore_index: int | None) -> ValueError:
    """Error naming the out-of-range labels in ``values`` (an extra pass, on the error path only)."""
    out = values < 0 if num_labels is None else (values < 0) | (values >= num_labels)
    if ignore_index is not None:
        out &= values != ignore_index
    bad = values[out]
    allowed = f"[0, {num_labels})" if num_labels is not None else "[0, inf)"
    extra = f" (or ignore_index={ignore_index})" if ignore_index is not None else ""
    return ValueError(
        f"{name} hold {_numel(bad)} labels outside {allowed}{extra}, from {int(bad.min())} to {int(bad.max())}; "
        "pass the right num_labels / ignore_index"
    )


# --------------------------------------------------------------------------- counting


def _count(pred: Any, ref: Any, k: int | None, ignore: int | None) -> Any:
    """Count label pairs of two 1-D integer arrays (both numpy, or both tensors on one device).

    Fast path: one pass each for min/max, one for ``ref * K + pred``, one ``bincount``. Ignored
    references (``ignore_index >= 0``) are not masked out: they fall into rows ``>= K`` of the
    histogram, which are dropped afterwards (and any other row there means a bad label).
    """
    is_t = _is_tensor(pred)
    if _numel(pred) == 0:
        return _zeros(k or 0, pred)
    pmin, pmax = int(pred.min()), int(pred.max())
    rmin, rmax = int(ref.min()), int(ref.max())

    if ignore is not None:
        k_hint = k if k is not None else max(pmax, rmax if rmax != ignore else 0) + 1
        direct = (
            0 <= pmin
            and pmax < k_hint
            and 0 <= rmin
            and ignore >= 0
            and rmax <= max(k_hint - 1, ignore)
            and (rmax + 1) * k_hint <= max(_MAX_DIRECT_BINS, 4 * _numel(pred))
        )
        if not direct:
            # Rare layouts (negative ignore_index, out-of-range predictions at ignored pixels,
            # huge label values): drop the ignored samples first, then count plainly.
            keep = ref != ignore
            return _count(pred[keep], ref[keep], k, None)

    if pmin < 0 or (k is not None and pmax >= k):
        raise _range_error("predictions", pred, k, None)
    if ignore is None and (rmin < 0 or (k is not None and rmax >= k)):
        raise _range_error("references", ref, k, None)
    if k is None:
        k = max(pmax, rmax) + 1
        if ignore is not None and rmax == ignore:
            # The ignore value is the largest reference (the usual 255): one extra pass for the
            # largest real label.
            valid = ref[ref != ignore]
            k = max(pmax, int(valid.max()) if _numel(valid) else -1) + 1

    if is_t:
        idx = ref.to(torch.int64) * k
        idx += pred
        counts = torch.bincount(idx, minlength=k * k)
    else:
        idx = ref.astype(np.intp)  # a fresh array, modified in place below
        idx *= k
        np.add(idx, pred, out=idx, casting="unsafe")  # values already checked to lie in [0, K)
        counts = np.bincount(idx, minlength=k * k)
    cm = counts[: k * k].reshape(k, k)
    if _numel(counts) > k * k:
        _check_extra_rows(counts[k * k :], k, ignore)
    if ignore is not None and 0 <= ignore < k:
        cm[ignore, :] = 0
    return cm


def _numel(a: Any) -> int:
    return a.numel() if _is_tensor(a) else a.size


def _zeros(k: int, like: Any) -> Any:
    if _is_tensor(like):
        return torch.zeros((k, k), dtype=torch.int64, device=like.device)
    return np.zeros((k, k), dtype=np.int64)


def _check_extra_rows(extra: Any, k: int, ignore: int | None) -> None:
    """Rows beyond ``K`` may only hold the ignored references; anything else is a bad label."""
    rows = np.asarray(extra.cpu() if _is_tensor(extra) else extra)
    rows = np.pad(rows, (0, (-rows.size) % k)).reshape(-1, k).sum(axis=1)
    labels = np.flatnonzero(rows) + k
    bad = labels[labels != ignore] if ignore is not None else labels
    if bad.size:
        raise ValueError(
            f"references hold labels outside [0, {k})"
            + (f" (or ignore_index={ignore})" if ignore is not None else "")
            + f": {bad.tolist()[:10]}; pass the right num_labels / ignore_index"
        )
