"""The accelerate training loop (raw_isp.training) and the training scripts: a few steps on tiny
synthetic data with tiny models."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import raw_isp
from raw_isp.training import (OptionError, TrainingCallback, parse_training_args, train, write_outputs)
from raw_isp.training.cli import main as train_main
from raw_isp.training.data import load_splits

ROOT = Path(__file__).resolve().parents[1]

MICRO = ["--num_examples", "60", "--model_name_or_path", "vit-micro", "--per_device_train_batch_size", "8",
         "--per_device_eval_batch_size", "6", "--logging_steps", "1"]
DRONE = ["--num_scenes", "10", "--frame_size", "512", "512", "--num_examples", "16",
         "--model_name_or_path", "segformer-micro", "--per_device_train_batch_size", "4",
         "--per_device_eval_batch_size", "3", "--logging_steps", "1"]


def run(task, out, cache, *extra):
    argv = ["--output_dir", str(out), "--cache_dir", cache, *extra]
    assert train_main(task, argv) == 0
    return json.loads((Path(out) / "all_results.json").read_text())


def test_classification_learns_writes_and_reloads_with_auto_classes(tmp_path, cache, capsys):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    out = tmp_path / "cls"
    results = run("classification", out, cache, *MICRO, "--max_train_samples", "16", "--per_device_train_batch_size",
                  "16", "--max_train_steps", "12", "--learning_rate", "3e-3", "--augment", "none",
                  "--isp", "static:ma_s_me", "--hub_token", "hf_secret_value")
    printed = capsys.readouterr().out
    assert "test: accuracy" in printed and "macro_f1" in printed
    history = [h for h in json.loads((out / "train_history.json").read_text()) if "train_loss" in h]
    assert len(history) == 12
    first, last = history[0]["train_loss"], np.mean([h["train_loss"] for h in history[-3:]])
    assert last < 0.8 * first, (first, last)
    for key in ("eval_accuracy", "eval_macro_f1", "test_accuracy", "test_macro_f1", "test_per_class_f1", "test_f1_NGS",
                "test_confusion_matrix", "eval_loss"):
        assert key in results
    assert results["train_steps"] == 12
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "isp_config.json", "README.md"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "static:ma_s_me" in card and f"{results['test_accuracy']:.4f}" in card
    assert "pipeline_tag: image-classification" in card
    saved = (out / "training_args.json").read_text()
    assert "hf_secret_value" not in saved and "hub_token" not in saved
    assert json.loads((out / "isp_config.json").read_text())["task"] == "classification"

    # Reload with the Auto classes and predict on a raw TIFF: same logits as the project's loader.
    raws = (np.random.default_rng(1).random((2, 256, 256)) * 30000 + 2000).astype(np.uint16)
    raw_isp.write_raw(tmp_path / "frame.tiff", raws[0])
    processor = AutoImageProcessor.from_pretrained(out)
    model = AutoModelForImageClassification.from_pretrained(out).eval()
    assert processor.isp["demosaic"] == "malvar2004" and processor.camera["name"] == "microscopy"
    with torch.no_grad():
        # The default exposure is "metadata": the frame's intensity ratio goes with it.
        auto_logits = model(**processor(str(tmp_path / "frame.tiff"), intensity=0.5)).logits
        raw_model, info = raw_isp.models.modeling.load_raw_model(out)
        own_logits = raw_model(torch.from_numpy(raws[:1]), intensity=torch.tensor([0.5])).logits
    assert info["isp"] == "static:ma_s_me" and info["task"] == "classification" and info["exposure"] == "metadata"
    torch.testing.assert_close(auto_logits, own_logits, atol=1e-5, rtol=1e-5)


def test_parametrized_isp_is_trained_and_replayed_by_the_processor(tmp_path, cache):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    out = tmp_path / "param"
    run("classification", out, cache, *MICRO, "--max_train_steps", "3", "--isp", "parametrized:bi_u_ga",
        "--isp_learning_rate", "0.05")
    model, info = raw_isp.models.modeling.load_raw_model(out)
    start = raw_isp.ParametrizedISP("bi_u_ga", camera="microscopy")
    moved = [n for n, p in model.isp.named_parameters() if not torch.equal(p, getattr(start, n))]
    assert set(moved) == {n for n, _ in start.named_parameters()}  # every parameter was trained
    assert {"black_level", "white_balance", "colour_matrix", "sharpen_kernel", "blur_kernel", "gamma"} <= set(moved)
    raws = torch.from_numpy((np.random.default_rng(2).random((2, 256, 256)) * 40000).astype(np.uint16))
    processor = AutoImageProcessor.from_pretrained(out)
    auto = AutoModelForImageClassification.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(auto(**processor(raws, intensity=[1.0, 0.25])).logits,
                                   model(raws, intensity=torch.tensor([1.0, 0.25])).logits, atol=1e-4, rtol=1e-4)


def test_learned_isp_is_saved_and_reloaded(tmp_path, cache):
    out = tmp_path / "learned"
    run("classification", out, cache, *MICRO, "--max_train_steps", "2", "--isp", "learned")
    assert not (out / "preprocessor_config.json").exists()  # the processor cannot run a network
    assert (out / "isp.safetensors").is_file()
    model, info = raw_isp.models.modeling.load_raw_model(out)
    assert info["isp"] == "learned"
    raws = torch.from_numpy((np.random.default_rng(3).random((2, 256, 256)) * 40000).astype(np.uint16))
    with torch.no_grad():
        again, _ = raw_isp.models.modeling.load_raw_model(out)
        torch.testing.assert_close(model(raws, intensity=torch.tensor([1.0, 0.1])).logits,
                                   again(raws, intensity=torch.tensor([1.0, 0.1])).logits)
    assert "load_raw_model" in (out / "README.md").read_text()


def test_segmentation_learns_writes_and_reloads(tmp_path, cache):
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    out = tmp_path / "seg"
    # The pixel cross-entropy (the model's own loss); the Dice default falls more slowly in 10 steps.
    results = run("segmentation", out, cache, *DRONE, "--max_train_samples", "4", "--max_train_steps", "10",
                  "--learning_rate", "5e-3", "--augment", "none", "--loss", "ce")
    for key in ("eval_mean_iou", "eval_iou_car", "eval_pixel_accuracy", "test_mean_iou", "test_iou_car"):
        assert key in results
    history = [h for h in json.loads((out / "train_history.json").read_text()) if "train_loss" in h]
    assert np.mean([h["train_loss"] for h in history[-3:]]) < 0.8 * history[0]["train_loss"]
    raws = torch.from_numpy((np.random.default_rng(4).random((2, 256, 256)) * 40000).astype(np.uint16))
    processor = AutoImageProcessor.from_pretrained(out)
    auto = AutoModelForSemanticSegmentation.from_pretrained(out).eval()
    model, info = raw_isp.models.modeling.load_raw_model(out)
    assert info["task"] == "segmentation"
    with torch.no_grad():
        torch.testing.assert_close(auto(**processor(raws, intensity=1.0)).logits,
                                   model(raws, intensity=torch.tensor([1.0, 1.0])).logits, atol=1e-5, rtol=1e-5)
    masks = processor.post_process_semantic_segmentation(auto(**processor(raws, intensity=1.0)),
                                                         target_sizes=[(256, 256)] * 2)
    assert masks[0].shape == (256, 256)

    # A folder saved before the task was recorded still loads as what it is.
    info_file = out / "isp_config.json"
    old = json.loads(info_file.read_text())
    del old["task"]
    info_file.write_text(json.dumps(old))
    model, info = raw_isp.models.modeling.load_raw_model(out)
    assert info["task"] == "segmentation" and type(model.model).__name__ == "SegformerForSemanticSegmentation"


def test_a_segmentation_model_of_another_architecture_round_trips(tmp_path, cache):
    # A local, random-init BEiT with an UperNet head (any transformers semantic-segmentation
    # model): trained behind the ISP, saved, and reloaded as a segmentation model by the task
    # recorded in isp_config.json, even when its config does not name its architecture.
    from transformers import BeitConfig, BeitForSemanticSegmentation

    base = tmp_path / "beit-tiny"
    config = BeitConfig(image_size=256, patch_size=32, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, out_indices=[1, 2, 3, 4], use_auxiliary_head=False, pool_scales=[1, 2],
                        num_labels=2)
    BeitForSemanticSegmentation(config).save_pretrained(base)
    out = tmp_path / "seg"
    drone = [a if a != "segformer-micro" else str(base) for a in DRONE]
    results = run("segmentation", out, cache, *drone, "--max_train_steps", "2")
    assert "test_mean_iou" in results
    config_file = out / "config.json"
    saved = json.loads(config_file.read_text())
    saved.pop("architectures", None)
    config_file.write_text(json.dumps(saved))
    model, info = raw_isp.models.modeling.load_raw_model(out)
    assert info["task"] == "segmentation" and isinstance(model.model, BeitForSemanticSegmentation)
    raws = torch.from_numpy((np.random.default_rng(5).random((2, 256, 256)) * 40000).astype(np.uint16))
    with torch.no_grad():
        logits = model(raws, intensity=torch.tensor([1.0, 0.5])).logits
    assert logits.ndim == 4 and logits.shape[:2] == (2, 2)
    assert "pipeline_tag: image-segmentation" in (out / "README.md").read_text()


class Killed(Exception):
    pass


class KillAt(TrainingCallback):
    """Stops the run right after the checkpoint of ``step`` (as a kill would)."""

    def __init__(self, step):
        self.step, self.checkpoints = step, []

    def on_checkpoint(self, step, folder):
        self.checkpoints.append(Path(folder).name)
        if step == self.step:
            raise Killed


# Every option that draws something per step, with both class-balance modes and both ISP kinds
# that can take them (variants need a static ISP).
ALL_OPTIONS = {
    "default": ((), 6, 4),
    "static": (("--exposure", "metadata", "--train_intensities", "1.0,0.5,0.1,0.05", "--train_isp_variants", "all",
                "--corruption_augment", "--class_balance", "sampler", "--isp", "static:ma_s_me"), 8, 6),
    "parametrized": (("--exposure", "auto", "--train_intensities", "0.5,0.05", "--corruption_augment",
                      "gaussian_noise,jpeg_compression,defocus_blur", "--class_balance", "weighted_loss",
                      "--isp", "parametrized:bi_u_me", "--gradient_accumulation_steps", "2",
                      "--per_device_train_batch_size", "5"), 8, 6),
}


@pytest.mark.parametrize("options", list(ALL_OPTIONS))
def test_killed_and_resumed_run_ends_like_an_uninterrupted_one(tmp_path, cache, capsys, options):
    # 44 training images in batches of 10: epochs of 5 steps (3 with 2 micro-batches of 5), a
    # validation after each epoch; killed after a validation, the checkpoint carries the best
    # epoch so far (and its weights), which the end of the run restores.
    extra, steps, kill_at = ALL_OPTIONS[options]
    common = [*MICRO, "--max_train_steps", str(steps), "--checkpointing_steps", "2", "--per_device_train_batch_size",
              "10", *extra]
    full = run("classification", tmp_path / "full", cache, *common)

    killed = tmp_path / "resumed"
    args = parse_training_args("classification", ["--output_dir", str(killed), "--cache_dir", cache, *common])
    kill = KillAt(kill_at)
    with pytest.raises(Killed):
        train(args, callbacks=[kill])
    expected = [f"step_{s}" for s in range(2, kill_at + 1, 2)]
    assert kill.checkpoints == expected and not (killed / "all_results.json").exists()
    assert sorted(p.name for p in killed.glob("step_*")) == expected

    # Re-running the command without --resume_from_checkpoint is refused and deletes nothing.
    assert train_main("classification", ["--output_dir", str(killed), "--cache_dir", cache, *common]) == 2
    assert "--resume_from_checkpoint to continue" in capsys.readouterr().err
    assert sorted(p.name for p in killed.glob("step_*")) == expected

    resumed = run("classification", killed, cache, *common, "--resume_from_checkpoint")
    assert resumed["train_steps"] == full["train_steps"] == steps
    for key in ("eval_accuracy", "eval_loss", "test_accuracy", "test_macro_f1", "test_loss", "best_epoch",
                "best_step", "best_metric"):
        assert resumed[key] == pytest.approx(full[key], abs=1e-6), key
    # Bit for bit: the same weights (task model and ISP) and the same training history.
    assert (tmp_path / "full" / "model.safetensors").is_file()
    for name in ("model.safetensors", "isp.safetensors"):  # a static ISP has no isp.safetensors
        if (tmp_path / "full" / name).exists():
            assert (killed / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    history = lambda folder: json.loads((folder / "train_history.json").read_text())  # noqa: E731
    strip = lambda h: [{k: v for k, v in e.items() if k != "images_per_second"} for e in h]  # noqa: E731
    assert strip(history(killed)) == strip(history(tmp_path / "full"))
    assert json.loads((killed / "training_args.json").read_text())["resume_from_checkpoint"] == str(
        killed / f"step_{kill_at}")


@pytest.mark.parametrize("argv, message", [
    (["--isp", "static:xx_s_ga"], "--isp: isp 'static:xx_s_ga': unknown variant 'xx_s_ga'"),
    (["--isp", "fancy"], "unknown kind 'fancy'"),
    (["--intensity", "1.5"], "--intensity must be in (0, 1]"),
    (["--intensity", "0"], "--intensity must be in (0, 1]"),
    (["--intensity", "0.3"], "captured at"),
    (["--data_dir", "/no/such/folder"], "--data_dir /no/such/folder: no such file or folder"),
    (["--checkpointing_steps", "-3"], "--checkpointing_steps"),
    (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be a positive integer"),
    (["--frame_size", "512"], "--frame_size takes two positive integers"),
    (["--camera", "phone"], "--camera 'phone'"),
    (["--dataset", "imagenet"], "invalid choice"),
    (["--task", "segmentation"], "--task: this command trains classification"),
    (["--no_such_option", "1"], "--no_such_option"),
])
def test_bad_arguments_fail_before_training(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_training_args("classification", ["--output_dir", str(tmp_path / "out"), *argv])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_corrupt_or_missing_checkpoint_is_refused(tmp_path, capsys):
    never = tmp_path / "no_cache"  # the data is never loaded
    argv = ["--output_dir", str(tmp_path), "--cache_dir", str(never), "--resume_from_checkpoint"]
    assert train_main("classification", argv) == 2
    assert "no checkpoint" in capsys.readouterr().err
    bad = tmp_path / "step_5"
    bad.mkdir()
    (bad / "trainer_state.json").write_text("{not json")
    assert train_main("classification", argv) == 2
    assert "step_5" in (err := capsys.readouterr().err) and "corrupt" in err
    assert not never.exists()
    (bad / "trainer_state.json").write_text('{"completed_steps": 5, "epoch": 0}')
    (bad / "model.safetensors").write_bytes(b"garbage")
    (bad / "optimizer.bin").write_bytes(b"garbage")
    args = parse_training_args("classification", ["--output_dir", str(tmp_path), "--resume_from_checkpoint",
                                                  "--num_examples", "30", "--model_name_or_path", "vit-micro"])
    with pytest.raises(OptionError, match="cannot load it"):
        train(args, splits=_tiny_splits())


def _tiny_splits():
    import datasets

    rng = np.random.default_rng(0)
    feats = datasets.Features({"image": raw_isp.data.arrow.raw_image_feature((64, 64)),
                               "label": datasets.ClassLabel(names=["a", "b"])})
    make = lambda n: datasets.Dataset.from_dict(  # noqa: E731
        {"image": (rng.random((n, 64, 64)) * 60000).astype(np.uint16), "label": rng.integers(0, 2, n)}, features=feats)
    return datasets.DatasetDict(train=make(8), validation=make(4), test=make(4))


def _launch(tmp_path, cache, nproc, out, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    # Without a GPU, "--multi_gpu" makes accelerate start the processes with torchrun; they then
    # run on the CPU over gloo ("--cpu" with several processes would need mpirun).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu" if nproc > 1 else "--cpu",
           "--num_processes", str(nproc),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(ROOT / "scripts" / "train_classification.py"), "--output_dir", str(out), "--cache_dir", cache, *MICRO,
           *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "all_results.json").read_text())


def test_two_processes_give_the_same_metrics_as_one(tmp_path, cache):
    # Warm the dataset cache in this process so the launched runs only read it.
    load_splits(parse_training_args("classification", ["--cache_dir", cache, *MICRO,
                                                       "--output_dir", str(tmp_path / "x")]))
    # 18 validation / 18 test samples in batches of 6 per process: the second process gets a
    # short last batch that accelerate pads; gather_for_metrics must drop the padding.
    # No augmentation: its flips are drawn per process batch.
    common = ("--max_train_steps", "2", "--augment", "none")
    one = _launch(tmp_path, cache, 1, tmp_path / "one", *common, "--per_device_train_batch_size", "8")
    two = _launch(tmp_path, cache, 2, tmp_path / "two", *common, "--per_device_train_batch_size", "4")
    assert one["eval_samples"] == two["eval_samples"]
    # Same data per step (the shards of a batch of 8 are two batches of 4), gradients averaged
    # across processes: the same model up to float rounding.
    for key in ("eval_accuracy", "test_accuracy", "test_macro_f1"):
        assert two[key] == pytest.approx(one[key], abs=1e-9), key
    for key in ("eval_loss", "test_loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-4), key
    cm_one, cm_two = np.array(one["test_confusion_matrix"]), np.array(two["test_confusion_matrix"])
    assert cm_two.sum() == cm_one.sum() == one["test_samples"]


@pytest.mark.filterwarnings("ignore:the .* split got no examples:UserWarning")
def test_both_scripts_train_on_a_local_copy_in_the_real_layout(tmp_path, cache):
    from test_datasets_sources import write_drone_frames, write_microscopy

    cells = write_microscopy(tmp_path / "microscopy", num_cells=30, ratios=(1.0, 0.25))
    results = run("classification", tmp_path / "cls", cache, "--data_dir", str(tmp_path / "microscopy"),
                  "--intensity", "0.25", "--model_name_or_path", "vit-micro", "--max_train_steps", "2",
                  "--per_device_train_batch_size", "8")
    assert results["train_samples"] + results["eval_samples"] + results["test_samples"] == len(cells)
    args = json.loads((tmp_path / "cls" / "training_args.json").read_text())
    assert args["source"] == "local" and args["intensity"] == 0.25

    frames = write_drone_frames(tmp_path / "drone", num_frames=10, shape=(512, 512))
    results = run("segmentation", tmp_path / "seg", cache, "--data_dir", str(tmp_path / "drone"),
                  "--model_name_or_path", "segformer-micro", "--max_train_steps", "2",
                  "--per_device_train_batch_size", "4")
    assert results["train_samples"] > 0 and "test_mean_iou" in results and len(frames) == 10


def test_library_run_writes_the_same_folder_as_the_script(tmp_path, cache):
    # What the drift scripts do: parse, train with callbacks, write; the callback sees every validation.
    class Seen(TrainingCallback):
        def __init__(self):
            self.evaluations, self.logs, self.end = [], 0, None

        def on_evaluate(self, step, epoch, metrics):
            self.evaluations.append((step, epoch, metrics["accuracy"]))

        def on_log(self, step, logs):
            self.logs += 1

        def on_train_end(self, results):
            self.end = results

    args = parse_training_args("classification", ["--output_dir", str(tmp_path / "lib"), "--cache_dir", cache,
                                                  *MICRO, "--max_train_samples", "16", "--num_train_epochs", "2"])
    seen = Seen()
    result = train(args, callbacks=[seen])
    write_outputs(args, result)
    assert [(s, e) for s, e, _ in seen.evaluations] == [(2, 0), (4, 1)]
    assert seen.logs == 4 and seen.end == result.results
    assert seen.evaluations[-1][2] == pytest.approx(result.results["eval_accuracy"])
    assert json.loads((tmp_path / "lib" / "all_results.json").read_text()) == json.loads(json.dumps(result.results))
