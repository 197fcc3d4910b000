"""Training with the ISP in the loop (accelerate), as a library the scripts are thin layers on.

    arguments     RawTrainingArguments (HfArgumentParser; saved as training_args.json), parse_training_args
    data          load_splits, label_names, EpochBatchSampler, make_loader, class_counts, balanced_weights,
                  flips (augmentation)
    augment       DriftAugmentation: light levels, ISP variants, corruptions drawn per batch
    evaluation    evaluate_views / evaluate_model (one pass, gather_for_metrics), prefixed metrics
    checkpoints   atomic step_<N> checkpoints, find_checkpoint
    callbacks     TrainingCallback (on_log, on_evaluate, on_checkpoint), MetricHistory
    loop          build_model, task_loss, train -> TrainResult
    outputs       the output-folder rules, write_outputs
    card          the model card
    cli           main(task, argv): what train_classification.py / train_segmentation.py run
    trainer       the transformers.Trainer path: RawISPTrainer, RawDataCollator, compute_metrics_fn,
                  preprocess_logits_for_metrics

Names load on first use (``raw_isp.training.train`` imports the loop then), so that reading the
registry's names from here (:mod:`raw_isp.registry`, re-exported) does not import accelerate or
transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that holds it (or, for the registry's names, the full module path).
_EXPORTS = {
    "TASKS": "raw_isp.registry", "DATASETS": "raw_isp.registry", "TaskInfo": "raw_isp.registry",
    "DatasetInfo": "raw_isp.registry", "DatasetTask": "raw_isp.registry", "get_task": "raw_isp.registry",
    "get_dataset": "raw_isp.registry", "guess_task": "raw_isp.registry",
    "RawTrainingArguments": "arguments", "OptionError": "arguments", "TASK_DEFAULTS": "arguments",
    "TRAINING_ARGS_NAME": "arguments", "build_parser": "arguments", "parse_training_args": "arguments",
    "load_splits": "data", "label_names": "data", "EpochBatchSampler": "data", "make_loader": "data",
    "flips": "data", "class_counts": "data", "balanced_weights": "data",
    "DriftAugmentation": "augment",
    "evaluate_views": "evaluation", "evaluate_model": "evaluation", "prefixed": "evaluation",
    "find_checkpoint": "checkpoints", "save_checkpoint": "checkpoints",
    "TrainingCallback": "callbacks", "MetricHistory": "callbacks",
    "build_model": "loop", "train": "loop", "TrainResult": "loop", "task_loss": "loop",
    "check_output_dir": "outputs", "prepare_output_dir": "outputs", "write_outputs": "outputs",
    "model_card": "card", "main": "cli",
    "RawISPTrainer": "trainer", "RawDataCollator": "trainer", "RawMetrics": "trainer",
    "compute_metrics_fn": "trainer", "preprocess_logits_for_metrics": "trainer",
}  # fmt: skip

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = _EXPORTS[name]
        return getattr(importlib.import_module(module if "." in module else f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
