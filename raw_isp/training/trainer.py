"""Fine-tuning the ISP-in-the-loop model with ``transformers.Trainer``.

The project's own loop (:mod:`raw_isp.training.loop`) runs on accelerate; this module is the
path for people who fine-tune with the ``Trainer`` and ``TrainingArguments`` they know:

    RawDataCollator                 dataset rows -> the model's batch (the training library's RawCollate)
    RawISPTrainer                   a Trainer that keeps the raw columns, gives the ISP its own
                                    optimiser group, and writes and reads the training scripts' folder
    compute_metrics_fn              Trainer's ``compute_metrics`` from the project's evaluate modules
                                    (a whole evaluation, or batch by batch with ``batch_eval_metrics``)
    preprocess_logits_for_metrics   logits -> predicted classes on the device (segmentation: per pixel
                                    at the mask's size), so the evaluation loop keeps no logits

A run (``splits`` from ``raw_microscopy.load_dataset("raw")``, ``model`` a
:class:`~raw_isp.models.modeling.RawISPModel`, e.g. from :func:`raw_isp.training.loop.build_model`)::

    trainer = RawISPTrainer(
        model=model, args=TrainingArguments("out", num_train_epochs=8, eval_strategy="epoch"),
        train_dataset=splits["train"], eval_dataset=splits["validation"],
        compute_metrics=compute_metrics_fn("classification", label_names),
        preprocess_logits_for_metrics=preprocess_logits_for_metrics)
    trainer.train()
    trainer.save_model("out/final")       # load_raw_model("out/final"), or the Auto classes

Shapes: rows hold ``image`` ``(H, W)`` uint16 DN, ``label`` (an int) or ``mask`` ``(H, W)``
(class ids), and ``intensity`` (the light ratio, a float); the batch is ``raw`` ``(B, H, W)``
(the int16 bit view of the uint16 frames), ``labels`` ``(B,)`` or ``(B, H, W)`` int64 and
``intensity`` ``(B,)`` float32.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from ..models.modeling import ISP_CONFIG_NAME, RawISPModel, load_raw_model, logits_at, save_raw_model
from .data import RawCollate
from .evaluation import new_metric
from ..registry import DATASETS, get_task, guess_task

__all__ = [
    "RawDataCollator",
    "RawISPTrainer",
    "RawMetrics",
    "compute_metrics_fn",
    "preprocess_logits_for_metrics",
]

logger = logging.getLogger(__name__)

_DN_MAX = 65535


def _frames(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The ``image`` entries of ``rows`` as one ``(B, H, W)`` uint16 array; ValueError / TypeError
    for frames that are not 16-bit raw DN of one 2-D shape."""
    frames = [np.asarray(row["image"]) for row in rows]
    shapes = sorted({f.shape for f in frames})
    if len(shapes) != 1 or len(shapes[0]) != 2:
        raise ValueError(f"RawDataCollator: the 'image' frames of a batch must share one (H, W) shape, got {shapes}")
    stack = np.stack(frames)
    if stack.dtype == np.uint16:
        return stack
    if stack.dtype.kind not in "iu" or stack.dtype.itemsize < 2:
        raise TypeError(f"RawDataCollator: the 'image' frames are {stack.dtype}; it takes raw mosaics as 16-bit "
                        "integer DN (uint16, or a wider integer type holding 0..65535), not 8-bit or float pictures")
    lo, hi = int(stack.min()), int(stack.max())
    if lo < 0 or hi > _DN_MAX:
        raise ValueError(f"RawDataCollator: the 'image' frames hold values in [{lo}, {hi}], outside the 16-bit "
                         f"range [0, {_DN_MAX}]")
    return stack.astype(np.uint16)


class RawDataCollator(RawCollate):
    """The ``data_collator`` of ``transformers.Trainer`` for the project's datasets: a list of
    rows -> one batch of the model (:class:`~raw_isp.training.data.RawCollate`'s).

    Rows may come in any format of the datasets: the packages' default (frames as ``np.uint16``),
    ``output="torch"``, or the plain ``datasets`` formats (frames as int64 arrays or nested
    lists, checked to lie in 0..65535). 8-bit and float frames are refused: they are pictures,
    not raw mosaics. A mapping of whole columns (what :class:`raw_isp.data.arrow.RawBatches`
    yields) goes to :class:`RawCollate` as it is.

    Args:
        label_column: "label" (class per image) or "mask" (class per pixel).
        intensity: the light ratio of every frame when the rows have no ``intensity`` entry
            (a dataset loaded at one light level); None requires the entry.

    Returns ``{"raw": (B, H, W) int16, "labels": (B,) or (B, H, W) int64, "intensity": (B,) float32}``.
    """

    @property
    def columns(self) -> tuple[str, ...]:
        """The row entries it reads (what :class:`RawISPTrainer` keeps from the datasets)."""
        return ("image", self.label_column, "intensity")

    def __call__(self, features: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, torch.Tensor]:
        if isinstance(features, Mapping):
            return super().__call__(features)
        rows = list(features)
        if not rows:
            raise ValueError("RawDataCollator: empty batch")
        missing = [c for c in ("image", self.label_column) if c not in rows[0]]
        if missing:
            raise KeyError(
                f"RawDataCollator: the rows have no {missing} entry (they have {sorted(rows[0])}). "
                "transformers.Trainer drops the dataset columns that the model's forward does not name: use "
                "RawISPTrainer, which keeps the collator's columns, or TrainingArguments(remove_unused_columns=False)")
        batch: dict[str, Any] = {
            "image": torch.from_numpy(_frames(rows)),
            self.label_column: np.stack([np.asarray(row[self.label_column]) for row in rows]),
        }
        if "intensity" in rows[0]:
            batch["intensity"] = np.asarray([float(row["intensity"]) for row in rows], dtype=np.float32)
        return super().__call__(batch)


def _default_label_column(task: str) -> str:
    """The label column the registry's datasets use for ``task`` ("label", "mask")."""
    return next(info.task(task).label_column for info in DATASETS.values() if task in info.tasks)


class RawISPTrainer(Trainer):
    """``transformers.Trainer`` for a :class:`~raw_isp.models.modeling.RawISPModel`.

    Everything ``Trainer`` and ``TrainingArguments`` do applies; what differs concerns the raw
    model only:

    * ``data_collator`` defaults to a :class:`RawDataCollator` of the task's label column.
    * With ``remove_unused_columns=True`` (the default) the columns the collator reads are kept:
      ``Trainer`` keeps only the names of ``forward``'s arguments (``raw``, ``labels``, ...),
      which would drop the frames (``image``) and the labels (``mask``).
    * The ISP's parameters get no weight decay (it would pull a colour matrix and white balance
      towards 0), and, with ``isp_learning_rate``, an optimiser group of their own at that rate
      (the task model keeps ``args.learning_rate`` and the schedule scales both).
    * ``save_model`` and every checkpoint write the training scripts' folder
      (:func:`~raw_isp.models.modeling.save_raw_model`): the task model (``config.json``,
      ``model.safetensors``), a ``preprocessor_config.json`` that replays the ISP (static and
      parametrized ISPs), ``isp_config.json`` with the task, ``isp.safetensors``, plus
      ``Trainer``'s ``training_args.bin``. A ``processing_class`` is not written over the
      ISP's processor. ``load_raw_model(folder)`` reloads any of them, and
      ``AutoModelFor...`` with ``AutoImageProcessor`` the static and parametrized ones.
    * ``resume_from_checkpoint`` and ``load_best_model_at_end`` read those folders back.

    Args:
        task: "classification" or "segmentation"; default: from the task model's class
            (``...ForImageClassification``, ``...ForSemanticSegmentation``).
        isp_learning_rate: learning rate of a trainable ISP's parameters (the training
            scripts' ``--isp_learning_rate``); None keeps them in the task model's groups
            (without weight decay).
        *args, **kwargs: those of ``Trainer``; ``model`` must be a ``RawISPModel``.
    """

    def __init__(self, model: RawISPModel | None = None, args: Any = None, data_collator: Any = None, *more: Any,
                 task: str | None = None, isp_learning_rate: float | None = None, **kwargs: Any) -> None:
        if not isinstance(model, RawISPModel):
            raise TypeError(f"RawISPTrainer trains a raw_isp RawISPModel, got {type(model).__name__}")
        if isp_learning_rate is not None and not isp_learning_rate >= 0:
            raise ValueError(f"isp_learning_rate must be a number >= 0, got {isp_learning_rate!r}")
        self.task = get_task(task).name if task is not None else guess_task(
            SimpleNamespace(architectures=[type(model.model).__name__],
                            model_type=getattr(model.model.config, "model_type", "")))
        self.isp_learning_rate = isp_learning_rate
        if data_collator is None:
            data_collator = RawDataCollator(_default_label_column(self.task))
        super().__init__(model, args, data_collator, *more, **kwargs)

    def raw_model(self) -> RawISPModel:
        """The :class:`RawISPModel` inside whatever wrappers the run added."""
        return self.accelerator.unwrap_model(self.model, keep_torch_compile=False)

    # ------------------------------------------------------------ columns and optimiser

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            super()._set_signature_columns_if_needed()
            extra = getattr(self.data_collator, "columns", ())
            self._signature_columns += [c for c in extra if c not in self._signature_columns]

    def _isp_parameter_names(self, model: torch.nn.Module) -> set[str]:
        isp = {id(p) for p in self.raw_model().isp.parameters()}
        return {name for name, p in model.named_parameters() if id(p) in isp}

    def get_decay_parameter_names(self, model: torch.nn.Module) -> list[str]:
        """``Trainer``'s choice (no biases, no norms), less the ISP's parameters."""
        isp = self._isp_parameter_names(model)
        return [name for name in super().get_decay_parameter_names(model) if name not in isp]

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """``Trainer``'s optimiser; with ``isp_learning_rate``, the trainable ISP parameters move
        to a group of their own at that rate, without weight decay. An optimiser given to the
        constructor (``optimizers=``) is used as it is."""
        given = self.optimizer is not None
        optimizer = super().create_optimizer(model)
        if given or self.isp_learning_rate is None:
            return optimizer
        isp = {id(p) for p in self.raw_model().isp.parameters() if p.requires_grad}
        moved = []
        for group in optimizer.param_groups:
            moved += [p for p in group["params"] if id(p) in isp]
            group["params"] = [p for p in group["params"] if id(p) not in isp]
        if moved:
            optimizer.add_param_group({"params": moved, "lr": self.isp_learning_rate, "weight_decay": 0.0})
        return optimizer

    # ------------------------------------------------------------ saving and loading

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        logger.info("Saving the raw model to %s", output_dir)
        save_raw_model(self.raw_model(), output_dir, task=self.task, state_dict=state_dict)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _restore(self, folder: str | os.PathLike, model: torch.nn.Module | None = None) -> None:
        """Load the weights of a saved folder into the model being trained (strict)."""
        target = self.accelerator.unwrap_model(model if model is not None else self.model, keep_torch_compile=False)
        saved, _ = load_raw_model(folder)
        try:
            target.load_state_dict(saved.state_dict())
        except RuntimeError as err:
            raise ValueError(f"{folder}: its weights do not fit the model being trained ({err})") from None

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        if not (Path(resume_from_checkpoint) / ISP_CONFIG_NAME).is_file():
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        logger.info("Loading the raw model from %s", resume_from_checkpoint)
        self._restore(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        if best is None or not (Path(best) / ISP_CONFIG_NAME).is_file():
            return super()._load_best_model()
        logger.info("Loading the best raw model from %s (score: %s)", best, self.state.best_metric)
        self._restore(best)


# ---------------------------------------------------------------- metrics


def preprocess_logits_for_metrics(logits: torch.Tensor | tuple, labels: torch.Tensor | None) -> torch.Tensor:
    """Predicted classes of a batch, on the device (``Trainer(preprocess_logits_for_metrics=...)``),
    so that the evaluation loop gathers classes instead of logits.

    Classification logits ``(B, C)`` -> ``(B,)`` int64. Segmentation logits ``(B, C, h, w)`` ->
    upsampled bilinearly to the labels' ``(H, W)`` (as every evaluation in the project scores
    them, :func:`~raw_isp.models.modeling.logits_at`), argmax -> ``(B, H, W)`` uint8 (int64 with
    more than 256 classes); without labels at the logits' size.
    """
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    if logits.ndim != 4:
        return logits.argmax(-1)
    if labels is not None:
        logits = logits_at(logits, labels.shape[-2:])
    predictions = logits.argmax(1)
    return predictions.to(torch.uint8) if logits.shape[1] <= 256 else predictions


class RawMetrics:
    """Trainer's ``compute_metrics``: an ``EvalPrediction`` -> ``{metric: float}`` from the
    project's evaluate module of the task (``raw_isp.metrics.load``); see :func:`compute_metrics_fn`.

    Called with ``compute_result`` (``TrainingArguments(batch_eval_metrics=True)``) it adds each
    batch to a streaming metric and returns the scores at the last one; without, it scores the
    whole evaluation at once. Predictions may be logits (classification ``(N, C)``, segmentation
    ``(N, C, h, w)``) or classes from :func:`preprocess_logits_for_metrics`; labels equal to
    -100 (Trainer's padding) are left out. Only single numbers are returned (per-class
    arrays and the confusion matrix are dropped; ``f1_<name>`` / ``iou_<name>`` stay).
    """

    def __init__(self, task: str, label_names: Sequence[str], **compute_kwargs: Any) -> None:
        self.task = get_task(task).name
        self.label_names = list(label_names)
        self.compute_kwargs = compute_kwargs
        self._metric = None

    def __call__(self, eval_pred: Any, compute_result: bool = True) -> dict[str, float]:
        predictions, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(predictions, (tuple, list)):
            predictions = predictions[0]
        labels = torch.as_tensor(labels)
        predictions = torch.as_tensor(predictions)
        if predictions.ndim == labels.ndim + 1:  # logits
            predictions = preprocess_logits_for_metrics(predictions.to(labels.device), labels)
        keep = labels >= 0
        if self._metric is None:
            self._metric = new_metric(self.task, self.label_names)
        self._metric.add_batch(predictions=predictions[keep].cpu().numpy(), references=labels[keep].cpu().numpy())
        if not compute_result:
            return {}
        metric, self._metric = self._metric, None
        results = metric.compute(**self.compute_kwargs)
        return {k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in results.items()
                if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}


def compute_metrics_fn(task: str, label_names: Sequence[str], **compute_kwargs: Any) -> RawMetrics:
    """``compute_metrics`` for ``transformers.Trainer`` (:class:`RawMetrics`).

    Args:
        task: "classification" (accuracy, macro_f1, f1, f1_<name>, ...) or "segmentation"
            (mean_iou, iou_<name>, pixel_accuracy, ...).
        label_names: the class names (their number is the number of classes).
        **compute_kwargs: passed to the metric's ``compute``; classification takes evaluate's
            ``labels=`` and ``average=`` (what ``f1`` holds).
    """
    return RawMetrics(task, label_names, **compute_kwargs)
