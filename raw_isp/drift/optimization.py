"""Drift optimisation: one model per (ISP, light intensity), trained by the training loop with
validation after every epoch, and the report comparing their validation curves.

    plan_runs           the training settings of every run (RawTrainingArguments), checked up front
    train_runs          train and save each run (its history recorded by a MetricHistory callback)
    summarise_history   final and best validation entries of a run
    write_report        drift_optimization.csv / .json / .md / .png

Each model is saved as the training scripts save it, under ``<output_dir>/runs/<isp>_i<intensity>/``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..training.arguments import RawTrainingArguments
from ..training.callbacks import MetricHistory
from ..training.outputs import check_output_dir
from .plots import plot_curves
from .reports import check_report_dir, write_csv

__all__ = [
    "QUICK_DEFAULTS",
    "REPORT_FILES",
    "OptimizationRun",
    "run_tag",
    "plan_runs",
    "train_runs",
    "summarise_history",
    "write_report",
]

#: Training settings used unless given on the command line: a quick per-run budget
#: (classification: the first 192 training images, 4 epochs of batch 16 = 48 steps, 64
#: validation images), so the default command finishes in minutes on 2 CPU cores.
QUICK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"max_train_samples": 192, "num_train_epochs": 4, "per_device_train_batch_size": 16,
                       "max_eval_samples": 64, "logging_steps": 4},
    "segmentation": {"max_train_samples": 48, "num_train_epochs": 3, "max_eval_samples": 24, "logging_steps": 6},
}
REPORT_FILES = ("drift_optimization.csv", "drift_optimization.json", "drift_optimization.md",
                "drift_optimization.png", "runs")


@dataclass(frozen=True)
class OptimizationRun:
    """One model of the comparison: its ISP spec, training intensity and full training settings."""

    isp: str
    intensity: float
    args: RawTrainingArguments


def run_tag(isp: str, intensity: float) -> str:
    """Folder name of a run: ``static-bi_s_ga_i0.05``."""
    return f"{isp.replace(':', '-')}_i{intensity:g}"


def plan_runs(base: RawTrainingArguments, isps: Sequence[str], intensities: Sequence[float],
              output_dir: str | Path) -> list[OptimizationRun]:
    """Every (intensity, ISP) run: ``base`` with the run's ISP, intensity and folder
    (``<output_dir>/runs/<tag>``). Checks each setting and each run folder before any training
    (:class:`~raw_isp.training.arguments.OptionError` naming the problem)."""
    check_report_dir(output_dir, REPORT_FILES)
    runs = []
    for intensity in intensities:
        for isp in isps:
            args = dataclasses.replace(base, isp=isp, intensity=intensity,
                                       output_dir=str(Path(output_dir) / "runs" / run_tag(isp, intensity)))
            runs.append(OptimizationRun(args.isp, args.intensity, args))
    for run in runs:
        check_output_dir(run.args)
    return runs


def summarise_history(history: list[dict[str, Any]], metric: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The final and the best (highest ``metric``; earliest on ties) validation entries."""
    best = max(history, key=lambda h: (h[metric], -h["step"]))
    return history[-1], best


def train_runs(runs: Sequence[OptimizationRun], log=print) -> tuple[list[dict[str, Any]], bool]:
    """Train, validate after every epoch and save each run (one intensity's data in memory at a
    time). Returns one record per run (``isp``, ``intensity``, ``output_dir``, ``history``,
    ``final``, ``best``, ``test``, ``seconds``, sample counts) and whether this is the main process."""
    from ..training.data import load_splits
    from ..training.loop import train
    from ..training.outputs import write_outputs

    records: list[dict[str, Any]] = []
    splits, splits_intensity, is_main = None, None, True
    for run in runs:
        args = run.args
        metrics = (*args.headline_metrics, "loss")
        if run.intensity != splits_intensity:
            splits, splits_intensity = None, run.intensity  # drop the last intensity's data first
            splits = load_splits(args)
        recorder = MetricHistory(metrics)
        t0 = time.perf_counter()
        result = train(args, splits=splits, callbacks=[recorder], evaluate_each_epoch=True)
        write_outputs(args, result)
        seconds = time.perf_counter() - t0
        is_main = result.accelerator.is_main_process
        main_metric = args.headline_metrics[0]
        final, best = summarise_history(recorder.history, main_metric)
        records.append({"isp": run.isp, "intensity": run.intensity, "output_dir": args.output_dir,
                        "history": recorder.history, "final": final, "best": best,
                        "test": {k: result.results[f"test_{k}"] for k in metrics if f"test_{k}" in result.results},
                        "seconds": seconds, "train_samples": result.results["train_samples"],
                        "eval_samples": result.results["eval_samples"]})
        if is_main:
            log(f"{run.isp:<24} intensity {run.intensity:<5g} validation {main_metric} final {final[main_metric]:.4f} "
                f"(step {final['step']}), best {best[main_metric]:.4f} (step {best['step']}); {seconds:.1f} s")
    return records, is_main


def _markdown(summary: dict[str, Any]) -> str:
    main = summary["metric"]
    lines = [
        "# Drift optimisation", "",
        f"{summary['dataset']} ({summary['source']}), {summary['task']}, model `{summary['model']}`: one model per ISP "
        f"and light intensity, {summary['train_samples']} training images, validated on {summary['eval_samples']} "
        "images after every epoch.", "",
        f"| ISP | intensity | final validation {main} (step) | best validation {main} (step) | test {main} | "
        "training s |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["runs"]:
        lines.append(f"| {r['isp']} | {r['intensity']:g} | {r['final'][main]:.4f} ({r['final']['step']}) | "
                     f"{r['best'][main]:.4f} ({r['best']['step']}) | {r['test'][main]:.4f} | {r['seconds']:.1f} |")
    lines.append("")
    for intensity in summary["intensities"]:
        best = summary["best_per_intensity"][repr(intensity)]
        lines.append(f"- intensity {intensity:g}: best final validation {main} {best['value']:.4f} with {best['isp']}")
    lines += ["", "![validation metric against step](drift_optimization.png)", ""]
    return "\n".join(lines)


def write_report(output_dir: str | Path, base: RawTrainingArguments, records: list[dict[str, Any]],
                 seconds: float) -> dict[str, Any]:
    """The report of all runs in ``output_dir``; returns the summary written to
    ``drift_optimization.json`` (``best_per_intensity``: the ISP(s) with the highest final
    validation metric at each intensity)."""
    metric = base.headline_metrics[0]
    metrics = (*base.headline_metrics, "loss")
    intensities = list(dict.fromkeys(r["intensity"] for r in records))
    best_per_intensity = {}
    for intensity in intensities:
        group = [r for r in records if r["intensity"] == intensity]
        top = max(r["final"][metric] for r in group)
        best_per_intensity[repr(intensity)] = {"isp": ", ".join(r["isp"] for r in group if r["final"][metric] == top),
                                               "value": top}
    rows = [{"isp": r["isp"], "intensity": r["intensity"], "step": h["step"], "metric": k, "value": h[k]}
            for r in records for h in r["history"] for k in metrics if k in h]
    summary = {
        "task": base.task, "dataset": base.dataset, "source": base.source, "model": base.model_name_or_path,
        "intensities": intensities, "isps": list(dict.fromkeys(r["isp"] for r in records)),
        "train_samples": records[0]["train_samples"], "eval_samples": records[0]["eval_samples"],
        "metric": metric, "runs": records, "best_per_intensity": best_per_intensity, "rows": rows, "seconds": seconds,
    }
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "drift_optimization.csv", rows, ["isp", "intensity", "step", "metric", "value"])
    (out / "drift_optimization.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "drift_optimization.md").write_text(_markdown(summary))
    plot_curves(out / "drift_optimization.png", metric, records, intensities,
                f"{base.dataset}, {base.model_name_or_path}: validation {metric} per ISP")
    return summary
