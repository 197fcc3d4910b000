"""Noise in the drift reports: spread over training seeds and bootstrap intervals over test images.

A *cell* of a report is one evaluated condition (a model, a test ISP, a light intensity, a
corruption...). It holds one trained model per seed, and for each model the confusion matrix of
every test image (:func:`raw_isp.training.evaluation.evaluate_views_per_sample`). Two sources of
noise are reported apart:

* **test images** (the percentile bootstrap, :mod:`raw_isp.metrics.bootstrap`): the test images
  are resampled with replacement ``n_boot`` times, *once for the whole report*, and every cell,
  seed and derived statistic is recomputed on each resample. All statistics are therefore paired:
  the interval of a difference (cell minus the training condition, model B minus model A), of a
  mean drop or of a ratio of drops comes from the same resamples on both sides. With several
  seeds, the interval is that of the *mean over seeds* (images resampled, models held fixed).
* **training seeds**: mean, sample standard deviation and min-max of the metric over the models
  trained with different seeds. A difference *exceeds the seed spread* when every seed shows it
  with the same sign (one model seen two ways: the min-max range of the per-seed differences
  excludes 0), or, between models trained differently, when their min-max ranges over seeds do not
  overlap. Both need at least 2 seeds per side (None otherwise); with 2 or 3 seeds the check is
  weak (same signs arise by chance with probability 1/2 or 1/4 when there is no difference).

    CellValues      a cell's metric per seed and per resample
    cell_values     from per-seed per-image confusion matrices
    combine         weighted sum of cells of the same models (e.g. a mean drop), per seed and resample
    describe        seed spread and the interval of the seed mean
    difference      a - b (or a against 0): value, paired interval, seed-spread check
    ratio           num / den of seed means with its percentile interval
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics.bootstrap import LEVEL, percentile_interval, resampled_values

__all__ = ["CellValues", "cell_values", "combine", "spread", "describe", "difference", "ratio", "seed_values"]


@dataclass(frozen=True)
class CellValues:
    """A cell's metric: ``values`` ``(S,)`` one per seed (model), ``resampled`` ``(S, n_boot)``
    the same on each bootstrap resample of the ``n`` test images (None without resampling)."""

    values: np.ndarray
    resampled: np.ndarray | None
    n: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def resampled_mean(self) -> np.ndarray | None:
        """The seed mean on each resample, ``(n_boot,)``."""
        return None if self.resampled is None else self.resampled.mean(axis=0)


def cell_values(confusions: Sequence[np.ndarray], metric: Callable[[np.ndarray], float],
                indices: np.ndarray | None) -> CellValues:
    """A cell from one ``(n, K, K)`` per-image confusion array per seed, ``metric`` (``cm ->
    float``, :func:`raw_isp.metrics.bootstrap.metric_function`) and the report's resample
    ``indices`` ``(n_boot, n)`` (None: point values only)."""
    if not confusions:
        raise ValueError("a cell needs the confusion matrices of at least one model")
    n = confusions[0].shape[0]
    if any(c.shape[0] != n for c in confusions):
        raise ValueError(f"the models of a cell were scored on different numbers of images: "
                         f"{[c.shape[0] for c in confusions]}")
    values = np.array([metric(c.sum(axis=0)) for c in confusions], dtype=np.float64)
    resampled = None if indices is None else np.stack([resampled_values(c, metric, indices) for c in confusions])
    return CellValues(values, resampled, n)


def seed_values(values: Sequence[float], n: int = 0) -> CellValues:
    """A cell of point values only (a metric without per-image confusions, e.g. the loss or a
    validation metric from the training history)."""
    return CellValues(np.asarray(values, dtype=np.float64), None, n)


def combine(cells: Sequence[CellValues], weights: Sequence[float]) -> CellValues:
    """``sum_k weights[k] * cells[k]`` per seed and per resample; the cells must come from the
    same models (seed ``s`` of each is one model), e.g. ``[clean, *others]`` with weights ``[1,
    -1/m, ...]`` for the mean drop from the clean view."""
    if len(cells) != len(weights) or not cells:
        raise ValueError(f"combine needs one weight per cell, got {len(cells)} cells and {len(weights)} weights")
    shapes = {c.values.shape for c in cells}
    if len(shapes) != 1:
        raise ValueError(f"combined cells must have the same seeds, got shapes {sorted(shapes)}")
    values = sum(w * c.values for c, w in zip(cells, weights))
    has_boot = all(c.resampled is not None for c in cells)
    resampled = sum(w * c.resampled for c, w in zip(cells, weights)) if has_boot else None
    return CellValues(np.asarray(values, dtype=np.float64), resampled, cells[0].n)


def spread(values: np.ndarray) -> dict[str, Any]:
    """``n_seeds``, ``mean``, ``sd`` (sample standard deviation; None for one seed), ``min``, ``max``."""
    v = np.asarray(values, dtype=np.float64)
    return {"n_seeds": int(v.size), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else None,
            "min": float(v.min()), "max": float(v.max())}


def describe(cell: CellValues, level: float = LEVEL) -> dict[str, Any]:
    """:func:`spread` of the cell over seeds, with ``ci_low`` / ``ci_high``: the percentile
    interval of the seed mean over the test-image resamples (None without resamples)."""
    out = spread(cell.values)
    ci = _interval(cell.mean, cell.resampled_mean, cell.n, level)
    out.update(ci_low=ci[0], ci_high=ci[1])
    return out


def difference(a: CellValues, b: CellValues | None = None, same_models: bool = True,
               level: float = LEVEL) -> dict[str, Any]:
    """``a - b`` of the seed means (``b`` None: ``a`` against 0, e.g. a drop), with:

    ``diff``; ``diff_ci_low`` / ``diff_ci_high`` (paired percentile interval: both sides on the
    same resamples) and ``diff_excludes_zero``; and the seed check ``exceeds_seed_spread``. With
    ``same_models`` (``a`` and ``b`` are the same models seen two ways, seed by seed)
    ``seed_diff_min`` / ``seed_diff_max`` are the range of the per-seed differences and the check
    is that this range excludes 0; otherwise (models trained differently) the check is that the
    seed ranges of ``a`` and ``b`` do not overlap. None where a side has fewer than 2 seeds.
    """
    if b is not None and b.n != a.n:
        raise ValueError(f"a paired difference needs the same test images, got {a.n} and {b.n}")
    if b is None or same_models:
        d = a if b is None else combine([a, b], [1.0, -1.0])
        value, boot = d.mean, d.resampled_mean
        lo_s, hi_s = float(d.values.min()), float(d.values.max())
        exceeds = bool(lo_s > 0 or hi_s < 0) if d.values.size > 1 else None
    else:
        value = a.mean - b.mean
        boot = None if a.resampled is None or b.resampled is None else a.resampled_mean - b.resampled_mean
        lo_s = hi_s = None
        exceeds = (bool(a.values.min() > b.values.max() or a.values.max() < b.values.min())
                   if a.values.size > 1 and b.values.size > 1 else None)
    lo, hi = _interval(value, boot, a.n, level)
    return {"diff": float(value), "diff_ci_low": lo, "diff_ci_high": hi,
            "diff_excludes_zero": None if lo is None else bool(lo > 0 or hi < 0),
            "seed_diff_min": lo_s, "seed_diff_max": hi_s, "exceeds_seed_spread": exceeds}


def ratio(num: CellValues, den: CellValues, level: float = LEVEL) -> dict[str, Any]:
    """``mean(num) / mean(den)`` (e.g. corruption drop / ISP drop) with the percentile interval
    of the ratio over the resamples (``value``, ``ci_low``, ``ci_high``).

    A resample whose denominator is <= 0 while its numerator is > 0 counts as +infinity (the
    numerator is unboundedly larger), so the upper bound is infinite when the denominator's own
    interval reaches 0; with both <= 0 the ratio is undefined on that resample (left out).
    ``value``, ``ci_low`` and ``ci_high`` are None when the point denominator is <= 0 (no drop to
    compare with).
    """
    n_mean, d_mean = num.mean, den.mean
    value = n_mean / d_mean if d_mean > 0 else None
    lo = hi = None
    if value is not None and num.resampled is not None and den.resampled is not None:
        nb, db = num.resampled_mean, den.resampled_mean
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(db > 0, nb / np.where(db > 0, db, 1.0), np.where(nb > 0, np.inf, np.nan))
        ci = percentile_interval(value, r, num.n, level)
        lo, hi = ci.low, ci.high
    return {"value": value, "ci_low": lo, "ci_high": hi}


def _interval(value: float, resampled: np.ndarray | None, n: int, level: float) -> tuple[float | None, float | None]:
    if resampled is None:
        return None, None
    ci = percentile_interval(value, resampled, n, level)
    return ci.low, ci.high
