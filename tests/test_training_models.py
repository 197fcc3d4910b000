"""Task-model presets (ViT, ResNet, SegFormer, UperNet-ResNet) built offline, Hub-style folders of
those families as --model_name_or_path, and the exposure setting saved with a trained folder and
replayed by load_raw_model and the saved processor."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import raw_isp
from raw_isp.models.modeling import MODEL_PRESETS, build_task_model, load_raw_model, save_raw_model
from raw_isp.training import parse_training_args, train, write_outputs

from test_training_balance import _splits

LABELS = ["a", "b", "c"]


@pytest.mark.parametrize("preset, task, arch, params", [
    ("resnet-18", "classification", "ResNetForImageClassification", 11.18e6),
    ("resnet-50", "classification", "ResNetForImageClassification", 23.51e6),
    ("upernet-resnet18", "segmentation", "UperNetForSemanticSegmentation", None),
    ("upernet-resnet18-h128", "segmentation", "UperNetForSemanticSegmentation", 13.7e6),
])
def test_cnn_presets_build_offline_and_train_a_step(preset, task, arch, params):
    torch.manual_seed(0)
    model = build_task_model(task, preset, LABELS).train()
    assert type(model).__name__ == arch
    n = sum(p.numel() for p in model.parameters())
    if params is not None:
        assert n == pytest.approx(params, rel=0.01)  # ResNet-18 11.2 M, ResNet-50 23.5 M with a 3-class head
    if preset.startswith("upernet"):
        backbone = model.config.backbone_config
        assert (backbone.layer_type, backbone.depths, backbone.hidden_sizes) == ("basic", [2, 2, 2, 2], [64, 128, 256, 512])
        assert not model.config.use_auxiliary_head
    elif preset == "resnet-18":
        assert (model.config.layer_type, model.config.depths) == ("basic", [2, 2, 2, 2])
    else:
        assert (model.config.layer_type, model.config.depths) == ("bottleneck", [3, 4, 6, 3])
    # One optimiser step at a micro size (64x64, batch 2): the loss is finite and every weight moves.
    pixels = torch.rand(2, 3, 64, 64)
    labels = torch.randint(0, 3, (2, 64, 64) if task == "segmentation" else (2,))
    before = {k: v.clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model(pixel_values=pixels, labels=labels)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    opt.step()
    assert all(not torch.equal(before[k], v) for k, v in model.named_parameters() if v.grad is not None)
    if task == "segmentation":
        assert out.logits.shape == (2, 3, 64, 64)


def test_presets_of_the_wrong_task_are_refused():
    with pytest.raises(ValueError, match="'resnet-18' is a resnet model, not one for segmentation"):
        build_task_model("segmentation", "resnet-18", LABELS)
    with pytest.raises(ValueError, match="'upernet-micro' is a upernet model, not one for classification"):
        build_task_model("classification", "upernet-micro", LABELS)
    assert {"resnet-18", "resnet-50", "upernet-resnet18", "upernet-resnet50"} <= set(MODEL_PRESETS)


@pytest.mark.parametrize("task, preset", [("classification", "resnet-micro"), ("segmentation", "upernet-micro")])
def test_micro_cnn_presets_train_and_round_trip(task, preset, tmp_path):
    from transformers import AutoImageProcessor, AutoModelForImageClassification, AutoModelForSemanticSegmentation

    out = tmp_path / preset
    splits = _splits() if task == "classification" else _mask_splits()
    args = parse_training_args(task, ["--output_dir", str(out), "--model_name_or_path", preset, "--image_size", "64",
                                      "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
                                      "--max_train_steps", "2", "--dataset", "raw_drone" if task == "segmentation"
                                      else "raw_microscopy"])
    result = train(args, splits=splits)
    write_outputs(args, result)
    model, info = load_raw_model(out)
    assert info["task"] == task and type(model.model).__name__ == type(result.model.model).__name__
    auto = (AutoModelForSemanticSegmentation if task == "segmentation" else AutoModelForImageClassification)
    raws = torch.from_numpy((np.random.default_rng(0).random((2, 64, 64)) * 40000).astype(np.uint16))
    processor = AutoImageProcessor.from_pretrained(out)
    with torch.no_grad():
        torch.testing.assert_close(auto.from_pretrained(out).eval()(**processor(raws, intensity=0.5)).logits,
                                   model(raws, intensity=torch.tensor([0.5, 0.5])).logits, atol=1e-5, rtol=1e-5)


def _mask_splits(n=(8, 4, 4), size=64):
    import datasets

    rng = np.random.default_rng(1)
    feats = datasets.Features({"image": raw_isp.data.arrow.raw_image_feature((size, size)),
                               "mask": datasets.Array2D((size, size), "uint8"), "intensity": datasets.Value("float32")})

    def make(k):
        mask = np.zeros((k, size, size), dtype=np.uint8)
        mask[:, 16:40, 20:44] = 1
        img = (rng.random((k, size, size)) * 10000 + 5000 + 30000.0 * mask).astype(np.uint16)
        return datasets.Dataset.from_dict({"image": img, "mask": mask, "intensity": [1.0] * k}, features=feats)

    return datasets.DatasetDict(train=make(n[0]), validation=make(n[1]), test=make(n[2]))


@pytest.mark.parametrize("task, family", [("classification", "resnet"), ("segmentation", "upernet")])
def test_hub_style_folders_of_the_cnn_families_are_fine_tuned(task, family, tmp_path):
    # The Hub is unreachable: random-init models saved with save_pretrained stand in for
    # microsoft/resnet-50 (1000 ImageNet classes) and openmmlab/upernet-* (150 ADE20k classes).
    from transformers import (ResNetConfig, ResNetForImageClassification, UperNetConfig,
                              UperNetForSemanticSegmentation)

    base = tmp_path / f"{family}-hub"
    backbone = dict(layer_type="basic", depths=[1, 1, 1], hidden_sizes=[8, 16, 16], embedding_size=8)
    if family == "resnet":
        ResNetForImageClassification(ResNetConfig(**backbone, num_labels=1000)).save_pretrained(base)
    else:  # with the auxiliary head of the Hub's UperNets (on the third stage)
        config = UperNetConfig(backbone_config=ResNetConfig(**backbone, out_features=["stage1", "stage2", "stage3"]),
                               hidden_size=16, pool_scales=[1, 2], auxiliary_in_channels=16, auxiliary_channels=8,
                               num_labels=150)
        UperNetForSemanticSegmentation(config).save_pretrained(base)
    out = tmp_path / "out"
    args = parse_training_args(task, ["--output_dir", str(out), "--model_name_or_path", str(base), "--image_size", "64",
                                      "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
                                      "--max_train_steps", "1"] + (["--dataset", "raw_drone"] if task == "segmentation"
                                                                   else []))
    result = train(args, splits=_mask_splits() if task == "segmentation" else _splits())
    write_outputs(args, result)
    model, info = load_raw_model(out)
    head = model.model.config.num_labels
    assert head == 2 and info["task"] == task  # the 1000- or 150-class head was replaced
    assert json.loads((out / "config.json").read_text())["model_type"] == family
    with torch.no_grad():
        logits = model(torch.from_numpy(np.full((1, 64, 64), 9000, dtype=np.uint16)), intensity=torch.tensor([1.0])).logits
    assert logits.shape[1] == 2


@pytest.mark.parametrize("isp", ["static:ma_s_me", "parametrized:bi_u_ga", "learned"])
def test_the_exposure_setting_is_saved_and_replayed(isp, tmp_path):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    splits = _splits()
    out = tmp_path / "run"
    args = parse_training_args("classification", [
        "--output_dir", str(out), "--model_name_or_path", "vit-micro", "--image_size", "64", "--isp", isp,
        "--per_device_train_batch_size", "4", "--max_train_steps", "3", "--exposure", "metadata",
        "--isp_learning_rate", "0.05", "--train_intensities", "1.0,0.25"])
    result = train(args, splits=splits)
    write_outputs(args, result)
    trained = result.accelerator.unwrap_model(result.model)
    model, info = load_raw_model(out)
    assert info["exposure"] == "metadata"
    raws = torch.from_numpy((np.random.default_rng(2).random((2, 64, 64)) * 40000 + 1000).astype(np.uint16))
    intensity = torch.tensor([1.0, 0.25])
    with torch.no_grad():
        reloaded = model(raws, intensity=intensity).logits
        torch.testing.assert_close(reloaded, trained.eval()(raws, intensity=intensity).logits)
        with pytest.raises(ValueError, match="no intensity"):
            model(raws)
    if isp == "learned":
        assert model.isp.to_dict()["exposure"] == "metadata"
        return
    if isp.startswith("parametrized"):
        assert float(model.isp.exposure.detach()) != 0.0  # the learned log-gain (stops) was trained and reloaded
        assert torch.equal(model.isp.exposure, trained.isp.exposure)
    processor = AutoImageProcessor.from_pretrained(out)
    auto = AutoModelForImageClassification.from_pretrained(out).eval()
    assert processor.isp["exposure"] == "metadata"
    with torch.no_grad():
        torch.testing.assert_close(auto(**processor(raws, intensity=intensity)).logits, reloaded, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("preset, size, problem", [
    ("vit-micro", 63, "--image_size 63: not a multiple of the patch size 32 of vit-micro; the ViT would see only "
                      "32x32 of the 63x63 view (1x1 patches)"),
    ("vit-micro", 16, "--image_size 16: smaller than the 32 pixels"),
    ("resnet-micro", 16, "--image_size 16: smaller than the 32 pixels the resnet-micro network"),
])
def test_an_image_size_the_network_cannot_use_is_refused(preset, size, problem):
    # issue 18: --image_size 63 with the patch-32 ViT trained and exited 0 on one 32x32 patch of the cell
    if preset not in MODEL_PRESETS:
        pytest.skip(f"no preset {preset}")
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        build_task_model("classification", preset, ["a", "b"], image_size=size)
    build_task_model("classification", preset, ["a", "b"], image_size=64)


def test_the_training_script_refuses_such_an_image_size(tmp_path, capsys):
    from raw_isp.training.cli import main as train_main

    assert train_main("classification", ["--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "c"),
                                         "--num_examples", "60", "--model_name_or_path", "vit-micro",
                                         "--image_size", "63", "--max_train_steps", "1"]) == 2
    assert "error: --image_size 63: not a multiple of the patch size 32" in capsys.readouterr().err
    assert not (tmp_path / "out" / "all_results.json").exists()


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    from raw_isp.training.loop import build_model

    out = tmp_path_factory.mktemp("saved") / "model"
    args = parse_training_args("classification", ["--output_dir", str(out), "--model_name_or_path", "vit-micro",
                                                  "--image_size", "64", "--isp", "parametrized:bi_s_ga"])
    save_raw_model(build_model(args, ["a", "b"]), out, args.isp, args.camera_name, task="classification")
    return out


def _copy(folder, tmp_path):
    import shutil

    return Path(shutil.copytree(folder, tmp_path / "copy"))


@pytest.mark.parametrize("name, damage, problem", [
    ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
     "model.safetensors: the task model's weights cannot be loaded, the file is truncated, empty"),
    ("model.safetensors", lambda p: p.write_bytes(b""), "model.safetensors: the task model's weights cannot be loaded"),
    ("isp.safetensors", lambda p: p.write_bytes(b""), "isp.safetensors: the ISP's weights cannot be read"),
    ("config.json", lambda p: p.write_text('{"model_type": "vit", '), "config.json: not a readable model config"),
    ("isp_config.json", lambda p: p.write_text(p.read_text().replace('"isp": "parametrized:bi_s_ga"',
                                                                    '"isp": {"kind": "parametrized"}')),
     "isp_config.json: 'isp' is dict {'kind': 'parametrized'}, expected str (a newer format of isp_config.json?"),
    ("isp_config.json", lambda p: p.write_text("[1, 2]"), "isp_config.json: expected a JSON object, got list"),
    ("isp_config.json", lambda p: p.write_text("{"), "isp_config.json: not readable as JSON"),
])
def test_a_damaged_or_newer_file_in_a_trained_folder_is_named(saved_folder, tmp_path, name, damage, problem):
    # issue 18: SafetensorError, TypeError or a bare JSONDecodeError that named no file
    folder = _copy(saved_folder, tmp_path)
    assert (folder / name).is_file()
    damage(folder / name)
    with pytest.raises(ValueError) as err:
        load_raw_model(folder)
    assert str(err.value).startswith(str(folder / name) + ":") and problem in str(err.value), str(err.value)


def test_unknown_keys_in_isp_config_warn_like_the_processor(saved_folder, tmp_path):
    # issue 18: an isp_config.json with an unknown key loaded without a word
    folder = _copy(saved_folder, tmp_path)
    info = json.loads((folder / "isp_config.json").read_text())
    (folder / "isp_config.json").write_text(json.dumps({**info, "future_option": 1}))
    with pytest.warns(UserWarning, match=r"isp_config.json: ignoring keys that this version of raw_isp does not know: "
                                         r"\['future_option'\]"):
        model, loaded = load_raw_model(folder)
    assert "future_option" not in loaded and loaded["isp"] == "parametrized:bi_s_ga"
