"""A folder trained with the scripts' defaults (``--exposure metadata``) works where HF users reach
for it, without ``intensity=``: ``processor(frame)``, ``model(**processor(path))``, the standard and
the raw pipelines, on frames written with their intensity ratio (1.0 and a dim 0.05). The ratio
travels in the file (``write_raw(..., intensity=)``); a frame without one is developed as the
processor's ``default_intensity`` (the training reference, 1.0), with one warning."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

import raw_isp
from raw_isp.models.processor import RawISPImageProcessor
from raw_isp.training.cli import main as train_main

RATIOS = (1.0, 0.05)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("default_folder")
    argv = ["--output_dir", str(out), "--cache_dir", str(tmp_path_factory.mktemp("hf_cache")), "--num_examples", "30",
            "--model_name_or_path", "vit-micro", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size",
            "6", "--max_train_steps", "2", "--augment", "none", "--logging_steps", "1"]  # fmt: skip
    assert train_main("classification", argv) == 0
    return out


@pytest.fixture(scope="module")
def frames(folder, tmp_path_factory):
    """ratio -> (path of the file written with that intensity, the plain uint16 array)."""
    where = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    full = (rng.random((256, 256)) * 20000 + 9000).astype(np.uint16)
    out = {}
    for ratio in RATIOS:
        raw = raw_isp.SENSORS["microscopy"].scale_intensity(full, ratio, seed=1)
        path = where / f"frame_{ratio}.tiff"
        raw_isp.write_raw(path, raw, intensity=ratio)
        out[ratio] = (path, np.asarray(raw))
    return out


def test_the_default_folder_uses_metadata_exposure_and_saves_the_default_intensity(folder):
    saved = json.loads((Path(folder) / "preprocessor_config.json").read_text())
    assert saved["exposure"] == "metadata" and saved["default_intensity"] == 1.0
    results = json.loads((Path(folder) / "all_results.json").read_text())
    # The transformers examples' training figures.
    assert results["train_loss"] > 0 and results["train_runtime"] > 0 and results["train_samples_per_second"] > 0
    history = [h for h in json.loads((Path(folder) / "train_history.json").read_text()) if "train_loss" in h]
    assert results["train_loss"] == pytest.approx(sum(h["train_loss"] for h in history) / len(history))  # 1 step each


def test_processor_on_the_frame_develops_with_its_own_intensity(folder, frames):
    proc = transformers.AutoImageProcessor.from_pretrained(folder)
    views = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # frames that carry their ratio need no default, so no warning
        for ratio, (path, raw) in frames.items():
            frame = raw_isp.read_raw(path)
            assert frame.intensity == ratio
            expected = proc(raw, intensity=ratio).pixel_values
            torch.testing.assert_close(proc(frame).pixel_values, expected, rtol=0, atol=0)
            torch.testing.assert_close(proc(str(path)).pixel_values, expected, rtol=0, atol=0)
            views[ratio] = expected
    # The correct view: the dim frame brought back to the full-light one (noise aside), which the
    # same pixels developed as intensity 1.0 are not.
    with pytest.warns(UserWarning, match="default_intensity"):
        as_full = proc(frames[0.05][1]).pixel_values
    right = (views[0.05] - views[1.0]).abs().mean()
    wrong = (as_full - views[1.0]).abs().mean()
    assert right < 0.25 * wrong, (float(right), float(wrong))


def test_a_plain_array_is_developed_as_the_default_intensity_with_one_warning(folder, frames):
    proc = transformers.AutoImageProcessor.from_pretrained(folder)
    raw = frames[1.0][1]
    with pytest.warns(UserWarning, match=r"default_intensity, the training reference") as record:
        first = proc(raw).pixel_values
        second = proc(raw).pixel_values
    assert len([w for w in record if "default_intensity" in str(w.message)]) == 1
    torch.testing.assert_close(first, proc(raw, intensity=1.0).pixel_values, rtol=0, atol=0)
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    # An explicit intensity= overrides the file's.
    path = frames[0.05][0]
    torch.testing.assert_close(proc(str(path), intensity=0.5).pixel_values,
                               proc(frames[0.05][1], intensity=0.5).pixel_values, rtol=0, atol=0)


def test_model_processor_and_both_pipelines_without_intensity(folder, frames):
    proc = transformers.AutoImageProcessor.from_pretrained(folder)
    model = transformers.AutoModelForImageClassification.from_pretrained(folder).eval()
    standard = transformers.pipeline("image-classification", model=str(folder))
    raw_pipe = transformers.pipeline("raw-image-classification", model=str(folder))
    labels = model.config.id2label
    for ratio, (path, raw) in frames.items():
        with torch.no_grad():
            expected = model(**proc(raw, intensity=ratio)).logits.softmax(-1)[0]
            got = model(**proc(str(path))).logits.softmax(-1)[0]  # the README's reloading snippet
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        top = {"label": labels[int(expected.argmax())], "score": pytest.approx(float(expected.max()), abs=1e-5)}
        assert standard(raw_isp.read_raw(path), top_k=1) == [top], ratio
        assert standard(str(path), top_k=1) == [top], ratio
        assert raw_pipe(str(path), top_k=1) == [top], ratio
        # intensity= is taken (no TypeError from _sanitize_parameters), at call and at construction.
        assert standard(raw, intensity=ratio, top_k=1) == [top], ratio
    fixed = transformers.pipeline("image-classification", model=str(folder), intensity=0.05)
    assert fixed(frames[0.05][1], top_k=1) == standard(str(frames[0.05][0]), top_k=1)
