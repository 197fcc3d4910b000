"""Drift optimisation: one model per (ISP, light intensity, seed), trained by the training loop
with validation after every epoch, and the report comparing their validation curves.

    plan_runs           the training settings of every run (RawTrainingArguments), checked up front
    train_runs          train and save each run (its history recorded by a MetricHistory callback,
                        its test images' confusion matrices kept for intervals)
    summarise_history   final and best validation entries of a run
    summarise_cells     per (ISP, intensity): spread over seeds, bootstrap intervals of the test
                        metric, and the difference from the first ISP at the same intensity
    write_report        drift_optimization.csv / .json / .md / .png

Each model is saved as the training scripts save it, under ``<output_dir>/runs/<isp>_i<intensity>/``
(``..._s<seed>/`` with ``seeds``), with its record (:data:`RECORD_FILE`, :data:`CONFUSIONS_FILE`)
written last: a later call with the same settings reuses a finished run instead of training it
again (unless ``--overwrite_output_dir``), so an interrupted comparison continues where it
stopped, and seeds trained by separate processes into the same ``output_dir`` are reported
together by one more call with all of them. Statistics: :mod:`raw_isp.drift.statistics`; the test images of
one intensity are resampled once for every run at that intensity, so differences between ISPs are
paired image by image, and "beyond the seed spread" means that the two ISPs' ranges over seeds do
not overlap.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic import atomic_write
from ..metrics.bootstrap import LEVEL, N_BOOT, metric_function, percentile_interval, resample_indices
from ..training.arguments import RawTrainingArguments
from ..training.callbacks import MetricHistory
from ..training.outputs import check_output_dir
from .plots import plot_curves
from .reports import check_report_dir, write_csv, write_json
from .statistics import cell_values, describe, difference, seed_values

__all__ = [
    "QUICK_DEFAULTS",
    "REPORT_FILES",
    "OptimizationRun",
    "run_tag",
    "finished_record",
    "isp_moves",
    "plan_runs",
    "train_runs",
    "summarise_history",
    "summarise_cells",
    "write_report",
]

#: Training settings used unless given on the command line: a quick per-run budget
#: (classification: the first 192 training images, 4 epochs of batch 16 = 48 steps), so the
#: default command finishes in minutes on 2 CPU cores. It is a smoke test, too short for the
#: static baseline to converge: judge the ISPs with ``--full`` (the training scripts' budget).
#: Validation and test splits are never truncated here, so test figures cover the whole split.
QUICK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"max_train_samples": 192, "num_train_epochs": 4, "per_device_train_batch_size": 16,
                       "logging_steps": 4},
    "segmentation": {"max_train_samples": 48, "num_train_epochs": 3, "logging_steps": 6},
}
REPORT_FILES = ("drift_optimization.csv", "drift_optimization.json", "drift_optimization.md",
                "drift_optimization.png", "runs")
#: A finished run's record (everything :func:`train_runs` returns for it but the confusions, and
#: the run's settings) and its test images' confusion matrices, in the run's folder.
RECORD_FILE = "drift_optimization_run.json"
CONFUSIONS_FILE = "drift_optimization_run_confusions.npy"
#: Columns of ``drift_optimization.csv`` (the validation history, one value per row).
FIELDS = ("isp", "intensity", "seed", "step", "metric", "value")


@dataclass(frozen=True)
class OptimizationRun:
    """One model of the comparison: its ISP spec, training intensity, full training settings and
    seed (``args.seed``)."""

    isp: str
    intensity: float
    args: RawTrainingArguments

    @property
    def seed(self) -> int:
        return self.args.seed


def run_tag(isp: str, intensity: float, seed: int | None = None) -> str:
    """Folder name of a run: ``static-bi_s_ga_i0.05`` (``static-bi_s_ga_i0.05_s1`` with a seed)."""
    return f"{isp.replace(':', '-')}_i{intensity:g}" + ("" if seed is None else f"_s{seed}")


def plan_runs(base: RawTrainingArguments, isps: Sequence[str], intensities: Sequence[float],
              output_dir: str | Path, seeds: Sequence[int] | None = None) -> list[OptimizationRun]:
    """Every (intensity, ISP, seed) run: ``base`` with the run's ISP, intensity, seed and folder
    (``<output_dir>/runs/<tag>``; ``seeds`` None: ``base.seed`` alone, tags without a seed).
    Checks each setting and each run folder before any training
    (:class:`~raw_isp.training.arguments.OptionError` naming the problem)."""
    check_report_dir(output_dir, REPORT_FILES)
    runs = []
    for intensity in intensities:
        for isp in isps:
            for seed in (list(dict.fromkeys(seeds)) if seeds else [None]):
                args = dataclasses.replace(base, isp=isp, intensity=intensity,
                                           seed=base.seed if seed is None else seed,
                                           output_dir=str(Path(output_dir) / "runs" / run_tag(isp, intensity, seed)))
                runs.append(OptimizationRun(args.isp, args.intensity, args))
    for run in runs:
        if finished_record(run) is None:
            check_output_dir(run.args)
    return runs


def _settings(args: RawTrainingArguments) -> dict[str, Any]:
    """The run's settings as JSON gives them back (tuples as lists), to compare with a record's."""
    return json.loads(json.dumps(args.to_dict(), default=str))


def finished_record(run: OptimizationRun) -> dict[str, Any] | None:
    """The record a finished run left in its folder, when its settings equal ``run``'s (and
    ``--overwrite_output_dir`` is not given); None otherwise (no record, a partial one, or other
    settings: the run is trained)."""
    folder = Path(run.args.output_dir)
    if run.args.overwrite_output_dir or not (folder / RECORD_FILE).is_file() or not (folder / CONFUSIONS_FILE).is_file():
        return None
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
        confusions = np.load(folder / CONFUSIONS_FILE, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if record.pop("settings", None) != _settings(run.args):
        return None
    record["test_confusions"] = confusions
    return record


def _save_record(run: OptimizationRun, record: dict[str, Any]) -> None:
    """Write ``record`` beside the run's model: the confusions first, the record (which marks the
    run finished) last."""
    folder = Path(run.args.output_dir)
    atomic_write(folder / CONFUSIONS_FILE, lambda fh: np.save(fh, np.asarray(record["test_confusions"])))
    rest = {k: v for k, v in record.items() if k != "test_confusions"}
    write_json(folder / RECORD_FILE, {**rest, "settings": _settings(run.args)})


def summarise_history(history: list[dict[str, Any]], metric: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The final and the best (highest ``metric``; earliest on ties) validation entries."""
    best = max(history, key=lambda h: (h[metric], -h["step"]))
    return history[-1], best


def train_runs(runs: Sequence[OptimizationRun], log=print) -> tuple[list[dict[str, Any]], bool]:
    """Train, validate after every epoch and save each run (one intensity's data in memory at a
    time). Returns one record per run (``isp``, ``intensity``, ``seed``, ``output_dir``,
    ``history``, ``final``, ``best``, ``test``, ``seconds``, sample counts, and
    ``test_confusions``: the saved model's confusion matrix of each test image, ``(n, K, K)``)
    and whether this is the main process."""
    from ..training.data import load_splits
    from ..training.evaluation import evaluate_views_per_sample
    from ..training.loop import train
    from ..training.outputs import write_outputs

    records: list[dict[str, Any]] = []
    splits, splits_intensity, is_main = None, None, True
    for run in runs:
        args = run.args
        reused = finished_record(run)
        if reused is not None:
            records.append(reused)
            log(f"{run.isp:<24} intensity {run.intensity:<5g} seed {run.seed:<4d} reused the finished run in "
                f"{args.output_dir}")
            continue
        metrics = (*args.headline_metrics, "loss")
        if run.intensity != splits_intensity:
            splits, splits_intensity = None, run.intensity  # drop the last intensity's data first
            splits = load_splits(args)
        recorder = MetricHistory(metrics)
        t0 = time.perf_counter()
        result = train(args, splits=splits, callbacks=[recorder], evaluate_each_epoch=True)
        write_outputs(args, result)
        seconds = time.perf_counter() - t0
        acc = result.accelerator
        net = acc.unwrap_model(result.model)
        _, confusions = evaluate_views_per_sample(result.model, result.loaders["test"], acc, args.task,
                                                  result.label_names, {"model": net.pixel_values})
        is_main = acc.is_main_process
        moves = isp_moves(net.isp, args)
        main_metric = args.headline_metrics[0]
        final, best = summarise_history(recorder.history, main_metric)
        records.append({"isp": run.isp, "intensity": run.intensity, "seed": run.seed, "output_dir": args.output_dir,
                        "history": recorder.history, "final": final, "best": best,
                        "test": {k: result.results[f"test_{k}"] for k in metrics if f"test_{k}" in result.results},
                        "seconds": seconds, "train_samples": result.results["train_samples"],
                        "eval_samples": result.results["eval_samples"], "test_confusions": confusions["model"],
                        "label_names": result.label_names, "isp_moves": moves,
                        "baseline": {k.removeprefix("test_baseline_"): v for k, v in result.results.items()
                                     if k.startswith("test_baseline_")}})
        if is_main:
            _save_record(run, records[-1])
            log(f"{run.isp:<24} intensity {run.intensity:<5g} seed {run.seed:<4d} validation {main_metric} final "
                f"{final[main_metric]:.4f} (step {final['step']}), best {best[main_metric]:.4f} (step {best['step']}); "
                f"{seconds:.1f} s")
    return records, is_main


def isp_moves(isp, args: RawTrainingArguments) -> dict[str, dict[str, float]] | None:
    """How far each trainable ISP parameter moved from its initial value: per parameter the mean
    and the largest absolute change (``mean_abs``, ``max_abs``, in the parameter's units; the
    black level in [0, 1] raw units) and the initial and final values' norm. None for an ISP
    without trainable parameters or whose initial values cannot be rebuilt (the learned ISP:
    its weights are random)."""
    from ..isp.parametrized import ParametrizedISP
    from ..models.modeling import build_isp

    if not isinstance(isp, ParametrizedISP):
        return None
    initial = build_isp(args.isp, camera=args.camera_name, exposure=args.exposure_setting)
    moves = {}
    for name, p in isp.named_parameters():
        if not p.requires_grad:
            continue
        p0 = getattr(initial, name).detach().to(p.device, p.dtype)
        delta = (p.detach() - p0).abs()
        moves[name] = {"mean_abs": float(delta.mean()), "max_abs": float(delta.max()),
                       "initial_norm": float(p0.norm()), "final_norm": float(p.detach().norm())}
    return moves or None


def summarise_cells(records: list[dict[str, Any]], task: str, metrics: Sequence[str], n_boot: int = N_BOOT,
                    bootstrap_seed: int = 0, level: float = LEVEL) -> list[dict[str, Any]]:
    """One entry per (ISP, intensity), in the runs' order, over its seeds.

    Each entry: ``isp``, ``intensity``, ``seeds``; ``final`` / ``best``: :func:`describe` of the
    final and the best validation value of each metric over seeds (no interval: the validation
    images are not kept per image); ``test``: :func:`describe` of each metric of the saved models
    on the test images, with the 95 % percentile-bootstrap interval of the seed mean; and, for
    every ISP but the first at that intensity, ``vs_first``: :func:`difference` from the first
    ISP of the final validation metric (seed ranges) and of the test metric (paired over the test
    images, seed ranges). Fills each record's ``test_interval`` (its own bootstrap interval).
    The resamples of an intensity's test images (``n_boot`` from ``bootstrap_seed``; 0: none)
    are shared by every run at that intensity.
    """
    names = records[0]["label_names"]
    fns = {m: f for m in metrics if (f := _metric(task, m, names)) is not None}
    indices: dict[int, np.ndarray | None] = {}
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["isp"], r["intensity"]), []).append(r)
    cells, tests = [], {}
    for (isp, intensity), runs in groups.items():
        n = runs[0]["test_confusions"].shape[0]
        if n not in indices:
            indices[n] = resample_indices(n, n_boot, bootstrap_seed) if n_boot else None
        test = {m: cell_values([r["test_confusions"] for r in runs], fn, indices[n]) for m, fn in fns.items()}
        for i, r in enumerate(runs):
            r["test_interval"] = {m: {"value": float(c.values[i]),
                                      **({"ci_low": None, "ci_high": None} if c.resampled is None else
                                         dict(zip(("ci_low", "ci_high"), _bounds(c, i, level))))}
                                  for m, c in test.items()}
        tests[(isp, intensity)] = test
        cells.append({"isp": isp, "intensity": intensity, "seeds": [r["seed"] for r in runs],
                      "final": {m: describe(seed_values([r["final"][m] for r in runs if m in r["final"]]))
                                for m in metrics if all(m in r["final"] for r in runs)},
                      "best": {m: describe(seed_values([r["best"][m] for r in runs if m in r["best"]]))
                               for m in metrics if all(m in r["best"] for r in runs)},
                      "test": {m: describe(c, level) for m, c in test.items()}})
    first: dict[float, dict[str, Any]] = {}
    for cell in cells:
        ref = first.setdefault(cell["intensity"], cell)
        if ref is cell:
            continue
        key, ref_key = (cell["isp"], cell["intensity"]), (ref["isp"], ref["intensity"])
        runs, ref_runs = groups[key], groups[ref_key]
        vs = {"isp": ref["isp"], "final": {}, "test": {}}
        for m in cell["final"]:
            if m in ref["final"]:
                vs["final"][m] = difference(seed_values([r["final"][m] for r in runs]),
                                            seed_values([r["final"][m] for r in ref_runs]), False, level)
        for m, c in tests[key].items():
            if tests[ref_key][m].n == c.n:
                vs["test"][m] = difference(c, tests[ref_key][m], False, level)
        cell["vs_first"] = vs
    return cells


def _metric(task: str, metric: str, names: list[str]):
    try:
        return metric_function(task, metric, names)
    except ValueError:
        return None


def _bounds(cell, i: int, level: float) -> tuple[float, float]:
    ci = percentile_interval(cell.values[i], cell.resampled[i], cell.n, level)
    return ci.low, ci.high


def _fmt_ci(d: dict[str, Any], low: str = "ci_low", high: str = "ci_high") -> str:
    return "" if d.get(low) is None else f"[{d[low]:.4f}, {d[high]:.4f}]"


def _fmt_spread(d: dict[str, Any]) -> str:
    if d["n_seeds"] < 2:
        return f"{d['mean']:.4f}"
    return f"{d['mean']:.4f} \u00b1 {d['sd']:.4f} ({d['min']:.4f} to {d['max']:.4f})"


def _markdown(summary: dict[str, Any]) -> str:
    main = summary["metric"]
    seeds = summary["seeds"]
    lines = [
        "# Drift optimisation", "",
        f"{summary['dataset']} ({summary['source']}), {summary['task']}, model `{summary['model']}`: one model per ISP "
        f"and light intensity{f' and seed ({len(seeds)} seeds: {seeds})' if len(seeds) > 1 else ''}, "
        f"{summary['train_samples']} training images, validated on {summary['eval_samples']} images after every "
        "epoch.", "",
        f"| ISP | intensity | final validation {main} (step) | best validation {main} (step) | test {main} | "
        "training s | seed | test 95% CI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["runs"]:
        ci = _fmt_ci(r.get("test_interval", {}).get(main, {}))
        lines.append(f"| {r['isp']} | {r['intensity']:g} | {r['final'][main]:.4f} ({r['final']['step']}) | "
                     f"{r['best'][main]:.4f} ({r['best']['step']}) | {r['test'][main]:.4f} | {r['seconds']:.1f} | "
                     f"{r['seed']} | {ci} |")
    baseline = summary["runs"][0].get("baseline") or {}
    if main in baseline:
        near = [f"{r['isp']} at {r['intensity']:g} (seed {r['seed']})" for r in summary["runs"]
                if r.get("test_interval", {}).get(main, {}).get("ci_low") is not None
                and r["test_interval"][main]["ci_low"] <= baseline[main]]
        lines += ["", f"Trivial baseline (always {baseline['class']}, the training split's most frequent class): test "
                  f"{main} {baseline[main]:.4f}. "
                  + (f"**Within the test-image noise of it** (95% CI reaches it): {', '.join(near)}." if near else
                     "Every run's test 95% CI lies above it.")]
    moved = [r for r in summary["runs"] if r.get("isp_moves")]
    if moved:
        names = list(dict.fromkeys(n for r in moved for n in r["isp_moves"]))
        lines += ["", "## What the ISP learned (mean absolute change from the initial value, in the parameter's "
                  "units; black level in [0, 1] raw units)", "",
                  "| ISP | intensity | seed | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
        for r in moved:
            lines.append(f"| {r['isp']} | {r['intensity']:g} | {r['seed']} | " + " | ".join(
                f"{r['isp_moves'][n]['mean_abs']:.2e}" if n in r["isp_moves"] else "" for n in names) + " |")
    spread = "mean \u00b1 sd (min to max) over seeds; " if len(seeds) > 1 else ""
    lines += ["", f"## Per ISP and intensity ({spread}95% CI: percentile bootstrap over the test images, {summary['n_boot']} resamples)", "",
              f"| ISP | intensity | final validation {main} | test {main} | test 95% CI | final validation vs first ISP "
              f"| test vs first ISP | 95% CI | beyond the noise |", "|---|---|---|---|---|---|---|---|---|"]
    for c in summary["cells"]:
        fv, tm = c["final"].get(main), c["test"].get(main)
        vs = c.get("vs_first", {})
        vf, vt = vs.get("final", {}).get(main), vs.get("test", {}).get(main)
        marks = []
        if vt and vt["diff_excludes_zero"]:
            marks.append("test images")
        if vt and vt["exceeds_seed_spread"]:
            marks.append("test seeds")
        if vf and vf["exceeds_seed_spread"]:
            marks.append("validation seeds")
        dv = f"{vf['diff']:+.4f}" if vf else ""
        dt = f"{vt['diff']:+.4f}" if vt else ""
        lines.append(f"| {c['isp']} | {c['intensity']:g} | {_fmt_spread(fv) if fv else ''} | "
                     f"{_fmt_spread(tm) if tm else ''} | {_fmt_ci(tm) if tm else ''} | {dv} | {dt} | "
                     f"{_fmt_ci(vt, 'diff_ci_low', 'diff_ci_high') if vt else ''} | {', '.join(marks)} |")
    lines += ["", "Differences are from the first ISP listed at the same intensity. *test images*: the paired 95 % "
              "bootstrap interval of the test difference excludes 0; *seeds*: the two ISPs' ranges over seeds do not "
              "overlap (needs 2 seeds each; weak with 2-3).", ""]
    for intensity in summary["intensities"]:
        best = summary["best_per_intensity"][repr(intensity)]
        lines.append(f"- intensity {intensity:g}: best final validation {main} {best['value']:.4f} with {best['isp']}"
                     + (" (mean over seeds)" if len(seeds) > 1 else ""))
    lines += ["", "![validation metric against step](drift_optimization.png)", ""]
    return "\n".join(lines)


def write_report(output_dir: str | Path, base: RawTrainingArguments, records: list[dict[str, Any]],
                 seconds: float, n_boot: int = N_BOOT, bootstrap_seed: int = 0) -> dict[str, Any]:
    """The report of all runs in ``output_dir``; returns the summary written to
    ``drift_optimization.json`` (``cells``: :func:`summarise_cells`; ``best_per_intensity``: the
    ISP(s) with the highest final validation metric, mean over seeds, at each intensity)."""
    metric = base.headline_metrics[0]
    metrics = (*base.headline_metrics, "loss")
    intensities = list(dict.fromkeys(r["intensity"] for r in records))
    cells = summarise_cells(records, base.task, base.headline_metrics, n_boot, bootstrap_seed)
    best_per_intensity = {}
    for intensity in intensities:
        group = [c for c in cells if c["intensity"] == intensity]
        top = max(c["final"][metric]["mean"] for c in group)
        best_per_intensity[repr(intensity)] = {
            "isp": ", ".join(c["isp"] for c in group if c["final"][metric]["mean"] == top), "value": top}
    rows = [{"isp": r["isp"], "intensity": r["intensity"], "seed": r["seed"], "step": h["step"], "metric": k,
             "value": h[k]} for r in records for h in r["history"] for k in metrics if k in h]
    runs = [{k: v for k, v in r.items() if k not in ("test_confusions", "label_names")} for r in records]
    summary = {
        "task": base.task, "dataset": base.dataset, "source": base.source, "model": base.model_name_or_path,
        "intensities": intensities, "isps": list(dict.fromkeys(r["isp"] for r in records)),
        "seeds": list(dict.fromkeys(r["seed"] for r in records)), "n_boot": n_boot, "bootstrap_seed": bootstrap_seed,
        "train_samples": records[0]["train_samples"], "eval_samples": records[0]["eval_samples"],
        "metric": metric, "runs": runs, "cells": cells, "best_per_intensity": best_per_intensity, "rows": rows,
        "seconds": seconds,
    }
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "drift_optimization.csv", rows, FIELDS)
    write_json(out / "drift_optimization.json", summary)
    atomic_write(out / "drift_optimization.md", _markdown(summary))
    plot_curves(out / "drift_optimization.png", metric, records, intensities,
                f"{base.dataset}, {base.model_name_or_path}: validation {metric} per ISP"
                + (" (mean over seeds, band: min-max)" if len(summary["seeds"]) > 1 else ""))
    return summary
