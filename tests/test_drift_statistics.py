"""Statistics of the drift reports (raw_isp.drift.statistics), the bootstrap additions they use
(batched metrics, one-hot resampling, infinite resamples) and per-sample confusion matrices from
evaluation, each against a direct computation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from raw_isp.drift.statistics import cell_values, combine, describe, difference, ratio, seed_values
from raw_isp.drift.synthesis_report import summarise
from raw_isp.metrics.bootstrap import (
    bootstrap_confusions,
    metric_function,
    paired_difference,
    percentile_interval,
    per_sample_confusions,
    resample_indices,
)
from raw_isp.training.evaluation import evaluate_views, evaluate_views_per_sample, sample_confusions

NAMES = ["a", "b", "c", "d"]


def _predictions(rng, n: int, k: int, agree: float):
    ref = rng.integers(0, k, n)
    return ref, np.where(rng.random(n) < agree, ref, rng.integers(0, k, n))


def _q(values, level=0.95):
    return tuple(np.quantile(np.asarray(values), [(1 - level) / 2, (1 + level) / 2]))


@pytest.mark.parametrize(("task", "metrics", "names"), [
    ("classification", ("accuracy", "macro_f1", "f1", "f1_c"), NAMES),
    ("segmentation", ("mean_iou", "mean_accuracy", "overall_accuracy", "pixel_accuracy", "iou_car"), ["background", "car"]),
])
def test_batched_metrics_equal_the_scores_one_matrix_at_a_time(task, metrics, names) -> None:
    rng = np.random.default_rng(0)
    k = len(names)
    cms = rng.integers(0, 4, (300, k, k))
    cms[:20] = 0  # no samples: NaN
    cms[20:60, :, 1] = 0  # class 1 never predicted
    cms[60:100, 1, :] = 0  # class 1 never present
    for metric in metrics:
        fn = metric_function(task, metric, names)
        assert fn.batched is not None, metric
        np.testing.assert_array_equal(fn.batched(cms), np.array([fn(cm) for cm in cms]), err_msg=metric)
    assert metric_function("classification", "accuracy").batched is not None


def test_one_hot_and_dense_resampling_agree_with_summing_the_draws() -> None:
    rng = np.random.default_rng(1)
    ref, pred = _predictions(rng, 37, 5, 0.6)
    one_hot = per_sample_confusions(ref, pred, 5)
    dense = rng.integers(0, 50, (37, 2, 2))
    idx = resample_indices(37, 64, seed=3)
    for cms in (one_hot, dense):
        direct = np.stack([cms[row].sum(axis=0) for row in idx])
        np.testing.assert_array_equal(bootstrap_confusions(cms, idx), direct)


def test_percentile_interval_keeps_infinite_resamples_at_their_end() -> None:
    finite = np.linspace(1.0, 2.0, 90)
    ci = percentile_interval(1.5, np.concatenate([finite, np.full(10, np.inf), [np.nan] * 5]), n=10)
    assert ci.high == np.inf and ci.low == pytest.approx(np.quantile(np.r_[finite, [1e300] * 10], 0.025))
    assert ci.n_boot == 105
    plain = percentile_interval(0.0, finite, n=10)
    assert (plain.low, plain.high) == pytest.approx(_q(finite))


def test_pooled_interval_of_the_seed_mean_is_the_direct_resampling() -> None:
    rng = np.random.default_rng(2)
    n, k = 50, 4
    ref = rng.integers(0, k, n)
    preds = [np.where(rng.random(n) < p, ref, rng.integers(0, k, n)) for p in (0.5, 0.6, 0.7)]
    idx = resample_indices(n, 120, seed=4)
    for metric, direct in (("accuracy", lambda r, p: accuracy_score(r, p)),
                           ("macro_f1", lambda r, p: f1_score(r, p, labels=range(k), average="macro", zero_division=0))):
        cell = cell_values([per_sample_confusions(ref, p, k) for p in preds], metric_function("classification", metric),
                           idx)
        d = describe(cell)
        per_seed = [direct(ref, p) for p in preds]
        assert d["mean"] == pytest.approx(np.mean(per_seed), abs=1e-12)
        assert d["sd"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
        assert (d["min"], d["max"]) == pytest.approx((min(per_seed), max(per_seed)))
        resampled = [np.mean([direct(ref[i], p[i]) for p in preds]) for i in idx]
        assert (d["ci_low"], d["ci_high"]) == pytest.approx(_q(resampled), abs=1e-12)


def test_difference_of_one_model_seen_two_ways_is_the_paired_bootstrap() -> None:
    rng = np.random.default_rng(5)
    n, k = 60, 3
    ref = rng.integers(0, k, n)
    acc = metric_function("classification", "accuracy")
    idx = resample_indices(n, 400, seed=9)
    a = per_sample_confusions(ref, np.where(rng.random(n) < 0.85, ref, (ref + 1) % k), k)
    b = per_sample_confusions(ref, np.where(rng.random(n) < 0.45, ref, (ref + 1) % k), k)
    d = difference(cell_values([a], acc, idx), cell_values([b], acc, idx))
    direct = paired_difference(a, b, acc, n_boot=400, seed=9)
    assert (d["diff"], d["diff_ci_low"], d["diff_ci_high"]) == pytest.approx((direct.value, direct.low, direct.high))
    assert d["diff_excludes_zero"] is True and d["exceeds_seed_spread"] is None  # one seed: no seed check


def test_seed_checks() -> None:
    # Same models seen two ways: every seed must show the difference with one sign.
    clean, other = seed_values([0.8, 0.82, 0.79]), seed_values([0.7, 0.75, 0.8])
    d = difference(clean, other)
    assert d["diff"] == pytest.approx(0.16 / 3) and (d["seed_diff_min"], d["seed_diff_max"]) == pytest.approx((-0.01, 0.1))
    assert d["exceeds_seed_spread"] is False and d["diff_ci_low"] is None
    assert difference(clean, seed_values([0.7, 0.75, 0.7]))["exceeds_seed_spread"] is True
    # Models trained differently: their seed ranges must not overlap.
    assert difference(clean, seed_values([0.6, 0.78, 0.7]), same_models=False)["exceeds_seed_spread"] is True
    assert difference(clean, seed_values([0.6, 0.8, 0.7]), same_models=False)["exceeds_seed_spread"] is False
    assert difference(seed_values([0.9]), seed_values([0.1]), same_models=False)["exceeds_seed_spread"] is None
    with pytest.raises(ValueError, match="same seeds"):
        combine([clean, seed_values([0.1, 0.2])], [1, -1])


def test_mean_drop_and_ratio_of_drops() -> None:
    rng = np.random.default_rng(6)
    n, k = 80, 4
    ref = rng.integers(0, k, n)
    order = rng.permutation(n)  # the first round(n * (1 - agree)) of these images are wrong
    acc = metric_function("classification", "accuracy")
    idx = resample_indices(n, 500, seed=1)

    def cell(agree):
        wrong = np.zeros(n, bool)
        wrong[order[:round(n * (1 - agree))]] = True
        return cell_values([per_sample_confusions(ref, np.where(wrong, (ref + 1) % k, ref), k)], acc, idx)

    clean, isp, corr = cell(0.9), [cell(0.85), cell(0.88)], [cell(0.4), cell(0.5)]
    isp_drop = combine([clean, *isp], [1, -0.5, -0.5])
    corr_drop = combine([clean, *corr], [1, -0.5, -0.5])
    assert isp_drop.mean == pytest.approx(clean.mean - (isp[0].mean + isp[1].mean) / 2)
    r = ratio(corr_drop, isp_drop)
    assert r["value"] == pytest.approx(corr_drop.mean / isp_drop.mean)
    direct = np.where(isp_drop.resampled[0] > 0, corr_drop.resampled[0] / np.where(isp_drop.resampled[0] > 0,
                                                                                  isp_drop.resampled[0], 1), np.inf)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(
        (percentile_interval(0, direct, n).low, percentile_interval(0, direct, n).high))
    # An ISP drop of one image is 0 on over a third of the resamples: no upper bound.
    small = ratio(corr_drop, combine([clean, cell(0.8875)], [1, -1]))
    assert small["value"] == pytest.approx(corr_drop.mean / 0.0125) and small["ci_high"] == np.inf
    assert small["ci_low"] < small["value"]
    # No ISP drop at all: nothing to compare with.
    assert ratio(corr_drop, combine([clean, clean], [1, -1])) == {"value": None, "ci_low": None, "ci_high": None}


def test_summary_leaves_the_models_own_variant_out_of_isp_drift() -> None:
    rows = [{"test_variant": v, "intensity": 1.0, "corruption": "", "severity": "", "metric": "accuracy", "value": x,
             "train_variant": "a"} for v, x in (("model", 0.9), ("a", 0.9), ("b", 0.8), ("c", 0.6))]
    assert summarise(rows, "accuracy", 1.0)["isp_only_mean_drop"] == pytest.approx(0.2)  # (0.1 + 0.3) / 2


def test_sample_confusions_against_direct_counts() -> None:
    rng = np.random.default_rng(7)
    labels = torch.as_tensor(rng.integers(0, 2, (3, 5, 6)))
    labels[0, 0, :] = 255
    preds = torch.as_tensor(rng.integers(0, 2, (3, 5, 6)))
    got = sample_confusions(preds, labels, 2).numpy()
    for i in range(3):
        keep = labels[i].numpy() != 255
        t, p = labels[i].numpy()[keep], preds[i].numpy()[keep]
        np.testing.assert_array_equal(got[i], [[np.sum((t == a) & (p == b)) for b in (0, 1)] for a in (0, 1)])
    cls = sample_confusions(torch.tensor([1, 0, 2]), torch.tensor([1, 2, 2]), 3).numpy()
    np.testing.assert_array_equal(cls, per_sample_confusions([1, 2, 2], [1, 0, 2], 3))
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        sample_confusions(torch.tensor([0, 1]), torch.tensor([0, 3]), 2)


class _Scorer(torch.nn.Module):
    """Stands in for a task model: logits are a fixed linear map of the mean pixel."""

    def __init__(self, k: int, dense: bool) -> None:
        super().__init__()
        self.dense = dense
        self.w = torch.linspace(-1, 1, k).view(1, k, 1, 1)

    def forward(self, pixel_values):
        x = pixel_values.mean(1, keepdim=True)
        logits = x * self.w * 10 + torch.sin(torch.arange(self.w.shape[1]).view(1, -1, 1, 1) + x * 5)
        return SimpleNamespace(logits=logits if self.dense else logits.mean((2, 3)))


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_per_sample_evaluation_keeps_the_metrics_and_passes_intensity(task) -> None:
    from accelerate import Accelerator

    dense = task == "segmentation"
    names = ["background", "car"] if dense else NAMES
    rng = np.random.default_rng(8)
    batches, seen = [], []
    for b in (5, 5, 3):
        raw = torch.as_tensor(rng.random((b, 8, 8)), dtype=torch.float32)
        labels = torch.as_tensor(rng.integers(0, len(names), (b, 8, 8) if dense else (b,)))
        batches.append({"raw": raw, "labels": labels, "intensity": torch.full((b,), 0.5)})

    def view(raw, intensity=None):
        seen.append(intensity)
        return raw.unsqueeze(1).expand(-1, 3, -1, -1) * (1 / intensity.view(-1, 1, 1, 1))

    model = torch.nn.Module()
    model.model = _Scorer(len(names), dense)
    views = {"own": view, "dark": lambda raw, intensity=None: raw.unsqueeze(1).expand(-1, 3, -1, -1)}
    acc = Accelerator(cpu=True)
    plain = evaluate_views(model, batches, acc, task, names, views)
    results, samples = evaluate_views_per_sample(model, batches, acc, task, names, views)
    assert len(seen) == 6 and all(s is not None and float(s[0]) == 0.5 for s in seen)
    key = "mean_iou" if dense else "accuracy"
    for name in views:
        assert results[name][key] == plain[name][key] and results[name]["loss"] == plain[name]["loss"]
        assert samples[name].shape == (13, len(names), len(names)) and samples[name].dtype == np.int64
        np.testing.assert_array_equal(samples[name].sum(axis=0), results[name]["confusion_matrix"])
        assert metric_function(task, key, names)(samples[name].sum(axis=0)) == pytest.approx(results[name][key])
