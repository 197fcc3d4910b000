"""Class balance (weighted loss, balanced sampler), the batches' intensity, the loaders' device
settings, and model selection by the best validation epoch (raw_isp.training)."""

import json

import numpy as np
import pytest
import torch

import raw_isp
from raw_isp.training import parse_training_args, train, write_outputs
from raw_isp.training.data import (EpochBatchSampler, RawCollate, balanced_weights, class_counts, make_loader)
from raw_isp.training.loop import build_model, task_loss


def _splits(train_labels=(0, 0, 0, 0, 0, 0, 1, 1), n_eval=4, size=64, intensity=True):
    import datasets

    rng = np.random.default_rng(0)
    features = {"image": raw_isp.data.arrow.raw_image_feature((size, size)),
                "label": datasets.ClassLabel(names=["a", "b"])}
    if intensity:
        features["intensity"] = datasets.Value("float32")

    def make(labels):
        n = len(labels)
        # Class b is brighter: learnable in a few steps.
        img = (rng.random((n, size, size)) * 20000 + 5000 + 25000 * np.asarray(labels)[:, None, None]).astype(np.uint16)
        data = {"image": img, "label": list(labels)}
        if intensity:
            data["intensity"] = [1.0] * n
        return datasets.Dataset.from_dict(data, features=datasets.Features(features))

    return datasets.DatasetDict(train=make(list(train_labels)), validation=make([0, 1] * (n_eval // 2)),
                                test=make([1, 0] * (n_eval // 2)))


def _args(tmp_path, *extra):
    return parse_training_args("classification", [
        "--output_dir", str(tmp_path), "--model_name_or_path", "vit-micro", "--image_size", "64",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--logging_steps", "1",
        "--augment", "none", "--overwrite_output_dir", *extra])


# ---------------------------------------------------------------- counts, weights, sampler, loss

def test_class_counts_of_labels_and_of_masks():
    import datasets

    splits = _splits()
    assert class_counts(splits["train"], "label", 3).tolist() == [6, 2, 0]
    masks = np.zeros((3, 8, 8), dtype=np.uint8)
    masks[0, :2] = 1
    masks[1, :, :4] = 1
    masks[2, 0, 0] = 255  # an ignored pixel is not counted
    ds = datasets.Dataset.from_dict({"mask": masks}, features=datasets.Features(
        {"mask": datasets.Array2D((8, 8), "uint8")}))
    ones = 16 + 32
    assert class_counts(ds, "mask", 2, batch_size=2).tolist() == [3 * 64 - ones - 1, ones]


def test_balanced_weights_are_inverse_frequencies():
    w = balanced_weights(torch.tensor([2, 6, 0]))
    torch.testing.assert_close(w, torch.tensor([2.0, 2 / 3, 0.0]))
    assert float((w[:2] * torch.tensor([2, 6])).sum()) == pytest.approx(8)  # averages to 1 over the examples
    torch.testing.assert_close(balanced_weights(torch.tensor([5, 5])), torch.ones(2))
    with pytest.raises(ValueError, match="no class occurs"):
        balanced_weights(torch.zeros(3))


def test_the_balanced_sampler_is_deterministic_per_epoch_and_balanced():
    labels = torch.tensor([0] * 90 + [1] * 10)
    weights = balanced_weights(torch.bincount(labels)).double()[labels]
    sampler = EpochBatchSampler(100, 16, True, seed=3, weights=weights)
    epochs = []
    for epoch in range(30):
        sampler.use_epoch(epoch)
        batches = list(sampler)
        assert [len(b) for b in batches] == [16] * 6 + [4]  # as many batches as without it
        epochs.append([i for b in batches for i in b])
    sampler.use_epoch(4)
    assert [i for b in sampler for i in b] == epochs[4]  # any epoch again, without replaying the others
    assert epochs[0] != epochs[1]
    drawn = labels[torch.tensor(epochs).reshape(-1)]
    assert abs(float(drawn.double().mean()) - 0.5) < 0.03  # the rare class half the time (was 10 %)
    with pytest.raises(ValueError, match="weights must be 100 finite non-negative"):
        EpochBatchSampler(100, 16, True, seed=3, weights=torch.zeros(100))


@pytest.mark.parametrize("preset", ["vit-micro", "segformer-micro", "upernet-micro", "resnet-micro"])
def test_task_loss_is_the_models_own_loss_and_weighs_classes(preset):
    from raw_isp.models.modeling import build_task_model

    task = "segmentation" if preset.startswith(("segformer", "upernet")) else "classification"
    torch.manual_seed(0)
    model = build_task_model(task, preset, ["a", "b", "c"], image_size=64).eval()
    g = torch.Generator().manual_seed(1)
    pixels = torch.rand(4, 3, 64, 64, generator=g)
    labels = torch.randint(0, 3, (4, 64, 64) if task == "segmentation" else (4,), generator=g)
    with torch.no_grad():
        out = model(pixel_values=pixels, labels=labels)
        own = task_loss(out.logits, labels, task)
        torch.testing.assert_close(own, out.loss, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(task_loss(out.logits, labels, task, torch.ones(3)), own)
        weight = torch.tensor([0.5, 2.0, 1.0])
        weighted = task_loss(out.logits, labels, task, weight)
        logits = raw_isp.models.modeling.logits_at(out.logits, labels.shape[-2:]) if task == "segmentation" \
            else out.logits
        per = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        expected = (weight[labels] * per).sum() / weight[labels].sum()
        torch.testing.assert_close(weighted, expected, atol=1e-6, rtol=1e-6)
        assert not torch.allclose(weighted, own)


# ---------------------------------------------------------------- batches

def test_batches_carry_their_intensity_and_pin_on_cuda():
    splits = _splits()
    splits["train"] = splits["train"].map(lambda row, i: {"intensity": 0.25 if i % 2 else 1.0}, with_indices=True)
    batch = next(iter(make_loader(splits["train"], "label", 4, False, 0)))
    assert batch["intensity"].dtype == torch.float32 and batch["intensity"].tolist() == [1.0, 0.25, 1.0, 0.25]
    assert batch["raw"].dtype == torch.int16 and batch["labels"].tolist() == [0, 0, 0, 0]
    # Data captured at one light level without the column: the run's intensity.
    plain = _splits(intensity=False)["train"]
    batch = next(iter(make_loader(plain, "label", 3, False, 0, intensity=0.5)))
    assert batch["intensity"].tolist() == [0.5] * 3
    with pytest.raises(KeyError, match="no 'intensity' column"):
        RawCollate("label")({"image": torch.zeros(1, 2, 2, dtype=torch.uint16), "label": [0]})
    # CPU: no pinning, no workers unless asked; CUDA: pinned batches, two workers with prefetch.
    cpu = make_loader(plain, "label", 3, False, 0, num_workers=None, device="cpu")
    assert (cpu.pin_memory, cpu.num_workers) == (False, 0)
    cuda = make_loader(plain, "label", 3, False, 0, num_workers=None, device="cuda")
    assert (cuda.pin_memory, cuda.num_workers, cuda.prefetch_factor, cuda.persistent_workers) == (True, 2, 2, True)
    assert make_loader(plain, "label", 3, False, 0, num_workers=0, device="cuda").num_workers == 0


# ---------------------------------------------------------------- training runs

class _ScriptedValidation:
    """Replaces the loop's evaluate_model: the first ``len(values)`` calls (the per-epoch
    validations) report ``values`` as macro-F1 and keep a copy of the weights they saw."""

    def __init__(self, monkeypatch, values):
        from raw_isp.training import loop

        self.real, self.values, self.snapshots = loop.evaluate_model, list(values), []
        monkeypatch.setattr(loop, "evaluate_model", self)

    def __call__(self, model, loader, accelerator, task, names):
        metrics = self.real(model, loader, accelerator, task, names)
        if len(self.snapshots) < len(self.values):
            net = accelerator.unwrap_model(model)
            self.snapshots.append({k: v.clone() for k, v in net.state_dict().items()})
            metrics["macro_f1"] = self.values[len(self.snapshots) - 1]
        return metrics


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_best_validation_epoch_is_restored_before_test_and_saving(tmp_path, monkeypatch):
    scripted = _ScriptedValidation(monkeypatch, [0.2, 0.6, 0.6, 0.4])
    args = _args(tmp_path / "best", "--num_train_epochs", "4", "--learning_rate", "1e-2")
    result = train(args, splits=_splits())
    r = result.results
    # Epochs of 2 steps; epoch 1 is best (epoch 2 ties and does not replace it), restored.
    assert (r["best_epoch"], r["best_step"], r["best_metric"], r["metric_for_best_model"]) == (1, 4, 0.6, "macro_f1")
    assert r["best_model_restored"] and r["train_steps"] == 8
    net = result.accelerator.unwrap_model(result.model)
    assert _same_state(net.state_dict(), scripted.snapshots[1])
    assert not _same_state(scripted.snapshots[1], scripted.snapshots[3])
    write_outputs(args, result)
    saved, _ = raw_isp.models.modeling.load_raw_model(tmp_path / "best")
    for k, v in saved.model.state_dict().items():
        assert torch.equal(v, scripted.snapshots[1]["model." + k]), k
    assert json.loads((tmp_path / "best" / "all_results.json").read_text())["best_epoch"] == 1


def test_without_load_best_the_last_weights_stay_and_the_best_is_recorded(tmp_path, monkeypatch):
    scripted = _ScriptedValidation(monkeypatch, [0.2, 0.6, 0.4])
    args = _args(tmp_path / "last", "--num_train_epochs", "3", "--no_load_best_model_at_end")
    result = train(args, splits=_splits())
    assert (result.results["best_epoch"], result.results["best_model_restored"]) == (1, False)
    assert _same_state(result.accelerator.unwrap_model(result.model).state_dict(), scripted.snapshots[2])


def test_loss_selects_the_lowest_and_a_missing_metric_is_named(tmp_path):
    result = train(_args(tmp_path / "loss", "--num_train_epochs", "2", "--metric_for_best_model", "loss"),
                   splits=_splits())
    history = [h for h in result.history if "eval_loss" in h]
    best = min(history, key=lambda h: h["eval_loss"])
    assert result.results["best_step"] == best["step"] and result.results["best_metric"] == pytest.approx(best["eval_loss"])
    from raw_isp.training import OptionError

    with pytest.raises(OptionError, match="--metric_for_best_model f1_zzz: the validation has no such metric"):
        train(_args(tmp_path / "bad", "--max_train_steps", "1", "--metric_for_best_model", "f1_zzz"), splits=_splits())


def test_weighted_loss_changes_the_training_loss_of_imbalanced_data(tmp_path):
    losses = {}
    for balance in ("none", "weighted_loss", "sampler"):
        result = train(_args(tmp_path / balance, "--max_train_steps", "2", "--class_balance", balance),
                       splits=_splits())
        losses[balance] = [h["train_loss"] for h in result.history if "train_loss" in h]
    # Same weights, same first batch: the weighted mean differs from the plain one.
    assert losses["weighted_loss"][0] != pytest.approx(losses["none"][0], rel=1e-4)
    assert losses["sampler"] != losses["none"]  # other images in the batches


def test_exposure_and_light_settings_are_saved_with_the_run(tmp_path):
    args = _args(tmp_path / "light", "--max_train_steps", "2", "--exposure", "metadata",
                 "--train_intensities", "1.0,0.05")
    result = train(args, splits=_splits())
    net = result.accelerator.unwrap_model(result.model)
    assert net.isp.config.exposure == "metadata" and result.results["train_steps"] == 2
    write_outputs(args, result)
    info = json.loads((tmp_path / "light" / "isp_config.json").read_text())
    assert info["exposure"] == "metadata" and info["processor"]["exposure"] == "metadata"
    settings = json.loads((tmp_path / "light" / "training_args.json").read_text())
    assert settings["train_intensities"] == "1,0.05" and settings["exposure"] == "metadata"

