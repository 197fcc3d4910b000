"""The settings of a training run: :class:`RawTrainingArguments`.

A dataclass in the manner of transformers' ``TrainingArguments``: parsed from the command line by
``transformers.HfArgumentParser`` (:func:`parse_training_args`; every field has its ``--help``),
checked in ``__post_init__`` (errors name the option), written into the run's output folder as
``training_args.json`` (never the Hub token) and read back from there by the drift scripts
(:meth:`RawTrainingArguments.from_output_dir`), with overrides.

Fields left at ``None`` take the task's default (:data:`TASK_DEFAULTS`; the dataset's from the
registry), so one dataclass serves both training scripts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any, Literal, Optional

from ..atomic import atomic_write_json
from ..isp.config import CAMERAS, ISP_VARIANTS
from ..isp.exposure import EXPOSURE_MODES
from ..registry import DATASETS, TASKS, get_dataset, get_task

__all__ = [
    "OptionError",
    "RawTrainingArguments",
    "TASK_DEFAULTS",
    "TRAINING_ARGS_NAME",
    "build_parser",
    "parse_training_args",
    "option_items",
    "number_list",
    "name_list",
    "intensity_list",
]

logger = logging.getLogger(__name__)

#: File name of the saved settings in a run's output folder.
TRAINING_ARGS_NAME = "training_args.json"

#: Per task, the defaults of the fields that are ``None`` in the dataclass.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"model_name_or_path": "vit-tiny-32", "per_device_train_batch_size": 32,
                       "per_device_eval_batch_size": 64, "learning_rate": 5e-4, "num_train_epochs": 8, "loss": "ce"},
    # Segmentation: Dice + cross-entropy over 8 epochs. With the pixel cross-entropy alone over 3
    # epochs (the default before) SegFormer-b0 predicted background almost everywhere (test car
    # IoU 0.008, the all-background baseline's 0); the measurements are in docs/results.md.
    "segmentation": {"model_name_or_path": "segformer-b0", "per_device_train_batch_size": 8,
                     "per_device_eval_batch_size": 32, "learning_rate": 6e-4, "num_train_epochs": 8,
                     "loss": "dice_ce"},
}

#: Fields never written to disk.
SECRET_FIELDS = ("hub_token",)


class OptionError(ValueError):
    """A setting that cannot work; the message starts with the option (``--name value: ...``)."""


def _help(text: str, **metadata: Any) -> dict[str, Any]:
    return {"help": text, **metadata}


@dataclass
class RawTrainingArguments:
    """Everything a training run is configured by (see each field's help, or ``--help``)."""

    # ------------------------------------------------------------ task and data
    task: Literal["classification", "segmentation"] = field(
        default="classification", metadata=_help("the task; set by the training script"))
    dataset: Optional[str] = field(default=None, metadata=_help(
        "dataset package to train on (raw_drone has a car / no-car classification task too)",
        choices=tuple(DATASETS)))
    dataset_config: Optional[str] = field(default=None, metadata=_help(
        "a config of the dataset (default: the task's all-intensity config, at --intensity)"))
    data_dir: Optional[str] = field(default=None, metadata=_help(
        "a local copy of the real data (folder or .zip) in the published layout; default: synthetic"))
    source: Optional[str] = field(default=None, metadata=_help(
        "where the data comes from (default: local with --data_dir, else synthetic)",
        choices=("synthetic", "local", "zenodo")))
    zenodo_record: Optional[str] = field(default=None, metadata=_help(
        "with --source zenodo: the Zenodo record (id, DOI or URL) to resolve through the API; default: the "
        "datasets' record 5235536 (name a newer version here)"))
    intensity: float = field(default=1.0, metadata=_help(
        "light intensity ratio of the frames to train on, one of the captured ratios "
        "(1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)"))
    split_seed: int = field(default=0, metadata=_help(
        "seed of the dataset's grouped, stratified train / validation / test split (Raw2Logit reports the mean "
        "over 5 random re-splits: run seeds 0-4)"))
    fold: Optional[int] = field(default=None, metadata=_help("cross-validation fold (default: the fixed split)"))
    n_folds: int = field(default=5, metadata=_help("number of cross-validation folds"))
    num_examples: Optional[int] = field(default=None, metadata=_help(
        "use only this many source examples (cells / tiles) before splitting, for quick runs"))
    num_scenes: Optional[int] = field(default=None, metadata=_help(
        "raw_drone synthetic source: number of frames (default 12)"))
    frame_size: Optional[list[int]] = field(default=None, metadata=_help(
        "raw_drone synthetic source: HEIGHT WIDTH of the frames (default 2560 3840)"))
    max_train_samples: Optional[int] = field(default=None, metadata=_help("truncate the training split"))
    max_eval_samples: Optional[int] = field(default=None, metadata=_help(
        "truncate the validation and test splits (quick runs)"))
    cache_dir: Optional[str] = field(default=None, metadata=_help("datasets cache folder"))
    dataloader_num_workers: Optional[int] = field(default=None, metadata=_help(
        "worker processes per data loader (default: 0 on the CPU; 2 with a CUDA device, each keeping 2 "
        "batches ready, so the next batch is gathered while the current one trains)"))

    protocol: Optional[str] = field(default=None, metadata=_help(
        "start from a published setup's settings (raw2logit: Oala et al.'s ResNet-18 / UperNet-ResNet-34, Adam at "
        "1e-5 for model and ISP, batch 32, 100 epochs, no exposure stage; see docs/training.md); options given "
        "on the command line override them", choices=("raw2logit",)))

    # ------------------------------------------------------------ model and ISP
    model_name_or_path: Optional[str] = field(default=None, metadata=_help(
        "an offline preset with random weights (vit-tiny-32, vit-tiny-16, vit-small-16, vit-base-16; "
        "segformer-b0, segformer-b1), a Hub id (e.g. google/vit-base-patch16-224-in21k, nvidia/mit-b0) "
        "or a local folder"))
    isp: str = field(default="static:bi_s_ga", metadata=_help(
        "static:<variant> (one of the 12), parametrized[:<variant>] (learned jointly), "
        "parametrized-frozen[:<variant>], or learned (a small U-Net from the Bayer planes)"))
    camera: Optional[str] = field(default=None, metadata=_help(
        "colour preset of the ISP (neutral, drone, microscopy; default: the dataset's camera)"))
    image_size: int = field(default=256, metadata=_help(
        "model input size for presets (the raw tiles are 256x256)"))
    exposure: str = field(default="metadata", metadata=_help(
        "exposure stage of the ISP after black level: metadata (default; gain 1 / the frame's intensity "
        "ratio, from the dataset's intensity column), none (the study's 12 pipelines as they are) or auto "
        "(auto-exposure from each frame)", choices=("none",) + EXPOSURE_MODES))
    augment: str = field(default="flips", metadata=_help(
        "flips: random horizontal/vertical flips and 90-degree turns of the developed view",
        choices=("none", "flips")))
    train_intensities: Optional[str] = field(default=None, metadata=_help(
        "light augmentation: comma-separated ratios r in (0, 1], e.g. 1.0,0.5,0.1,0.05; each training "
        "frame (intensity i) is thinned photon-exactly by the dataset's sensor model to i*r, r drawn per "
        "frame, and its intensity becomes i*r"))
    train_isp_variants: Optional[str] = field(default=None, metadata=_help(
        "ISP augmentation: 'all' or comma-separated variants (e.g. bi_s_ga,ma_u_me); each training batch "
        "is developed by one of them, drawn per batch (needs a static --isp, which validation, test and "
        "the saved model keep)"))
    corruption_augment: Optional[str] = field(default=None, metadata=_help(
        "ImageNet-C-style augmentation of the developed view: 'all' (the flag alone) or comma-separated "
        "corruptions; one corruption and severity drawn per batch", nargs="?", const="all"))
    corruption_severities: str = field(default="1,2,3,4,5", metadata=_help(
        "severities (1..5) --corruption_augment draws from, comma-separated"))

    # ------------------------------------------------------------ optimisation
    per_device_train_batch_size: Optional[int] = field(default=None, metadata=_help(
        "training batch per process"))
    per_device_eval_batch_size: Optional[int] = field(default=None, metadata=_help(
        "evaluation batch per process"))
    learning_rate: Optional[float] = field(default=None, metadata=_help(
        "AdamW learning rate of the task model"))
    isp_learning_rate: float = field(default=1e-3, metadata=_help("learning rate of a trainable ISP"))
    isp_rate_units: str = field(default="developed", metadata=_help(
        "developed: a parametrized ISP's black level learns at --isp_learning_rate divided by the exposure gain "
        "of the training frames (it is subtracted before the gain, so a step moves a dim frame's view gain times "
        "more), the other ISP parameters at the rate itself; raw: every ISP parameter at --isp_learning_rate "
        "(before 0.2)", choices=("developed", "raw")))
    isp_max_grad_norm: float = field(default=1.0, metadata=_help(
        "clip the gradient norm of a trainable ISP's parameters to this (0: no clipping; the task model is not "
        "clipped)"))
    optim: str = field(default="adamw", metadata=_help(
        "adamw: AdamW with --weight_decay on the task model's matrices; adam: Adam without weight decay, one "
        "rate for the task model (Raw2Logit's optimiser)", choices=("adamw", "adam")))
    loss: Optional[str] = field(default=None, metadata=_help(
        "training loss: ce (cross-entropy, the model's own; the classification default), dice (soft Dice of the "
        "foreground classes), dice_ce (their sum; the segmentation default: car is 8 %% of the pixels; Raw2Logit "
        "trained its drone segmenter with Dice); classification takes ce only",
        choices=("ce", "dice", "dice_ce")))
    weight_decay: float = field(default=0.05, metadata=_help("AdamW weight decay (matrices only)"))
    num_train_epochs: Optional[int] = field(default=None, metadata=_help(
        "training epochs"))
    max_train_steps: Optional[int] = field(default=None, metadata=_help("overrides --num_train_epochs"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("micro-batches per optimiser step"))
    lr_scheduler_type: str = field(default="cosine", metadata=_help(
        "learning-rate schedule", choices=("linear", "cosine", "constant", "constant_with_warmup")))
    num_warmup_steps: Optional[int] = field(default=None, metadata=_help("warm-up steps (default: 5%% of the steps)"))
    mixed_precision: Optional[str] = field(default=None, metadata=_help(
        "default: accelerate's configuration (the ISP always runs in float32)", choices=("no", "fp16", "bf16")))
    seed: int = field(default=42, metadata=_help(
        "seed of the model's initial weights, batch order, flips and the augmentation draws"))
    class_balance: str = field(default="none", metadata=_help(
        "weighted_loss: cross-entropy with inverse-frequency class weights (of the training split's "
        "images, or pixels for segmentation); sampler: draw each epoch's images with replacement, every "
        "class equally likely (classification)", choices=("none", "weighted_loss", "sampler")))
    metric_for_best_model: Optional[str] = field(default=None, metadata=_help(
        "validation metric that selects the best epoch (default: the task's main metric, macro_f1 "
        "for classification, mean_iou for segmentation; 'loss' is lower-is-better)"))
    load_best_model_at_end: bool = field(default=True, metadata=_help(
        "restore the best validation epoch's weights before the test evaluation and saving "
        "(--no_load_best_model_at_end: keep the last weights)"))

    # ------------------------------------------------------------ output
    output_dir: Optional[str] = field(default=None, metadata=_help(
        "model, processor, ISP, all_results.json and model card go here; "
        "a folder that is not empty is refused unless --overwrite_output_dir or --resume_from_checkpoint"))
    overwrite_output_dir: bool = field(default=False, metadata=_help(
        "replace the earlier run in --output_dir (its model, results and checkpoints are deleted at the start)"))
    checkpointing_steps: Optional[str] = field(default=None, metadata=_help(
        "save the training state every N steps, or 'epoch'"))
    resume_from_checkpoint: Optional[str] = field(default=None, metadata=_help(
        "a checkpoint folder, or no value for the latest one in --output_dir", nargs="?", const="latest"))
    with_tracking: bool = field(default=False, metadata=_help("log metrics to the trackers of --report_to"))
    report_to: str = field(default="all", metadata=_help("trackers for --with_tracking (e.g. tensorboard)"))
    logging_steps: int = field(default=10, metadata=_help("log the training loss every N steps"))
    push_to_hub: bool = field(default=False, metadata=_help("upload the output folder to the Hub at the end"))
    hub_model_id: Optional[str] = field(default=None, metadata=_help("Hub repository (default: the folder's name)"))
    hub_token: Optional[str] = field(default=None, metadata=_help("Hub token (never written to disk)"))

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise OptionError(f"--task {self.task!r}: expected one of {list(TASKS)}")
        for name, value in TASK_DEFAULTS[self.task].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.output_dir is None:
            self.output_dir = f"outputs/{self.task}"
        self._check_data()
        self._check_model()
        self._check_augmentation()
        self._check_optimisation()
        self._check_output()

    # ------------------------------------------------------------ checks

    def _check_data(self) -> None:
        self.dataset = self.dataset or TASKS[self.task].default_dataset
        try:
            info = get_dataset(self.dataset)
        except ValueError as err:
            raise OptionError(f"--dataset: {err}") from None
        if self.task not in info.tasks:
            having = [d for d, i in DATASETS.items() if self.task in i.tasks]
            raise OptionError(f"--dataset {self.dataset}: {info.display_name} has no {self.task} task "
                              f"(datasets with one: {', '.join(having)})")
        if self.data_dir is not None and not Path(self.data_dir).exists():
            raise OptionError(f"--data_dir {self.data_dir}: no such file or folder")
        if self.source is None:
            self.source = "local" if self.data_dir is not None else "synthetic"
        if self.source == "local" and self.data_dir is None:
            raise OptionError("--source local needs --data_dir")
        if self.zenodo_record is not None:
            if self.source != "zenodo":
                raise OptionError(f"--zenodo_record {self.zenodo_record}: only with --source zenodo "
                                  f"(the data comes from {self.source})")
            from ..data.zenodo import record_id

            try:
                self.zenodo_record = record_id(self.zenodo_record)
            except ValueError as err:
                raise OptionError(f"--zenodo_record: {err}") from None
        if not (isinstance(self.intensity, (int, float)) and 0.0 < self.intensity <= 1.0):
            raise OptionError(f"--intensity must be in (0, 1], got {self.intensity}")
        self.intensity = float(self.intensity)
        if self.intensity not in info.intensities:
            raise OptionError(f"--intensity {self.intensity}: the data is captured at {info.intensities}; "
                              "choose one of those")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int) or self.split_seed < 0:
            raise OptionError(f"--split_seed must be an integer >= 0, got {self.split_seed}")
        _positive(self, "n_folds", "num_examples", "num_scenes", "max_train_samples", "max_eval_samples")
        if self.fold is not None and not 0 <= self.fold < self.n_folds:
            raise OptionError(f"--fold must be in 0..{self.n_folds - 1} (--n_folds {self.n_folds}), got {self.fold}")
        if self.frame_size is not None:
            if len(self.frame_size) != 2 or any(not isinstance(n, int) or n <= 0 for n in self.frame_size):
                raise OptionError(f"--frame_size takes two positive integers HEIGHT WIDTH, got {self.frame_size}")
            self.frame_size = [int(n) for n in self.frame_size]
        if self.dataloader_num_workers is not None and self.dataloader_num_workers < 0:
            raise OptionError(f"--dataloader_num_workers must be >= 0, got {self.dataloader_num_workers}")

    def _check_model(self) -> None:
        from ..models.modeling import parse_isp

        try:
            self.isp = str(parse_isp(self.isp))
        except (ValueError, TypeError) as err:
            raise OptionError(f"--isp: {err}") from None
        if self.camera is not None and self.camera not in CAMERAS:
            raise OptionError(f"--camera {self.camera!r}: expected one of {sorted(CAMERAS)}")
        _positive(self, "image_size")

    def _check_augmentation(self) -> None:
        from ..models.modeling import parse_isp

        if self.exposure not in ("none",) + EXPOSURE_MODES:
            raise OptionError(f"--exposure {self.exposure!r}: expected none, {' or '.join(EXPOSURE_MODES)}")
        if self.train_intensities is not None:
            ratios = number_list(self.train_intensities, "train_intensities", float)
            bad = [r for r in ratios if not (math.isfinite(r) and 0.0 < r <= 1.0)]
            if bad:
                raise OptionError(f"--train_intensities: ratios must be in (0, 1] (thinning only removes light), "
                                  f"got {bad[0]:g}")
            self.train_intensities = ",".join(format(r, "g") for r in ratios)
        if self.train_isp_variants is not None:
            variants = name_list(self.train_isp_variants, "train_isp_variants", ISP_VARIANTS)
            if parse_isp(self.isp).kind != "static":
                raise OptionError(f"--train_isp_variants: needs a static --isp (the ISP of validation, test and the "
                                  f"saved model), got --isp {self.isp}")
            self.train_isp_variants = "all" if variants == ISP_VARIANTS else ",".join(variants)
        if self.corruption_augment is not None:
            from ..isp.corruptions import CORRUPTIONS

            names = name_list(self.corruption_augment, "corruption_augment", CORRUPTIONS)
            self.corruption_augment = "all" if names == CORRUPTIONS else ",".join(names)
        severities = number_list(self.corruption_severities, "corruption_severities", int)
        if any(not 1 <= v <= 5 for v in severities):
            raise OptionError(f"--corruption_severities: severities are 1..5, got {self.corruption_severities!r}")
        self.corruption_severities = ",".join(str(v) for v in severities)

    def _check_optimisation(self) -> None:
        _positive(self, "per_device_train_batch_size", "per_device_eval_batch_size", "num_train_epochs",
                  "max_train_steps", "gradient_accumulation_steps", "logging_steps")
        if self.isp_rate_units not in ("developed", "raw"):
            raise OptionError(f"--isp_rate_units {self.isp_rate_units!r}: expected developed or raw")
        if self.optim not in ("adamw", "adam"):
            raise OptionError(f"--optim {self.optim!r}: expected adamw or adam")
        if self.loss not in ("ce", "dice", "dice_ce"):
            raise OptionError(f"--loss {self.loss!r}: expected ce, dice or dice_ce")
        if self.loss != "ce" and not get_task(self.task).dense:
            raise OptionError(f"--loss {self.loss}: Dice losses are for segmentation masks; {self.task} uses ce")
        for name in ("learning_rate", "isp_learning_rate", "weight_decay", "isp_max_grad_norm"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise OptionError(f"--{name} must be a finite number >= 0, got {value}")
        if self.num_warmup_steps is not None and self.num_warmup_steps < 0:
            raise OptionError(f"--num_warmup_steps must be >= 0, got {self.num_warmup_steps}")
        if self.class_balance not in ("none", "weighted_loss", "sampler"):
            raise OptionError(f"--class_balance {self.class_balance!r}: expected none, weighted_loss or sampler")
        task = get_task(self.task)
        if self.class_balance == "sampler" and task.dense:
            raise OptionError(f"--class_balance sampler: draws images by their one label; {self.task} labels are "
                              "masks (use weighted_loss, which weighs pixels)")
        metric = (self.metric_for_best_model or task.main_metric).removeprefix("eval_")
        if metric != "loss" and metric not in task.scalar_metrics and not (
                metric.startswith(task.per_class_metric) and len(metric) > len(task.per_class_metric)):
            raise OptionError(f"--metric_for_best_model {self.metric_for_best_model!r}: not a validation metric of "
                              f"{self.task}; expected one of {['loss', *task.scalar_metrics]} or "
                              f"{task.per_class_metric}<class name>")
        self.metric_for_best_model = metric

    def _check_output(self) -> None:
        steps = self.checkpointing_steps
        if steps is not None:
            steps = str(steps)
            if steps != "epoch" and (not steps.isdigit() or int(steps) <= 0):
                raise OptionError(f"--checkpointing_steps must be a positive integer or 'epoch', got {steps!r}")
            self.checkpointing_steps = steps
        if not str(self.output_dir).strip():
            raise OptionError("--output_dir: give a folder")

    # ------------------------------------------------------------ derived values

    @property
    def camera_name(self) -> str:
        """The ISP's camera preset: ``--camera``, else the dataset's."""
        return self.camera or get_dataset(self.dataset).camera

    @property
    def config_name(self) -> str:
        """The dataset config to load: ``--dataset_config``, else the task's (at ``intensity``)."""
        return self.dataset_config or get_dataset(self.dataset).task(self.task).config

    @property
    def label_column(self) -> str:
        """The dataset column the task's labels are in ("label" or "mask")."""
        return get_dataset(self.dataset).task(self.task).label_column

    @property
    def train_intensity_ratios(self) -> tuple[float, ...]:
        """``--train_intensities`` as numbers (empty: no light augmentation)."""
        return tuple(float(v) for v in self.train_intensities.split(",")) if self.train_intensities else ()

    @property
    def train_isp_variant_names(self) -> tuple[str, ...]:
        """``--train_isp_variants`` as variant names (empty: no ISP augmentation)."""
        if not self.train_isp_variants:
            return ()
        return ISP_VARIANTS if self.train_isp_variants == "all" else tuple(self.train_isp_variants.split(","))

    @property
    def corruption_names(self) -> tuple[str, ...]:
        """``--corruption_augment`` as corruption names (empty: no corruption augmentation)."""
        if not self.corruption_augment:
            return ()
        from ..isp.corruptions import CORRUPTIONS

        return CORRUPTIONS if self.corruption_augment == "all" else tuple(self.corruption_augment.split(","))

    @property
    def corruption_severity_levels(self) -> tuple[int, ...]:
        """``--corruption_severities`` as integers."""
        return tuple(int(v) for v in self.corruption_severities.split(","))

    @property
    def exposure_setting(self) -> str | None:
        """``--exposure`` as the ISPs take it: None for "none"."""
        return None if self.exposure == "none" else self.exposure

    @property
    def greater_is_better(self) -> bool:
        """Whether a higher ``--metric_for_best_model`` is better (all but ``loss``)."""
        return self.metric_for_best_model != "loss"

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        """The metrics reports lead with (registry: dataset and task)."""
        return get_dataset(self.dataset).headline_metrics(self.task)

    # ------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values, without the secret fields (the Hub token)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in SECRET_FIELDS}

    def to_json_file(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON (via a temporary file, so a reader never sees half of it)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> "RawTrainingArguments":
        """Read settings written by :meth:`to_json_file`; ``overrides`` replace saved values
        before the checks run (e.g. a moved ``data_dir``). Keys this version does not know are
        ignored with a warning; missing ones take their defaults."""
        path = Path(path)
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise OptionError(f"{path}: unreadable training settings ({err})") from None
        if not isinstance(saved, dict):
            raise OptionError(f"{path}: expected a JSON object of training settings")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(saved) - known)
        if unknown:
            logger.warning("%s: ignoring settings this version does not know: %s", path, ", ".join(unknown))
        values = {k: v for k, v in saved.items() if k in known and k not in SECRET_FIELDS}
        # Settings saved before the exposure stage existed were trained without one (the default
        # was "none" until it became "metadata").
        values.setdefault("exposure", "none")
        # ... and with the cross-entropy (the only loss until the Dice losses; segmentation's default since).
        values.setdefault("loss", "ce")
        bad = sorted(set(overrides) - known)
        if bad:
            raise TypeError(f"unknown training settings {bad}")
        return cls(**{**values, **overrides})

    @classmethod
    def from_output_dir(cls, folder: str | os.PathLike, **overrides: Any) -> "RawTrainingArguments":
        """The settings of the run that wrote ``folder`` (its ``training_args.json``)."""
        path = Path(folder) / TRAINING_ARGS_NAME
        if not path.is_file():
            raise OptionError(f"{folder}: no {TRAINING_ARGS_NAME}; not a folder written by the training scripts")
        return cls.from_json_file(path, **overrides)


def option_items(value: Any, name: str) -> list[str]:
    """The items of a comma-separated option ``--<name>`` (a list or tuple is taken as it is,
    e.g. from Python); :class:`OptionError` for an empty entry."""
    items = [str(v).strip() for v in value] if isinstance(value, (list, tuple)) else str(value).split(",")
    items = [v.strip() for v in items]
    if not items or any(not v for v in items):
        raise OptionError(f"--{name} {value!r}: expected comma-separated values without empty entries")
    return items


def number_list(value: Any, name: str, kind: type = float, valid: Callable[[Any], bool] | None = None,
                rule: str = "") -> list:
    """A comma-separated list of numbers (``kind``: int or float) for ``--<name>``, in the order
    given, repeats dropped. ``valid``: a check of each number; a number it refuses raises
    :class:`OptionError` ``--<name>: <number> <rule>`` (e.g. rule "must be in (0, 1]")."""
    out = []
    for item in option_items(value, name):
        try:
            number = kind(item)
        except ValueError:
            raise OptionError(f"--{name}: {item!r} is not {'an integer' if kind is int else 'a number'}") from None
        if valid is not None and not valid(number):
            raise OptionError(f"--{name}: {item} {rule}".rstrip())
        if number not in out:
            out.append(number)
    return out


def name_list(value: Any, name: str, choices: Sequence[str], allow_all: bool = True) -> tuple[str, ...]:
    """'all' (every choice, in their order; when ``allow_all``) or a comma-separated list of
    choices for ``--<name>``, repeats dropped; :class:`OptionError` naming an unknown one."""
    items = option_items(value, name)
    if allow_all and items == ["all"]:
        return tuple(choices)
    unknown = [v for v in items if v not in choices]
    if unknown:
        expected = ("'all' or some of " if allow_all else "some of ") + ", ".join(choices)
        raise OptionError(f"--{name}: unknown {unknown[0]!r}; expected {expected}")
    return tuple(dict.fromkeys(items))


def intensity_list(value: Any, name: str = "intensities") -> list[float]:
    """Light intensity ratios in (0, 1] for ``--<name>`` (comma-separated), repeats dropped."""
    return number_list(value, name, float, lambda r: math.isfinite(r) and 0 < r <= 1, "must be in (0, 1]")


def _positive(args: RawTrainingArguments, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise OptionError(f"--{name} must be a positive integer, got {value}")


def build_parser(task: str, **defaults: Any):
    """The ``HfArgumentParser`` of a training script for ``task``, its ``--help`` showing that
    task's defaults; ``defaults`` override them (e.g. a caller's quick budget)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        RawTrainingArguments, allow_abbrev=False,
        description=f"Fine-tune a model for {task} on raw images with the ISP as its first module "
        "(run with `accelerate launch` for several processes or GPUs).")
    parser.set_defaults(**{"task": task, "dataset": TASKS[task].default_dataset, "output_dir": f"outputs/{task}",
                           **TASK_DEFAULTS[task], **defaults})
    return parser


def parse_training_args(task: str, argv: list[str] | None = None, **defaults: Any) -> RawTrainingArguments:
    """Parse a training command line for ``task`` (``argv``: default ``sys.argv[1:]``). Every
    check that needs no data runs here: a bad value exits with a message naming the option."""
    parser = build_parser(task, **defaults)
    known = parser.parse_known_args(argv)[0]
    if known.task != task:  # before the checks, which depend on the task
        parser.error(f"--task: this command trains {task}")
    if known.protocol is not None:  # the protocol's settings become the defaults the command line overrides
        from .protocols import protocol_defaults

        try:
            parser.set_defaults(**protocol_defaults(known.protocol, task))
        except ValueError as err:
            parser.error(str(err))
    try:
        (args,) = parser.parse_args_into_dataclasses(argv, look_for_args_file=False)
    except ValueError as err:
        parser.error(str(err))
    return args
