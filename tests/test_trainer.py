"""The transformers.Trainer path (raw_isp.training.trainer): a few steps on tiny synthetic data
with micro models, evaluation against an independent computation, the saved folder reloaded
by the project's loader and by the Auto classes, resuming from a checkpoint, and the collator
and metrics on their own."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from transformers import Trainer, TrainingArguments

import raw_drone
import raw_microscopy
from raw_isp.models.modeling import RawISPModel, load_raw_model, logits_at
from raw_isp.training import RawTrainingArguments, build_model
from raw_isp.training.trainer import (RawDataCollator, RawISPTrainer, compute_metrics_fn,
                                      preprocess_logits_for_metrics)


@pytest.fixture(scope="module")
def cells(cache):
    splits = raw_microscopy.load_dataset("raw", num_examples=20, cache_dir=cache)
    return {"train": splits["train"].select(range(32)), "validation": splits["validation"].select(range(12))}


@pytest.fixture(scope="module")
def tiles(cache):
    splits = raw_drone.load_dataset("segmentation", num_scenes=10, frame_height=512, frame_width=512, num_examples=16,
                                    cache_dir=cache)
    return {"train": splits["train"].select(range(8)), "validation": splits["validation"].select(range(6))}


def raw_model(task, model, isp, label_names, seed=0):
    torch.manual_seed(seed)
    args = RawTrainingArguments(task=task, model_name_or_path=model, isp=isp, output_dir="unused")
    return build_model(args, label_names)


def arguments(out, **kwargs):
    defaults = dict(per_device_train_batch_size=8, per_device_eval_batch_size=6, learning_rate=3e-3,
                    report_to=[], use_cpu=True, logging_steps=1, seed=0, disable_tqdm=True)
    return TrainingArguments(output_dir=str(out), **{**defaults, **kwargs})


def frames(ds):
    return torch.from_numpy(np.stack([ds[i]["image"] for i in range(len(ds))]))


@torch.no_grad()
def logits_of(model, raw):
    """Logits of a raw model on frames at full light (intensity 1: the default metadata exposure
    needs the ratio)."""
    return model.eval()(raw, intensity=torch.ones(len(raw))).logits


def test_trainer_trains_evaluates_saves_and_reloads_like_the_scripts(tmp_path, cells):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    names = cells["train"].features["label"].names
    model = raw_model("classification", "vit-micro", "static:ma_s_me", names)
    args = arguments(tmp_path / "run", max_steps=4, save_steps=2, per_device_train_batch_size=4)
    assert args.remove_unused_columns  # the default: the trainer must keep the frames
    trainer = RawISPTrainer(model=model, args=args, train_dataset=cells["train"], eval_dataset=cells["validation"],
                            compute_metrics=compute_metrics_fn("classification", names),
                            preprocess_logits_for_metrics=preprocess_logits_for_metrics)
    assert trainer.task == "classification"
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 4 and all(np.isfinite(losses))
    metrics = trainer.evaluate()

    # The scores, computed independently from the model's own logits.
    raw = frames(cells["validation"])
    labels = np.asarray(cells["validation"]["label"])
    predicted = logits_of(trainer.model, raw).argmax(-1).numpy()
    assert metrics["eval_accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert metrics["eval_macro_f1"] == pytest.approx(
        f1_score(labels, predicted, labels=range(len(names)), average="macro", zero_division=0))
    assert metrics["eval_num_samples"] == len(labels)

    # save_model writes the scripts' folder; both loaders give the trained model's logits.
    final = tmp_path / "final"
    trainer.save_model(str(final))
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "isp_config.json",
                 "training_args.bin"):
        assert (final / name).is_file(), name
    reloaded, info = load_raw_model(final)
    assert info["task"] == "classification" and info["isp"] == "static:ma_s_me"
    assert info["camera"]["name"] == "microscopy"
    torch.testing.assert_close(logits_of(reloaded, raw), logits_of(trainer.model, raw), rtol=0, atol=0)
    processor = AutoImageProcessor.from_pretrained(final)
    auto = AutoModelForImageClassification.from_pretrained(final).eval()
    with torch.no_grad():
        torch.testing.assert_close(auto(**processor(raw[:4], return_tensors="pt", intensity=1.0)).logits,
                                   logits_of(trainer.model, raw[:4]), atol=1e-5, rtol=1e-5)
    assert (tmp_path / "run" / "checkpoint-2" / "isp_config.json").is_file()

    # Resuming from the step-2 checkpoint into a model of other initial weights ends where the
    # uninterrupted run ended: the checkpoint's weights were loaded, optimiser and order followed.
    fresh = raw_model("classification", "vit-micro", "static:ma_s_me", names, seed=123)
    again = RawISPTrainer(model=fresh, args=args, train_dataset=cells["train"])
    again.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    for (name, a), (_, b) in zip(fresh.state_dict().items(), reloaded.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_a_trainable_isp_gets_its_own_rate_no_weight_decay_and_is_replayed(tmp_path, cells):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    names = cells["train"].features["label"].names
    model = raw_model("classification", "vit-micro", "parametrized:bi_u_ga", names)
    start = {n: p.detach().clone() for n, p in model.isp.named_parameters()}
    args = arguments(tmp_path / "run", max_steps=2, per_device_train_batch_size=4, save_strategy="no", weight_decay=0.1,
                     lr_scheduler_type="constant")
    trainer = RawISPTrainer(model=model, args=args, train_dataset=cells["train"], isp_learning_rate=0.05)
    trainer.train()
    isp_params = {id(p) for p in model.isp.parameters()}
    groups = trainer.optimizer.param_groups
    isp_groups = [g for g in groups if any(id(p) in isp_params for p in g["params"])]
    assert len(isp_groups) == 1 and {id(p) for p in isp_groups[0]["params"]} == isp_params
    assert isp_groups[0]["lr"] == 0.05 and isp_groups[0]["weight_decay"] == 0.0
    assert not any(n.startswith("isp.") for n in trainer.get_decay_parameter_names(model))
    assert any(g["weight_decay"] == 0.1 for g in groups)  # the task model's matrices still decay
    moved = [n for n, p in model.isp.named_parameters() if not torch.equal(p.detach(), start[n])]
    assert {"white_balance", "colour_matrix", "gamma"} <= set(moved)

    final = tmp_path / "final"
    trainer.save_model(str(final))
    raw = frames(cells["validation"])[:3]
    reloaded = RawISPModel.from_pretrained(final)
    assert json.loads((final / "isp_config.json").read_text())["isp"] == "parametrized:bi_u_ga"
    processor = AutoImageProcessor.from_pretrained(final)
    auto = AutoModelForImageClassification.from_pretrained(final).eval()
    with torch.no_grad():
        torch.testing.assert_close(auto(**processor(raw, return_tensors="pt", intensity=1.0)).logits, logits_of(reloaded, raw),
                                   atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits_of(reloaded, raw), logits_of(model, raw), rtol=0, atol=0)


def test_segmentation_with_batched_metrics_and_the_auto_classes(tmp_path, tiles):
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    names = ["background", "car"]
    model = raw_model("segmentation", "segformer-micro", "static:bi_s_ga", names)
    args = arguments(tmp_path / "run", max_steps=2, per_device_train_batch_size=4, per_device_eval_batch_size=4,
                     save_steps=1, batch_eval_metrics=True)
    trainer = RawISPTrainer(model=model, args=args, train_dataset=tiles["train"], eval_dataset=tiles["validation"],
                            compute_metrics=compute_metrics_fn("segmentation", names),
                            preprocess_logits_for_metrics=preprocess_logits_for_metrics)
    assert trainer.task == "segmentation" and trainer.data_collator.label_column == "mask"
    trainer.train()
    metrics = trainer.evaluate()  # 6 tiles in batches of 4: streamed over two batches

    raw = frames(tiles["validation"])
    masks = np.stack([tiles["validation"][i]["mask"] for i in range(len(tiles["validation"]))]).astype(np.int64)
    predicted = logits_at(logits_of(trainer.model, raw), masks.shape[-2:]).argmax(1).numpy()
    ious = []
    for c in range(2):
        union = np.sum((predicted == c) | (masks == c))
        ious.append(np.sum((predicted == c) & (masks == c)) / union if union else np.nan)
    assert metrics["eval_iou_car"] == pytest.approx(ious[1], nan_ok=True)
    assert metrics["eval_mean_iou"] == pytest.approx(np.nanmean(ious))
    assert metrics["eval_pixel_accuracy"] == pytest.approx(np.mean(predicted == masks))

    final = tmp_path / "final"
    trainer.save_model(str(final))
    reloaded, info = load_raw_model(final)
    assert info["task"] == "segmentation"
    processor = AutoImageProcessor.from_pretrained(final)
    auto = AutoModelForSemanticSegmentation.from_pretrained(final).eval()
    with torch.no_grad():
        torch.testing.assert_close(auto(**processor(raw[:2], return_tensors="pt", intensity=1.0)).logits,
                                   logits_of(reloaded, raw[:2]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits_of(reloaded, raw), logits_of(trainer.model, raw), rtol=0, atol=0)

    # load_best_model_at_end's step: the best checkpoint's weights come back into the model.
    first = tmp_path / "run" / "checkpoint-1"
    trainer.state.best_model_checkpoint = str(first)
    trainer._load_best_model()
    assert not torch.equal(logits_of(trainer.model, raw), logits_of(reloaded, raw))
    torch.testing.assert_close(logits_of(trainer.model, raw), logits_of(load_raw_model(first)[0], raw), rtol=0, atol=0)


# --------------------------------------------------------------------------- the collator


def test_collator_gives_the_same_batch_from_every_format_of_the_rows(cells):
    ds = cells["validation"].select(range(3))
    collate = RawDataCollator("label")
    want = collate([ds[i] for i in range(3)])  # the package's default: np.uint16 frames
    assert want["raw"].dtype == torch.int16 and want["raw"].shape == (3, 256, 256)
    assert want["labels"].dtype == torch.int64
    if "intensity" in want:  # RawCollate passes the frames' light ratios on (exposure="metadata")
        assert torch.equal(want["intensity"], torch.tensor(ds["intensity"], dtype=torch.float32))
    assert torch.equal(want["raw"].view(torch.uint16), frames(ds))
    for fmt in (None, "numpy", "torch"):  # nested lists, int64 arrays, int64 tensors
        rows = [ds.with_format(fmt)[i] for i in range(3)]
        got = collate(rows)
        for key in want:
            assert torch.equal(got[key], want[key]), (fmt, key)


def test_collator_refuses_what_is_not_a_raw_batch(cells):
    row = dict(cells["validation"][0])
    collate = RawDataCollator("label")
    with pytest.raises(TypeError, match="not 8-bit or float"):
        collate([{**row, "image": (row["image"] >> 8).astype(np.uint8)}])
    with pytest.raises(TypeError, match="float32"):
        collate([{**row, "image": row["image"].astype(np.float32) / 65535}])
    with pytest.raises(ValueError, match=r"outside the 16-bit range"):
        collate([{**row, "image": row["image"].astype(np.int64) - 70000}])
    with pytest.raises(ValueError, match="share one"):
        collate([row, {**row, "image": row["image"][:128]}])
    with pytest.raises(KeyError, match="remove_unused_columns"):
        collate([{k: v for k, v in row.items() if k != "image"}])


def test_a_plain_trainer_names_the_columns_it_dropped(tmp_path, cells):
    names = cells["train"].features["label"].names
    model = raw_model("classification", "vit-micro", "static:bi_s_ga", names)
    trainer = Trainer(model=model, args=arguments(tmp_path, max_steps=1), train_dataset=cells["train"],
                      data_collator=RawDataCollator("label"))
    with pytest.raises(KeyError, match="RawISPTrainer"):
        trainer.train()
    with pytest.raises(TypeError, match="RawISPModel"):
        RawISPTrainer(model=model.model, args=arguments(tmp_path))


# --------------------------------------------------------------------------- the metrics


class Prediction:
    def __init__(self, predictions, label_ids):
        self.predictions, self.label_ids = predictions, label_ids


def test_metrics_whole_and_batched_agree_with_sklearn_and_skip_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=40)
    labels[-3:] = -100  # Trainer's padding
    names = ["a", "b", "c", "d"]
    keep = labels >= 0
    want = f1_score(labels[keep], logits.argmax(-1)[keep], labels=range(4), average="weighted", zero_division=0)
    whole = compute_metrics_fn("classification", names, average="weighted")(Prediction(logits, labels))
    assert whole["f1"] == pytest.approx(want)
    assert whole["accuracy"] == pytest.approx(np.mean(logits.argmax(-1)[keep] == labels[keep]))
    assert whole["num_samples"] == 37 and isinstance(whole["num_samples"], int)
    assert all(isinstance(v, (int, float)) for v in whole.values())  # no arrays for Trainer's logs
    batched = compute_metrics_fn("classification", names, average="weighted")
    for start in range(0, 40, 16):
        part = slice(start, start + 16)
        result = batched(Prediction(torch.from_numpy(logits[part]), torch.from_numpy(labels[part])),
                         compute_result=start + 16 >= 40)
    assert result == whole

    # Segmentation: quarter-size logits are upsampled to the masks before the argmax.
    seg_logits = torch.from_numpy(rng.normal(size=(2, 2, 8, 8)).astype(np.float32))
    masks = torch.from_numpy(rng.integers(0, 2, size=(2, 32, 32)))
    predicted = logits_at(seg_logits, (32, 32)).argmax(1)
    assert torch.equal(preprocess_logits_for_metrics(seg_logits, masks), predicted.to(torch.uint8))
    scores = compute_metrics_fn("segmentation", ["background", "car"])(Prediction(seg_logits.numpy(), masks.numpy()))
    car = ((predicted == 1) & (masks == 1)).sum() / ((predicted == 1) | (masks == 1)).sum()
    assert scores["iou_car"] == pytest.approx(float(car))


def test_save_model_writes_the_state_dict_trainer_gives(tmp_path):
    # Under FSDP / DeepSpeed, Trainer hands _save the gathered weights: those are what is written.
    model = raw_model("classification", "vit-micro", "parametrized:bi_s_ga", ["a", "b"])
    given = {k: v + 0.5 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path, state_dict=given)
    reloaded = RawISPModel.from_pretrained(tmp_path)
    for name, value in reloaded.state_dict().items():
        torch.testing.assert_close(value, given[name], rtol=0, atol=0, msg=name)
