"""Bootstrap confidence intervals over test samples, for any metric computed from a confusion matrix.

A metric on ``n`` test samples is a function of their summed confusion matrix. Resampling the
samples with replacement ``n_boot`` times (the percentile bootstrap, Efron & Tibshirani 1993)
gives ``n_boot`` resampled confusion matrices, and the metric on each of them an empirical
distribution whose 2.5 % and 97.5 % quantiles bound a 95 % interval. For classification a sample
is one image (its confusion matrix is one-hot); for segmentation it is one image's pixel
confusion matrix, so the interval reflects image-to-image variation, not pixel counts.

Paired comparisons (two models, or one model on two views, scored on the same test images) use
the same resamples for both sides, so the interval of the *difference* accounts for the
correlation between them; a difference whose interval excludes 0 exceeds the sampling noise of
the test set.

The metrics themselves are the project's one implementation (:mod:`raw_isp.metrics.scores`),
called once per resample.

Shapes: ``per_sample`` confusions are ``(n, K, K)`` integer arrays with ``[i, t, p]`` = count of
reference ``t`` predicted as ``p`` in sample ``i``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .scores import classification_scores, segmentation_scores

__all__ = [
    "Interval",
    "per_sample_confusions",
    "resample_indices",
    "bootstrap_confusions",
    "resampled_values",
    "percentile_interval",
    "bootstrap_interval",
    "paired_difference",
    "metric_function",
]

#: Default number of bootstrap resamples and confidence level.
N_BOOT = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile-bootstrap interval.

    ``value``: the metric on the original samples; ``low`` / ``high``: the ``(1 - level) / 2``
    and ``(1 + level) / 2`` quantiles of the metric over the resamples; ``n``: samples;
    ``n_boot``: resamples; ``level``: confidence level (0.95).
    """

    value: float
    low: float
    high: float
    n: int
    n_boot: int
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (for differences)."""
        return bool(self.low > 0 or self.high < 0)


def per_sample_confusions(references: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray,
                          num_labels: int) -> np.ndarray:
    """One-hot confusion matrices ``(n, K, K)`` of single-label classification samples."""
    ref = np.asarray(references, dtype=np.int64).reshape(-1)
    pred = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if ref.shape != pred.shape:
        raise ValueError(f"references and predictions differ in length: {ref.size} and {pred.size}")
    for name, arr in (("references", ref), ("predictions", pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_labels):
            raise ValueError(f"{name} must lie in [0, {num_labels}), got range [{arr.min()}, {arr.max()}]")
    out = np.zeros((ref.size, num_labels, num_labels), dtype=np.int64)
    out[np.arange(ref.size), ref, pred] = 1
    return out


def resample_indices(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``(n_boot, n)`` sample indices drawn with replacement (``numpy.random.default_rng(seed)``)."""
    if n <= 0:
        raise ValueError(f"need at least one sample to resample, got n={n}")
    if n_boot <= 0:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_confusions(per_sample: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Summed confusion matrix of each resample: ``(n_boot, K, K)`` from ``(n, K, K)`` and ``(n_boot, n)``.

    Equal to summing the drawn samples' matrices one by one; computed as one ``bincount`` of the
    drawn samples' cells when every sample is one-hot (classification), else as counts @
    confusions (how often each sample is drawn, times its matrix).
    """
    cms = _check_confusions(per_sample)
    n_boot, n = indices.shape
    if n != cms.shape[0]:
        raise ValueError(f"indices resample {n} samples but per_sample holds {cms.shape[0]}")
    k = cms.shape[1]
    flat = cms.reshape(n, k * k)
    rows = np.arange(n_boot, dtype=np.int64)[:, None]
    if (flat.sum(axis=1) == 1).all() and (flat >= 0).all():
        codes = flat.argmax(axis=1)[indices]  # the one cell each drawn sample counts in
        return np.bincount((rows * (k * k) + codes).ravel(), minlength=n_boot * k * k).reshape(n_boot, k, k)
    counts = np.bincount((rows * n + indices).ravel(), minlength=n_boot * n).reshape(n_boot, n)
    return (counts @ flat).reshape(n_boot, k, k)


def metric_function(task: str, metric: str, label_names: Sequence[str] | None = None) -> Callable[[np.ndarray], float]:
    """``cm -> value`` for a scalar entry of :func:`classification_scores` (task
    ``"classification"``) or :func:`segmentation_scores` (``"segmentation"``), e.g.
    ``metric_function("classification", "macro_f1")``; per-class entries (``iou_car``,
    ``f1_EOS``) need the ``label_names`` of the confusion matrices' classes.

    The function has a ``batched`` attribute, ``(m, K, K) -> (m,)``: the same entry of ``m``
    matrices at once (what :func:`resampled_values` uses), or None for entries without one."""
    scores = {"classification": classification_scores, "segmentation": segmentation_scores}.get(task)
    if scores is None:
        raise ValueError(f"task must be 'classification' or 'segmentation', got {task!r}")
    names = list(label_names) if label_names is not None else None
    k = len(names) if names else 2
    probe = scores(np.eye(k, dtype=np.int64), names)
    if metric not in probe or not isinstance(probe[metric], float):
        choices = sorted(key for key, v in probe.items() if isinstance(v, float))
        raise ValueError(f"metric {metric!r} is not a scalar {task} score; choose one of {choices}")

    def one(cm: np.ndarray) -> float:
        return scores(cm, names)[metric]

    one.batched = _batched(task, metric, names or [])
    return one


def _batched(task: str, metric: str, names: list[str]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Scalar scores of a stack of confusion matrices ``(m, K, K)`` -> ``(m,)``, by the
    definitions of :mod:`raw_isp.metrics.scores` (checked equal to them in the tests) on the
    per-class counts; None for an entry computed one matrix at a time."""
    per_class = {f"f1_{n}": i for i, n in enumerate(names)} if task == "classification" else {
        f"iou_{n}": i for i, n in enumerate(names)}
    known = {"classification": ("accuracy", "macro_f1", "f1"),
             "segmentation": ("mean_iou", "mean_accuracy", "overall_accuracy", "pixel_accuracy")}[task]
    if metric not in known and metric not in per_class:
        return None

    def batched(cms: np.ndarray) -> np.ndarray:
        cms = np.asarray(cms)
        tp = np.diagonal(cms, axis1=1, axis2=2).astype(np.float64)
        support = cms.sum(axis=2).astype(np.float64)  # references per class (rows)
        predicted = cms.sum(axis=1).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if metric in ("accuracy", "overall_accuracy", "pixel_accuracy"):
                return tp.sum(axis=1) / support.sum(axis=1)
            if task == "classification":
                denom = support + predicted
                f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
                return f1[:, per_class[metric]] if metric in per_class else f1.mean(axis=1)
            if metric == "mean_accuracy":
                return _nanmean_rows(tp / support)
            iou = tp / (support + predicted - tp)
            return iou[:, per_class[metric]] if metric in per_class else _nanmean_rows(iou)

    return batched


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Row means over the non-NaN entries; NaN for a row without any (as ``np.nanmean``)."""
    valid = ~np.isnan(x)
    count = valid.sum(axis=1)
    total = np.where(valid, x, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(x.shape[0], np.nan), where=count > 0)


def resampled_values(per_sample: np.ndarray, metric: Callable[[np.ndarray], float], indices: np.ndarray) -> np.ndarray:
    """The metric of each resample, ``(n_boot,)`` float64: ``metric`` on the summed confusion
    matrix of the samples that row ``b`` of ``indices`` ``(n_boot, n)`` draws
    (:func:`resample_indices`). Statistics of several cells resampled with the same ``indices``
    are paired: their differences, means and ratios per resample have percentile intervals too
    (:func:`percentile_interval`). A ``metric.batched`` function (:func:`metric_function`)
    scores all resamples at once."""
    cms = bootstrap_confusions(per_sample, indices)
    batched = getattr(metric, "batched", None)
    if batched is not None:
        return np.asarray(batched(cms), dtype=np.float64)
    return np.array([metric(cm) for cm in cms], dtype=np.float64)


def bootstrap_interval(per_sample: np.ndarray, metric: Callable[[np.ndarray], float], n_boot: int = N_BOOT,
                       seed: int = 0, level: float = LEVEL) -> Interval:
    """The metric on all samples, with its percentile-bootstrap interval.

    Args:
        per_sample: ``(n, K, K)`` confusion matrices (:func:`per_sample_confusions` for
            classification; one per image for segmentation).
        metric: ``cm (K, K) -> float`` (:func:`metric_function`).
        n_boot, seed: resamples and the seed of :func:`resample_indices`.
        level: confidence level in (0, 1).
    """
    cms = _check_confusions(per_sample)
    _check_level(level)
    values = resampled_values(cms, metric, resample_indices(cms.shape[0], n_boot, seed))
    return percentile_interval(metric(cms.sum(axis=0)), values, cms.shape[0], level)


def paired_difference(per_sample_a: np.ndarray, per_sample_b: np.ndarray, metric: Callable[[np.ndarray], float],
                      n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> Interval:
    """``metric(a) - metric(b)`` on the same samples, with a paired percentile-bootstrap interval
    (both sides resampled with the same indices). Sample ``i`` of ``a`` and of ``b`` must be the
    same test image."""
    a, b = _check_confusions(per_sample_a), _check_confusions(per_sample_b)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same shape, got {a.shape} and {b.shape}")
    _check_level(level)
    indices = resample_indices(a.shape[0], n_boot, seed)
    diffs = resampled_values(a, metric, indices) - resampled_values(b, metric, indices)
    return percentile_interval(metric(a.sum(axis=0)) - metric(b.sum(axis=0)), diffs, a.shape[0], level)


def percentile_interval(value: float, resampled: np.ndarray, n: int, level: float = LEVEL) -> Interval:
    """``value`` with the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (linear
    interpolation) of its ``resampled`` values ``(n_boot,)`` as the interval; ``n``: samples.

    NaN resamples (a metric undefined on that resample) are left out; infinite ones count at
    their end of the distribution (a bound that falls among them is infinite), e.g. a ratio
    whose denominator vanished on some resamples.
    """
    _check_level(level)
    values = np.asarray(resampled, dtype=np.float64).reshape(-1)
    kept = values[~np.isnan(values)]
    if kept.size == 0:
        low = high = float("nan")
    else:
        # Quantiles interpolate, and inf - inf is NaN: stand the infinities in by the largest
        # floats and map bounds beyond any finite resample back to infinity.
        big = np.finfo(np.float64).max
        low, high = np.quantile(np.clip(kept, -big, big), [(1 - level) / 2, (1 + level) / 2])
        finite = kept[np.isfinite(kept)]
        top, bottom = (finite.max(), finite.min()) if finite.size else (-np.inf, np.inf)
        low, high = (float(np.inf if q > top else -np.inf if q < bottom else q) for q in (low, high))
    return Interval(float(value), low, high, n, values.size, level)


def _check_confusions(per_sample: np.ndarray) -> np.ndarray:
    cms = np.asarray(per_sample)
    if cms.ndim != 3 or cms.shape[1] != cms.shape[2]:
        raise ValueError(f"per_sample must be (n, K, K) confusion matrices, got shape {cms.shape}")
    if not np.issubdtype(cms.dtype, np.integer):
        raise ValueError(f"per_sample must hold integer counts, got dtype {cms.dtype}")
    if cms.shape[0] == 0:
        raise ValueError("per_sample holds no samples")
    return cms.astype(np.int64, copy=False)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
