"""The pictures of the three drift reports (matplotlib, Agg backend, PNG files).

    heatmap           annotated matrix, worst cell outlined (drift synthesis)
    plot_sweep        attained metric against lambda, one line per parameter group (drift forensics)
    plot_worst_case   reference view, adversarial view, amplified difference (drift forensics)
    plot_curves       validation metric against step, a panel per intensity (drift optimisation)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["heatmap", "plot_sweep", "plot_worst_case", "plot_curves"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)


def heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], title: str, xlabel: str, ylabel: str,
            path: Path, fmt: str = "{:.2f}", mark_min: bool = True) -> None:
    """``matrix (len(rows), len(cols))`` (NaN: empty cell) as an annotated heatmap; the smallest
    cell is outlined in red when ``mark_min``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(0.55 * len(cols) + 2.2, 0.32 * len(rows) + 1.4), dpi=90)
    im = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=np.nanmin(matrix), vmax=np.nanmax(matrix))
    ax.set_xticks(range(len(cols)), cols, rotation=45 if max(len(c) for c in cols) > 4 else 0, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    mid = (np.nanmax(matrix) + np.nanmin(matrix)) / 2
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if np.isfinite(matrix[i, j]):
                ax.text(j, i, fmt.format(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="black" if matrix[i, j] > mid else "white")
    if mark_min and np.isfinite(matrix).any():
        i, j = np.unravel_index(np.nanargmin(matrix), matrix.shape)
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
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
    """One panel per intensity, one curve per run (``{"isp", "intensity", "history": [{"step",
    metric}]}``) of the validation ``metric`` against the training step."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(intensities), figsize=(4.2 * len(intensities) + 0.6, 3.6), dpi=100,
                             sharey=True, squeeze=False)
    for ax, intensity in zip(axes[0], intensities):
        for run in (r for r in runs if r["intensity"] == intensity):
            ax.plot([h["step"] for h in run["history"]], [h[metric] for h in run["history"]], marker="o",
                    label=run["isp"])
        ax.set_title(f"intensity {intensity:g}", fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(f"validation {metric}")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
