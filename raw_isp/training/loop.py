"""The accelerate training loop of the ISP-in-the-loop model.

:func:`train` runs in every process of an ``accelerate launch`` (one process, several GPUs, or
several CPU processes over gloo) and returns a :class:`TrainResult`. What makes runs repeatable:

* the batch order of epoch ``e`` is ``randperm(n)`` from ``seed + e`` (or, with the
  class-balanced sampler, ``multinomial`` draws from the same generator)
  (:class:`~raw_isp.training.data.EpochBatchSampler`, set with ``use_epoch``), the flips of
  step ``s`` are drawn from ``seed`` and ``s``, and the drift augmentation
  (:mod:`~raw_isp.training.augment`: light level, ISP variant, corruption) of each micro-batch
  from ``seed``, the step and the micro-batch's place in it, so a run resumed from a checkpoint
  ends with the same model, bit for bit, as an uninterrupted one;
* checkpoints are written atomically (:mod:`~raw_isp.training.checkpoints`), with the best
  validation so far (and its weights, with ``--load_best_model_at_end``);
* metrics are gathered with ``gather_for_metrics`` (:mod:`~raw_isp.training.evaluation`).

Every batch carries its frames' light ``intensity``, which the model passes to the ISP (the
``--exposure metadata`` gain). ``--class_balance weighted_loss`` replaces the model's own loss
by a class-weighted cross-entropy (:func:`task_loss`); otherwise the model computes its loss.
The training loss is summed on the device and read once per logging window, so the host does
not wait for the device every step.

Callers watch the run through :class:`~raw_isp.training.callbacks.TrainingCallback` objects.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..isp.threads import contention_warning
from ..models.modeling import RawISPModel, build_isp, build_task_model, logits_at, model_input_size, parse_isp
from .arguments import OptionError, RawTrainingArguments
from .augment import DriftAugmentation, compose
from .callbacks import TrainingCallback
from .checkpoints import read_best_model, read_checkpoint_state, save_checkpoint
from ..data.arrow import RawBatches
from .data import (RawCollate, balanced_weights, class_counts, flips, label_names as split_label_names, load_splits,
                   make_loader)
from .evaluation import constant_prediction_scores, evaluate_model, prefixed
from .outputs import prepare_output_dir
from ..registry import get_task

__all__ = ["TrainResult", "build_model", "dice_loss", "reference_gain", "task_loss", "train"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` returns: the prepared model, accelerator and loaders, the label names,
    ``results`` (``eval_*``, ``test_*``, sample and step counts: ``all_results.json``) and
    ``history`` (one entry per logging window and per validation)."""

    model: Any
    accelerator: Any
    loaders: dict[str, Any]
    label_names: list[str]
    results: dict[str, Any]
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class StepPlan:
    """Optimiser steps of a run: per epoch (over all processes), in all, epochs, warm-up."""

    steps_per_epoch: int
    max_steps: int
    num_epochs: int
    warmup: int


def build_model(args: RawTrainingArguments, label_names: list[str]) -> RawISPModel:
    """ISP + task model + processor for the run's settings (random initial weights are drawn
    from torch's global generator: seed it first)."""
    from ..models.processor import CAMERA_NORMALIZATION, RawISPImageProcessor

    camera = args.camera_name
    try:
        task_model = build_task_model(args.task, args.model_name_or_path, label_names, args.image_size)
    except ValueError as err:  # a message that names its own option (--image_size) keeps it
        message = str(err)
        raise OptionError(message if message.startswith("--") else f"--model_name_or_path: {message}") from None
    # The task model is drawn first and the ISP (a learned ISP draws its own initial weights)
    # from a forked generator, so every ISP kind starts from the same task-model weights and
    # leaves the global generator as a static ISP does.
    with torch.random.fork_rng(devices=[]):
        isp = build_isp(args.isp, camera=camera, exposure=args.exposure_setting)
    size = model_input_size(task_model, args.image_size)
    processor = RawISPImageProcessor(isp=parse_isp(args.isp).variant or "bi_s_ga", camera=camera, size=size,
                                     exposure=args.exposure_setting, **CAMERA_NORMALIZATION.get(camera, {}))
    return RawISPModel(isp, task_model, processor)


def task_loss(logits: torch.Tensor, labels: torch.Tensor, task: str, weight: torch.Tensor | None = None,
              ignore_index: int = 255, loss: str = "ce") -> torch.Tensor:
    """The training loss of a batch.

    ``loss="ce"``: mean cross-entropy with class weights ``weight (C,)`` (PyTorch's weighted mean:
    divided by the summed weights of the targets); with ``weight`` None or all ones it equals the
    transformers models' own loss. ``"dice"``: the soft Dice loss of the foreground classes
    (1..C-1; every class when C = 1), ``1 - (2 sum(p y) + 1) / (sum(p) + sum(y) + 1)`` over all
    pixels of the batch, averaged over those classes (``p``: softmax probability, ``y``: one-hot
    label), insensitive to how small the foreground is; ``"dice_ce"``: their sum.
    Classification ``logits (B, C)``; segmentation ``logits (B, C, h, w)`` upsampled bilinearly to
    the masks' ``(H, W)`` first (as SegFormer's own loss does), pixels labelled ``ignore_index``
    left out."""
    logits = logits_at(logits, labels.shape[-2:]) if get_task(task).dense else logits.float()
    total = 0.0
    if loss in ("ce", "dice_ce"):
        total = torch.nn.functional.cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index)
    if loss in ("dice", "dice_ce"):
        total = total + dice_loss(logits, labels, ignore_index)
    if loss not in ("ce", "dice", "dice_ce"):
        raise ValueError(f"loss must be ce, dice or dice_ce, got {loss!r}")
    return total


def dice_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Soft Dice loss of the foreground classes (see :func:`task_loss`): ``logits (B, C, H, W)``,
    ``labels (B, H, W)`` int64 class indices -> a scalar in [0, 1)."""
    probs = logits.float().softmax(1)
    valid = (labels != ignore_index).unsqueeze(1)
    onehot = torch.nn.functional.one_hot(labels.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
    probs, onehot = probs * valid, onehot.to(probs.dtype) * valid
    dims = (0, 2, 3)
    inter, total = (probs * onehot).sum(dims), probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + 1) / (total + 1)
    fg = dice[1:] if dice.numel() > 1 else dice
    return 1 - fg.mean()


def _make_accelerator(args: RawTrainingArguments):
    from accelerate import Accelerator, DataLoaderConfiguration

    tracking = {"log_with": args.report_to, "project_dir": args.output_dir} if args.with_tracking else {}
    # Without any accelerator, say cpu=True: accelerate then joins the processes of a torchrun
    # launch over gloo (multi-CPU) instead of running each one on its own.
    has_device = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    # Pinned batches (make_loader pins on CUDA) are copied to the device asynchronously.
    loading = DataLoaderConfiguration(non_blocking=torch.cuda.is_available())
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              mixed_precision=args.mixed_precision, cpu=not has_device,
                              dataloader_config=loading, **tracking)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO if accelerator.is_main_process else logging.WARNING)
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file otherwise
    return accelerator


def _optimizer(model: RawISPModel, args: RawTrainingArguments, reference_gain: float = 1.0) -> torch.optim.Optimizer:
    """AdamW (``--optim adam``: Adam, one group without weight decay, as Raw2Logit): weight decay
    on the task model's matrices only; a trainable ISP at ``--isp_learning_rate``. With
    ``--isp_rate_units developed`` an ISP that offers :meth:`optimizer_groups` (the parametrized
    one) gets its black level's rate divided by ``reference_gain``, the exposure gain of the
    training frames, so that a step moves the developed view alike at every light level."""
    isp_params = [p for p in model.isp.parameters() if p.requires_grad]
    if args.optim == "adam":
        groups = [{"params": [p for p in model.model.parameters()], "weight_decay": 0.0}]
    else:
        decay = [p for n, p in model.model.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in model.model.named_parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if isp_params:
        if args.isp_rate_units == "developed" and hasattr(model.isp, "optimizer_groups"):
            groups += model.isp.optimizer_groups(args.isp_learning_rate, reference_gain)
        else:
            groups.append({"params": isp_params, "weight_decay": 0.0, "lr": args.isp_learning_rate})
    kind = torch.optim.Adam if args.optim == "adam" else torch.optim.AdamW
    return kind(groups, lr=args.learning_rate)


def reference_gain(model: RawISPModel, train_split, args: RawTrainingArguments, n: int = 32) -> float:
    """The mean exposure gain of the ISP on the first ``n`` training frames (1 without an
    exposure stage): the light level the ISP's optimiser groups are scaled to."""
    gain_fn = getattr(model.isp, "exposure_gain", None)
    if (args.isp_rate_units != "developed" or not hasattr(model.isp, "optimizer_groups") or gain_fn is None
            or not any(p.requires_grad for p in model.isp.parameters())):
        return 1.0
    from ..models.modeling import decode_raw

    batch = RawCollate(args.label_column, args.intensity)(
        RawBatches(train_split.select_columns([c for c in ("image", args.label_column, "intensity")
                                               if c in train_split.column_names]), output="torch")[
            list(range(min(n, len(train_split))))])
    with torch.no_grad():
        gain = gain_fn(decode_raw(batch["raw"]), intensity=batch["intensity"])
    return 1.0 if gain is None else float(torch.as_tensor(gain, dtype=torch.float64).mean())


def _class_balance(args: RawTrainingArguments, train_split, names: list[str]):
    """``(class weights (C,) or None, per-example sampling weights (N,) or None)`` for
    ``--class_balance`` (:func:`~raw_isp.training.data.balanced_weights` of the training
    split's class counts: images, or pixels for masks)."""
    if args.class_balance == "none":
        return None, None
    counts = class_counts(train_split, args.label_column, len(names))
    try:
        weights = balanced_weights(counts)
    except ValueError as err:
        raise OptionError(f"--class_balance {args.class_balance}: {err}") from None
    logger.info("--class_balance %s: training counts %s, class weights %s", args.class_balance,
                dict(zip(names, counts.tolist())), dict(zip(names, [round(w, 3) for w in weights.tolist()])))
    if args.class_balance == "weighted_loss":
        return weights, None
    labels = torch.as_tensor(train_split[args.label_column], dtype=torch.int64)
    return None, weights.double()[labels]


def _plan(args: RawTrainingArguments, n_train: int, num_processes: int) -> StepPlan:
    bs = args.per_device_train_batch_size
    per_epoch = math.ceil(math.ceil(n_train / bs) / num_processes / args.gradient_accumulation_steps)
    max_steps = args.max_train_steps or args.num_train_epochs * per_epoch
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else max(1, int(0.05 * max_steps))
    return StepPlan(per_epoch, max_steps, math.ceil(max_steps / per_epoch), warmup)


def _resume(args: RawTrainingArguments, accelerator, plan: StepPlan) -> tuple[int, int, int, dict[str, Any]]:
    """Load ``--resume_from_checkpoint``; returns (completed steps, first epoch, batches of that
    epoch to skip, the checkpoint's state: history, best), all 0 / empty for a fresh run."""
    if not args.resume_from_checkpoint:
        return 0, 0, 0, {"history": [], "best": None, "best_state": None}
    folder = args.resume_from_checkpoint
    try:
        accelerator.load_state(folder)
        state = read_checkpoint_state(folder)
        state["best_state"] = read_best_model(folder) if args.load_best_model_at_end else None
    except Exception as err:  # noqa: BLE001 - any failure here means an unusable checkpoint
        raise OptionError(f"--resume_from_checkpoint {folder}: cannot load it ({err})") from None
    best = state["best"]
    if best is not None and best["metric"] != args.metric_for_best_model:
        raise OptionError(f"--resume_from_checkpoint {folder}: its best epoch was chosen by {best['metric']}, "
                          f"this run chooses by --metric_for_best_model {args.metric_for_best_model}")
    if best is not None and args.load_best_model_at_end and state["best_state"] is None:
        raise OptionError(f"--resume_from_checkpoint {folder}: has no best model's weights (written with "
                          "--no_load_best_model_at_end); resume with that option")
    done = state["completed_steps"]
    logger.info("resumed from %s at step %d", folder, done)
    return done, done // plan.steps_per_epoch, (done % plan.steps_per_epoch) * args.gradient_accumulation_steps, state


class _Loop:
    """The state of one run between :func:`train`'s set-up and its final evaluation."""

    def __init__(self, args, accelerator, model, optimizer, scheduler, loaders, sampler, names, plan, callbacks,
                 augmentation: DriftAugmentation | None = None, class_weights: torch.Tensor | None = None):
        self.args, self.accelerator, self.model = args, accelerator, model
        self.optimizer, self.scheduler, self.loaders = optimizer, scheduler, loaders
        self.sampler = sampler  # the training EpochBatchSampler (prepared loaders wrap it)
        self.label_names, self.plan, self.callbacks = names, plan, list(callbacks)
        self.augment = flips(args.seed) if args.augment == "flips" else None
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.class_weights = class_weights
        self.isp_params = [p for p in accelerator.unwrap_model(model).isp.parameters() if p.requires_grad]
        self._deferred_checkpoint = False  # a step checkpoint due on an epoch's last step
        self._evaluate_each_epoch = True
        self.history: list[dict[str, Any]] = []
        self.completed_steps = 0
        self._micro = 0  # micro-batches of the current optimiser step done so far
        self._window = (None, 0, time.perf_counter())  # loss sum (a device tensor), images, start
        # The best validation so far ({"metric", "epoch", "step", "value"}) and, when it is to be
        # restored at the end, its weights (CPU copies).
        self.best: dict[str, Any] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def _emit(self, event: str, *payload: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(*payload)

    def run(self, start_epoch: int, skip_batches: int, evaluate_each_epoch: bool, progress) -> None:
        every = self.args.checkpointing_steps
        self._evaluate_each_epoch = evaluate_each_epoch
        for epoch in range(start_epoch, self.plan.num_epochs):
            self.run_epoch(epoch, skip_batches if epoch == start_epoch else 0, progress)
            done = self.completed_steps >= self.plan.max_steps
            if (evaluate_each_epoch or done) and not self._validated_at(self.completed_steps):
                self.validate(epoch)
            # A step checkpoint that fell on the epoch's last step is written after that epoch's
            # validation: a run resumed from it starts the next epoch, so the validation (and its
            # best-model candidate) must already be in it.
            if every == "epoch" or self._deferred_checkpoint:
                self._deferred_checkpoint = False
                self.checkpoint(epoch)
            if done:
                break

    def _validated_at(self, step: int) -> bool:
        """Whether the history already holds a validation at ``step`` (a run resumed from the
        checkpoint written after the last step's validation)."""
        return any(h.get("step") == step and "eval_loss" in h for h in self.history)

    def _ends_epoch(self) -> bool:
        """Whether the step just completed is the last of its epoch (or of the run) and a
        validation follows it."""
        last = self.completed_steps % self.plan.steps_per_epoch == 0 or self.completed_steps >= self.plan.max_steps
        return last and (self._evaluate_each_epoch or self.completed_steps >= self.plan.max_steps)

    def run_epoch(self, epoch: int, skip_batches: int, progress) -> None:
        self.model.train()
        self.sampler.use_epoch(epoch)
        loader = self.loaders["train"]
        if skip_batches:
            loader = self.accelerator.skip_first_batches(loader, skip_batches)
        every = self.args.checkpointing_steps
        for batch in loader:
            if self.completed_steps >= self.plan.max_steps:
                break  # resumed from the last step's checkpoint: nothing left to train
            if not self.step(batch):
                continue
            progress.update(1)
            if self.completed_steps % self.args.logging_steps == 0 or self.completed_steps == self.plan.max_steps:
                self.log(epoch, progress)
            if every and every != "epoch" and self.completed_steps % int(every) == 0:
                if self._ends_epoch():
                    self._deferred_checkpoint = True
                else:
                    self.checkpoint(epoch)
            if self.completed_steps >= self.plan.max_steps:
                break

    def inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The model's keyword arguments for a training micro-batch: the raw frames and their
        intensities after the light augmentation, the ISP variant, and the view augmentation
        (corruption, then flips), all drawn for this micro-batch (see the module docstring)."""
        raw, intensity, isp, corruption = batch["raw"], batch["intensity"], None, None
        if self.augmentation is not None:
            raw, intensity, isp, corruption, _ = self.augmentation(
                raw, intensity, self.completed_steps, self._micro, self.accelerator.process_index)
        flip = None if self.augment is None else (lambda rgb, s=self.completed_steps: self.augment(rgb, s))
        inputs = {"raw": raw, "intensity": intensity, "augment": compose(corruption, flip)}
        if isp is not None:
            inputs["isp"] = isp
        return inputs

    def step(self, batch: dict[str, torch.Tensor]) -> bool:
        """One micro-batch; True when it completed an optimiser step."""
        acc = self.accelerator
        inputs = self.inputs(batch)
        with acc.accumulate(self.model):
            with acc.autocast():
                if self.class_weights is None and self.args.loss == "ce":
                    loss = self.model(**inputs, labels=batch["labels"]).loss
                else:
                    logits = self.model(**inputs).logits
                    loss = task_loss(logits, batch["labels"], self.args.task, self.class_weights, loss=self.args.loss)
            acc.backward(loss)
            if self.isp_params and self.args.isp_max_grad_norm and acc.sync_gradients:
                acc.clip_grad_norm_(self.isp_params, self.args.isp_max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
        total, images, start = self._window
        total = loss.detach().float() if total is None else total + loss.detach().float()
        self._window = (total, images + batch["raw"].shape[0] * acc.num_processes, start)
        if not acc.sync_gradients:
            self._micro += 1
            return False
        self._micro = 0
        self.completed_steps += 1
        return True

    def log(self, epoch: int, progress) -> None:
        total, images, start = self._window
        elapsed = time.perf_counter() - start
        n_micro = max(1, images // (self.args.per_device_train_batch_size * self.accelerator.num_processes))
        # Each process's sum of its micro-batch losses, averaged over the processes (every process logs).
        loss = float(self.accelerator.reduce(total, "mean")) if total is not None else float("nan")
        logs = {"train_loss": loss / n_micro, "lr": self.scheduler.get_last_lr()[0],
                "images_per_second": images / max(elapsed, 1e-9), "epoch": epoch}
        progress.set_postfix(loss=f"{logs['train_loss']:.3f}", lr=f"{logs['lr']:.2e}",
                             img_s=f"{logs['images_per_second']:.1f}")
        if self.args.with_tracking:
            self.accelerator.log(logs, step=self.completed_steps)
        self.history.append({"step": self.completed_steps, **logs})
        self._emit("on_log", self.completed_steps, logs)
        self._window = (None, 0, time.perf_counter())

    def validate(self, epoch: int) -> None:
        metrics = evaluate_model(self.model, self.loaders["validation"], self.accelerator, self.args.task,
                                 self.label_names)
        headline = {k: metrics[k] for k in self.args.headline_metrics if k in metrics}
        logger.info("epoch %d step %d validation: %s", epoch, self.completed_steps,
                    ", ".join(f"{k} {v:.4f}" for k, v in headline.items()))
        self.history.append({"step": self.completed_steps, "epoch": epoch,
                             **{f"eval_{k}": v for k, v in headline.items()}, "eval_loss": metrics["loss"]})
        if self.args.with_tracking:
            self.accelerator.log({f"eval_{k}": v for k, v in headline.items()}, step=self.completed_steps)
        self.track_best(epoch, metrics)
        self._emit("on_evaluate", self.completed_steps, epoch, metrics)

    def track_best(self, epoch: int, metrics: dict[str, Any]) -> None:
        """Keep the best validation so far (strictly better replaces it: ties keep the earlier
        epoch; NaN never wins) and, with ``--load_best_model_at_end``, a copy of its weights."""
        name = self.args.metric_for_best_model
        if name not in metrics:
            known = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)))
            raise OptionError(f"--metric_for_best_model {name}: the validation has no such metric; it has {known}")
        value = float(metrics[name])
        if math.isnan(value):
            return
        if self.best is not None:
            best = self.best["value"]
            if not (value > best if self.args.greater_is_better else value < best):
                return
        self.best = {"metric": name, "epoch": epoch, "step": self.completed_steps, "value": value}
        if self.args.load_best_model_at_end:
            net = self.accelerator.unwrap_model(self.model)
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}

    def restore_best(self) -> None:
        """Load the best epoch's weights into the model (when they are not the current ones)."""
        if not self.args.load_best_model_at_end or self.best is None or self.best["step"] == self.completed_steps:
            return
        net = self.accelerator.unwrap_model(self.model)
        net.load_state_dict(self.best_state)
        logger.info("restored the best validation epoch %d (step %d, %s %.4f)", self.best["epoch"], self.best["step"],
                    self.best["metric"], self.best["value"])

    def baseline(self, splits) -> dict[str, Any]:
        """The trivial baseline's test scores (the training split's most frequent class for every
        image or pixel; :func:`~raw_isp.training.evaluation.constant_prediction_scores`)."""
        k, column = len(self.label_names), self.args.label_column
        return constant_prediction_scores(class_counts(splits["train"], column, k),
                                          class_counts(splits["test"], column, k), self.args.task, self.label_names)

    def checkpoint(self, epoch: int) -> None:
        folder = save_checkpoint(self.accelerator, self.args.output_dir, self.completed_steps, epoch,
                                 history=self.history, best=self.best, best_state=self.best_state)
        self._emit("on_checkpoint", self.completed_steps, folder)

    def final_results(self, splits) -> dict[str, Any]:
        acc, task, names = self.accelerator, self.args.task, self.label_names
        self.restore_best()
        eval_metrics = evaluate_model(self.model, self.loaders["validation"], acc, task, names)
        test_metrics = evaluate_model(self.model, self.loaders["test"], acc, task, names)
        results = {**prefixed("eval", eval_metrics), **prefixed("test", test_metrics),
                   "train_steps": self.completed_steps, "train_samples": len(splits["train"]),
                   "eval_samples": len(splits["validation"]), "test_samples": len(splits["test"])}
        baseline = self.baseline(splits)
        results.update({f"test_baseline_{k}": v for k, v in baseline.items() if k == "class"
                        or k in self.args.headline_metrics})
        if self.best is not None:
            results.update({"metric_for_best_model": self.best["metric"], "best_metric": self.best["value"],
                            "best_epoch": self.best["epoch"], "best_step": self.best["step"],
                            "best_model_restored": bool(self.args.load_best_model_at_end)})
        if self.args.with_tracking:
            acc.log({k: v for k, v in results.items() if isinstance(v, (int, float))}, step=self.completed_steps)
            acc.end_training()
        self._emit("on_train_end", results)
        return results


def train(args: RawTrainingArguments, splits=None, callbacks: Sequence[TrainingCallback] = (),
          evaluate_each_epoch: bool = True) -> TrainResult:
    """Train per ``args`` and return the model and metrics (:class:`TrainResult`).

    Runs in every process of an ``accelerate launch``. The output folder is checked (and, with
    ``--overwrite_output_dir``, cleared of the earlier run) before any data is loaded.
    ``splits``: a ready ``DatasetDict`` (else :func:`~raw_isp.training.data.load_splits`).
    ``callbacks``: :class:`TrainingCallback` objects. ``evaluate_each_epoch``: validate after
    every epoch (else only after the last step).
    """
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    accelerator = _make_accelerator(args)
    prepare_output_dir(args, accelerator.is_main_process)
    accelerator.wait_for_everyone()
    set_seed(args.seed)
    if splits is None:
        with accelerator.main_process_first():
            splits = load_splits(args)
    names = split_label_names(splits["train"], args.label_column)
    model = build_model(args, names)
    class_weights, sample_weights = _class_balance(args, splits["train"], names)
    bs, eval_bs, workers = args.per_device_train_batch_size, args.per_device_eval_batch_size, args.dataloader_num_workers
    where = {"num_workers": workers, "intensity": args.intensity, "device": accelerator.device}
    loaders = {"train": make_loader(splits["train"], args.label_column, bs, True, args.seed, weights=sample_weights,
                                    **where)}
    for name in ("validation", "test"):
        loaders[name] = make_loader(splits[name], args.label_column, eval_bs, False, 0, **where)
    sampler = loaders["train"].batch_sampler
    optimizer = _optimizer(model, args, reference_gain(model, splits["train"], args))
    plan = _plan(args, len(splits["train"]), accelerator.num_processes)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer,
                              num_warmup_steps=plan.warmup * accelerator.num_processes,
                              num_training_steps=plan.max_steps * accelerator.num_processes)
    model, optimizer, scheduler, loaders["train"], loaders["validation"], loaders["test"] = accelerator.prepare(
        model, optimizer, scheduler, loaders["train"], loaders["validation"], loaders["test"])
    if args.with_tracking:
        accelerator.init_trackers(f"raw-{args.task}", {k: v for k, v in args.to_dict().items()
                                                        if isinstance(v, (int, float, str, bool))})
    completed, start_epoch, skip, state = _resume(args, accelerator, plan)

    augmentation = DriftAugmentation.from_args(args)
    if class_weights is not None:
        class_weights = class_weights.to(accelerator.device)
    loop = _Loop(args, accelerator, model, optimizer, scheduler, loaders, sampler, names, plan, callbacks,
                 augmentation=augmentation, class_weights=class_weights)
    loop.completed_steps = completed
    loop.history, loop.best, loop.best_state = state["history"], state["best"], state["best_state"]
    logger.info("training %s (%s) with ISP %s on %d %s images: %d steps of batch %d x %d accumulation x %d "
                "process(es) on %s", type(accelerator.unwrap_model(model).model).__name__, args.model_name_or_path,
                args.isp, len(splits["train"]), args.dataset, plan.max_steps, bs, args.gradient_accumulation_steps,
                accelerator.num_processes, accelerator.device)
    if accelerator.device.type == "cpu" and (busy := contention_warning()):
        logger.warning(busy)
    progress = tqdm(total=plan.max_steps, initial=completed, disable=not accelerator.is_local_main_process,
                    desc="train", dynamic_ncols=True)
    loop.run(start_epoch, skip, evaluate_each_epoch, progress)
    progress.close()
    results = loop.final_results(splits)
    return TrainResult(model, accelerator, loaders, names, results, loop.history)
