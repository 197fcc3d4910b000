"""The one registry of the datasets and tasks the training and drift code know.

Everything that depends on which dataset or which task a run uses is looked up here, as data:

* :data:`TASKS`: per task its transformers ``Auto`` model class, its ``pipeline_tag``, the
  headline metrics its reports lead with, and how logits become predictions (``dense``:
  per-pixel logits, upsampled to the label size before the argmax).
* :data:`DATASETS`: per dataset package its builder class, camera preset, the config and label
  column of each task it supports, its captured light intensities, and the keyword that sets
  the size of a subset.

Nothing here imports the dataset packages, transformers or torch: :meth:`DatasetInfo.module`
and :meth:`TaskInfo.auto_model_class` import on use, so this module is cheap to read from
anywhere (``raw_isp.models.modeling`` reads the task's Auto class from it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .sensor import INTENSITY_RATIOS

__all__ = [
    "TaskInfo",
    "DatasetTask",
    "DatasetInfo",
    "TASKS",
    "DATASETS",
    "get_task",
    "get_dataset",
    "guess_task",
    "dataset_for_model",
    "foreground_index",
    "label_from_mask",
]


@dataclass(frozen=True)
class TaskInfo:
    """What the code needs to know about a task.

    Attributes:
        name: "classification" or "segmentation" (also the name of its metric module,
            ``raw_isp.metrics.load(name)``).
        auto_class: the transformers ``Auto`` class that loads a saved model of the task.
        pipeline_tag: the Hub's tag for model cards.
        headline_metrics: metric keys the reports and summaries lead with, most important first.
        dense: logits per pixel ``(B, C, h, w)``, upsampled bilinearly to the label size
            ``(H, W)`` before the argmax (SegFormer's are at a quarter of the input size);
            otherwise logits per image ``(B, C)``, argmax (or softmax) over the classes.
        architecture_suffixes: ends of ``config.architectures`` entries that mark a saved model
            of this task (used only for folders saved before the task was recorded).
        default_dataset: the dataset a training script of this task uses by default.
        main_metric: the metric (higher is better) that selects the best validation epoch
            (``--metric_for_best_model``'s default) and that drift forensics scores by default:
            macro-F1 for classification (the classes are imbalanced: accuracy rewards
            predicting the frequent classes; it was accuracy before the class-balance options),
            mean IoU for segmentation.
        scalar_metrics: the single-number metrics of a validation pass (besides ``loss``, the
            mean cross-entropy, and the per-class ones) that can select the best epoch.
        per_class_metric: prefix of the per-class metrics, ``<prefix><class name>`` (e.g.
            ``f1_NGS``, ``iou_car``).
    """

    name: str
    auto_class: str
    pipeline_tag: str
    headline_metrics: tuple[str, ...]
    dense: bool
    architecture_suffixes: tuple[str, ...]
    default_dataset: str
    main_metric: str
    scalar_metrics: tuple[str, ...]
    per_class_metric: str

    def auto_model_class(self) -> type:
        """The transformers Auto model class of the task (imports transformers)."""
        import transformers

        return getattr(transformers, self.auto_class)


@dataclass(frozen=True)
class DatasetTask:
    """One task of a dataset: the config that holds it (all intensities; the loader picks one
    with ``intensity=``), its label column, and headline metrics if they differ from the task's.

    ``foreground``: for a mask task, the class name of the mask's 1 pixels (e.g. "car").
    ``mask_labels``: for a classification task whose label says whether a mask has any
    foreground, the label names of a tile without and with it (e.g. ("no_car", "car")).
    """

    config: str
    label_column: str
    headline_metrics: tuple[str, ...] | None = None
    foreground: str | None = None
    mask_labels: tuple[str, str] | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What the code needs to know about a dataset package.

    Attributes:
        name: the package (and ``--dataset`` value), e.g. "raw_microscopy".
        display_name: e.g. "Raw-Microscopy".
        builder: the ``datasets`` builder class the package exports.
        camera: its preset in ``raw_isp.CAMERAS`` and ``raw_isp.SENSORS``.
        tasks: task name -> :class:`DatasetTask`; the first is the dataset's primary task (the
            labels the explorer shows with an example).
        id_column: the column naming each example (cell or tile).
        intensities: the captured light intensity ratios, brightest first.
        size_kwarg: the ``load_dataset`` keyword that sets the number of source examples.
        synthetic_scene_kwargs: whether the synthetic source takes ``num_scenes``,
            ``frame_height`` and ``frame_width`` (Raw-Drone's whole frames).
    """

    name: str
    display_name: str
    builder: str
    camera: str
    tasks: dict[str, DatasetTask]
    id_column: str
    intensities: tuple[float, ...] = INTENSITY_RATIOS
    size_kwarg: str = "num_examples"
    synthetic_scene_kwargs: bool = False

    def module(self) -> ModuleType:
        """The dataset package (imported on first use)."""
        return importlib.import_module(self.name)

    def builder_class(self) -> type:
        """The package's ``datasets`` builder class (``RawMicroscopy``, ``RawDrone``)."""
        return getattr(self.module(), self.builder)

    @property
    def sensor(self) -> str:
        """The dataset's sensor model, a key of ``raw_isp.SENSORS`` (the camera's name): the one
        that thins frames to a lower light level (``--train_intensities``)."""
        return self.camera

    @property
    def primary_task(self) -> str:
        """The task listed first (classification for Raw-Microscopy, segmentation for Raw-Drone)."""
        return next(iter(self.tasks))

    def task(self, task: str) -> DatasetTask:
        """The dataset's entry for ``task``; ``ValueError`` naming the tasks it has otherwise."""
        if task not in self.tasks:
            raise ValueError(f"{self.display_name} has no {task} task; its tasks are {list(self.tasks)}")
        return self.tasks[task]

    def headline_metrics(self, task: str) -> tuple[str, ...]:
        """The metrics reports lead with for ``task`` on this dataset."""
        return self.task(task).headline_metrics or get_task(task).headline_metrics


TASKS: dict[str, TaskInfo] = {
    "classification": TaskInfo(
        name="classification",
        auto_class="AutoModelForImageClassification",
        pipeline_tag="image-classification",
        headline_metrics=("accuracy", "macro_f1"),
        dense=False,
        architecture_suffixes=("ForImageClassification",),
        default_dataset="raw_microscopy",
        main_metric="macro_f1",
        scalar_metrics=("accuracy", "macro_f1", "f1"),
        per_class_metric="f1_",
    ),
    "segmentation": TaskInfo(
        name="segmentation",
        auto_class="AutoModelForSemanticSegmentation",
        pipeline_tag="image-segmentation",
        headline_metrics=("mean_iou", "pixel_accuracy"),
        dense=True,
        architecture_suffixes=("ForSemanticSegmentation",),
        default_dataset="raw_drone",
        main_metric="mean_iou",
        scalar_metrics=("mean_iou", "pixel_accuracy", "mean_accuracy", "overall_accuracy"),
        per_class_metric="iou_",
    ),
}

DATASETS: dict[str, DatasetInfo] = {
    "raw_microscopy": DatasetInfo(
        name="raw_microscopy",
        display_name="Raw-Microscopy",
        builder="RawMicroscopy",
        camera="microscopy",
        tasks={"classification": DatasetTask(config="raw", label_column="label")},
        id_column="image_id",
        size_kwarg="num_examples",
    ),
    "raw_drone": DatasetInfo(
        name="raw_drone",
        display_name="Raw-Drone",
        builder="RawDrone",
        camera="drone",
        tasks={
            "segmentation": DatasetTask(config="segmentation", label_column="mask",
                                        headline_metrics=("mean_iou", "iou_car", "pixel_accuracy"),
                                        foreground="car"),
            "classification": DatasetTask(config="classification", label_column="label",
                                          mask_labels=("no_car", "car")),
        },
        id_column="tile_id",
        size_kwarg="num_examples",
        synthetic_scene_kwargs=True,
    ),
}


def get_task(name: str) -> TaskInfo:
    """The :class:`TaskInfo` of ``name``; ``ValueError`` naming the known tasks otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {list(TASKS)}")
    return TASKS[name]


def get_dataset(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; ``ValueError`` naming the known datasets otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    return DATASETS[name]


def guess_task(config: Any) -> str:
    """The task of a saved transformers model from its config, for folders that do not record it:
    from ``config.architectures`` (e.g. ``BeitForSemanticSegmentation``), else ``model_type``
    "segformer" is segmentation and anything else classification (the rule before the task
    was recorded)."""
    for arch in getattr(config, "architectures", None) or ():
        for task in TASKS.values():
            if arch.endswith(task.architecture_suffixes):
                return task.name
    return "segmentation" if getattr(config, "model_type", "") == "segformer" else "classification"


def dataset_for_model(task: str, camera: str | None = None, label_names: list[str] | tuple[str, ...] = ()) -> str:
    """The dataset package a model most likely belongs to: the first dataset with ``task`` whose
    camera is ``camera``; else the first with ``task`` whose labels are those of ``label_names``
    (a mask-derived classification's two names); else the first dataset with ``task``, else the
    first dataset. For choosing which examples to show a model, never for training."""
    with_task = [d for d in DATASETS.values() if task in d.tasks]
    for d in with_task:
        if camera is not None and d.camera == camera:
            return d.name
    for d in with_task:
        labels = d.tasks[task].mask_labels
        if labels is not None and set(labels) <= set(label_names):
            return d.name
    return (with_task or list(DATASETS.values()))[0].name


def foreground_index(label_names: list[str] | tuple[str, ...]) -> int:
    """Index in ``label_names`` of a mask task's foreground class (a registry ``foreground``,
    e.g. "car"); the last label when none is present (masks are 0/1, the foreground last)."""
    for d in DATASETS.values():
        for t in d.tasks.values():
            if t.foreground is not None and t.foreground in label_names:
                return list(label_names).index(t.foreground)
    return len(label_names) - 1


def label_from_mask(label_names: list[str] | tuple[str, ...], has_foreground: bool) -> str | None:
    """The classification label of a tile from its mask, for a model whose labels are a
    registry task's ``mask_labels`` (e.g. "car" when the tile has a car pixel, else "no_car");
    None when the model's labels are no such pair."""
    for d in DATASETS.values():
        for t in d.tasks.values():
            if t.mask_labels is not None and set(t.mask_labels) <= set(label_names):
                return t.mask_labels[int(has_foreground)]
    return None
