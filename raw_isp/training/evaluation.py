"""Evaluation with the project's ``evaluate`` modules, exact over several processes.

:func:`evaluate_views` scores one task model on several input views of the same batches in one
pass (the model's own view, other ISPs, corrupted views: drift synthesis uses it);
:func:`evaluate_views_per_sample` does the same and also keeps one confusion matrix per test
image and view (what bootstrap intervals resample, :mod:`raw_isp.metrics.bootstrap`);
:func:`evaluate_model` is the model's own view alone. Logits are scored by
:func:`raw_isp.models.modeling.task_outputs` (segmentation logits upsampled to the mask size
once), and ``accelerator.gather_for_metrics`` drops the samples accelerate duplicated to even out
the last batch, so the metrics of N processes equal those of one.

Batches that carry ``intensity`` (the frames' light ratio, ``(B,)``) pass it to every view as
``view(raw, intensity=...)``, so an ISP with ``exposure="metadata"`` develops them as in training.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .. import metrics as raw_metrics
from ..models.modeling import task_outputs
from ..registry import get_task

__all__ = ["new_metric", "evaluate_views", "evaluate_views_per_sample", "sample_confusions", "evaluate_model",
           "prefixed"]

#: Reference value of segmentation pixels that no metric counts (the segmentation module's default).
IGNORE_INDEX = 255


def new_metric(task: str, label_names: list[str]):
    """A fresh, in-memory ``evaluate`` module of the task (``raw_isp.metrics.load``)."""
    return raw_metrics.load(get_task(task).name, num_labels=len(label_names), label_names=label_names,
                            keep_in_memory=True)


def evaluate_views(model, loader, accelerator, task: str, label_names: list[str],
                   views: dict[str, Callable[..., torch.Tensor]],
                   progress: str | None = None) -> dict[str, dict[str, Any]]:
    """Metrics of one task model on several input views of the same data, in one pass.

    Args:
        model: a :class:`raw_isp.models.modeling.RawISPModel` (prepared or not).
        loader: batches ``{"raw", "labels"}`` and optionally ``"intensity"``
            (:func:`raw_isp.training.data.make_loader`).
        views: name -> function ``raw batch -> pixel_values`` (e.g. the model's own
            ``pixel_values``, another ISP's, a corrupted view); each batch is read once and fed
            through every view, outside autocast (ISPs and corruptions stay float32). When the
            batch has an ``intensity`` entry, it is called as ``view(raw, intensity=intensity)``.
        progress: label of a progress bar over the batches (main process), or None for none.
    Returns:
        ``{name: metrics}``, each with ``loss``: the mean cross-entropy over the samples.
    """
    return _evaluate(model, loader, accelerator, task, label_names, views, progress, per_sample=False)[0]


def evaluate_views_per_sample(model, loader, accelerator, task: str, label_names: list[str],
                              views: dict[str, Callable[..., torch.Tensor]], progress: str | None = None
                              ) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """:func:`evaluate_views` (the same metrics, bit for bit), and per view the confusion
    matrix of each test sample: ``{name: (n, K, K) int64}`` with ``[i, t, p]`` = reference ``t``
    predicted as ``p`` in sample ``i`` (classification: one-hot; segmentation: the image's pixel
    counts, ``ignore_index`` 255 left out), in the loader's sample order, gathered over processes
    (accelerate's duplicates dropped). Their sum over samples is the metric's confusion matrix."""
    return _evaluate(model, loader, accelerator, task, label_names, views, progress, per_sample=True)


def sample_confusions(predictions: torch.Tensor, labels: torch.Tensor, num_labels: int,
                      ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Confusion matrix of each sample, ``(B, K, K)`` int64 on the input's device.

    ``predictions``, ``labels``: ``(B,)`` class indices (one-hot matrices) or ``(B, H, W)``
    masks (pixel counts per image; pixels whose label is ``ignore_index`` are left out).
    """
    b, k = labels.shape[0], num_labels
    pred = predictions.reshape(b, -1).long()
    ref = labels.reshape(b, -1).long()
    keep = ref != ignore_index
    bad = keep & ((ref < 0) | (ref >= k) | (pred < 0) | (pred >= k))
    if bool(bad.any()):
        raise ValueError(f"labels and predictions must lie in [0, {k}) (or the label be {ignore_index}), got "
                         f"labels in [{int(ref[keep].min())}, {int(ref[keep].max())}], predictions in "
                         f"[{int(pred.min())}, {int(pred.max())}]")
    codes = torch.arange(b, device=ref.device).view(-1, 1) * (k * k) + ref * k + pred
    counts = torch.bincount(codes[keep], minlength=b * k * k)
    return counts.view(b, k, k)


@torch.no_grad()
def _evaluate(model, loader, accelerator, task, label_names, views, progress, per_sample: bool):
    from tqdm.auto import tqdm

    model.eval()
    net = accelerator.unwrap_model(model)
    dense = get_task(task).dense
    metrics = {name: new_metric(task, label_names) for name in views}
    loss_sum = {name: torch.zeros((), dtype=torch.float64) for name in views}
    count = dict.fromkeys(views, 0)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in views}
    bar = tqdm(loader, desc=progress, disable=progress is None or not accelerator.is_local_main_process,
               leave=False, dynamic_ncols=True)
    for batch in bar:
        labels = batch["labels"]
        intensity = batch.get("intensity")
        extra = {} if intensity is None else {"intensity": intensity}
        for name, view in views.items():
            pixel_values = view(batch["raw"], **extra)
            with accelerator.autocast():
                logits = net.model(pixel_values=pixel_values).logits
            losses, preds = task_outputs(logits, labels, task)
            if dense:
                preds = preds.to(torch.uint8)  # a quarter of the bytes to gather
            if per_sample:
                cms = sample_confusions(preds, labels, len(label_names))
                p, r, l, c = accelerator.gather_for_metrics((preds, labels, losses, cms))
                samples[name].append(c.cpu().numpy())
            else:
                p, r, l = accelerator.gather_for_metrics((preds, labels, losses))
            metrics[name].add_batch(predictions=p.cpu().numpy(), references=r.cpu().numpy())
            loss_sum[name] += l.double().sum().cpu()
            count[name] += l.numel()
    results = {}
    for name in views:
        results[name] = metrics[name].compute()
        results[name]["loss"] = float(loss_sum[name] / max(count[name], 1))
    if not per_sample:
        return results, {}
    k = len(label_names)
    return results, {name: (np.concatenate(parts).astype(np.int64, copy=False) if parts
                            else np.zeros((0, k, k), dtype=np.int64)) for name, parts in samples.items()}


def evaluate_model(model, loader, accelerator, task: str, label_names: list[str]) -> dict[str, Any]:
    """Metrics of ``model`` on ``loader`` through its own ISP (:func:`evaluate_views`)."""
    net = accelerator.unwrap_model(model)
    return evaluate_views(model, loader, accelerator, task, label_names, {"model": net.pixel_values})["model"]


def prefixed(prefix: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """``eval_accuracy``-style keys with JSON values; lists (per-class scores, confusion
    matrices) are kept under the same prefix."""
    return {f"{prefix}_{k}": v for k, v in raw_metrics.jsonable(metrics).items()}


def constant_prediction_scores(train_counts, test_counts, task: str, label_names: list[str]) -> dict[str, Any]:
    """The trivial baseline: the scores of always predicting the training split's most frequent
    class (classification: the majority class; segmentation: the most frequent pixel class, all
    background on Raw-Drone) on a split with per-class counts ``test_counts (K,)`` (images, or
    pixels for masks). Returns ``{"class": name, <score>: value, ...}`` with the scalar scores
    of :func:`raw_isp.metrics.scores.classification_scores` / ``segmentation_scores``."""
    from ..metrics.scores import classification_scores, segmentation_scores

    train_counts, test_counts = np.asarray(train_counts, dtype=np.int64), np.asarray(test_counts, dtype=np.int64)
    k = len(label_names)
    if train_counts.shape != (k,) or test_counts.shape != (k,):
        raise ValueError(f"class counts must have {k} entries, got {train_counts.shape} and {test_counts.shape}")
    c = int(np.argmax(train_counts))
    cm = np.zeros((k, k), dtype=np.int64)
    cm[:, c] = test_counts  # rows: reference labels, columns: predictions
    scores = (segmentation_scores if get_task(task).dense else classification_scores)(cm, label_names)
    return {"class": label_names[c], **{m: float(v) for m, v in scores.items() if isinstance(v, (int, float))}}

