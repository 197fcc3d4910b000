"""Bootstrap intervals (raw_isp.metrics.bootstrap) against a direct computation: the same
resampled indices, the metric recomputed from the drawn samples with sklearn / plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from raw_isp.metrics.bootstrap import (
    bootstrap_interval,
    metric_function,
    paired_difference,
    per_sample_confusions,
    resample_indices,
)


def _quantiles(values: list[float], level: float = 0.95) -> tuple[float, float]:
    lo, hi = np.quantile(np.asarray(values), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_intervals_match_direct_resampling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, n = 5, 60
    ref = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, ref, rng.integers(0, k, n))
    cms = per_sample_confusions(ref, pred, k)
    idx = resample_indices(n, 200, seed=seed)
    for metric, direct in (
        ("accuracy", lambda r, p: accuracy_score(r, p)),
        ("macro_f1", lambda r, p: f1_score(r, p, labels=list(range(k)), average="macro", zero_division=0)),
    ):
        got = bootstrap_interval(cms, metric_function("classification", metric), n_boot=200, seed=seed)
        values = [direct(ref[i], pred[i]) for i in idx]
        lo, hi = _quantiles(values)
        assert got.value == pytest.approx(direct(ref, pred), abs=1e-12)
        assert (got.low, got.high) == pytest.approx((lo, hi), abs=1e-12)
        assert got.low <= got.value <= got.high


def test_segmentation_interval_resamples_images_not_pixels() -> None:
    rng = np.random.default_rng(3)
    n, h, w = 12, 8, 8
    truth = (rng.random((n, h, w)) < 0.3).astype(np.int64)
    pred = np.where(rng.random((n, h, w)) < 0.8, truth, 1 - truth)
    cms = np.stack([np.bincount(t.ravel() * 2 + p.ravel(), minlength=4).reshape(2, 2) for t, p in zip(truth, pred)])

    def car_iou(t: np.ndarray, p: np.ndarray) -> float:
        inter = np.logical_and(t == 1, p == 1).sum()
        union = np.logical_or(t == 1, p == 1).sum()
        return inter / union

    idx = resample_indices(n, 300, seed=5)
    got = bootstrap_interval(cms, lambda cm: float(cm[1, 1] / (cm[1].sum() + cm[:, 1].sum() - cm[1, 1])),
                             n_boot=300, seed=5)
    values = [car_iou(truth[i], pred[i]) for i in idx]
    assert got.value == pytest.approx(car_iou(truth, pred), abs=1e-12)
    assert (got.low, got.high) == pytest.approx(_quantiles(values), abs=1e-12)
    mean_iou = bootstrap_interval(cms, metric_function("segmentation", "mean_iou"), n_boot=300, seed=5)
    assert 0 < mean_iou.low <= mean_iou.value <= mean_iou.high < 1


def test_paired_difference_uses_the_same_resamples_for_both_sides() -> None:
    rng = np.random.default_rng(7)
    k, n = 3, 80
    ref = rng.integers(0, k, n)
    a = np.where(rng.random(n) < 0.8, ref, rng.integers(0, k, n))
    b = np.where(rng.random(n) < 0.5, ref, rng.integers(0, k, n))
    acc = metric_function("classification", "accuracy")
    got = paired_difference(per_sample_confusions(ref, a, k), per_sample_confusions(ref, b, k), acc, n_boot=400, seed=9)
    idx = resample_indices(n, 400, seed=9)
    diffs = [accuracy_score(ref[i], a[i]) - accuracy_score(ref[i], b[i]) for i in idx]
    assert got.value == pytest.approx(accuracy_score(ref, a) - accuracy_score(ref, b), abs=1e-12)
    assert (got.low, got.high) == pytest.approx(_quantiles(diffs), abs=1e-12)
    assert got.excludes_zero  # 0.8 vs 0.5 agreement on 80 samples is far beyond the noise
    same = paired_difference(per_sample_confusions(ref, a, k), per_sample_confusions(ref, a, k), acc, n_boot=50)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0) and not same.excludes_zero


def test_interval_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(11)
    acc = metric_function("classification", "accuracy")
    widths = []
    for n in (40, 640):
        ref = rng.integers(0, 4, n)
        pred = np.where(rng.random(n) < 0.7, ref, (ref + 1) % 4)
        ci = bootstrap_interval(per_sample_confusions(ref, pred, 4), acc, n_boot=500, seed=0)
        widths.append(ci.high - ci.low)
    assert widths[1] < widths[0] / 2.5  # ~ 1 / sqrt(n): 4x narrower for 16x the samples


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: per_sample_confusions([0, 1], [0], 2), "differ in length"),
        (lambda: per_sample_confusions([0, 3], [0, 1], 3), r"references must lie in \[0, 3\)"),
        (lambda: resample_indices(0), "at least one sample"),
        (lambda: metric_function("detection", "accuracy"), "task must be"),
        (lambda: metric_function("classification", "confusion_matrix"), "not a scalar classification score"),
        (lambda: bootstrap_interval(np.zeros((3, 2)), lambda cm: 0.0), r"\(n, K, K\)"),
        (lambda: bootstrap_interval(np.ones((3, 2, 2), int), lambda cm: 0.0, level=1.0), "level must be in"),
        (lambda: paired_difference(np.ones((3, 2, 2), int), np.ones((4, 2, 2), int), lambda cm: 0.0), "same shape"),
    ],
)
def test_bad_arguments_are_named(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
