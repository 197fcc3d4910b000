"""Pipelines built from a saved folder (tiny random ViT + RawISPImageProcessor) never ask
"Do you wish to run the custom code? [y/N]".

Each check runs in a fresh interpreter, because what is asked depends on what the process has
imported: after ``import raw_isp.models`` (the registration with transformers) both
``pipeline("image-classification")`` and ``pipeline("raw-image-classification")`` load the
folder without a prompt (with and without ``image_processor=``); a process that never imports
raw_isp loads it with ``trust_remote_code=True``. ``builtins.input`` is replaced by a function that records the
prompt and refuses, so any question fails the test (transformers would otherwise swallow the
refusal: the video processor it asks about is optional).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import transformers

import raw_isp
from raw_isp.models.processor import RawISPImageProcessor

LABELS = ["BAS", "EOS", "KSC"]

_PRELUDE = """
import builtins, json, sys
asked = []

def refuse(prompt=""):
    asked.append(str(prompt))
    raise EOFError("input() is not allowed in this test")

builtins.input = refuse
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A trained-model folder as ``save_pretrained`` writes it: tiny ViT + processor."""
    out = tmp_path_factory.mktemp("trained")
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.ViTForImageClassification(config).save_pretrained(out)
    RawISPImageProcessor(size=32, camera="microscopy").save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("raw") / "cell.tif"
    raw_isp.write_raw(path, np.random.default_rng(3).integers(0, 65536, (32, 32), dtype=np.uint16))
    return path


def expected_top(folder, raw_file):
    model = transformers.AutoModelForImageClassification.from_pretrained(folder).eval()
    proc = RawISPImageProcessor.from_pretrained(folder)
    with torch.no_grad():
        probs = model(**proc(raw_isp.read_raw(raw_file))).logits.softmax(-1)[0]
    return LABELS[int(probs.argmax())], float(probs.max())


def run(script: str, *args: str, tmp_path) -> dict:
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TRANSFORMERS_VERBOSITY="error",
        TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PRELUDE) + textwrap.dedent(script), *args],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(lines[0][len("RESULT ") :])


AFTER_IMPORT = """
import raw_isp.models  # the only thing the user did before: it registers with transformers
import transformers

folder, raw_path = sys.argv[1], sys.argv[2]
results = {}
for task in ("image-classification", "raw-image-classification"):
    for name, extra in (("plain", {}), ("with_image_processor", {"image_processor": folder})):
        pipe = transformers.pipeline(task, model=folder, **extra)
        # The standard pipeline takes the raw array; the raw one also takes the file path.
        inp = raw_path if task == "raw-image-classification" else raw_isp.read_raw(raw_path)
        (top,) = pipe(inp, top_k=1)
        results[f"{task}/{name}"] = {
            "asked": list(asked), "pipeline": type(pipe).__name__, "processor": type(pipe.image_processor).__name__,
            "video_processor": type(getattr(pipe, "video_processor", None)).__name__,
            "label": top["label"], "score": top["score"],
        }
        asked.clear()
print("RESULT", json.dumps(results))
"""


def test_no_prompt_after_import_raw_isp_models(folder, raw_file, tmp_path):
    results = run(AFTER_IMPORT, str(folder), str(raw_file), tmp_path=tmp_path)
    label, score = expected_top(folder, raw_file)
    assert set(results) == {
        f"{task}/{name}"
        for task in ("image-classification", "raw-image-classification")
        for name in ("plain", "with_image_processor")
    }
    for key, got in results.items():
        assert got["asked"] == [], (key, got["asked"])
        assert got["processor"] == "RawISPImageProcessor", key
        assert got["video_processor"] == "NoneType", key
        assert got["label"] == label and got["score"] == pytest.approx(score, abs=1e-5), key
    assert results["raw-image-classification/plain"]["pipeline"] == "RawImageClassificationPipeline"
    # raw_isp.models makes the raw-aware subclass run the standard task (it is the built-in one for other processors).
    assert results["image-classification/plain"]["pipeline"] == "RawImageClassificationPipeline"


STALE = """
import raw_isp.models
import transformers

folder = sys.argv[1]
results = {}
for name, task, extra in (
    ("built-in class", "image-classification", {"pipeline_class": transformers.ImageClassificationPipeline}),
    ("image-classification", "image-classification", {}),
    ("raw-image-classification", "raw-image-classification", {}),
):
    transformers.pipeline(task, model=folder, **extra)
    results[name] = len(asked)
    asked.clear()
print("RESULT", json.dumps(results))
"""


def test_the_video_note_is_what_prevents_the_prompt(folder, tmp_path):
    """Root cause, shown: without ``video_preprocessor_config.json`` (a folder saved before the
    fix) AutoVideoProcessor reads preprocessor_config.json, takes its auto_map for remote video
    code and asks; the raw pipeline class (which runs both tasks after ``import raw_isp.models``) never
    loads a video processor, so it does not ask."""
    stale = tmp_path / "stale"
    shutil.copytree(folder, stale)
    (stale / "video_preprocessor_config.json").unlink()
    assert run(STALE, str(stale), tmp_path=tmp_path) == {
        "built-in class": 1, "image-classification": 0, "raw-image-classification": 0}


WITHOUT_RAW_ISP = """
import transformers

folder, raw_path = sys.argv[1], sys.argv[2]
imported_before = "raw_isp" in sys.modules
pipe = transformers.pipeline("image-classification", model=folder, trust_remote_code=True)
import numpy as np, tifffile  # read the raw without the project's reader
(top,) = pipe(np.asarray(tifffile.imread(raw_path), dtype=np.uint16), top_k=1)
print("RESULT", json.dumps({
    "imported_before": imported_before, "asked": asked, "processor": type(pipe.image_processor).__module__
    + "." + type(pipe.image_processor).__name__, "label": top["label"], "score": top["score"],
}))
"""


def test_trust_remote_code_without_raw_isp(folder, raw_file, tmp_path):
    got = run(WITHOUT_RAW_ISP, str(folder), str(raw_file), tmp_path=tmp_path)
    label, score = expected_top(folder, raw_file)
    assert got["imported_before"] is False
    assert got["asked"] == []
    assert got["processor"] == "raw_isp.models.processor.RawISPImageProcessor"  # via the saved shim
    assert got["label"] == label and got["score"] == pytest.approx(score, abs=1e-5)


def test_raw_pipeline_passes_the_frames_intensity_to_a_metadata_exposure_processor(folder, raw_file, tmp_path):
    """``pipe(frame, intensity=r)`` develops with gain 1 / r, as the processor does; without
    ``intensity=`` (and no intensity in the file) the processor's default_intensity (1.0) is used
    with a warning, or, with default_intensity=None, its error says to pass it."""
    meta = tmp_path / "metadata"
    shutil.copytree(folder, meta)
    RawISPImageProcessor(size=32, camera="microscopy", exposure="metadata").save_pretrained(meta)
    pipe = transformers.pipeline("raw-image-classification", model=str(meta))
    model = transformers.AutoModelForImageClassification.from_pretrained(meta).eval()
    proc = RawISPImageProcessor.from_pretrained(meta)
    for ratio in (1.0, 0.05):
        with torch.no_grad():
            probs = model(**proc(raw_isp.read_raw(raw_file), intensity=ratio)).logits.softmax(-1)[0]
        (top,) = pipe(str(raw_file), intensity=ratio, top_k=1)
        assert top["label"] == LABELS[int(probs.argmax())] and top["score"] == pytest.approx(float(probs.max()), abs=1e-5)
        if ratio == 1.0:
            full = top
    with pytest.warns(UserWarning, match="default_intensity"):
        assert pipe(str(raw_file), top_k=1) == [full]
    RawISPImageProcessor(size=32, camera="microscopy", exposure="metadata", default_intensity=None).save_pretrained(meta)
    strict = transformers.pipeline("raw-image-classification", model=str(meta))
    with pytest.raises(ValueError, match="intensity"):
        strict(str(raw_file))
