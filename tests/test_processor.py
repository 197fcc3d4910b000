"""``raw_isp.RawISPImageProcessor``: the ISP as a transformers image processor.

Checks the output against the ISP and torch ops it is made of, batch/per-image agreement,
input forms (arrays, tensors, paths, PIL), per-call overrides, the ISP cache, saving and
loading (also through ``AutoImageProcessor`` and in a fresh process), segmentation labels and
post-processing, the image-classification pipeline on raw TIFF paths, and error messages.
Tiny synthetic raws and a tiny random ViT; no network.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from PIL import Image

import raw_isp
from raw_isp.isp.config import CAMERAS, ISPConfig
from raw_isp.isp.static import StaticISP
from raw_isp.models.pipelines import RawImageClassificationPipeline
from raw_isp.models.processor import RawISPImageProcessor

LABELS = ["BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC"]


def raws(n: int, h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    """Random uint16 mosaics ``(n, h, w)`` that use most of the 16-bit range."""
    return np.random.default_rng(seed).integers(0, 65536, size=(n, h, w), dtype=np.uint16)


@pytest.fixture
def proc() -> RawISPImageProcessor:
    return RawISPImageProcessor(size={"height": 8, "width": 8})


@pytest.fixture(scope="module")
def tiny_vit() -> transformers.ViTForImageClassification:
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    return transformers.ViTForImageClassification(config).eval()


# ------------------------------------------------------------------------------ outputs


def test_output_shape_and_dtype(proc):
    out = proc(raws(3))
    assert isinstance(out, transformers.BatchFeature)
    assert list(out.keys()) == ["pixel_values"]
    assert out["pixel_values"].shape == (3, 3, 8, 8)
    assert out["pixel_values"].dtype == torch.float32
    assert proc(raws(1)[0])["pixel_values"].shape == (1, 3, 8, 8)  # a single (H, W) raw
    assert RawISPImageProcessor.model_input_names == ["pixel_values"]


def test_pixel_values_are_isp_then_resize_then_normalise():
    proc = RawISPImageProcessor(
        isp="ma_u_me", camera="drone", size=(8, 12), image_mean=[0.2, 0.3, 0.4], image_std=[0.5, 0.25, 2.0]
    )
    x = raws(2, 16, 24)
    developed = StaticISP("ma_u_me", camera="drone")(torch.from_numpy(x.astype(np.float32) / np.float32(65535)))
    rgb = developed
    rgb = F.interpolate(rgb, size=(8, 12), mode="bilinear", align_corners=False, antialias=True)
    expected = (rgb - torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1)) / torch.tensor([0.5, 0.25, 2.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(proc(x)["pixel_values"], expected, rtol=0, atol=1e-6)
    # Without resize and normalisation the ISP output itself comes back, in [0, 1].
    plain = proc(x, do_resize=False, do_normalize=False)["pixel_values"]
    torch.testing.assert_close(plain, developed, rtol=0, atol=0)
    assert plain.min() >= 0 and plain.max() <= 1


def test_batch_of_64_equals_per_image_results(proc):
    x = raws(64, seed=1)
    batch = proc(x)["pixel_values"]
    single = torch.cat([proc(frame)["pixel_values"] for frame in x])
    torch.testing.assert_close(batch, single, rtol=0, atol=1e-6)
    # A list of (H, W) arrays is the same batch.
    torch.testing.assert_close(proc(list(x))["pixel_values"], batch, rtol=0, atol=0)


def test_isp_runs_once_per_call_on_the_whole_batch(proc, monkeypatch):
    calls = []
    isp = proc.get_isp()
    real_forward = type(isp).forward

    def counting_forward(self, raw):
        calls.append(tuple(raw.shape))
        return real_forward(self, raw)

    monkeypatch.setattr(type(isp), "forward", counting_forward)
    proc([frame for frame in raws(5)])
    assert calls == [(5, 16, 16)]


def test_list_of_paths(tmp_path, proc):
    x = raws(3, seed=2)
    paths = []
    for i, frame in enumerate(x):
        raw_isp.write_raw(tmp_path / f"raw{i}.tif", frame)
        paths.append(str(tmp_path / f"raw{i}.tif"))
    from_paths = proc(paths)["pixel_values"]
    torch.testing.assert_close(from_paths, proc(x)["pixel_values"], rtol=0, atol=0)
    # pathlib paths and a single path work too.
    torch.testing.assert_close(proc([tmp_path / "raw1.tif"])["pixel_values"], from_paths[1:2], rtol=0, atol=0)
    torch.testing.assert_close(proc(paths[2])["pixel_values"], from_paths[2:3], rtol=0, atol=0)


def test_uint16_and_normalised_float_inputs_agree(proc):
    x = raws(4, seed=3)
    ref = proc(x, do_normalize=False, do_resize=False)["pixel_values"]
    for same in (
        raw_isp.normalize_raw(x),  # float32 raw / 65535
        x.astype(np.float64) / 65535.0,
        torch.from_numpy(x.astype(np.float32) / np.float32(65535)),
        torch.from_numpy(x.astype(np.int32)),  # any integer dtype is divided by raw_scale
        [Image.fromarray(frame) for frame in x],  # PIL mode "I;16"
    ):
        torch.testing.assert_close(proc(same, do_normalize=False, do_resize=False)["pixel_values"], ref, rtol=0, atol=0)
    # A mixed list: integer items are scaled, float items taken as they are.
    mixed = [x[0], raw_isp.normalize_raw(x[1]), x[2], raw_isp.normalize_raw(x[3])]
    torch.testing.assert_close(proc(mixed, do_normalize=False, do_resize=False)["pixel_values"], ref, rtol=0, atol=0)


def test_raw_scale_for_12_bit_data():
    x12 = (raws(2, seed=4) >> 4).astype(np.uint16)  # 0..4095
    proc12 = RawISPImageProcessor(raw_scale=4095, do_resize=False)
    expected = RawISPImageProcessor(do_resize=False)(x12.astype(np.float32) / np.float32(4095))["pixel_values"]
    torch.testing.assert_close(proc12(x12)["pixel_values"], expected, rtol=0, atol=0)


def test_return_tensors_none_and_np_give_numpy_like_vit(proc):
    x = raws(3)
    masks = np.random.default_rng(1).integers(0, 3, (3, 16, 16)).astype(np.uint8)
    stacked = proc(x, masks)  # the default, "pt"
    assert isinstance(stacked["pixel_values"], torch.Tensor) and isinstance(stacked["labels"], torch.Tensor)
    # None: a list with one numpy array per image, as transformers' ViTImageProcessor returns.
    listed = proc(x, masks, return_tensors=None)
    assert isinstance(listed["pixel_values"], list) and len(listed["pixel_values"]) == 3
    assert isinstance(listed["labels"], list) and len(listed["labels"]) == 3
    for i in range(3):
        assert isinstance(listed["pixel_values"][i], np.ndarray) and listed["pixel_values"][i].dtype == np.float32
        assert listed["pixel_values"][i].shape == (3, 8, 8)
        assert listed["labels"][i].dtype == np.int64 and listed["labels"][i].shape == (8, 8)
        np.testing.assert_array_equal(listed["pixel_values"][i], stacked["pixel_values"][i].numpy())
        np.testing.assert_array_equal(listed["labels"][i], stacked["labels"][i].numpy())
    # "np" (and transformers.TensorType.NUMPY): stacked numpy arrays.
    for rt in ("np", transformers.TensorType.NUMPY):
        as_np = proc(x, masks, return_tensors=rt)
        assert isinstance(as_np["pixel_values"], np.ndarray) and as_np["pixel_values"].shape == (3, 3, 8, 8)
        np.testing.assert_array_equal(as_np["pixel_values"], stacked["pixel_values"].numpy())
        np.testing.assert_array_equal(as_np["labels"], stacked["labels"].numpy())
    assert isinstance(proc(x, return_tensors=transformers.TensorType.PYTORCH)["pixel_values"], torch.Tensor)
    # Side by side with ViT (its numpy backend): the same container types for each return_tensors.
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    rgb = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for rt in (None, "np", "pt"):
        ours = proc(x[:2], return_tensors=rt)["pixel_values"]
        theirs = ViTImageProcessorPil(size={"height": 8, "width": 8})([rgb, rgb], return_tensors=rt)["pixel_values"]
        assert type(ours) is type(theirs) and type(ours[0]) is type(theirs[0]), rt


def test_8_bit_raw_mosaic_with_raw_scale_255():
    x8 = raws(2, seed=11).astype(np.uint8)
    proc8 = RawISPImageProcessor(raw_scale=255, do_resize=False)
    expected = RawISPImageProcessor(do_resize=False)(x8.astype(np.float32) / np.float32(255))["pixel_values"]
    torch.testing.assert_close(proc8(x8)["pixel_values"], expected, rtol=0, atol=0)
    # Per call, and from a PIL "L" image, too.
    plain = RawISPImageProcessor(do_resize=False)
    torch.testing.assert_close(plain(list(x8), raw_scale=255)["pixel_values"], expected, rtol=0, atol=0)
    torch.testing.assert_close(
        plain([Image.fromarray(f) for f in x8], raw_scale=255)["pixel_values"], expected, rtol=0, atol=0
    )


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest", "area"])
def test_resize_modes(mode):
    proc = RawISPImageProcessor(size=(6, 10), resize_mode=mode, do_normalize=False)
    out = proc(raws(2, 12, 20))["pixel_values"]
    assert out.shape == (2, 3, 6, 10)
    assert out.min() >= 0 and out.max() <= 1  # bicubic overshoot is clipped
    if mode == "area":  # an exact 2x box filter
        full = proc(raws(2, 12, 20), do_resize=False)["pixel_values"]
        torch.testing.assert_close(out, F.avg_pool2d(full, 2), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------- overrides


def test_options_override_per_call_and_defaults_stay(proc):
    x = raws(2, seed=5)
    before = proc.to_dict()
    default = proc(x)["pixel_values"]
    assert proc(x, size={"height": 4, "width": 6})["pixel_values"].shape == (2, 3, 4, 6)
    assert proc(x, size=12)["pixel_values"].shape == (2, 3, 12, 12)
    other_isp = proc(x, isp="me_u_me")["pixel_values"]
    other_cam = proc(x, camera="microscopy")["pixel_values"]
    assert (other_isp - default).abs().max() > 1e-3
    assert (other_cam - default).abs().max() > 1e-3
    fresh = RawISPImageProcessor(isp="me_u_me", size=8)(x)["pixel_values"]
    torch.testing.assert_close(proc(x, isp="me_u_me")["pixel_values"], fresh, rtol=0, atol=0)
    unnormalised = proc(x, do_normalize=False)["pixel_values"]
    torch.testing.assert_close(unnormalised * 2 - 1, default, rtol=0, atol=1e-6)  # mean 0.5, std 0.5
    torch.testing.assert_close(proc(x, image_mean=0.0, image_std=1.0)["pixel_values"], unnormalised, rtol=0, atol=0)
    assert proc(x, do_resize=False)["pixel_values"].shape == (2, 3, 16, 16)
    # Nothing above changed the stored settings.
    assert proc.to_dict() == before
    torch.testing.assert_close(proc(x)["pixel_values"], default, rtol=0, atol=0)


def test_isp_and_camera_as_dicts_match_names():
    x = raws(2, seed=6)
    by_name = RawISPImageProcessor(isp="bi_s_ga", camera="drone", size=8)(x)["pixel_values"]
    cam = CAMERAS["drone"].to_dict()
    cam.pop("name")
    by_dict = RawISPImageProcessor(isp=ISPConfig.from_variant("bi_s_ga").to_dict(), camera=cam, size=8)(x)["pixel_values"]
    torch.testing.assert_close(by_dict, by_name, rtol=0, atol=0)
    by_objects = RawISPImageProcessor(isp=ISPConfig.from_variant("bi_s_ga"), camera=CAMERAS["drone"], size=8)
    assert by_objects.isp == ISPConfig.from_variant("bi_s_ga").to_dict()  # stored as JSON values
    json.dumps(by_objects.to_dict())


def test_static_isp_is_built_once_per_config_camera_device(monkeypatch):
    import raw_isp.models.isp_cache as cache_module

    built = []

    class CountingISP(StaticISP):
        def __init__(self, *args, **kwargs):
            built.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(cache_module, "StaticISP", CountingISP)
    cache_module._cached_isp.cache_clear()
    try:
        proc = RawISPImageProcessor(isp={"demosaic": "bilinear", "gamma": 2.4}, size=8)
        x = raws(2)
        for _ in range(3):
            proc(x)
        assert len(built) == 1
        assert proc.get_isp() is proc.get_isp()
        copy.deepcopy(proc)(x)  # copies share the cache
        assert len(built) == 1
        proc(x, camera="drone")
        assert len(built) == 2
    finally:
        cache_module._cached_isp.cache_clear()


def test_pickle_and_deepcopy_keep_settings(proc):
    for clone in (pickle.loads(pickle.dumps(proc)), copy.deepcopy(proc)):
        assert type(clone) is RawISPImageProcessor
        assert clone.to_dict() == proc.to_dict()


# -------------------------------------------------------------------- saving and loading


def _custom_processor() -> RawISPImageProcessor:
    return RawISPImageProcessor(
        isp={"demosaic": "malvar2004", "sharpening": "unsharp_masking", "denoising": "median", "gamma": 2.0},
        camera={"black_level": [0.01] * 4, "white_balance": [1.5, 1.0, 1.2], "colour_matrix": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        raw_scale=65535,
        size={"height": 8, "width": 12},
        resize_mode="area",
        image_mean=[0.91, 0.84, 0.94],
        image_std=[0.08, 0.12, 0.05],
    )


def test_save_and_load_round_trip(tmp_path):
    proc = _custom_processor()
    files = proc.save_pretrained(tmp_path)
    assert {os.path.basename(f) for f in files} == {
        "preprocessor_config.json", "image_processing_raw_isp.py", "video_preprocessor_config.json"
    }  # fmt: skip
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "RawISPImageProcessor"
    assert saved["size"] == {"height": 8, "width": 12} and saved["resize_mode"] == "area"
    assert saved["isp"]["demosaic"] == "malvar2004" and saved["camera"]["white_balance"] == [1.5, 1.0, 1.2]

    x = raws(2, 16, 24, seed=7)
    expected = proc(x)["pixel_values"]
    for loaded in (
        RawISPImageProcessor.from_pretrained(tmp_path),
        transformers.AutoImageProcessor.from_pretrained(tmp_path),
        transformers.AutoImageProcessor.from_pretrained(str(tmp_path), local_files_only=True),
    ):
        assert type(loaded) is RawISPImageProcessor
        assert loaded.to_dict() == proc.to_dict()
        torch.testing.assert_close(loaded(x)["pixel_values"], expected, rtol=0, atol=0)


def test_unknown_saved_settings_are_ignored_with_a_warning(tmp_path):
    """Forward compatibility: a config written by a newer version (an extra key) still loads."""
    proc = _custom_processor()
    proc.save_pretrained(tmp_path)
    config_file = tmp_path / "preprocessor_config.json"
    saved = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**saved, "sharpen_amount": 0.3, "future_option": {"a": 1}}))
    x = raws(2, 16, 24, seed=12)
    for load in (RawISPImageProcessor.from_pretrained, transformers.AutoImageProcessor.from_pretrained):
        with pytest.warns(UserWarning, match=r"ignoring saved settings .*\['future_option', 'sharpen_amount'\]"):
            loaded = load(tmp_path)
        assert type(loaded) is RawISPImageProcessor and loaded.to_dict() == proc.to_dict()
        torch.testing.assert_close(loaded(x)["pixel_values"], proc(x)["pixel_values"], rtol=0, atol=0)
    with pytest.warns(UserWarning, match="ignoring saved settings"):
        RawISPImageProcessor.from_dict({**saved, "future_option": 1})
    # Known keys keep being validated, and the constructor still rejects a misspelt setting.
    config_file.write_text(json.dumps({**saved, "resize_mode": "lanczos"}))
    with pytest.raises(ValueError, match="resize_mode: unknown mode 'lanczos'"):
        RawISPImageProcessor.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match=r"unknown settings \['sharpen_amount'\]"):
        RawISPImageProcessor(sharpen_amount=0.3)


def test_video_note_is_ours_and_leaves_other_files_alone(tmp_path):
    proc = RawISPImageProcessor(size=8)
    proc.save_pretrained(tmp_path)
    note = json.loads((tmp_path / "video_preprocessor_config.json").read_text())
    assert list(note) == ["raw_isp_note"] and "AutoVideoProcessor" in note["raw_isp_note"]
    proc.save_pretrained(tmp_path)  # saving again rewrites our own note
    assert json.loads((tmp_path / "video_preprocessor_config.json").read_text()) == note
    other = tmp_path / "other"
    other.mkdir()
    (other / "video_preprocessor_config.json").write_text('{"video_processor_type": "SomeVideoProcessor"}')
    files = proc.save_pretrained(other)
    assert (other / "video_preprocessor_config.json").read_text() == '{"video_processor_type": "SomeVideoProcessor"}'
    assert not any(f.endswith("video_preprocessor_config.json") for f in files)
    assert not list(tmp_path.rglob("*.tmp*"))


def test_from_pretrained_keyword_overrides(tmp_path):
    RawISPImageProcessor(size=8).save_pretrained(tmp_path)
    loaded = transformers.AutoImageProcessor.from_pretrained(tmp_path, size={"height": 4, "width": 4}, isp="me_s_ga")
    assert loaded.size == {"height": 4, "width": 4} and loaded.isp == "me_s_ga"
    assert RawISPImageProcessor.from_pretrained(tmp_path).size == {"height": 8, "width": 8}


def test_auto_image_processor_in_a_fresh_process(tmp_path):
    """Without ``raw_isp.models`` loaded (nothing of raw_isp, or ``import raw_isp`` alone, which
    loads no transformers) the folder needs trust_remote_code: the saved shim imports the
    installed package, and the loaded class is then the package's own, registered from then on."""
    proc = _custom_processor()
    proc.save_pretrained(tmp_path / "proc")
    script = textwrap.dedent(
        """
        import json, sys
        import transformers
        folder = sys.argv[1]

        def plain_load():
            try:
                transformers.AutoImageProcessor.from_pretrained(folder)
                return "loaded-without-trust"
            except ValueError as e:
                return "needs-trust" if "trust_remote_code=True" in str(e) else "other-error: " + str(e)

        print("RESULT", plain_load())
        print("RESULT","raw_isp-imported-before", "raw_isp" in sys.modules)
        import raw_isp
        print("RESULT", "after import raw_isp:", plain_load(), "raw_isp.models" in sys.modules)
        loaded = transformers.AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
        print("RESULT","same-class", type(loaded) is raw_isp.RawISPImageProcessor)
        print("RESULT", "after the shim:", plain_load())
        print("RESULT",json.dumps(loaded.to_dict(), sort_keys=True))
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TRANSFORMERS_VERBOSITY="error")
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "proc")],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split("RESULT ", 1)[1] for line in result.stdout.splitlines() if "RESULT " in line]
    assert lines[:5] == [
        "needs-trust", "raw_isp-imported-before False", "after import raw_isp: needs-trust False", "same-class True",
        "after the shim: loaded-without-trust",
    ]  # fmt: skip
    assert json.loads(lines[5]) == proc.to_dict()


# ---------------------------------------------------------------------- segmentation


def test_segmentation_maps_become_nearest_resized_labels():
    proc = RawISPImageProcessor(size=8)
    blocks = np.random.default_rng(8).integers(0, 5, size=(3, 8, 8))
    masks = np.kron(blocks, np.ones((2, 2), dtype=np.int64)).astype(np.uint8)  # (3, 16, 16), 2x2 blocks
    out = proc(raws(3), segmentation_maps=masks)
    assert out["labels"].dtype == torch.int64 and out["labels"].shape == (3, 8, 8)
    torch.testing.assert_close(out["labels"], torch.from_numpy(blocks), rtol=0, atol=0)
    # As a list of tensors, and without resizing: unchanged values.
    same = proc(list(raws(3)), [torch.from_numpy(m) for m in masks], do_resize=False)["labels"]
    torch.testing.assert_close(same, torch.from_numpy(masks.astype(np.int64)), rtol=0, atol=0)
    # Upsampling keeps the label set.
    up = proc(raws(3), masks, size=24)["labels"]
    assert up.shape == (3, 24, 24) and set(up.unique().tolist()) <= set(np.unique(masks).tolist())


def test_post_process_semantic_segmentation(proc):
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 8, 8)
    maps = proc.post_process_semantic_segmentation(transformers.modeling_outputs.SemanticSegmenterOutput(logits=logits))
    assert len(maps) == 2 and all(m.shape == (8, 8) and m.dtype == torch.int64 for m in maps)
    torch.testing.assert_close(torch.stack(maps), logits.argmax(1), rtol=0, atol=0)

    sized = proc.post_process_semantic_segmentation({"logits": logits}, target_sizes=[(16, 20), (5, 7)])
    assert [tuple(m.shape) for m in sized] == [(16, 20), (5, 7)]
    for m, (h, w), lg in zip(sized, [(16, 20), (5, 7)], logits):
        ref = F.interpolate(lg[None], size=(h, w), mode="bilinear", align_corners=False)[0].argmax(0)
        torch.testing.assert_close(m, ref, rtol=0, atol=0)
    same = proc.post_process_semantic_segmentation(logits, target_sizes=torch.tensor([[16, 16], [16, 16]]))
    assert all(m.shape == (16, 16) for m in same)

    # Known answer: class 2 wins on the left half, class 1 on the right; upsampling keeps that.
    known = torch.zeros(1, 3, 4, 4)
    known[0, 2, :, :2] = 5.0
    known[0, 1, :, 2:] = 5.0
    (m,) = proc.post_process_semantic_segmentation(known, target_sizes=[(8, 8)])
    assert (m[:, :3] == 2).all() and (m[:, 5:] == 1).all()

    with pytest.raises(ValueError, match="target_sizes: got 1 sizes for a batch of 2"):
        proc.post_process_semantic_segmentation(logits, target_sizes=[(8, 8)])
    with pytest.raises(ValueError, match=r"logits must be a tensor \(B, C, h, w\)"):
        proc.post_process_semantic_segmentation(logits[0])


# ----------------------------------------------------------------------------- pipeline


def _write_tiff(tmp_path, seed=9):
    raw = raws(1, 64, 64, seed=seed)[0]
    path = tmp_path / "cell.tif"
    raw_isp.write_raw(path, raw)
    return raw, str(path)


def _expected_top(model, proc, raw, k):
    with torch.no_grad():
        probs = model(**proc(raw)).logits.softmax(-1)[0]
    top = probs.topk(k)
    return [LABELS[i] for i in top.indices.tolist()], top.values.tolist()


def test_image_classification_pipeline_on_raw_tiff_path(tmp_path, tiny_vit):
    raw, path = _write_tiff(tmp_path)
    proc = RawISPImageProcessor(size={"height": 32, "width": 32})
    pipe = transformers.pipeline(
        "image-classification", model=tiny_vit, image_processor=proc, pipeline_class=RawImageClassificationPipeline
    )
    result = pipe(path, top_k=3)
    labels, scores = _expected_top(tiny_vit, proc, raw, 3)
    assert [r["label"] for r in result] == labels
    assert set(labels) <= set(tiny_vit.config.id2label.values())
    np.testing.assert_allclose([r["score"] for r in result], scores, rtol=0, atol=1e-5)
    # The task name registered by raw_isp gives the same pipeline, and takes lists of paths.
    pipe2 = transformers.pipeline("raw-image-classification", model=tiny_vit, image_processor=proc)
    assert isinstance(pipe2, RawImageClassificationPipeline)
    assert pipe2([path, path], top_k=3) == [result, result]
    # Saving the pipeline writes the model and the processor, not copies of raw_isp's code.
    pipe.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved").glob("*.py")) == ["image_processing_raw_isp.py"]
    assert "custom_pipelines" not in json.loads((tmp_path / "saved" / "config.json").read_text())
    reloaded = transformers.pipeline(
        "image-classification", model=str(tmp_path / "saved"), pipeline_class=RawImageClassificationPipeline
    )
    assert type(reloaded.image_processor) is RawISPImageProcessor
    assert reloaded(path, top_k=3) == result


def test_standard_pipeline_takes_the_raw_array_and_the_path(tmp_path, tiny_vit):
    raw, path = _write_tiff(tmp_path)
    proc = RawISPImageProcessor(size={"height": 32, "width": 32})
    pipe = transformers.pipeline("image-classification", model=tiny_vit, image_processor=proc)
    # Loading raw_isp.models makes the raw-aware subclass run the standard task.
    assert type(pipe) is RawImageClassificationPipeline and isinstance(pipe, transformers.ImageClassificationPipeline)
    result = pipe(raw_isp.read_raw(path), top_k=2)
    labels, scores = _expected_top(tiny_vit, proc, raw, 2)
    assert [r["label"] for r in result] == labels
    np.testing.assert_allclose([r["score"] for r in result], scores, rtol=0, atol=1e-5)
    assert pipe(path, top_k=2) == result  # the path goes to the raw processor, not to PIL
    # The built-in class (pipeline_class=) decodes a path to 8-bit RGB; the processor says what to do.
    builtin = transformers.pipeline("image-classification", model=tiny_vit, image_processor=proc,
                                    pipeline_class=transformers.ImageClassificationPipeline)
    with pytest.raises(ValueError, match="RawImageClassificationPipeline"):
        builtin(path)


def test_standard_task_is_unchanged_for_other_image_processors(tiny_vit):
    vit_proc = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    pipe = transformers.pipeline("image-classification", model=tiny_vit, image_processor=vit_proc)
    builtin = transformers.pipeline("image-classification", model=tiny_vit, image_processor=vit_proc,
                                    pipeline_class=transformers.ImageClassificationPipeline)
    picture = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert pipe(picture, top_k=3) == builtin(picture, top_k=3)
    with pytest.raises(ValueError, match="intensity= needs a RawISPImageProcessor"):
        pipe(picture, intensity=0.5)


# ------------------------------------------------------------------------------- errors


def _odd():
    return np.zeros((15, 16), np.uint16)


@pytest.mark.parametrize(
    "kwargs, images, error, match",
    [
        ({"isp": "xx_s_ga"}, None, ValueError, "isp: unknown ISP variant 'xx_s_ga'"),
        ({"isp": {"demosaic": "nope"}}, None, ValueError, "isp: invalid ISP configuration"),
        ({"isp": 3}, None, TypeError, "isp: "),
        ({"camera": "phone"}, None, ValueError, "camera: unknown camera 'phone'"),
        ({"camera": {"white_balance": [1, 2]}}, None, ValueError, "camera: invalid camera preset"),
        ({"size": {"h": 4, "w": 4}}, None, ValueError, "size must be a dict with exactly the keys 'height' and 'width'"),
        ({"size": 0}, None, ValueError, "size: height must be a positive integer"),
        ({"size": "big"}, None, ValueError, "size must be an int"),
        ({"resize_mode": "lanczos"}, None, ValueError, "resize_mode: unknown mode 'lanczos'"),
        ({"image_std": [1.0, 0.0, 1.0]}, None, ValueError, "image_std must hold positive finite numbers"),
        ({"image_mean": [0.5, 0.5]}, None, ValueError, "image_mean must be a number or 3 numbers"),
        ({"raw_scale": -1}, None, ValueError, "raw_scale must be a positive finite number"),
        ({"do_resize": "yes"}, None, TypeError, "do_resize must be True or False"),
        ({"return_tensors": "tf"}, None, ValueError, "return_tensors must be 'pt', 'np' or None, got 'tf'"),
        ({"device": "nodevice"}, None, ValueError, "device: 'nodevice' is not a torch device"),
        ({}, np.zeros((16, 16, 3), np.uint8), ValueError, r"channels-last RGB\(A\) image"),
        ({}, [np.zeros((16, 16, 3), np.uint8)], ValueError, r"images\[0\]: shape \(16, 16, 3\) looks like"),
        ({}, _odd(), ValueError, r"images: size 15x16 \(HxW\) is odd"),
        ({}, [np.zeros((16, 16), np.uint16), np.zeros((16, 8), np.uint16)], ValueError, r"same shape, got \(16, 16\) at images\[0\] and \(16, 8\) at images\[1\]"),
        ({}, np.zeros((1, 2, 16, 16), np.uint16), ValueError, r"expected a raw mosaic of shape \(H, W\) or a batch \(B, H, W\)"),
        ({}, np.full((2, 16, 16), -0.5, np.float32), ValueError, r"images\[0\]: raw values must be non-negative, found minimum -0.5"),
        ({}, np.full((16, 16), -3, np.int32), ValueError, "raw values must be non-negative, found minimum -3"),
        ({"raw_scale": 4095}, np.full((16, 16), 5000, np.uint16), ValueError, r"integer raw values exceed raw_scale=4095 \(maximum 5000\)"),
        ({}, np.full((16, 16), 4095.0, np.float32), ValueError, r"taken as normalised to \[0, 1\], but the maximum is 4095"),
        ({}, np.full((16, 16), np.nan, np.float32), ValueError, "contains NaN or infinite values"),
        ({}, np.zeros((16, 16), bool), TypeError, "raw values must be integer or floating point, got dtype bool"),
        ({}, {"image": 1}, TypeError, "images: expected a raw mosaic"),
        ({}, [], ValueError, "images: got an empty list"),
        ({}, "http://localhost/raw.tif", ValueError, "URLs are not read"),
        ({}, Image.new("RGB", (16, 16)), ValueError, "got a PIL image in mode 'RGB'"),
        ({}, Image.new("1", (16, 16)), ValueError, "got a PIL image in mode '1'"),
        # 8-bit data: a developed picture, not a raw frame, unless raw_scale says so.
        ({}, np.full((2, 16, 16), 122, np.uint8), ValueError, r"images: 8-bit data \(dtype uint8\).* raw_scale=255"),
        ({}, Image.new("L", (16, 16), 122), ValueError, r"images\[0\]: 8-bit data \(dtype uint8\).*mode 'L'"),
        ({}, [raws(1)[0], np.zeros((16, 16), np.uint8)], ValueError, r"images\[1\]: 8-bit data"),
        ({}, torch.zeros(16, 16, dtype=torch.uint8), ValueError, r"8-bit data \(dtype uint8\)"),
        ({}, np.zeros((16, 16), np.int8), ValueError, r"8-bit data \(dtype int8\)"),
        ({"raw_scale": 4095}, np.zeros((16, 16), np.uint8), ValueError, r"up to raw_scale=4095"),
    ],
)
def test_bad_arguments_and_inputs_raise_clear_errors(proc, kwargs, images, error, match):
    with pytest.raises(error, match=match):
        proc(raws(1)[0] if images is None else images, **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"isp": "ma_x_ga"}, ValueError, "isp: unknown ISP variant"),
        ({"camera": "phone"}, ValueError, "camera: unknown camera"),
        ({"size": (4, -4)}, ValueError, "size: width must be a positive integer"),
        ({"colour": "red"}, TypeError, r"unknown settings \['colour'\]"),
    ],
)
def test_bad_constructor_settings_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        RawISPImageProcessor(**kwargs)


def test_file_errors_name_the_file(tmp_path, proc):
    with pytest.raises(raw_isp.RawFileError, match="missing.tif: no such file"):
        proc(str(tmp_path / "missing.tif"))
    raw = raws(1)[0]
    raw_isp.write_dng(tmp_path / "bggr.dng", raw, pattern="BGGR")
    with pytest.raises(ValueError, match="bggr.dng: the file declares CFA pattern BGGR but the ISP is set up for RGGB"):
        proc([str(tmp_path / "bggr.dng")])
    out = proc(str(tmp_path / "bggr.dng"), isp={"pattern": "BGGR"})["pixel_values"]
    torch.testing.assert_close(out, proc(raw, isp={"pattern": "BGGR"})["pixel_values"], rtol=0, atol=0)


def test_bad_segmentation_maps(proc):
    x = raws(2)
    with pytest.raises(ValueError, match="segmentation_maps: got 1 maps for 2 images"):
        proc(x, np.zeros((1, 16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"segmentation_maps: maps of size \(8, 8\) do not match .* \(16, 16\)"):
        proc(x, np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(TypeError, match="segmentation_maps: masks must hold integer class ids"):
        proc(x, np.zeros((2, 16, 16), np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(proc):
    x = raws(4, 32, 32, seed=10)
    cpu = proc(x)["pixel_values"]
    gpu = proc(x, device="cuda")["pixel_values"]
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-5)
    assert proc(torch.from_numpy(x).to(torch.int32).cuda())["pixel_values"].device.type == "cuda"
