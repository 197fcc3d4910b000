"""The pictures of the three drift reports (matplotlib, Agg backend, PNG files).

    heatmap           annotated matrix, worst cell outlined, cells beyond the noise hatched /
                      starred (drift synthesis)
    plot_models       metric against intensity, one curve per model, and each model's mean drops
                      under ISP drift and corruptions, with intervals (drift synthesis comparison)
    plot_sweep        attained metric against lambda, one line per parameter group (drift forensics)
    plot_worst_case   reference view, adversarial view, amplified difference (drift forensics)
    plot_curves       validation metric against step, a panel per intensity, mean over seeds with
                      a min-max band (drift optimisation)
"""

from __future__ import annotations

import textwrap

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["heatmap", "plot_models", "plot_sweep", "plot_worst_case", "plot_curves"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, bottom: float = 0.0) -> None:
    """Lay out (leaving ``bottom`` of the height free, for a note) and write a PNG."""
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path)
    _pyplot().close(fig)


def heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], title: str, xlabel: str, ylabel: str,
            path: Path, fmt: str = "{:.2f}", mark_min: bool = True, hatched: np.ndarray | None = None,
            starred: np.ndarray | None = None, note: str | None = None) -> None:
    """``matrix (len(rows), len(cols))`` (NaN: empty cell) as an annotated heatmap; the smallest
    cell is outlined in red when ``mark_min``. ``hatched`` / ``starred``: boolean matrices of the
    same shape; hatched cells are drawn with diagonal lines, starred ones get a ``*`` after their
    value (the drift reports: a difference beyond the test-set noise / beyond the seed spread).
    ``note``: a line under the picture saying what the marks mean."""
    import textwrap

    plt = _pyplot()
    width = 0.55 * len(cols) + 2.2
    lines = textwrap.wrap(note, int(width * 15)) if note else []
    fig, ax = plt.subplots(figsize=(width, 0.32 * len(rows) + 1.4 + 0.12 * len(lines)), dpi=90)
    im = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=np.nanmin(matrix), vmax=np.nanmax(matrix))
    ax.set_xticks(range(len(cols)), cols, rotation=45 if max(len(c) for c in cols) > 4 else 0, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    mid = (np.nanmax(matrix) + np.nanmin(matrix)) / 2
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if not np.isfinite(matrix[i, j]):
                continue
            colour = "black" if matrix[i, j] > mid else "white"
            star = "*" if starred is not None and starred[i, j] else ""
            ax.text(j, i, fmt.format(matrix[i, j]) + star, ha="center", va="center", fontsize=6, color=colour)
            if hatched is not None and hatched[i, j]:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor=colour,
                                           linewidth=0, alpha=0.45))
    if mark_min and np.isfinite(matrix).any():
        i, j = np.unravel_index(np.nanargmin(matrix), matrix.shape)
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    bottom = 0.0
    if lines:
        fig.text(0.01, 0.005, "\n".join(lines), fontsize=6, ha="left", va="bottom")
        bottom = (0.12 * len(lines) + 0.05) / fig.get_figheight()
    _save(fig, path, bottom)


def plot_models(path: Path, metric: str, curves: dict[str, dict[str, Any]], drops: dict[str, dict[str, Any]],
                title: str) -> None:
    """Two panels comparing models trained differently.

    ``curves``: label -> ``{"intensity": [...], "mean": [...], "ci_low": [...], "ci_high": [...],
    "min": [...], "max": [...]}`` (the model's own view at each intensity: seed mean, its bootstrap
    interval as error bars, the seeds' min-max as a band; None entries are not drawn).
    ``drops``: label -> ``{"ISP drift": (value, low, high), "corruptions": (value, low, high)}``,
    mean drops with their intervals, drawn as grouped bars.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 4.0), dpi=100, gridspec_kw={"width_ratios": [3, 2]})
    for label, c in curves.items():
        x = np.asarray(c["intensity"], dtype=float)
        y = np.asarray(c["mean"], dtype=float)
        line = left.plot(x, y, marker="o", label=label)[0]
        if all(v is not None for v in c.get("ci_low", [None])):
            err = np.abs(np.array([y - np.asarray(c["ci_low"], float), np.asarray(c["ci_high"], float) - y]))
            left.errorbar(x, y, yerr=err, fmt="none", ecolor=line.get_color(), capsize=2, linewidth=0.8)
        if c.get("min") and np.any(np.asarray(c["max"], float) > np.asarray(c["min"], float)):
            left.fill_between(x, c["min"], c["max"], color=line.get_color(), alpha=0.15, linewidth=0)
    left.set_xscale("log")
    left.set_xlabel("light intensity ratio")
    left.set_ylabel(f"{metric} (own view)")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    kinds = list(dict.fromkeys(k for d in drops.values() for k in d))
    width = 0.8 / max(len(drops), 1)
    for i, (label, d) in enumerate(drops.items()):
        xs = np.arange(len(kinds)) + (i - (len(drops) - 1) / 2) * width
        vals = [d[k][0] if k in d and d[k][0] is not None else np.nan for k in kinds]
        lo = [d[k][1] if k in d and d[k][1] is not None else v for k, v in zip(kinds, vals)]
        hi = [d[k][2] if k in d and d[k][2] is not None else v for k, v in zip(kinds, vals)]
        err = np.abs(np.array([np.subtract(vals, lo), np.subtract(hi, vals)]))
        right.bar(xs, vals, width, yerr=err, capsize=2, label=label)
    right.axhline(0, color="black", linewidth=0.8)
    right.set_xticks(range(len(kinds)), kinds)
    right.set_ylabel(f"mean drop in {metric}")
    right.grid(True, axis="y", alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def plot_sweep(path: Path, results: Sequence[Any], title: str) -> None:
    """Attained metric against lambda (symlog x, so lambda = 0 shows) per group of forensics
    ``SearchResult`` objects, with the clean metric as a dashed line."""
    plt = _pyplot()
    lams = sorted({r.lam for r in results})
    positive = [x for x in lams if x > 0]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for group in dict.fromkeys(r.group for r in results):
        pts = sorted((r.lam, r.attained) for r in results if r.group == group)
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=group,
                linewidth=2.4 if group == "all" else 1.4)
    clean = results[0].clean
    ax.axhline(clean, color="black", linestyle="--", linewidth=1, label=f"clean ({clean:.3f})")
    if positive:
        ax.set_xscale("symlog", linthresh=min(positive))
        ax.set_xlim(0, max(positive) * 2)
    ax.set_xlabel("lambda (penalty weight on the view distance)")
    ax.set_ylabel(f"attained {results[0].metric_name}")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    _save(fig, path)


def plot_worst_case(path: Path, reference: torch.Tensor, adversarial: torch.Tensor, title: str) -> float:
    """Views ``(3, H, W)`` in [0, 1] side by side with their absolute difference scaled so its
    peak is white; returns that gain."""
    plt = _pyplot()
    ref = reference.detach().float().cpu().clamp(0, 1)
    adv = adversarial.detach().float().cpu().clamp(0, 1)
    diff = (adv - ref).abs()
    peak = float(diff.max())
    gain = 1.0 / peak if peak > 0 else 1.0
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.6), dpi=100)
    for ax, img, name in zip(axes, (ref, adv, (diff * gain).clamp(0, 1)),
                             ("reference view", "adversarial view", f"|difference| x {gain:.3g}")):
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return gain


def plot_curves(path: Path, metric: str, runs: Sequence[dict[str, Any]], intensities: Sequence[float],
                title: str) -> None:
    """One panel per intensity, one curve per ISP of the validation ``metric`` against the
    training step: the mean over the ISP's runs (seeds; ``{"isp", "intensity", "history":
    [{"step", metric}]}``) with the runs' min-max as a band (one run: its curve alone)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(intensities), figsize=(4.2 * len(intensities) + 0.6, 3.6), dpi=100,
                             sharey=True, squeeze=False)
    for ax, intensity in zip(axes[0], intensities):
        group = [r for r in runs if r["intensity"] == intensity]
        for isp in dict.fromkeys(r["isp"] for r in group):
            per_step: dict[int, list[float]] = {}
            for run in (r for r in group if r["isp"] == isp):
                for h in run["history"]:
                    per_step.setdefault(h["step"], []).append(h[metric])
            steps = sorted(per_step)
            values = [np.asarray(per_step[s]) for s in steps]
            n = max(len(v) for v in values)
            line = ax.plot(steps, [v.mean() for v in values], marker="o",
                           label=isp if n == 1 else f"{isp} (mean of {n})")[0]
            if n > 1:
                ax.fill_between(steps, [v.min() for v in values], [v.max() for v in values], color=line.get_color(),
                                alpha=0.2, linewidth=0)
        ax.set_title(f"intensity {intensity:g}", fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(f"validation {metric}")
    axes[0][-1].legend(fontsize=8)
    # Wrapped to the figure's width (a one-panel figure is narrower than the report's title).
    fig.suptitle("\n".join(textwrap.wrap(title, int(fig.get_figwidth() * 11))), fontsize=10)
    _save(fig, path)
