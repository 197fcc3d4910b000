"""The command line of ``scripts/train_classification.py`` and ``scripts/train_segmentation.py``:
parse and check the settings (the output folder before any data is loaded), train, write the
output folder, print the headline figures."""

from __future__ import annotations

import sys
import time
from typing import Any

from .arguments import OptionError, RawTrainingArguments, parse_training_args
from .outputs import check_output_dir
from ..registry import get_task

__all__ = ["main", "print_summary"]


def print_summary(args: RawTrainingArguments, results: dict[str, Any]) -> None:
    """The headline metrics of validation and test, one line each, and where the run went."""
    for split, name in (("eval", "validation"), ("test", "test")):
        print(f"{name}: " + ", ".join(f"{k} {results[f'{split}_{k}']:.4f}" for k in args.headline_metrics
                                      if f"{split}_{k}" in results))
    if "test_baseline_class" in results:
        trivial = "all " + results["test_baseline_class"] if get_task(args.task).dense else \
            f"always {results['test_baseline_class']}"
        print(f"baseline ({trivial}, the training split's most frequent class): test " + ", ".join(
            f"{k} {results[f'test_baseline_{k}']:.4f}" for k in args.headline_metrics if f"test_baseline_{k}" in results))
    print(f"wrote {args.output_dir}/ (model, processor, ISP, all_results.json, README.md)")


def main(task: str, argv: list[str] | None = None) -> int:
    """Train a ``task`` model from a command line (``argv``: default ``sys.argv[1:]``); returns
    the exit status. A setting that cannot work stops the run with ``error: ...`` (status 2)."""
    from .loop import train
    from .outputs import write_outputs

    args = parse_training_args(task, argv)
    start = time.perf_counter()
    try:
        check_output_dir(args)
        result = train(args)
    except OptionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_outputs(args, result)
    if result.accelerator.is_main_process:
        print_summary(args, result.results)
        print(f"total time {time.perf_counter() - start:.1f} s")
    return 0
