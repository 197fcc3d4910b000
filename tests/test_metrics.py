"""Tests of raw_isp.metrics: the offline evaluate modules against scikit-learn and an independent
implementation of the Hub ``mean_iou`` definition; streaming, two processes, speed, errors."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

import raw_isp.metrics as M
from raw_isp.metrics.confusion import _count

DRONE_NAMES = ["background", "car"]
MICRO_NAMES = ["BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No network: offline flags set, and any attempt to open a connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def load(name, tmp_path, **kwargs):
    return M.load(name, cache_dir=str(tmp_path / "evaluate_cache"), **kwargs)


# --------------------------------------------------------------------------- references


def hub_mean_iou(preds, refs, num_labels, ignore_index):
    """The Hub ``mean_iou`` definition, written out per image with boolean masks (no bincount)."""
    inter = np.zeros(num_labels)
    area_pred = np.zeros(num_labels)
    area_label = np.zeros(num_labels)
    for pred, ref in zip(preds, refs):
        pred, ref = np.asarray(pred), np.asarray(ref)
        keep = ref != ignore_index
        for c in range(num_labels):
            p, r = (pred == c) & keep, (ref == c) & keep
            inter[c] += np.sum(p & r)
            area_pred[c] += np.sum(p)
            area_label[c] += np.sum(r)
    union = area_pred + area_label - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou, acc = inter / union, inter / area_label
        overall = inter.sum() / area_label.sum()
    return {
        "mean_iou": np.nanmean(iou),
        "mean_accuracy": np.nanmean(acc),
        "overall_accuracy": overall,
        "per_category_iou": iou,
        "per_category_accuracy": acc,
    }


def random_maps(rng, n, h, w, num_labels, absent=(), ignore_index=255, ignore_fraction=0.1, dtype=np.int64):
    """Random prediction/reference maps; classes in ``absent`` never occur in the references."""
    present = [c for c in range(num_labels) if c not in absent]
    ref = rng.choice(present, size=(n, h, w)).astype(dtype)
    pred = ref.copy()
    flip = rng.random((n, h, w)) < 0.4
    pred[flip] = rng.integers(0, num_labels, flip.sum())
    if ignore_index is not None:
        ref[rng.random((n, h, w)) < ignore_fraction] = ignore_index
    return pred, ref


def assert_seg_equal(got, want, label_names=None):
    for key in ("mean_iou", "mean_accuracy", "overall_accuracy"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, equal_nan=True, err_msg=key)
    for key in ("per_category_iou", "per_category_accuracy"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, equal_nan=True, err_msg=key)
    assert got["pixel_accuracy"] == got["overall_accuracy"] or np.isnan(got["overall_accuracy"])
    for i, name in enumerate(label_names or []):
        np.testing.assert_allclose(got[f"iou_{name}"], want["per_category_iou"][i], equal_nan=True)


# --------------------------------------------------------------------------- loading


def test_modules_load_offline_from_local_paths(tmp_path):
    import evaluate

    for name, cls_name in (("classification", "RawClassification"), ("segmentation", "RawSegmentation")):
        metric = load(name, tmp_path)
        assert isinstance(metric, evaluate.EvaluationModule)
        assert type(metric).__name__ == cls_name
        direct = evaluate.load(M.MODULE_PATHS[name], cache_dir=str(tmp_path / "direct"))
        assert type(direct).__name__ == cls_name
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        M.load("accuracy")


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_equals_sklearn(tmp_path, seed):
    rng = np.random.default_rng(seed)
    k = 9
    # Imbalanced, with class 3 never true and class 7 neither true nor predicted.
    probs = np.array([0.3, 0.2, 0.1, 0.0, 0.15, 0.1, 0.1, 0.0, 0.05])
    refs = rng.choice(k, size=200, p=probs)
    preds = np.where(rng.random(200) < 0.6, refs, rng.choice([0, 1, 2, 3, 4, 5, 6, 8], size=200))
    metric = load("classification", tmp_path)
    got = metric.compute(predictions=preds, references=refs, num_labels=k, label_names=MICRO_NAMES)

    labels = list(range(k))
    assert got["accuracy"] == pytest.approx(accuracy_score(refs, preds), abs=1e-15)
    want_macro = f1_score(refs, preds, labels=labels, average="macro", zero_division=0)
    want_per_class = f1_score(refs, preds, labels=labels, average=None, zero_division=0)
    assert got["macro_f1"] == pytest.approx(want_macro, rel=1e-12)
    np.testing.assert_allclose(got["per_class_f1"], want_per_class, rtol=1e-12)
    np.testing.assert_array_equal(got["confusion_matrix"], sk_confusion_matrix(refs, preds, labels=labels))
    assert got["f1_LYA"] == pytest.approx(want_per_class[3]) and got["f1_NGS"] == 0.0
    assert got["num_samples"] == 200


def test_classification_without_num_labels_averages_present_classes(tmp_path):
    refs = np.array([0, 0, 2, 2, 5, 5, 5])
    preds = np.array([0, 2, 2, 2, 5, 0, 5])
    got = load("classification", tmp_path).compute(predictions=preds, references=refs)
    # sklearn's default labels=None: the classes present in refs or preds (0, 2, 5).
    assert got["macro_f1"] == pytest.approx(f1_score(refs, preds, average="macro", zero_division=0), rel=1e-12)
    assert got["confusion_matrix"].shape == (6, 6)


def test_classification_streaming_with_torch_and_numpy(tmp_path):
    rng = np.random.default_rng(3)
    refs = rng.integers(0, 4, 100)
    preds = np.where(rng.random(100) < 0.5, refs, rng.integers(0, 4, 100))
    metric = load("classification", tmp_path, num_labels=4)
    for lo in range(0, 100, 32):
        p, r = preds[lo : lo + 32], refs[lo : lo + 32]
        if lo % 64:
            metric.add_batch(predictions=torch.from_numpy(p), references=torch.from_numpy(r))
        else:
            metric.add_batch(predictions=p.astype(np.int32), references=list(r))
    got = metric.compute()
    once = load("classification", tmp_path).compute(predictions=preds, references=refs, num_labels=4)
    for key in ("accuracy", "macro_f1", "per_class_f1", "confusion_matrix"):
        np.testing.assert_array_equal(got[key], once[key])


def test_classification_rejects_out_of_range_labels(tmp_path):
    metric = load("classification", tmp_path)
    with pytest.raises(ValueError, match=r"references hold 1 labels outside \[0, 3\), from 3 to 3"):
        metric.compute(predictions=[0, 1, 2], references=[0, 1, 3], num_labels=3)
    with pytest.raises(ValueError, match="label_names has 2 names but there are 3 labels"):
        load("classification", tmp_path).compute(
            predictions=[0, 1, 2], references=[0, 1, 2], num_labels=3, label_names=["a", "b"]
        )


def _random_case(rng):
    """Random class ids: K classes, some never used, some used only in predictions."""
    k = int(rng.integers(1, 8))
    n = int(rng.integers(1, 40))
    used = rng.permutation(k)[: int(rng.integers(1, k + 1))]
    refs = rng.choice(used, size=n)
    preds = np.where(rng.random(n) < 0.5, refs, rng.integers(0, k, n))
    return k, refs, preds


def _random_labels(rng, k):
    """None, or a list of class ids: a subset, a permutation, repeats, ids beyond the data."""
    kind = rng.integers(0, 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.permutation(k)[: int(rng.integers(1, k + 1))].tolist()
    if kind == 2:
        return rng.integers(0, k, int(rng.integers(1, 2 * k + 1))).tolist()
    return (rng.permutation(k + 3)[: int(rng.integers(1, k + 4))]).tolist()


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn: labels absent from the data
def test_averaged_f1_equals_sklearn_on_random_cases():
    rng = np.random.default_rng(42)
    for case in range(600):
        k, refs, preds = _random_case(rng)
        labels = _random_labels(rng, k)
        average = [None, "macro", "micro", "weighted"][case % 4]
        cm = M.confusion_matrix(preds, refs)
        got = M.averaged_f1(cm, labels=labels, average=average)
        want = f1_score(refs, preds, labels=labels, average=average, zero_division=0)
        where = f"case {case}: refs={refs.tolist()} preds={preds.tolist()} labels={labels} average={average}"
        if average is None:
            assert isinstance(got, np.ndarray) and got.shape == want.shape, where
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=where)
        else:
            assert isinstance(got, float), where
            assert got == pytest.approx(float(want), rel=1e-12, abs=1e-15), where
        assert M.classification_scores(cm)["accuracy"] == pytest.approx(accuracy_score(refs, preds), abs=1e-15)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_classification_module_labels_and_average_equal_sklearn(tmp_path):
    """Through evaluate: labels / average given to compute or to load; without labels the
    classes are range(num_labels) when num_labels is known, else the present ones (sklearn)."""
    rng = np.random.default_rng(7)
    for case in range(40):
        k, refs, preds = _random_case(rng)
        give_k = bool(case % 2)
        labels = _random_labels(rng, k)
        if labels is not None and not give_k:
            labels = [c for c in labels if c < k] or [0]
        if labels is not None and give_k:
            labels = [c for c in labels if c < k] or [k - 1]
        average = [None, "macro", "micro", "weighted"][case % 4]
        settings = {"labels": labels, "average": average}
        if give_k:
            settings["num_labels"] = k
        if case % 3 == 0:  # settings at load time
            metric = load("classification", tmp_path, **settings)
            got = metric.compute(predictions=preds, references=refs)
        else:
            got = load("classification", tmp_path).compute(predictions=preds, references=refs, **settings)
        sk_labels = labels if labels is not None else (list(range(k)) if give_k else None)
        want = f1_score(refs, preds, labels=sk_labels, average=average, zero_division=0)
        np.testing.assert_allclose(got["f1"], want, rtol=1e-12, atol=1e-15, err_msg=f"case {case}")
        assert got["accuracy"] == pytest.approx(accuracy_score(refs, preds), abs=1e-15)
    # The value given to compute wins over the one given to load, also average=None.
    metric = load("classification", tmp_path, average="micro")
    got = metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2], average=None)
    np.testing.assert_allclose(got["f1"], [1.0, 2 / 3, 2 / 3])


def test_per_class_f1_is_indexed_by_class_id_and_f1_lists_present_classes(tmp_path):
    refs, preds = np.array([0, 0, 3, 3]), np.array([0, 3, 3, 3])
    got = load("classification", tmp_path).compute(predictions=preds, references=refs, average=None)
    # per_class_f1: classes 0..max label, absent ones (1, 2) score 0, like the confusion matrix.
    np.testing.assert_allclose(got["per_class_f1"], [2 / 3, 0.0, 0.0, 0.8])
    assert got["confusion_matrix"].shape == (4, 4)
    # f1 with average=None: the classes present, as evaluate's f1 (sklearn labels=None) lists them.
    np.testing.assert_allclose(got["f1"], f1_score(refs, preds, average=None))
    assert got["f1"].shape == (2,)
    # macro_f1 averages the present classes too, so it does not count the absent 1 and 2 as zeros.
    assert got["macro_f1"] == pytest.approx(f1_score(refs, preds, average="macro"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"average": "binary"}, r"average must be one of \['macro', 'micro', 'weighted', None\], got 'binary'; .*labels=\[c\]"),
        ({"average": "samples"}, "average must be one of .* got 'samples'"),
        ({"average": 1}, "average must be one of"),
        ({"labels": [0, 3], "num_labels": 3}, r"labels: class ids \[3\] are outside \[0, 3\) \(num_labels=3\)"),
        ({"labels": [0, 2], "label_names": ["a", "b"]}, r"labels: class ids \[2\] are outside \[0, 2\)"),
        ({"labels": [-1]}, r"labels: class ids \[-1\] are outside \[0, inf\)"),
        ({"labels": []}, "labels is empty"),
        ({"labels": [0.5]}, "labels must hold integer class ids"),
        ({"labels": 1}, "labels must be a 1-D sequence"),
        ({"label_names": ["a", "b"]}, r"label_names has 2 names \(classes 0 to 1\), but the references hold \[2\]; give one name"),
        ({"label_names": ["a", "b", "c"], "num_labels": 4}, "label_names has 3 names but there are 4 labels"),
        ({"num_labels": 0}, "num_labels must be a positive int"),
        ({"sample_weight": [1, 1, 1, 1]}, r"raw_classification does not take \['sample_weight'\]"),
    ],
)
def test_classification_errors_name_the_argument(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load("classification", tmp_path).compute(predictions=[0, 1, 1, 1], references=[0, 1, 2, 2], **kwargs)


def test_label_names_of_the_wrong_length_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"label_names has 2 names .* the predictions hold \[4\]"):
        load("classification", tmp_path).compute(predictions=[0, 4], references=[0, 1], label_names=["a", "b"])
    with pytest.raises(ValueError, match="average must be one of"):
        load("classification", tmp_path, average="binary")
    maps = np.zeros((1, 4, 4), dtype=np.int64)
    bad = maps.copy()
    bad[0, 0, 0] = 2
    seg = load("segmentation", tmp_path, label_names=DRONE_NAMES)
    with pytest.raises(ValueError, match=r"label_names has 2 names \(classes 0 to 1\), but the references hold \[2\]"):
        seg.add_batch(predictions=maps, references=bad)
    late = load("segmentation", tmp_path)
    late.add_batch(predictions=bad, references=maps)
    with pytest.raises(ValueError, match=r"label_names has 2 names .* the predictions hold \[2\]"):
        late.compute(label_names=DRONE_NAMES)
    # Ignored pixels are not labels: 255 in the references is fine with two names.
    ok = maps.copy()
    ok[0, 0] = 255
    assert load("segmentation", tmp_path, label_names=DRONE_NAMES).compute(predictions=maps, references=ok)["num_pixels"] == 12


# --------------------------------------------------------------------------- segmentation


@pytest.mark.parametrize(
    "num_labels, absent, dtype",
    [(2, (), np.uint8), (5, (1, 3), np.int64), (7, (0, 6), np.int32), (3, (2,), np.uint16)],
)
def test_segmentation_equals_hub_definition(tmp_path, num_labels, absent, dtype):
    rng = np.random.default_rng(num_labels)
    preds, refs = random_maps(rng, 4, 24, 20, num_labels, absent=absent, dtype=dtype)
    if num_labels == 7:
        preds[preds == 6] = 5  # class 6: absent from both -> NaN IoU, left out of the mean
    preds[0][refs[0] == 255] = 255  # predictions may hold anything at ignored pixels
    names = [f"c{i}" for i in range(num_labels)]
    metric = load("segmentation", tmp_path, num_labels=num_labels, label_names=names)
    got = metric.compute(predictions=preds, references=refs)
    want = hub_mean_iou(preds, refs, num_labels, 255)
    assert_seg_equal(got, want, names)
    if num_labels == 7:
        assert np.isnan(got["per_category_iou"][6]) and got["per_category_iou"][0] == 0.0
    keep = refs != 255
    np.testing.assert_array_equal(
        got["confusion_matrix"], sk_confusion_matrix(refs[keep], preds[keep], labels=range(num_labels))
    )
    assert got["num_pixels"] == keep.sum()


def test_segmentation_matches_hub_docstring_example(tmp_path):
    # The example of the Hub's mean_iou card: lists of maps of different sizes, 255 in both.
    preds = [
        np.array([[1, 2], [3, 4], [5, 255]]),
        np.array([[2, 7], [9, 2], [3, 6]]),
        np.array([[2, 2, 3], [8, 2, 4], [3, 255, 2]]),
    ]
    refs = [
        np.array([[0, 3], [5, 4], [6, 255]]),
        np.array([[1, 7], [9, 2], [3, 6]]),
        np.array([[1, 2, 2], [8, 2, 1], [3, 255, 1]]),
    ]
    got = load("segmentation", tmp_path).compute(predictions=preds, references=refs, num_labels=10, ignore_index=255)
    assert_seg_equal(got, hub_mean_iou(preds, refs, 10, 255))
    assert got["mean_iou"] == pytest.approx(0.4775) and got["overall_accuracy"] == pytest.approx(10 / 19)


def test_segmentation_ignore_index_variants(tmp_path):
    rng = np.random.default_rng(7)
    preds, refs = random_maps(rng, 3, 16, 16, 4, ignore_index=None)
    for ignore in (0, -100, None):  # inside the label range, negative, none at all
        r = refs.copy()
        if ignore == -100:
            r[:, :3] = -100
        got = load("segmentation", tmp_path, ignore_index=ignore).compute(predictions=preds, references=r, num_labels=4)
        assert_seg_equal(got, hub_mean_iou(preds, r, 4, ignore))


def test_segmentation_streaming_equals_one_compute(tmp_path):
    rng = np.random.default_rng(11)
    preds, refs = random_maps(rng, 10, 32, 32, 3, absent=(2,))
    streamed = load("segmentation", tmp_path, num_labels=3)
    for lo in range(0, 10, 3):
        p, r = preds[lo : lo + 3], refs[lo : lo + 3]
        if lo == 3:  # torch tensors (what a training loop hands over), any integer dtype
            streamed.add_batch(predictions=torch.from_numpy(p.astype(np.int64)), references=torch.from_numpy(r.astype(np.uint8)))
        elif lo == 6:  # a list of single maps
            for pi, ri in zip(p, r):
                streamed.add(prediction=pi, reference=ri)
        else:
            streamed.add_batch(predictions=p, references=r)
    got = streamed.compute()
    once = load("segmentation", tmp_path).compute(predictions=preds, references=refs, num_labels=3)
    for key in ("confusion_matrix", "per_category_iou", "mean_iou", "overall_accuracy"):
        np.testing.assert_array_equal(got[key], once[key])
    # num_labels unknown while streaming (the transformers example pattern): inferred, then padded.
    late = load("segmentation", tmp_path)
    late.add_batch(predictions=preds[:5], references=refs[:5])
    late.add_batch(predictions=preds[5:], references=refs[5:])
    got_late = late.compute(num_labels=3, ignore_index=255)
    np.testing.assert_array_equal(got_late["confusion_matrix"], once["confusion_matrix"])
    # The metric is reusable after compute.
    again = streamed.compute(predictions=preds, references=refs)
    np.testing.assert_array_equal(again["confusion_matrix"], once["confusion_matrix"])


def test_segmentation_bool_masks_and_nan_to_num(tmp_path):
    ref = np.zeros((2, 8, 8), dtype=bool)
    pred = np.zeros((2, 8, 8), dtype=bool)
    pred[0, :2] = True  # "car" predicted where there is none: car IoU 0, not NaN
    got = load("segmentation", tmp_path, label_names=DRONE_NAMES).compute(predictions=pred, references=ref)
    assert got["iou_car"] == 0.0 and np.isnan(got["per_category_accuracy"][1])
    got = load("segmentation", tmp_path, label_names=DRONE_NAMES).compute(
        predictions=np.zeros_like(pred), references=ref, nan_to_num=-1
    )
    assert got["iou_car"] == -1.0 and got["mean_iou"] == 1.0 and got["per_category_accuracy"][1] == -1.0


def test_segmentation_errors(tmp_path):
    p = np.zeros((2, 4, 4), dtype=np.int64)
    metric = load("segmentation", tmp_path, num_labels=2)
    with pytest.raises(ValueError, match=r"predictions have shape \(2, 4, 4\) but references have shape \(2, 4, 5\)"):
        metric.add_batch(predictions=p, references=np.zeros((2, 4, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="must hold integer labels, got dtype float32"):
        metric.add_batch(predictions=p.astype(np.float32), references=p)
    bad = p.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"references hold labels outside \[0, 2\) \(or ignore_index=255\): \[7\]"):
        metric.add_batch(predictions=p, references=bad)
    with pytest.raises(ValueError, match=r"predictions hold 1 labels outside \[0, 2\), from 7 to 7"):
        metric.add_batch(predictions=bad, references=p)
    metric.add_batch(predictions=p, references=p)
    with pytest.raises(ValueError, match="ignore_index=0 given to compute, but the batches were added with ignore_index=255"):
        metric.compute(ignore_index=0)
    with pytest.raises(ValueError, match="does not support reduce_labels"):
        load("segmentation", tmp_path).compute(predictions=p, references=p, num_labels=2, reduce_labels=True)
    late = load("segmentation", tmp_path)
    late.add_batch(predictions=bad, references=bad)
    with pytest.raises(ValueError, match="num_labels=2, but label 7 occurs"):
        late.compute(num_labels=2)


# --------------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_function_and_torch_path():
    rng = np.random.default_rng(5)
    preds, refs = random_maps(rng, 3, 10, 12, 4, absent=(3,))
    keep = refs != 255
    want = sk_confusion_matrix(refs[keep], preds[keep], labels=range(4))
    np.testing.assert_array_equal(M.confusion_matrix(preds, refs, 4, ignore_index=255), want)
    got_t = M.confusion_matrix(torch.from_numpy(preds), torch.from_numpy(refs), 4, ignore_index=255)
    assert isinstance(got_t, torch.Tensor) and got_t.dtype == torch.int64
    np.testing.assert_array_equal(got_t.numpy(), want)
    # The torch counting path (used for tensors on an accelerator), exercised on CPU tensors.
    pt, rt = torch.from_numpy(preds.reshape(-1)), torch.from_numpy(refs.reshape(-1))
    np.testing.assert_array_equal(_count(pt, rt, 4, 255).numpy(), want)
    np.testing.assert_array_equal(_count(pt, rt, None, 255).numpy(), want)  # class 3 is predicted: K = 4
    rt_neg = torch.where(rt == 255, -1, rt)  # negative ignore value: the masking branch
    np.testing.assert_array_equal(_count(pt, rt_neg, 4, -1).numpy(), want)
    with pytest.raises(ValueError, match=r"references hold \d+ labels outside \[0, 4\), from 255 to 255"):
        _count(pt, rt, 4, None)
    np.testing.assert_array_equal(_count(pt[keep.reshape(-1)], rt[keep.reshape(-1)], 4, None).numpy(), want)
    # Inferred size without an ignore value, and the sum of differently sized matrices.
    cm = M.confusion_matrix([0, 2, 1], [0, 1, 1])
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(M.add_confusion_matrices(cm, np.eye(2, dtype=np.int64), None), cm + np.diag([1, 1, 0]))


# --------------------------------------------------------------------------- two processes


def run_two_processes(name, tmp_path, shards, compute_kwargs, **load_kwargs):
    """evaluate's distributed mode: two metric instances (process_id 0 and 1) sharing an
    experiment_id and cache dir, each fed its own shard and computing in its own thread."""
    experiment_id = uuid.uuid4().hex
    metrics = [
        M.load(name, num_process=2, process_id=i, experiment_id=experiment_id,
               cache_dir=str(tmp_path / "shared_cache"), timeout=30, **load_kwargs)
        for i in range(2)
    ]
    results, errors = [None, None], []

    def work(i):
        try:
            for p, r in shards[i]:
                metrics[i].add_batch(predictions=p, references=r)
            results[i] = metrics[i].compute(**compute_kwargs)
        except Exception as err:  # reported in the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert results[1] is None
    return results[0]


def test_two_processes_equal_one(tmp_path):
    rng = np.random.default_rng(9)
    preds, refs = random_maps(rng, 6, 20, 20, 3)
    # Process 1 never sees class 2 as a label and gets fewer maps.
    shards = [[(preds[:2], refs[:2]), (preds[2:4], refs[2:4])], [(preds[4:], np.minimum(refs[4:], 1))]]
    all_refs = np.concatenate([refs[:4], np.minimum(refs[4:], 1)])
    got = run_two_processes("segmentation", tmp_path, shards, {"num_labels": 3}, label_names=["a", "b", "c"])
    single = load("segmentation", tmp_path).compute(predictions=preds, references=all_refs, num_labels=3)
    for key in ("confusion_matrix", "per_category_iou", "mean_iou", "overall_accuracy"):
        np.testing.assert_array_equal(got[key], single[key])
    assert got["iou_c"] == single["per_category_iou"][2]

    cls_refs = rng.integers(0, 5, 50)
    cls_preds = np.where(rng.random(50) < 0.5, cls_refs, rng.integers(0, 5, 50))
    shards = [[(cls_preds[:30], cls_refs[:30])], [(cls_preds[30:], cls_refs[30:])]]
    got = run_two_processes("classification", tmp_path, shards, {"num_labels": 5})
    single = load("classification", tmp_path).compute(predictions=cls_preds, references=cls_refs, num_labels=5)
    for key in ("accuracy", "macro_f1", "per_class_f1", "confusion_matrix"):
        np.testing.assert_array_equal(got[key], single[key])


# --------------------------------------------------------------------------- speed


def test_confusion_matrix_update_is_fast():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 2, (16, 256, 256), dtype=np.uint8)
    pred = np.where(rng.random(ref.shape) < 0.9, ref, 1 - ref).astype(np.uint8)
    ref[:, :8] = 255
    pred_t = torch.from_numpy(pred).long()  # what argmax hands over

    def best_ms(fn, repeats=7):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return min(times)

    fast_u8 = best_ms(lambda: M.confusion_matrix(pred, ref, 2, ignore_index=255))
    fast_t = best_ms(lambda: M.confusion_matrix(pred_t, torch.from_numpy(ref), 2, ignore_index=255))
    naive = best_ms(lambda: hub_style_histograms(pred, ref, 2, 255), repeats=2)
    print(f"\nconfusion-matrix update, 16 x 256x256: uint8 numpy {fast_u8:.2f} ms, int64 torch {fast_t:.2f} ms; "
          f"per-image histograms (Hub mean_iou style) {naive:.1f} ms")
    assert fast_u8 < 50 and fast_t < 50


def hub_style_histograms(preds, refs, num_labels, ignore_index):
    """The naive update the Hub's mean_iou performs per image (masking, then three histograms)."""
    total = np.zeros((3, num_labels))
    for pred, ref in zip(preds, refs):
        keep = ref != ignore_index
        p, r = pred[keep], ref[keep]
        hist = lambda a: np.histogram(a, bins=num_labels, range=(0, num_labels - 1))[0]  # noqa: E731
        total += [hist(p[p == r]), hist(p), hist(r)]
    return total


# --------------------------------------------------------------------------- packaging


def test_module_folders_are_packaged():
    """The module folders have no __init__.py: they ship because pyproject's package discovery
    includes namespace packages (setuptools' default for pyproject.toml)."""
    import tomllib
    from pathlib import Path

    import setuptools

    root = Path(M.__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not running from a source checkout")
    find = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["packages"]["find"]
    finder = setuptools.find_namespace_packages if find.get("namespaces", True) else setuptools.find_packages
    found = finder(where=str(root), include=find.get("include", ["*"]), exclude=find.get("exclude", ()))
    for name in ("raw_classification", "raw_segmentation"):
        assert f"raw_isp.metrics.{name}" in found
        assert (Path(M.MODULE_PATHS[name.removeprefix("raw_")]) / f"{name}.py").is_file()
