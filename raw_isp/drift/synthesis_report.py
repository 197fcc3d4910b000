"""The drift-synthesis report: cells over seeds with bootstrap intervals, summaries, pictures.

    FIELDS, CELL_FIELDS   columns of ``drift_synthesis.csv`` (one row per model, seed, cell and
                          metric) and ``drift_synthesis_cells.csv`` (one row per cell and metric,
                          over seeds, with intervals and the difference from the training condition)
    build_report          rows and per-image confusions -> cells, summaries, printed text
    summarise             best / worst / spread / mean drops of the headline metric
    summary_text          the printed summary
    pictures              heatmaps (cells beyond the noise marked) and the model comparison figure
    write_report          the report folder, written atomically

A cell is (model, test view, intensity, corruption, severity). Its *training condition* (the
reference of its difference) is the model's own view at its training intensity; for a model of
the train x test matrix (``train:<v>``) it is test variant ``v`` at the same intensity. How the
intervals and the seed checks are computed: :mod:`raw_isp.drift.statistics`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic import atomic_write, publish_folder
from ..isp.config import ISP_VARIANTS
from ..metrics.bootstrap import LEVEL, N_BOOT, metric_function, percentile_interval, resample_indices
from ..isp.corruptions import CORRUPTIONS
from .plots import heatmap, plot_models
from ..training.folders import mark_owned, remove_owned
from .reports import staging_dir, write_csv, write_json
from .statistics import CellValues, cell_values, combine, describe, difference, ratio, seed_values

__all__ = ["FIELDS", "CELL_FIELDS", "REPORT_FILES", "STUDY_RATIO", "build_report", "summarise", "summary_text",
           "pictures", "write_report"]

#: Columns of ``drift_synthesis.csv`` (long format: one metric value of one model per row;
#: ``ci_low`` / ``ci_high``: that model's bootstrap interval over the test images).
FIELDS = ("model", "seed", "train_variant", "test_variant", "intensity", "corruption", "severity", "metric", "value",
          "ci_low", "ci_high")
_DIFF = ("diff", "diff_ci_low", "diff_ci_high", "diff_excludes_zero", "seed_diff_min", "seed_diff_max",
         "exceeds_seed_spread")
#: Columns of ``drift_synthesis_cells.csv`` (over seeds; see :mod:`raw_isp.drift.statistics`).
CELL_FIELDS = ("model", "train_variant", "test_variant", "intensity", "corruption", "severity", "metric", "n_seeds",
               "mean", "sd", "min", "max", "ci_low", "ci_high", "reference", *_DIFF)
#: What a report folder holds (``models/``: the models this run trained).
REPORT_FILES = ("drift_synthesis.csv", "drift_synthesis_cells.csv", "drift_synthesis.json", "summary.md",
                "variant_intensity.png", "corruptions.png", "train_test.png", "compare_models.png", "models")
#: Oala et al. (TMLR 2023): physically faithful drift was 4 to 10 times less severe than
#: augmentation testing on their data. Quoted for comparison, never a target.
STUDY_RATIO = (4.0, 10.0)
_MARKS = ("hatched / \u2020: the paired 95 % bootstrap interval of (cell - training condition) excludes 0; "
          "*: every seed shows the difference with the same sign")


def _reference(key: tuple, train_intensities: dict[str, float]) -> tuple | None:
    """The training condition of a cell key ``(model, test_variant, intensity, corruption, severity)``."""
    model, _, r, _, _ = key
    ref = (model, model[len("train:"):], r, "", "") if model.startswith("train:") else (
        model, "model", train_intensities[model], "", "")
    return None if ref == tuple(key) else ref


def build_report(rows: list[dict[str, Any]], samples: dict[tuple, np.ndarray], meta: dict[str, Any], *, task: str,
                 label_names: list[str], headline: Sequence[str], train_intensities: dict[str, float],
                 n_boot: int = N_BOOT, bootstrap_seed: int = 0, level: float = LEVEL) -> dict[str, Any]:
    """Cells, summaries and text of a report.

    Args:
        rows: per model and seed (``FIELDS``; ``ci_low`` / ``ci_high`` are filled in here).
        samples: ``(model, seed, test_variant, intensity, corruption, severity)`` -> the
            per-image confusion matrices ``(n, K, K)`` of that evaluation (the same ``n`` test
            images, in the same order, everywhere).
        meta: the report's settings (``variants``, ``intensities``, ``seconds``, ...).
        headline: the headline metrics, the first being the one the summaries use; those that
            are functions of the confusion matrix get intervals (the loss gets the seed spread).
        train_intensities: each model label's training intensity (``train:<v>`` models excepted).
        n_boot, bootstrap_seed: one set of resamples of the test images for the whole report (0: none).
    Returns:
        ``{"rows", "cells", "summary", "text"}``.
    """
    n = next(iter(samples.values())).shape[0] if samples else 0
    indices = resample_indices(n, n_boot, bootstrap_seed) if n_boot and n else None
    fns = {m: f for m in headline if (f := _metric(task, m, label_names)) is not None}
    seeds_of: dict[str, list] = {}
    grouped: dict[tuple, dict[Any, dict[str, Any]]] = {}
    train_variant: dict[str, str] = {}
    for r in rows:
        seeds_of.setdefault(r["model"], [])
        if r["seed"] not in seeds_of[r["model"]]:
            seeds_of[r["model"]].append(r["seed"])
        train_variant[r["model"]] = r["train_variant"]
        grouped.setdefault((r["model"], r["test_variant"], r["intensity"], r["corruption"], r["severity"], r["metric"]),
                           {})[r["seed"]] = r
    cells: dict[tuple, CellValues] = {}
    for ck, by_seed in grouped.items():
        seeds = [s for s in seeds_of[ck[0]] if s in by_seed]
        fn = fns.get(ck[-1])
        if fn is None:
            cells[ck] = seed_values([by_seed[s]["value"] for s in seeds], n)
            continue
        cell = cell_values([samples[(ck[0], s, *ck[1:5])] for s in seeds], fn, indices)
        cells[ck] = cell
        if cell.resampled is not None:
            for i, s in enumerate(seeds):
                ci = percentile_interval(cell.values[i], cell.resampled[i], n, level)
                by_seed[s]["ci_low"], by_seed[s]["ci_high"] = ci.low, ci.high
    table = []
    for ck, cell in cells.items():
        ref = _reference(ck[:5], train_intensities)
        ref_cell = cells.get((*ref, ck[5])) if ref is not None else None
        row = dict(zip(("model", "test_variant", "intensity", "corruption", "severity", "metric"), ck))
        row.update(train_variant=train_variant[ck[0]], **describe(cell, level))
        if ref_cell is not None:
            row.update(reference=f"{ref[1]} at {ref[2]:g}", **difference(cell, ref_cell, True, level))
        else:
            row.update(reference="", **dict.fromkeys(_DIFF))
        table.append({k: row[k] for k in CELL_FIELDS})
    metric = headline[0]
    labels = [m for m in seeds_of if not m.startswith("train:")]
    drops: dict[str, dict[str, CellValues]] = {}
    models = {label: _model_summary(label, cells, table, metric, train_intensities[label], train_variant[label],
                                    drops, level) for label in labels}
    for label in labels:
        if models[label] and fns.get(metric) is not None:
            _add_baseline(models[label], label, seeds_of[label][0], train_intensities[label], cells, samples,
                          fns[metric], indices, label_names, metric, level)
    summary = dict(models[labels[0]]) if labels else {}
    if summary:
        summary["models"] = models
        if len(labels) > 1:
            summary["comparison"] = _comparison(labels, cells, metric, meta["intensities"], drops, level)
    text = summary_text(summary, meta["test_images_per_intensity"], meta["seconds"], meta["evaluated_views"],
                        n_boot=n_boot) if summary else "drift synthesis: no grid evaluated"
    return {"rows": rows, "cells": table, "summary": summary, "text": text}


def _add_baseline(out: dict[str, Any], label: str, seed: Any, train_intensity: float, cells: dict,
                  samples: dict[tuple, np.ndarray], fn, indices, label_names: list[str], metric: str,
                  level: float) -> None:
    """``out["baseline"]``: the trivial baseline on the same test images (every image or pixel
    given the most frequent class of these test images: the best constant prediction for
    accuracy; all background for Raw-Drone masks) with its interval, and the paired difference
    of the model's own view from it (``within_noise``: its 95 % interval reaches 0, i.e. the
    model is not distinguishable from predicting one class)."""
    clean = cells.get((label, "model", train_intensity, "", "", metric))
    cm = samples.get((label, seed, "model", train_intensity, "", ""))
    if clean is None or cm is None:
        return
    truth = cm.sum(axis=2)  # (n, K): each image's reference counts per class
    c = int(np.argmax(truth.sum(axis=0)))
    base = np.zeros_like(cm)
    base[:, :, c] = truth
    cell = cell_values([base], fn, indices)
    diff = difference(clean, cell, False, level)
    out["baseline"] = {"class": label_names[c] if c < len(label_names) else str(c), **describe(cell, level),
                       "own_minus_baseline": diff,
                       "within_noise": not bool(diff["diff_excludes_zero"]) if diff["diff_ci_low"] is not None
                       else bool(diff["diff"] <= 0)}


def _metric(task: str, metric: str, label_names: list[str]):
    try:
        return metric_function(task, metric, label_names)
    except ValueError:
        return None


def _model_summary(label: str, cells: dict, table: list[dict], metric: str, train_intensity: float,
                   train_variant: str, drops: dict, level: float) -> dict[str, Any]:
    """Summary of one model label: :func:`summarise` of its seed means, the own view at each
    intensity, the mean drops (ISP drift, corruptions) with intervals, their ratio, and how many
    cells differ from the training condition beyond the noise. Fills ``drops[label]``."""
    mine = {k[1:5]: c for k, c in cells.items() if k[0] == label and k[5] == metric}
    mean_rows = [{"test_variant": tv, "intensity": r, "corruption": c, "severity": s, "metric": metric,
                  "value": cell.mean, "train_variant": train_variant} for (tv, r, c, s), cell in mine.items()]
    out = summarise(mean_rows, metric, train_intensity)
    if not out:
        return out
    out["train_intensity"] = train_intensity
    clean = mine.get(("model", train_intensity, "", ""))
    own = sorted(((r, c) for (tv, r, cr, _), c in mine.items() if tv == "model" and not cr), reverse=True,
                 key=lambda rc: rc[0])
    out["by_intensity"] = {str(r): describe(c, level) for r, c in own}
    if clean is not None:
        out["clean_stats"] = describe(clean, level)
        isp = [c for (tv, r, cr, _), c in mine.items()
               if tv not in ("model", train_variant) and r == train_intensity and not cr]
        corr = [c for (tv, r, cr, _), c in mine.items() if cr]
        drops[label] = {}
        for name, group in (("isp_drop", isp), ("corruption_drop", corr)):
            if group:
                drop = combine([clean, *group], [1.0, *[-1.0 / len(group)] * len(group)])
                drops[label][name] = drop
                out[name] = {**describe(drop, level), **difference(drop, None, True, level), "cells": len(group)}
        if len(drops[label]) == 2:
            out["drop_ratio"] = {**ratio(drops[label]["corruption_drop"], drops[label]["isp_drop"], level),
                                 "study": list(STUDY_RATIO)}
    diffs = [r for r in table if r["model"] == label and r["metric"] == metric and r["reference"]]
    out["noise"] = {"cells": len(diffs),
                    "beyond_test_images": sum(bool(r["diff_excludes_zero"]) for r in diffs),
                    "beyond_seeds": sum(bool(r["exceeds_seed_spread"]) for r in diffs),
                    "beyond_both": sum(bool(r["diff_excludes_zero"] and r["exceeds_seed_spread"]) for r in diffs)}
    return out


def _comparison(labels: list[str], cells: dict, metric: str, intensities: Sequence[float], drops: dict,
                level: float) -> dict[str, Any]:
    """Every model against the first on the same test images: own view per intensity, mean drops."""
    first = labels[0]
    out: dict[str, Any] = {"reference": first, "models": {}}
    for label in labels[1:]:
        entry: dict[str, Any] = {"by_intensity": {}}
        for r in sorted(intensities, reverse=True):
            a, b = cells.get((label, "model", r, "", "", metric)), cells.get((first, "model", r, "", "", metric))
            if a is not None and b is not None:
                entry["by_intensity"][str(r)] = difference(a, b, False, level)
        for name in ("isp_drop", "corruption_drop"):
            a, b = drops.get(label, {}).get(name), drops.get(first, {}).get(name)
            if a is not None and b is not None:
                entry[name] = difference(a, b, False, level)
        out["models"][label] = entry
    return out


def summarise(rows: list[dict[str, Any]], headline: str, train_intensity: float = 1.0) -> dict[str, Any]:
    """Best, worst, spread and mean of the ``headline`` metric across variants x intensities;
    the mean drop under ISP drift (the other ISPs, same data at the training intensity; a
    static-ISP model's own variant is not drift and is left out) against the mean drop under
    corruptions, both relative to the model's own view at the training intensity. Rows: one per
    cell (e.g. seed means). Empty without a grid."""
    grid = [r for r in rows if r["metric"] == headline and not r["corruption"] and r["test_variant"] != "model"]
    own = [r for r in rows if r["metric"] == headline and not r["corruption"] and r["test_variant"] == "model"]
    corr = [r for r in rows if r["metric"] == headline and r["corruption"]]
    if not grid:
        return {}
    best = max(grid, key=lambda r: r["value"])
    worst = min(grid, key=lambda r: r["value"])
    values = np.array([r["value"] for r in grid])
    own_at_train = [r for r in own if r["intensity"] == train_intensity] or own
    clean = own_at_train[0]["value"] if own_at_train else float(values.max())
    out = {
        "metric": headline,
        "clean": clean,
        "best": {"variant": best["test_variant"], "intensity": best["intensity"], "value": best["value"]},
        "worst": {"variant": worst["test_variant"], "intensity": worst["intensity"], "value": worst["value"]},
        "spread": float(values.max() - values.min()),
        "mean": float(values.mean()),
        "isp_mean_drop": float(clean - values.mean()),
    }
    per_intensity: dict[float, list[float]] = {}
    for r in grid:
        per_intensity.setdefault(r["intensity"], []).append(r["value"])
    out["mean_by_intensity"] = {str(k): float(np.mean(v)) for k, v in sorted(per_intensity.items(), reverse=True)}
    # The study's comparison: other ISPs on the same data (at the training intensity) against
    # corruptions of the training view. Light intensity drift is reported on its own.
    at_train = [r["value"] for r in grid if r["intensity"] == train_intensity
                and r["test_variant"] != r.get("train_variant")]
    if at_train:
        out["isp_only_mean_drop"] = float(clean - np.mean(at_train))
    if corr:
        out["corruption_mean_drop"] = float(clean - np.mean([r["value"] for r in corr]))
        worst_c = min(corr, key=lambda r: r["value"])
        out["worst_corruption"] = {"corruption": worst_c["corruption"], "severity": worst_c["severity"],
                                   "value": worst_c["value"]}
        if out.get("isp_only_mean_drop", 0) > 0:
            out["corruption_to_isp_drop_ratio"] = out["corruption_mean_drop"] / out["isp_only_mean_drop"]
    return out


def _ci(d: dict[str, Any] | None, low: str = "ci_low", high: str = "ci_high") -> str:
    if not d or d.get(low) is None or np.isnan(d[low]):
        return ""
    return f" [95% CI {_num(d[low])}, {_num(d[high])}]"


def _num(x: Any) -> str:
    if x is None or np.isnan(float(x)):
        return "n/a"
    x = float(x)
    return ("inf" if x > 0 else "-inf") if np.isinf(x) else f"{x:.4f}"


def _seeds(d: dict[str, Any] | None) -> str:
    if not d or d.get("n_seeds", 1) < 2:
        return ""
    return f" (sd {d['sd']:.4f}, {d['min']:.4f} to {d['max']:.4f} over {d['n_seeds']} seeds)"


def _verdict(d: dict[str, Any]) -> str:
    parts = []
    if d.get("diff_excludes_zero") is not None:
        parts.append("beyond the test-image noise" if d["diff_excludes_zero"] else "within the test-image noise")
    if d.get("exceeds_seed_spread") is not None:
        parts.append("beyond the seed spread" if d["exceeds_seed_spread"] else "within the seed spread")
    return f" ({', '.join(parts)})" if parts else ""


def summary_text(summary: dict[str, Any], n_images: int, seconds: float, n_evals: int, n_boot: int = 0) -> str:
    """The summary as the lines the script prints (and ``summary.md`` holds)."""
    m, best, worst = summary["metric"], summary["best"], summary["worst"]
    ti = summary.get("train_intensity", 1.0)
    lines = [
        f"drift synthesis: {m} of the model on {n_images} test images per intensity, {n_evals:,} evaluated views "
        f"in {seconds:.1f} s ({n_evals / max(seconds, 1e-9):.0f} images/s)"
        + (f"; 95% intervals: percentile bootstrap over the test images, {n_boot} resamples" if n_boot else ""),
        f"  own view (training ISP, intensity {ti:g}): {summary['clean']:.4f}"
        + _seeds(summary.get("clean_stats")) + _ci(summary.get("clean_stats")),
        *_baseline_lines(summary.get("baseline"), m),
        f"  best : {best['value']:.4f} ({best['variant']} at intensity {best['intensity']})",
        f"  worst: {worst['value']:.4f} ({worst['variant']} at intensity {worst['intensity']})",
        f"  spread over variants x intensities: {summary['spread']:.4f}; mean {summary['mean']:.4f}",
        "  mean by intensity: " + ", ".join(f"{k}: {v:.3f}" for k, v in summary["mean_by_intensity"].items()),
        f"  mean drop from the own view: all variants x intensities {summary['isp_mean_drop']:.4f}"
        + (f"; other ISPs at the training intensity {summary['isp_only_mean_drop']:.4f}"
           if "isp_only_mean_drop" in summary else ""),
    ]
    if "by_intensity" in summary and len(summary["by_intensity"]) > 1:
        lines.append("  own view by intensity: " + ", ".join(
            f"{k}: {v['mean']:.3f}" + (f" [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" if v["ci_low"] is not None else "")
            for k, v in summary["by_intensity"].items()))
    if "isp_drop" in summary:
        d = summary["isp_drop"]
        lines.append(f"  ISP drift (mean drop over {d['cells']} other ISPs at intensity {ti:g}): {d['diff']:.4f}"
                     + _ci(d, "diff_ci_low", "diff_ci_high") + _seeds(d) + _verdict(d))
    if "corruption_mean_drop" in summary:
        ratio_value = summary.get("corruption_to_isp_drop_ratio")
        lines.append(f"  augmentation testing (corruptions of the own view): mean drop {summary['corruption_mean_drop']:.4f}"
                     + (f", {ratio_value:.1f}x the ISP drop at the training intensity" if ratio_value else ""))
        if "corruption_drop" in summary:
            d = summary["corruption_drop"]
            lines.append("    corruption drop" + _ci(d, "diff_ci_low", "diff_ci_high") + _seeds(d) + _verdict(d))
        w = summary["worst_corruption"]
        lines.append(f"  worst corruption: {w['corruption']} severity {w['severity']}: {w['value']:.4f}")
    if "drop_ratio" in summary:
        r = summary["drop_ratio"]
        value = _num(r["value"]) if r["value"] is not None else "n/a (the ISP drop is not above 0)"
        lines.append(f"  corruption drop / ISP drop: {value}" + _ci(r)
                     + f"; the study reports physically faithful drift {STUDY_RATIO[0]:g} to {STUDY_RATIO[1]:g} times "
                     "less severe than augmentation testing (its data, not a target)")
    if "noise" in summary and summary["noise"]["cells"]:
        z = summary["noise"]
        lines.append(f"  cells differing from the training condition: {z['beyond_test_images']} of {z['cells']} beyond "
                     f"the test-image noise (paired 95% CI excludes 0), {z['beyond_seeds']} in every seed, "
                     f"{z['beyond_both']} both")
    comp = summary.get("comparison")
    for label, entry in (comp or {}).get("models", {}).items():
        lines.append(f"  {label} vs {comp['reference']} (own view, same test images):")
        for r, d in entry["by_intensity"].items():
            lines.append(f"    intensity {r}: {d['diff']:+.4f}" + _ci(d, "diff_ci_low", "diff_ci_high") + _verdict(d))
        for name in ("isp_drop", "corruption_drop"):
            if name in entry:
                d = entry[name]
                lines.append(f"    {name.replace('_', ' ')}: {d['diff']:+.4f}" + _ci(d, "diff_ci_low", "diff_ci_high")
                             + _verdict(d))
    return "\n".join(lines)


def _baseline_lines(b: dict[str, Any] | None, metric: str) -> list[str]:
    if not b:
        return []
    d = b["own_minus_baseline"]
    lines = [f"  trivial baseline (every {'pixel' if b['class'] == 'background' else 'image'} {b['class']}, the most "
             f"frequent class of these test images): {b['mean']:.4f}" + _ci(b)
             + f"; own view - baseline: {d['diff']:+.4f}" + _ci(d, "diff_ci_low", "diff_ci_high")]
    if b["within_noise"]:
        lines.append(f"  WARNING: the model's own view is within the test-image noise of the trivial baseline: it has "
                     f"not learned the task beyond predicting {b['class']}, so its drift figures measure little")
    return lines


def _matrix(table: list[dict], metric: str, model: str, rows_key: str, cols_key: str, row_names: Sequence,
            col_names: Sequence, where) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cells = {(r[rows_key], r[cols_key]): r for r in table if r["metric"] == metric and r["model"] == model and where(r)}
    shape = (len(row_names), len(col_names))
    value, hatched, starred = np.full(shape, np.nan), np.zeros(shape, bool), np.zeros(shape, bool)
    for i, a in enumerate(row_names):
        for j, b in enumerate(col_names):
            c = cells.get((a, b))
            if c is not None:
                value[i, j] = c["mean"]
                hatched[i, j] = bool(c["diff_excludes_zero"])
                starred[i, j] = bool(c["exceeds_seed_spread"])
    return value, hatched, starred


def pictures(table: list[dict], summary: dict[str, Any], headline: str, out: Path, variants: Sequence[str],
             intensities: Sequence[float]) -> list[str]:
    """The report's pictures in ``out`` from the cell table (means over seeds): heatmaps of the
    first model (variant x intensity, corruption x severity), the train x test matrix, and with
    several models the comparison figure; returns the file names written."""
    files = []
    main = next(iter(summary.get("models", {"model": None})))
    note = _MARKS
    grid = [r for r in table if r["model"] == main and r["metric"] == headline and not r["corruption"]
            and r["test_variant"] != "model"]
    if grid:
        m, h, s = _matrix(table, headline, main, "test_variant", "intensity", variants, intensities,
                          lambda r: not r["corruption"])
        heatmap(m, list(variants), [f"{i:g}" for i in intensities], f"{headline} of {main}: test ISP x intensity",
                "intensity", "test ISP variant", out / "variant_intensity.png", hatched=h, starred=s, note=note)
        files.append("variant_intensity.png")
    corr = [r for r in table if r["model"] == main and r["metric"] == headline and r["corruption"]]
    if corr:
        names = sorted({r["corruption"] for r in corr}, key=CORRUPTIONS.index)
        sev = sorted({r["severity"] for r in corr})
        m, h, s = _matrix(table, headline, main, "corruption", "severity", names, sev, lambda r: bool(r["corruption"]))
        heatmap(m, names, [str(x) for x in sev], f"{headline} of {main}: corruption x severity", "severity",
                "corruption", out / "corruptions.png", hatched=h, starred=s, note=note)
        files.append("corruptions.png")
    tt = [r for r in table if r["metric"] == headline and not r["corruption"] and r["model"].startswith("train:")]
    if tt:
        trains = sorted({r["train_variant"] for r in tt}, key=ISP_VARIANTS.index)
        i0 = max(r["intensity"] for r in tt)
        by = {(r["train_variant"], r["test_variant"]): r for r in tt if r["intensity"] == i0}
        m = np.array([[by[(a, b)]["mean"] if (a, b) in by else np.nan for b in variants] for a in trains])
        h = np.array([[bool((a, b) in by and by[(a, b)]["diff_excludes_zero"]) for b in variants] for a in trains])
        s = np.array([[bool((a, b) in by and by[(a, b)]["exceeds_seed_spread"]) for b in variants] for a in trains])
        heatmap(m, trains, list(variants), f"{headline}: train ISP x test ISP (intensity {i0:g})", "test ISP variant",
                "train ISP variant", out / "train_test.png", hatched=h, starred=s,
                note=note.replace("training condition", "training ISP"))
        files.append("train_test.png")
    models = summary.get("models", {})
    if len(models) > 1:
        curves = {}
        for label, s_ in models.items():
            pts = sorted(((float(r), d) for r, d in s_.get("by_intensity", {}).items()), key=lambda p: p[0])
            curves[label] = {"intensity": [p[0] for p in pts], **{k: [p[1][k] for p in pts]
                                                                  for k in ("mean", "ci_low", "ci_high", "min", "max")}}
        drops = {label: {title: (s_[key]["diff"], s_[key]["diff_ci_low"], s_[key]["diff_ci_high"])
                         for key, title in (("isp_drop", "ISP drift"), ("corruption_drop", "corruptions"))
                         if key in s_} for label, s_ in models.items()}
        plot_models(out / "compare_models.png", headline, curves, drops,
                    f"{headline} per model: own view against light, mean drops (95% bootstrap intervals; band: seeds)")
        files.append("compare_models.png")
    return files


def _markdown(report: dict[str, Any], meta: dict[str, Any], files: list[str]) -> str:
    summary, metric = report["summary"], report["summary"].get("metric")
    models = ", ".join(f"`{label}` = `{m['folder']}` ({m['isp']}, exposure {m['exposure']}, trained at intensity "
                       f"{m['intensity']:g}; seeds {m['seeds']})" for label, m in meta["models"].items())
    md = ["# Drift synthesis", "", f"Models: {models}. Task {meta['task']}, split `{meta['split']}`, "
          f"{meta['test_images_per_intensity']} test images per intensity (the same images at every intensity).", "",
          "## How to read it", "",
          "- A cell is one model on one test view (ISP variant or corruption) at one light intensity; its value is the "
          "metric on all test images, averaged over the seeds (one model per training seed), with the seeds' sd and "
          "min-max.",
          f"- 95 % interval: percentile bootstrap over the test images ({meta['n_boot']} resamples, seed "
          f"{meta['bootstrap_seed']}). One set of resamples serves every cell, seed and model, so differences are "
          "paired: the interval of (cell - training condition) and of one model minus another come from the same "
          "resamples on both sides. With several seeds it is the interval of the seed mean (models held fixed)."
          if meta["n_boot"] else "- No bootstrap intervals (n_boot 0).",
          "- Training condition: the model's own view at its training intensity (for a `train:<v>` model: test "
          "variant `v`). *Beyond the test-image noise*: the paired interval of the difference excludes 0. *Beyond "
          "the seed spread*: every seed shows the difference with the same sign (between differently trained models: "
          "their seed ranges do not overlap); needs 2 seeds, and with 2-3 seeds it is a weak check.",
          "- ISP drift: mean drop from the own view over the other ISPs at the training intensity; augmentation "
          "testing: mean drop over the corruptions of the own view; their ratio is compared with the study's "
          f"{STUDY_RATIO[0]:g}-{STUDY_RATIO[1]:g}x (Oala et al., TMLR 2023, on its data; not a target).", "",
          "```", report["text"], "```", ""]
    md += [f"![{f}]({f})" for f in files]
    if summary:
        md += ["", f"## Cells ({metric}; {_MARKS})", "",
               "| model | test view | intensity | mean | sd | 95% CI | difference from the training condition | 95% CI | "
               "marks |", "|---|---|---|---|---|---|---|---|---|"]
        for r in report["cells"]:
            if r["metric"] != metric:
                continue
            view = f"{r['corruption']} {r['severity']}" if r["corruption"] else r["test_variant"]
            ci = f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]" if r["ci_low"] is not None else ""
            diff = f"{r['diff']:+.4f} vs {r['reference']}" if r["reference"] else "(training condition)"
            dci = f"[{_num(r['diff_ci_low'])}, {_num(r['diff_ci_high'])}]" if r["diff_ci_low"] is not None else ""
            marks = ("\u2020" if r["diff_excludes_zero"] else "") + ("*" if r["exceeds_seed_spread"] else "")
            sd = f"{r['sd']:.4f}" if r["sd"] is not None else ""
            md.append(f"| {r['model']} | {view} | {r['intensity']:g} | {r['mean']:.4f} | {sd} | {ci} | {diff} | {dci} "
                      f"| {marks} |")
    return "\n".join(md) + "\n"


def write_report(out: Path, report: dict[str, Any], meta: dict[str, Any], moved: Sequence[str]) -> list[str]:
    """Write the report into ``out.partial`` and rename it to ``out`` when complete; the models
    this run trained (``out/models/<name>`` for each of ``moved``) move along, an earlier
    report's others do not."""
    tmp = staging_dir(out)
    remove_owned(tmp, "staging folder of a drift report")  # a folder without raw_isp's marker is refused, not deleted
    mark_owned(tmp, "drift synthesis report")
    (tmp / "models").mkdir(parents=True)
    for name in moved:
        shutil.move(str(out / "models" / name), str(tmp / "models" / name))
    if not moved:
        (tmp / "models").rmdir()
    write_csv(tmp / "drift_synthesis.csv", report["rows"], FIELDS)
    write_csv(tmp / "drift_synthesis_cells.csv", report["cells"], CELL_FIELDS)
    write_json(tmp / "drift_synthesis.json", {**meta, "summary": report["summary"], "rows": report["rows"],
                                              "cells": report["cells"]})
    summary = report["summary"]
    files = pictures(report["cells"], summary, summary.get("metric", ""), tmp, meta["variants"],
                     meta["intensities"]) if summary else []
    atomic_write(tmp / "summary.md", _markdown(report, meta, files))
    publish_folder(tmp, out)
    return files
