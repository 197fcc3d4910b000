"""What the two training scripts share: arguments, data, the ISP-in-the-loop model, the
accelerate training loop, evaluation with the project's ``evaluate`` modules, and saving.

``train_classification.py`` and ``train_segmentation.py`` are thin front ends that call
:func:`main` with their task; the drift scripts reuse :func:`load_splits`, :func:`evaluate_model`
and :func:`train` from here, so there is one training loop and one evaluation.

Shapes: raw batches ``(B, H, W)`` uint16 travel as their int16 bit view to the device;
labels ``(B,)`` int64 (classification) or masks ``(B, H, W)`` int64 (segmentation).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import raw_isp
import raw_isp.metrics
from raw_isp.data.arrow import RawBatches
from raw_isp.models.modeling import (MODEL_PRESETS, RawISPModel, build_isp, build_task_model, model_input_size, parse_isp,
                              save_raw_model, task_outputs)

logger = logging.getLogger("raw_training")

TASKS = ("classification", "segmentation")
DATASETS = ("raw_microscopy", "raw_drone")
CHECKPOINT_PREFIX = "step_"
STATE_FILE = "trainer_state.json"


# ---------------------------------------------------------------- arguments

def _intensity(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--intensity must be a number in (0, 1], got {value!r}") from None
    if not (0.0 < x <= 1.0):
        raise argparse.ArgumentTypeError(f"--intensity must be in (0, 1], got {value}")
    return x


def _isp(value: str) -> str:
    try:
        return str(parse_isp(value))
    except (ValueError, TypeError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def build_parser(task: str) -> argparse.ArgumentParser:
    """The argument parser of a training script; defaults train a small model on synthetic data."""
    seg = task == "segmentation"
    p = argparse.ArgumentParser(
        description=f"Fine-tune a {'SegFormer' if seg else 'ViT'} on raw images with the ISP in the loop "
        "(run with `accelerate launch` for several processes or GPUs).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="raw_drone" if seg else "raw_microscopy",
                   help="which dataset package to train on" + ("" if seg else " (raw_drone: its classification task)"))
    g.add_argument("--dataset_config", default=None,
                   help="a config of the dataset (default: the task's raw config at --intensity)")
    g.add_argument("--data_dir", default=None,
                   help="a local copy of the real data (folder or .zip) in the published layout; default: synthetic")
    g.add_argument("--source", choices=("synthetic", "local", "zenodo"), default=None,
                   help="where the data comes from (default: local with --data_dir, else synthetic)")
    g.add_argument("--intensity", type=_intensity, default=1.0,
                   help="light intensity ratio of the frames to train on, one of the captured ratios "
                   "(1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)")
    g.add_argument("--fold", type=int, default=None, help="cross-validation fold (default: the fixed split)")
    g.add_argument("--n_folds", type=int, default=5)
    g.add_argument("--num_examples", type=_positive_int, default=None,
                   help="use only this many source examples (cells / tiles) before splitting, for quick runs")
    g.add_argument("--num_scenes", type=_positive_int, default=None,
                   help="raw_drone synthetic source: number of frames (default 12)")
    g.add_argument("--frame_size", type=_positive_int, nargs=2, default=None, metavar=("HEIGHT", "WIDTH"),
                   help="raw_drone synthetic source: frame size (default 2560 3840)")
    g.add_argument("--max_train_samples", type=_positive_int, default=None)
    g.add_argument("--max_eval_samples", type=_positive_int, default=None,
                   help="truncate the validation and test splits (quick runs)")
    g.add_argument("--cache_dir", default=None, help="datasets cache folder")
    g.add_argument("--dataloader_num_workers", type=int, default=0)

    g = p.add_argument_group("model and ISP")
    presets = [k for k, v in MODEL_PRESETS.items() if v["model_type"] == ("segformer" if seg else "vit")]
    g.add_argument("--model_name_or_path", default="segformer-b0" if seg else "vit-tiny-32",
                   help=f"an offline preset with random weights ({', '.join(presets)}), a Hub id "
                   "(e.g. " + ("nvidia/mit-b0" if seg else "google/vit-base-patch16-224-in21k") + ") or a local folder")
    g.add_argument("--isp", type=_isp, default="static:bi_s_ga",
                   help="static:<variant> (one of the 12), parametrized[:<variant>] (learned jointly), "
                   "parametrized-frozen[:<variant>], or learned (a small U-Net from the Bayer planes)")
    g.add_argument("--camera", default=None,
                   help="colour preset of the ISP (neutral, drone, microscopy; default: the dataset's camera)")
    g.add_argument("--image_size", type=_positive_int, default=256,
                   help="model input size for presets (the raw tiles are 256x256)")
    g.add_argument("--augment", choices=("none", "flips"), default="flips",
                   help="flips: random horizontal/vertical flips and 90-degree turns of the developed view")

    g = p.add_argument_group("optimisation")
    g.add_argument("--per_device_train_batch_size", type=_positive_int, default=8 if seg else 32)
    g.add_argument("--per_device_eval_batch_size", type=_positive_int, default=32 if seg else 64)
    g.add_argument("--learning_rate", type=float, default=6e-4 if seg else 5e-4)
    g.add_argument("--isp_learning_rate", type=float, default=1e-3, help="learning rate of a trainable ISP")
    g.add_argument("--weight_decay", type=float, default=0.05)
    g.add_argument("--num_train_epochs", type=_positive_int, default=3 if seg else 8)
    g.add_argument("--max_train_steps", type=_positive_int, default=None, help="overrides --num_train_epochs")
    g.add_argument("--gradient_accumulation_steps", type=_positive_int, default=1)
    g.add_argument("--lr_scheduler_type", default="cosine",
                   choices=("linear", "cosine", "constant", "constant_with_warmup"))
    g.add_argument("--num_warmup_steps", type=int, default=None, help="default: 5%% of the steps")
    g.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=None,
                   help="default: accelerate's configuration (the ISP always runs in float32)")
    g.add_argument("--seed", type=int, default=42)

    g = p.add_argument_group("output")
    g.add_argument("--output_dir", default=f"outputs/{task}",
                   help="model, processor, ISP, all_results.json and model card go here")
    g.add_argument("--checkpointing_steps", default=None,
                   help="save the training state every N steps, or 'epoch'")
    g.add_argument("--resume_from_checkpoint", nargs="?", const="latest", default=None,
                   help="a checkpoint folder, or no value for the latest one in --output_dir")
    g.add_argument("--with_tracking", action="store_true", help="log metrics to the trackers of --report_to")
    g.add_argument("--report_to", default="all", help="trackers for --with_tracking (e.g. tensorboard)")
    g.add_argument("--logging_steps", type=_positive_int, default=10)
    g.add_argument("--push_to_hub", action="store_true")
    g.add_argument("--hub_model_id", default=None)
    g.add_argument("--hub_token", default=None)
    return p


def parse_args(task: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check everything that can be checked before data or models are touched."""
    parser = build_parser(task)
    args = parser.parse_args(argv)
    args.task = task
    if args.data_dir is not None and not Path(args.data_dir).exists():
        parser.error(f"--data_dir {args.data_dir}: no such file or folder")
    if args.source is None:
        args.source = "local" if args.data_dir is not None else "synthetic"
    if args.source == "local" and args.data_dir is None:
        parser.error("--source local needs --data_dir")
    if args.camera is not None and args.camera not in raw_isp.CAMERAS:
        parser.error(f"--camera {args.camera!r}: expected one of {sorted(raw_isp.CAMERAS)}")
    module = _dataset_module(args.dataset)
    if args.intensity not in module.INTENSITIES:
        parser.error(f"--intensity {args.intensity}: the data is captured at {module.INTENSITIES}; choose one of those")
    if args.checkpointing_steps is not None and args.checkpointing_steps != "epoch":
        if not args.checkpointing_steps.isdigit() or int(args.checkpointing_steps) <= 0:
            parser.error(f"--checkpointing_steps must be a positive integer or 'epoch', got {args.checkpointing_steps!r}")
    if args.resume_from_checkpoint is not None:
        try:
            args.resume_from_checkpoint = find_checkpoint(args.resume_from_checkpoint, args.output_dir)
        except ValueError as err:
            parser.error(str(err))
    if args.task == "segmentation" and args.dataset != "raw_drone":
        parser.error("--dataset: segmentation needs raw_drone (Raw-Microscopy has class labels only)")
    return args


# ---------------------------------------------------------------- checkpoints

def _checkpoint_step(folder: Path) -> int | None:
    name = folder.name
    if not name.startswith(CHECKPOINT_PREFIX) or not name[len(CHECKPOINT_PREFIX):].isdigit():
        return None
    return int(name[len(CHECKPOINT_PREFIX):])


def find_checkpoint(spec: str, output_dir: str) -> str:
    """Resolve ``--resume_from_checkpoint`` (a folder or "latest") and check the folder is complete."""
    if spec == "latest":
        root = Path(output_dir)
        found = sorted((s, d) for d in root.glob(f"{CHECKPOINT_PREFIX}*") if (s := _checkpoint_step(d)) is not None)
        if not found:
            raise ValueError(f"--resume_from_checkpoint: no checkpoint ({CHECKPOINT_PREFIX}N folder) in {root}")
        folder = found[-1][1]
    else:
        folder = Path(spec)
    if not folder.is_dir():
        raise ValueError(f"--resume_from_checkpoint {folder}: no such folder")
    state = folder / STATE_FILE
    try:
        info = json.loads(state.read_text())
        int(info["completed_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"--resume_from_checkpoint {folder}: {STATE_FILE} is missing or unreadable; the checkpoint "
                         "is incomplete or corrupt") from None
    weights = list(folder.glob("model*.safetensors")) + list(folder.glob("pytorch_model*.bin"))
    if not weights or not (folder / "optimizer.bin").is_file():
        raise ValueError(f"--resume_from_checkpoint {folder}: model or optimizer state is missing; "
                         "the checkpoint is incomplete or corrupt")
    return str(folder)


def save_checkpoint(accelerator, output_dir: str, completed_steps: int, epoch: int) -> str:
    """Save the full training state into ``<output_dir>/step_<N>`` atomically (a temporary
    folder renamed when complete), so a killed run never leaves a half-written checkpoint."""
    final = Path(output_dir) / f"{CHECKPOINT_PREFIX}{completed_steps}"
    tmp = Path(output_dir) / f".tmp_{CHECKPOINT_PREFIX}{completed_steps}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({"completed_steps": completed_steps, "epoch": epoch}) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    accelerator.wait_for_everyone()
    return str(final)


# ---------------------------------------------------------------- data

def _dataset_module(name: str):
    if name == "raw_microscopy":
        import raw_microscopy

        return raw_microscopy
    if name == "raw_drone":
        import raw_drone

        return raw_drone
    raise ValueError(f"--dataset must be one of {DATASETS}, got {name!r}")


def dataset_camera(dataset: str) -> str:
    """The camera preset of a dataset ("raw_microscopy" -> "microscopy")."""
    return dataset.removeprefix("raw_")


def default_config(args: argparse.Namespace) -> str:
    if args.dataset_config:
        return args.dataset_config
    if args.dataset == "raw_microscopy":
        return "raw"
    return args.task


def load_splits(args: argparse.Namespace, intensity: float | str | None = None):
    """The train / validation / test splits as a ``DatasetDict`` (uint16 frames) at
    ``intensity`` (default ``args.intensity``; "all": every captured intensity, one config)."""
    module = _dataset_module(args.dataset)
    ratio = args.intensity if intensity is None else (None if intensity == "all" else intensity)
    kwargs: dict[str, Any] = dict(source=args.source, data_dir=args.data_dir, cache_dir=args.cache_dir,
                                  intensity=ratio, seed=0, n_folds=args.n_folds, fold=args.fold)
    if args.num_examples:
        kwargs["num_examples" if args.dataset == "raw_microscopy" else "num_tiles"] = args.num_examples
    if args.dataset == "raw_drone" and args.source == "synthetic":
        if args.num_scenes:
            kwargs["num_scenes"] = args.num_scenes
        if args.frame_size:
            kwargs["frame_height"], kwargs["frame_width"] = args.frame_size
    splits = module.load_dataset(default_config(args), **kwargs)
    missing = [name for name in ("train", "validation", "test") if name not in splits or len(splits[name]) == 0]
    if missing:
        raise SystemExit(f"error: the {'/'.join(missing)} split(s) of {args.dataset} ({default_config(args)}) are "
                         "empty: too few source examples; use more (--num_examples, --num_scenes)")
    for name, limit in (("train", args.max_train_samples), ("validation", args.max_eval_samples),
                        ("test", args.max_eval_samples)):
        if limit is not None and name in splits and len(splits[name]) > limit:
            splits[name] = splits[name].select(range(limit))
    return splits


def label_info(splits, task: str) -> tuple[str, list[str]]:
    """The label column and label names of a split set."""
    features = splits["train"].features
    if task == "segmentation":
        names = list(getattr(features.get("mask"), "names", None) or ["background", "car"])
        return "mask", names
    return "label", list(features["label"].names)


class EpochBatchSampler(torch.utils.data.BatchSampler):
    """Batches of a fixed permutation per epoch: ``randperm(n)`` from ``seed + epoch``, so the
    order of any epoch is known without replaying earlier ones (resuming mid-run is exact).

    The epoch is set with :meth:`use_epoch`, not ``set_epoch``: accelerate's loaders call
    ``set_epoch`` with their own count of iterations, which restarts at 0 after a resume."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False) -> None:
        super().__init__(range(n), batch_size, drop_last)
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def use_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            order = list(range(self.n))
        for i in range(0, self.n, self.batch_size):
            batch = order[i:i + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch


class _Collate:
    """Batches as the model takes them: ``raw`` int16 bit view of the uint16 frames, ``labels``."""

    def __init__(self, label_column: str) -> None:
        self.label_column = label_column

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labels = batch[self.label_column]
        labels = torch.as_tensor(labels).long()
        return {"raw": batch["image"].view(torch.int16), "labels": labels}


def make_loader(ds, label_column: str, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0):
    """A ``DataLoader`` of whole raw batches (one Arrow gather per batch, :class:`raw_isp.data.arrow.RawBatches`)."""
    sampler = EpochBatchSampler(len(ds), batch_size, shuffle, seed)
    return torch.utils.data.DataLoader(
        RawBatches(ds.select_columns(["image", label_column]), output="torch"), batch_sampler=sampler,
        collate_fn=_Collate(label_column), num_workers=num_workers, persistent_workers=num_workers > 0,
    )


# ---------------------------------------------------------------- model

def flips(seed: int) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """Random flips and 90-degree turns of RGB views ``(B, 3, H, W)`` (square), drawn per step
    from ``seed`` (deterministic, so a resumed run sees the same augmentation)."""

    def augment(rgb: torch.Tensor, step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        hflip, vflip, turn = (torch.rand(3, rgb.shape[0], generator=g) < 0.5).to(rgb.device)
        rgb = torch.where(hflip.view(-1, 1, 1, 1), rgb.flip(-1), rgb)
        rgb = torch.where(vflip.view(-1, 1, 1, 1), rgb.flip(-2), rgb)
        if rgb.shape[-1] == rgb.shape[-2]:
            rgb = torch.where(turn.view(-1, 1, 1, 1), rgb.transpose(-1, -2), rgb)
        return rgb

    return augment


def build_model(args: argparse.Namespace, label_names: list[str]) -> RawISPModel:
    """ISP + task model + processor for the arguments."""
    camera = args.camera or dataset_camera(args.dataset)
    isp = build_isp(args.isp, camera=camera)
    try:
        task_model = build_task_model(args.task, args.model_name_or_path, label_names, args.image_size)
    except ValueError as err:
        raise SystemExit(f"error: --model_name_or_path: {err}") from None
    size = model_input_size(task_model, args.image_size)
    norm = raw_isp.models.processor.CAMERA_NORMALIZATION.get(camera, {})
    processor = raw_isp.RawISPImageProcessor(isp=parse_isp(args.isp).variant or "bi_s_ga", camera=camera, size=size,
                                             **norm)
    return RawISPModel(isp, task_model, processor)


def new_metric(task: str, label_names: list[str]):
    return raw_isp.metrics.load(task, num_labels=len(label_names), label_names=label_names, keep_in_memory=True)


@torch.no_grad()
def evaluate_views(model, loader, accelerator, task: str, label_names: list[str],
                   views: dict[str, Callable[[torch.Tensor], torch.Tensor]],
                   progress: str | None = None) -> dict[str, dict[str, Any]]:
    """Metrics of one task model on several input views of the same data, in one pass.

    ``views`` maps a name to a function ``raw batch -> pixel_values`` (e.g. the model's own
    ``pixel_values``, another ISP's, or a corrupted view). Each batch is read once and fed
    through every view. Metrics cover all processes: ``gather_for_metrics`` drops the samples
    that were duplicated to even out the last batch, so results equal one process's.
    Returns ``{name: metrics}``, each with ``loss`` (mean cross-entropy over the samples).
    ``progress``: label of a progress bar over the batches (main process), or None for none.
    """
    from tqdm.auto import tqdm

    model.eval()
    net = accelerator.unwrap_model(model)
    metrics = {name: new_metric(task, label_names) for name in views}
    loss_sum = {name: torch.zeros((), dtype=torch.float64) for name in views}
    count = dict.fromkeys(views, 0)
    bar = tqdm(loader, desc=progress, disable=progress is None or not accelerator.is_local_main_process,
               leave=False, dynamic_ncols=True)
    for batch in bar:
        labels = batch["labels"]
        for name, view in views.items():
            pixel_values = view(batch["raw"])  # outside autocast: ISPs and corruptions stay float32
            with accelerator.autocast():
                logits = net.model(pixel_values=pixel_values).logits
            losses, preds = task_outputs(logits, labels, task)
            if task == "segmentation":
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
    """Metrics of ``model`` (a :class:`RawISPModel`) on ``loader`` through its own ISP (:func:`evaluate_views`)."""
    net = accelerator.unwrap_model(model)
    return evaluate_views(model, loader, accelerator, task, label_names, {"model": net.pixel_values})["model"]


# ---------------------------------------------------------------- training

@dataclass
class TrainResult:
    """What :func:`train` returns: the prepared model and loaders, the metrics, the history."""

    model: Any
    accelerator: Any
    loaders: dict[str, Any]
    label_names: list[str]
    results: dict[str, Any]
    history: list[dict[str, Any]]


def _scalar_metrics(prefix: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """``eval_accuracy``-style keys for JSON output; lists (per-class scores, confusion
    matrices) are kept, nested under the same prefix."""
    return {f"{prefix}_{k}": v for k, v in raw_isp.metrics.jsonable(metrics).items()}


def _headline(task: str) -> tuple[str, ...]:
    return ("accuracy", "macro_f1") if task == "classification" else ("mean_iou", "iou_car", "pixel_accuracy")


def _after_checkpoint(completed_steps: int) -> None:
    """Called after each checkpoint is saved (tests use it to simulate a killed run)."""


def train(args: argparse.Namespace, splits=None, evaluate_each_epoch: bool = True,
          eval_callback: Callable[[int, dict[str, Any]], None] | None = None) -> TrainResult:
    """Train per ``args`` (see :func:`build_parser`) and return the model and metrics.

    Runs in every process of an ``accelerate launch``. ``splits``: a ready ``DatasetDict`` (else
    :func:`load_splits`). ``eval_callback(step, metrics)`` is called after each validation.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    tracking = {"log_with": args.report_to, "project_dir": args.output_dir} if args.with_tracking else {}
    # Without any accelerator, say cpu=True: accelerate then joins the processes of a torchrun
    # launch over gloo (multi-CPU) instead of running each one on its own.
    has_device = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              mixed_precision=args.mixed_precision, cpu=not has_device, **tracking)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO if accelerator.is_main_process else logging.WARNING)
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file otherwise
    set_seed(args.seed)

    if splits is None:
        with accelerator.main_process_first():
            splits = load_splits(args)
    label_column, label_names = label_info(splits, args.task)
    model = build_model(args, label_names)

    bs = args.per_device_train_batch_size
    loaders = {
        "train": make_loader(splits["train"], label_column, bs, True, args.seed, args.dataloader_num_workers),
        "validation": make_loader(splits["validation"], label_column, args.per_device_eval_batch_size, False, 0,
                                  args.dataloader_num_workers),
        "test": make_loader(splits["test"], label_column, args.per_device_eval_batch_size, False, 0,
                            args.dataloader_num_workers),
    }
    train_sampler = loaders["train"].batch_sampler

    isp_params = [p for p in model.isp.parameters() if p.requires_grad]
    decay = [p for n, p in model.model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if isp_params:
        groups.append({"params": isp_params, "weight_decay": 0.0, "lr": args.isp_learning_rate})
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate)

    steps_per_epoch = math.ceil(math.ceil(len(splits["train"]) / bs) / accelerator.num_processes
                                / args.gradient_accumulation_steps)
    max_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_steps / steps_per_epoch)
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else max(1, int(0.05 * max_steps))
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=warmup * accelerator.num_processes,
                              num_training_steps=max_steps * accelerator.num_processes)

    model, optimizer, scheduler, loaders["train"], loaders["validation"], loaders["test"] = accelerator.prepare(
        model, optimizer, scheduler, loaders["train"], loaders["validation"], loaders["test"])
    if args.with_tracking:
        accelerator.init_trackers(f"raw-{args.task}", {k: v for k, v in vars(args).items()
                                                        if isinstance(v, (int, float, str, bool))})

    completed_steps, start_epoch, skip_batches = 0, 0, 0
    if not args.resume_from_checkpoint and accelerator.is_main_process:
        # A fresh run replaces an earlier one in the same folder: its checkpoints would otherwise
        # be taken for this run's by --resume_from_checkpoint, and its results for this run's.
        old = [d for d in Path(args.output_dir).glob(f"{CHECKPOINT_PREFIX}*") if _checkpoint_step(d) is not None]
        for d in old:
            shutil.rmtree(d)
        if (Path(args.output_dir) / "all_results.json").exists() or old:
            logger.info("replacing the earlier run in %s", args.output_dir)
            (Path(args.output_dir) / "all_results.json").unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    if args.resume_from_checkpoint:
        try:
            accelerator.load_state(args.resume_from_checkpoint)
        except Exception as err:  # noqa: BLE001 - any failure here means an unusable checkpoint
            raise SystemExit(f"error: --resume_from_checkpoint {args.resume_from_checkpoint}: cannot load it ({err})")
        state = json.loads((Path(args.resume_from_checkpoint) / STATE_FILE).read_text())
        completed_steps = int(state["completed_steps"])
        start_epoch = completed_steps // steps_per_epoch
        skip_batches = (completed_steps % steps_per_epoch) * args.gradient_accumulation_steps
        logger.info("resumed from %s at step %d", args.resume_from_checkpoint, completed_steps)

    augment = flips(args.seed) if args.augment == "flips" else None
    n_train = len(splits["train"])
    logger.info("training %s (%s) with ISP %s on %d %s images: %d steps of batch %d x %d accumulation x %d "
                "process(es) on %s", type(accelerator.unwrap_model(model).model).__name__, args.model_name_or_path,
                args.isp, n_train, args.dataset, max_steps, bs, args.gradient_accumulation_steps,
                accelerator.num_processes, accelerator.device)
    progress = tqdm(total=max_steps, initial=completed_steps, disable=not accelerator.is_local_main_process,
                    desc="train", dynamic_ncols=True)
    history: list[dict[str, Any]] = []
    every = args.checkpointing_steps
    window_loss, window_images, window_start = 0.0, 0, time.perf_counter()
    for epoch in range(start_epoch, num_epochs):
        model.train()
        train_sampler.use_epoch(epoch)
        loader = loaders["train"]
        if epoch == start_epoch and skip_batches:
            loader = accelerator.skip_first_batches(loader, skip_batches)
        for batch in loader:
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    step_aug = None if augment is None else (lambda rgb, s=completed_steps: augment(rgb, s))
                    out = model(batch["raw"], labels=batch["labels"], augment=step_aug)
                accelerator.backward(out.loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            window_loss += float(accelerator.reduce(out.loss.detach(), "mean"))  # over all processes
            window_images += batch["raw"].shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            completed_steps += 1
            progress.update(1)
            if completed_steps % args.logging_steps == 0 or completed_steps == max_steps:
                elapsed = time.perf_counter() - window_start
                n_micro = max(1, window_images // (bs * accelerator.num_processes))
                log = {"train_loss": window_loss / n_micro, "lr": scheduler.get_last_lr()[0],
                       "images_per_second": window_images / max(elapsed, 1e-9), "epoch": epoch}
                progress.set_postfix(loss=f"{log['train_loss']:.3f}", lr=f"{log['lr']:.2e}",
                                     img_s=f"{log['images_per_second']:.1f}")
                if args.with_tracking:
                    accelerator.log(log, step=completed_steps)
                history.append({"step": completed_steps, **log})
                window_loss, window_images, window_start = 0.0, 0, time.perf_counter()
            if every and every != "epoch" and completed_steps % int(every) == 0:
                save_checkpoint(accelerator, args.output_dir, completed_steps, epoch)
                _after_checkpoint(completed_steps)
            if completed_steps >= max_steps:
                break
        if evaluate_each_epoch or completed_steps >= max_steps:
            metrics = evaluate_model(model, loaders["validation"], accelerator, args.task, label_names)
            headline = {k: metrics[k] for k in _headline(args.task) if k in metrics}
            logger.info("epoch %d step %d validation: %s", epoch, completed_steps,
                        ", ".join(f"{k} {v:.4f}" for k, v in headline.items()))
            history.append({"step": completed_steps, "epoch": epoch,
                            **{f"eval_{k}": v for k, v in headline.items()}, "eval_loss": metrics["loss"]})
            if args.with_tracking:
                accelerator.log({f"eval_{k}": v for k, v in headline.items()}, step=completed_steps)
            if eval_callback is not None:
                eval_callback(completed_steps, metrics)
        if every == "epoch":
            save_checkpoint(accelerator, args.output_dir, completed_steps, epoch)
            _after_checkpoint(completed_steps)
        if completed_steps >= max_steps:
            break
    progress.close()

    eval_metrics = evaluate_model(model, loaders["validation"], accelerator, args.task, label_names)
    test_metrics = evaluate_model(model, loaders["test"], accelerator, args.task, label_names)
    results = {**_scalar_metrics("eval", eval_metrics), **_scalar_metrics("test", test_metrics),
               "train_steps": completed_steps, "train_samples": n_train,
               "eval_samples": len(splits["validation"]), "test_samples": len(splits["test"])}
    if args.with_tracking:
        accelerator.log({k: v for k, v in results.items() if isinstance(v, (int, float))}, step=completed_steps)
        accelerator.end_training()
    return TrainResult(model, accelerator, loaders, label_names, results, history)


# ---------------------------------------------------------------- output

def write_outputs(args: argparse.Namespace, result: TrainResult) -> None:
    """Model, processor, ISP, ``all_results.json``, ``train_history.json`` and the model card."""
    accelerator = result.accelerator
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = accelerator.unwrap_model(result.model)
    camera = args.camera or dataset_camera(args.dataset)
    save_raw_model(model, out, args.isp, camera)
    (out / "train_history.json").write_text(json.dumps(result.history, indent=1) + "\n")
    saved = {k: v for k, v in vars(args).items() if k != "hub_token"}  # never write a secret to disk
    (out / "training_args.json").write_text(json.dumps(saved, indent=2, default=str) + "\n")
    (out / "README.md").write_text(model_card(args, result, model))
    # all_results.json last: its presence marks a finished run.
    (out / "all_results.json").write_text(json.dumps(result.results, indent=2) + "\n")
    if args.push_to_hub:
        from huggingface_hub import HfApi

        repo_id = args.hub_model_id or out.name
        api = HfApi(token=args.hub_token)
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(out), ignore_patterns=[f"{CHECKPOINT_PREFIX}*", ".tmp*"])


def model_card(args: argparse.Namespace, result: TrainResult, model: RawISPModel) -> str:
    """A model card (markdown with YAML metadata) from the run's own settings and results."""
    r = result.results
    task_tag = "image-classification" if args.task == "classification" else "image-segmentation"
    keys = [k for k in _headline(args.task)]
    rows = "\n".join(f"| {k} | {r.get('eval_' + k, float('nan')):.4f} | {r.get('test_' + k, float('nan')):.4f} |"
                     for k in keys)
    n_params = sum(p.numel() for p in model.model.parameters())
    isp_params = sum(p.numel() for p in model.isp.parameters())
    spec = parse_isp(args.isp)
    replay = ("`AutoImageProcessor.from_pretrained(folder)` (after `import raw_isp`, or with `trust_remote_code=True`) "
              "replays the training ISP exactly" if spec.kind != "learned" else
              "the learned ISP is a network the image processor cannot run: reload with "
              "`raw_isp.models.modeling.load_raw_model(folder)`, which restores the ISP from `isp.safetensors`")
    lines = [
        "---",
        "library_name: transformers",
        f"pipeline_tag: {task_tag}",
        "tags: [raw-images, isp, " + args.dataset.replace("_", "-") + "]",
        "---",
        "",
        f"# {type(model.model).__name__} on {args.dataset} with the ISP `{args.isp}` in the loop",
        "",
        f"Trained by `scripts/train_{args.task}.py` (raw_isp) on the {args.source} {args.dataset} data "
        f"(config `{default_config(args)}`, intensity {args.intensity}, fold {args.fold}).",
        "Raw uint16 mosaics are developed by the ISP as the first module of the model, on the device.",
        "",
        "## Setup",
        "",
        f"- model: `{args.model_name_or_path}` ({n_params:,} parameters); ISP `{args.isp}` ({isp_params:,} parameters), "
        f"camera `{args.camera or dataset_camera(args.dataset)}`",
        f"- {r['train_steps']} steps, batch {args.per_device_train_batch_size} x {args.gradient_accumulation_steps} "
        f"accumulation x {result.accelerator.num_processes} process(es), AdamW lr {args.learning_rate} "
        f"({args.lr_scheduler_type}), weight decay {args.weight_decay}, seed {args.seed}, augmentation {args.augment}",
        f"- samples: train {r['train_samples']}, validation {r['eval_samples']}, test {r['test_samples']}",
        "",
        "## Results",
        "",
        "| metric | validation | test |",
        "|---|---|---|",
        rows,
        "",
        "## Use",
        "",
        f"{replay}. Example:",
        "",
        "```python",
        "import raw_isp",
        "from raw_isp.models.modeling import load_raw_model",
        "model, _ = load_raw_model('" + str(args.output_dir) + "')",
        "logits = model(torch.from_numpy(raw_isp.read_raw('frame.tiff'))[None]).logits",
        "```",
        "",
    ]
    return "\n".join(lines)


def print_summary(args: argparse.Namespace, results: dict[str, Any]) -> None:
    keys = _headline(args.task)
    for split in ("eval", "test"):
        name = "validation" if split == "eval" else "test"
        print(f"{name}: " + ", ".join(f"{k} {results[f'{split}_{k}']:.4f}" for k in keys if f"{split}_{k}" in results))
    print(f"wrote {args.output_dir}/ (model, processor, ISP, all_results.json, README.md)")


def main(task: str, argv: list[str] | None = None) -> int:
    """Entry point of both training scripts."""
    args = parse_args(task, argv)
    start = time.perf_counter()
    result = train(args)
    write_outputs(args, result)
    if result.accelerator.is_main_process:
        print_summary(args, result.results)
        print(f"total time {time.perf_counter() - start:.1f} s")
    return 0
