"""Evaluation with the project's ``evaluate`` modules, exact over several processes.

:func:`evaluate_views` scores one task model on several input views of the same batches in one
pass (the model's own view, other ISPs, corrupted views: drift synthesis uses it);
:func:`evaluate_model` is the model's own view alone. Logits are scored by
:func:`raw_isp.models.modeling.task_outputs` (segmentation logits upsampled to the mask size
once), and ``accelerator.gather_for_metrics`` drops the samples accelerate duplicated to even out
the last batch, so the metrics of N processes equal those of one.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .. import metrics as raw_metrics
from ..models.modeling import task_outputs
from .registry import get_task

__all__ = ["new_metric", "evaluate_views", "evaluate_model", "prefixed"]


def new_metric(task: str, label_names: list[str]):
    """A fresh, in-memory ``evaluate`` module of the task (``raw_isp.metrics.load``)."""
    return raw_metrics.load(get_task(task).name, num_labels=len(label_names), label_names=label_names,
                            keep_in_memory=True)


@torch.no_grad()
def evaluate_views(model, loader, accelerator, task: str, label_names: list[str],
                   views: dict[str, Callable[[torch.Tensor], torch.Tensor]],
                   progress: str | None = None) -> dict[str, dict[str, Any]]:
    """Metrics of one task model on several input views of the same data, in one pass.

    Args:
        model: a :class:`raw_isp.models.modeling.RawISPModel` (prepared or not).
        loader: batches ``{"raw", "labels"}`` (:func:`raw_isp.training.data.make_loader`).
        views: name -> function ``raw batch -> pixel_values`` (e.g. the model's own
            ``pixel_values``, another ISP's, a corrupted view); each batch is read once and fed
            through every view, outside autocast (ISPs and corruptions stay float32).
        progress: label of a progress bar over the batches (main process), or None for none.
    Returns:
        ``{name: metrics}``, each with ``loss``: the mean cross-entropy over the samples.
    """
    from tqdm.auto import tqdm

    model.eval()
    net = accelerator.unwrap_model(model)
    dense = get_task(task).dense
    metrics = {name: new_metric(task, label_names) for name in views}
    loss_sum = {name: torch.zeros((), dtype=torch.float64) for name in views}
    count = dict.fromkeys(views, 0)
    bar = tqdm(loader, desc=progress, disable=progress is None or not accelerator.is_local_main_process,
               leave=False, dynamic_ncols=True)
    for batch in bar:
        labels = batch["labels"]
        for name, view in views.items():
            pixel_values = view(batch["raw"])
            with accelerator.autocast():
                logits = net.model(pixel_values=pixel_values).logits
            losses, preds = task_outputs(logits, labels, task)
            if dense:
                preds = preds.to(torch.uint8)  # a quarter of the bytes to gather
            p, r, l = accelerator.gather_for_metrics((preds, labels, losses))
            metrics[name].add_batch(predictions=p.cpu().numpy(), references=r.cpu().numpy())
            loss_sum[name] += l.double().sum().cpu()
            count[name] += l.numel()
    results = {}
    for name in views:
        results[name] = metrics[name].compute()
        results[name]["loss"] = float(loss_sum[name] / max(count[name], 1))
    return results


def evaluate_model(model, loader, accelerator, task: str, label_names: list[str]) -> dict[str, Any]:
    """Metrics of ``model`` on ``loader`` through its own ISP (:func:`evaluate_views`)."""
    net = accelerator.unwrap_model(model)
    return evaluate_views(model, loader, accelerator, task, label_names, {"model": net.pixel_values})["model"]


def prefixed(prefix: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """``eval_accuracy``-style keys with JSON values; lists (per-class scores, confusion
    matrices) are kept under the same prefix."""
    return {f"{prefix}_{k}": v for k, v in raw_metrics.jsonable(metrics).items()}
