#!/usr/bin/env python
"""Drift optimisation: train with a static, the parametrized and the learned ISP at low light and
compare their validation curves.

One model is trained per (ISP, intensity) with the training scripts' own loop
(:func:`raw_training.train`), evaluated on the validation split after every epoch; each model is
saved as the training scripts save it, under ``<output_dir>/runs/<isp>_i<intensity>/``. Every
option of the training scripts passes through (``--model_name_or_path``, ``--data_dir``,
``--num_train_epochs``, ...), except ``--isp``, ``--intensity`` and ``--output_dir``, which this
script sets per run. Examples::

    python scripts/drift_optimization.py
    python scripts/drift_optimization.py --intensities 0.01,0.05,1 --isps static:ma_s_me,parametrized:ma_s_me,learned
    python scripts/drift_optimization.py --task segmentation --num_train_epochs 2
    python scripts/drift_optimization.py --data_dir /data/raw-microscopy --full

The default per-run budget is small (:data:`QUICK_DEFAULTS`; classification: the first 192
training images, 4 epochs of batch 16 = 48 steps, 64 validation images) so that the default
command finishes in a few minutes on 2 CPU cores; ``--full`` trains with the training scripts'
own defaults instead (the whole split, 12 epochs), and any training option given on the command
line overrides either. Writes ``drift_optimization.csv`` (isp, intensity, step, metric, value),
``drift_optimization.json``, ``drift_optimization.md`` (final and best validation metric per run)
and ``drift_optimization.png`` (one panel per intensity, one curve per ISP).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import raw_training  # noqa: E402

from raw_isp.models.modeling import parse_isp  # noqa: E402

DEFAULT_ISPS = "static:bi_s_ga,parametrized,learned"
DEFAULT_INTENSITIES = "0.01,0.05"
#: Training options this script sets per run; passing them through would be overridden.
RESERVED = ("--isp", "--intensity", "--output_dir")
#: Validation metrics recorded per evaluation (plus ``loss``); the first is plotted.
METRICS = {"classification": ("accuracy", "macro_f1"), "segmentation": ("mean_iou", "iou_car", "pixel_accuracy")}
#: Training options used unless given on the command line: a quick per-run budget.
QUICK_DEFAULTS = {
    "classification": ["--max_train_samples", "192", "--num_train_epochs", "4", "--per_device_train_batch_size", "16",
                       "--max_eval_samples", "64", "--logging_steps", "4"],
    "segmentation": ["--max_train_samples", "48", "--num_train_epochs", "3", "--max_eval_samples", "24",
                     "--logging_steps", "6"],
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], allow_abbrev=False,
        epilog="Any other option is a training option (python scripts/train_classification.py --help).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--task", choices=raw_training.TASKS, default="classification")
    p.add_argument("--intensities", default=DEFAULT_INTENSITIES,
                   help="comma-separated light intensity ratios to train at (captured ratios only)")
    p.add_argument("--isps", default=DEFAULT_ISPS,
                   help="comma-separated ISPs: static:<variant>, parametrized[:<variant>], learned, ...")
    p.add_argument("--output_dir", default="outputs/drift_optimization")
    p.add_argument("--full", action="store_true",
                   help="train with the training scripts' defaults instead of the quick per-run budget")
    return p


def _split_list(text: str, name: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ValueError(f"{name}: give at least one value")
    return list(dict.fromkeys(items))


def run_tag(isp: str, intensity: float) -> str:
    return f"{isp.replace(':', '-')}_i{intensity:g}"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[tuple[str, float, argparse.Namespace]]]:
    """This script's options and the training arguments of every run, all checked before any work."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    for token in rest:
        name = token.split("=", 1)[0]
        # Prefixes too: argparse would read "--intens" as --intensity.
        if len(name) > 3 and any(opt.startswith(name) for opt in RESERVED):
            parser.error(f"{name}: this script sets --isp, --intensity and --output_dir per run; "
                         "use --isps, --intensities and --output_dir")
    try:
        isps = [str(parse_isp(s)) for s in _split_list(args.isps, "--isps")]
    except ValueError as err:
        parser.error(f"--isps: {err}")
    intensities = []
    for text in _split_list(args.intensities, "--intensities"):
        try:
            value = float(text)
        except ValueError:
            parser.error(f"--intensities: {text!r} is not a number")
        if not (math.isfinite(value) and 0 < value <= 1):
            parser.error(f"--intensities: {text} must be in (0, 1]")
        if value not in intensities:
            intensities.append(value)
    runs = []
    for intensity in intensities:
        for isp in isps:
            folder = Path(args.output_dir) / "runs" / run_tag(isp, intensity)
            argv_run = [*([] if args.full else QUICK_DEFAULTS[args.task]), *rest, "--isp", isp, "--intensity", repr(intensity),
                        "--output_dir", str(folder)]
            runs.append((isp, intensity, raw_training.parse_args(args.task, argv_run)))
    return args, runs


def summarise(task: str, history: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The final and the best (highest main metric; earliest on ties) validation entries."""
    main = METRICS[task][0]
    final = history[-1]
    best = max(history, key=lambda h: (h[main], -h["step"]))
    return final, best


def plot_curves(path: Path, task: str, runs: list[dict[str, Any]], intensities: list[float], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = METRICS[task][0]
    fig, axes = plt.subplots(1, len(intensities), figsize=(4.2 * len(intensities) + 0.6, 3.6), dpi=100,
                             sharey=True, squeeze=False)
    for ax, intensity in zip(axes[0], intensities):
        for run in (r for r in runs if r["intensity"] == intensity):
            steps = [h["step"] for h in run["history"]]
            ax.plot(steps, [h[main] for h in run["history"]], marker="o", label=run["isp"])
        ax.set_title(f"intensity {intensity:g}", fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(f"validation {main}")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_markdown(path: Path, summary: dict[str, Any]) -> None:
    task = summary["task"]
    main = METRICS[task][0]
    lines = [
        "# Drift optimisation",
        "",
        f"{summary['dataset']} ({summary['source']}), {task}, model `{summary['model']}`: one model per ISP and "
        f"light intensity, {summary['train_samples']} training images, validated on {summary['eval_samples']} "
        "images after every epoch.",
        "",
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
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    args, runs = parse_args(argv)
    task = args.task
    start = time.perf_counter()
    out = Path(args.output_dir)
    splits_by_intensity: dict[float, Any] = {}
    records: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    is_main = True
    for isp, intensity, targs in runs:
        if intensity not in splits_by_intensity:
            splits_by_intensity.clear()  # one intensity's data in memory at a time
            splits_by_intensity[intensity] = raw_training.load_splits(targs)
        splits = splits_by_intensity[intensity]
        history: list[dict[str, Any]] = []

        def record(step: int, metrics: dict[str, Any], history=history) -> None:
            history.append({"step": step, **{k: float(metrics[k]) for k in (*METRICS[task], "loss") if k in metrics}})

        t0 = time.perf_counter()
        result = raw_training.train(targs, splits=splits, evaluate_each_epoch=True, eval_callback=record)
        raw_training.write_outputs(targs, result)
        seconds = time.perf_counter() - t0
        is_main = result.accelerator.is_main_process
        final, best = summarise(task, history)
        test = {k: result.results[f"test_{k}"] for k in (*METRICS[task], "loss") if f"test_{k}" in result.results}
        records.append({"isp": isp, "intensity": intensity, "output_dir": targs.output_dir, "history": history,
                        "final": final, "best": best, "test": test, "seconds": seconds,
                        "train_samples": result.results["train_samples"],
                        "eval_samples": result.results["eval_samples"]})
        for h in history:
            rows += [{"isp": isp, "intensity": intensity, "step": h["step"], "metric": k, "value": h[k]}
                     for k in (*METRICS[task], "loss") if k in h]
        if is_main:
            main_metric = METRICS[task][0]
            print(f"{isp:<24} intensity {intensity:<5g} validation {main_metric} final {final[main_metric]:.4f} "
                  f"(step {final['step']}), best {best[main_metric]:.4f} (step {best['step']}); {seconds:.1f} s")
    if not is_main:
        return 0

    main_metric = METRICS[task][0]
    intensities = list(dict.fromkeys(r["intensity"] for r in records))
    best_per_intensity = {}
    for intensity in intensities:
        group = [r for r in records if r["intensity"] == intensity]
        top = max(r["final"][main_metric] for r in group)
        winners = [r["isp"] for r in group if r["final"][main_metric] == top]
        best_per_intensity[repr(intensity)] = {"isp": ", ".join(winners), "value": top}
    first = runs[0][2]
    summary = {
        "task": task, "dataset": first.dataset, "source": first.source, "model": first.model_name_or_path,
        "intensities": intensities, "isps": list(dict.fromkeys(r["isp"] for r in records)),
        "train_samples": records[0]["train_samples"], "eval_samples": records[0]["eval_samples"],
        "metric": main_metric, "runs": records, "best_per_intensity": best_per_intensity, "rows": rows,
        "seconds": time.perf_counter() - start,
    }
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "drift_optimization.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["isp", "intensity", "step", "metric", "value"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "drift_optimization.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_markdown(out / "drift_optimization.md", summary)
    plot_curves(out / "drift_optimization.png", task, records, intensities,
                f"{first.dataset}, {first.model_name_or_path}: validation {main_metric} per ISP")
    for intensity in intensities:
        b = best_per_intensity[repr(intensity)]
        print(f"intensity {intensity:g}: best final validation {main_metric} {b['value']:.4f} with {b['isp']}")
    print(f"wrote {out}/ (drift_optimization.csv, .json, .md, .png; models in runs/) in {summary['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
