"""The model card a training run writes (raw_isp.training.card, via write_outputs): metadata that
huggingface_hub reads back (model-index results equal to all_results.json, datasets, metrics,
licence, library, pipeline tag, tags) and examples that run as written against the folder."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import ModelCard

import raw_isp
from raw_isp.training import RawTrainingArguments, build_model, write_outputs

CASES = {
    "classification": dict(model_name_or_path="vit-micro", isp="static:ma_s_me", dataset="raw_microscopy",
                           source="synthetic"),
    "segmentation": dict(model_name_or_path="segformer-micro", isp="learned", dataset="raw_drone", source="synthetic"),
    # metadata exposure: the examples must pass the frame's intensity ratio to run
    "metadata": dict(model_name_or_path="vit-micro", isp="static:bi_s_ga", dataset="raw_microscopy",
                     source="synthetic", exposure="metadata"),
}
NAMES = {"classification": ["BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC"],
         "segmentation": ["background", "car"]}
NAMES["metadata"] = NAMES["classification"]
TASK = {"classification": "classification", "segmentation": "segmentation", "metadata": "classification"}


def finished_run(tmp_path, case):
    """A run's output folder written by write_outputs, with made-up results (no training)."""
    from accelerate import Accelerator

    args = RawTrainingArguments(task=TASK[case], output_dir=str(tmp_path / "out"), **CASES[case])
    task = case
    torch.manual_seed(0)
    model = build_model(args, NAMES[task])
    rng = np.random.default_rng(1)
    results = {f"{split}_{key}": float(rng.uniform(0.2, 0.9)) for split in ("eval", "test")
               for key in ("accuracy", "macro_f1", "mean_iou", "iou_car", "pixel_accuracy", "loss")}
    results["eval_iou_car"] = float("nan")  # a class absent from the split: left out of the model-index
    results.update(test_per_class_f1=[0.5] * 9, train_steps=3, train_samples=10, eval_samples=4, test_samples=4)
    write_outputs(args, SimpleNamespace(model=model, accelerator=Accelerator(cpu=True), results=results, history=[]))
    return args, model


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_card_metadata_carries_the_results_of_all_results_json(tmp_path, task):
    args, _ = finished_run(tmp_path, task)
    out = tmp_path / "out"
    saved = json.loads((out / "all_results.json").read_text())
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == {"classification": "image-classification", "segmentation": "image-segmentation"}[task]
    assert data.license == "cc-by-4.0"  # the data's licence, synthetic stand-ins and real recordings alike
    assert data.datasets is None  # no Hub dataset id: the package and config are named in the text
    assert f"config `{args.config_name}` of the `{args.dataset}` package" in card.text
    assert {"raw-images", "isp", "synthetic-data"} <= set(data.tags)
    assert data.base_model is None  # a preset with random weights, not a Hub model

    expected = {(split, key) for split, prefix in (("validation", "eval_"), ("test", "test_"))
                for key in args.headline_metrics if np.isfinite(saved[prefix + key])}
    assert ("validation", "iou_car") not in expected or task == "classification"
    found = set()
    for result in data.eval_results:
        key = {"Accuracy": "accuracy", "Macro F1": "macro_f1", "Mean IoU": "mean_iou", "IoU (car)": "iou_car",
               "Pixel accuracy": "pixel_accuracy"}[result.metric_name]
        prefix = "eval_" if result.dataset_split == "validation" else "test_"
        assert result.metric_value == saved[prefix + key]
        assert result.task_type == data.pipeline_tag and result.dataset_type == args.dataset
        assert result.dataset_config == args.config_name and result.dataset_args["intensity"] == args.intensity
        found.add((result.dataset_split, key))
    assert found == expected
    assert set(data.metrics) == {"classification": {"accuracy", "f1"}, "segmentation": {"mean_iou", "iou", "accuracy"}}[task]

    # The YAML is the Hub's model-index layout, and the body's table shows the same figures.
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n", 2)[1])
    entry = meta["model-index"][0]
    assert entry["name"] == "out" and len(entry["results"]) == len({split for split, _ in expected})
    body = card.text
    for split, key in expected:
        assert f"{saved[('eval_' if split == 'validation' else 'test_') + key]:.4f}" in body


@pytest.mark.parametrize("task", ["classification", "segmentation", "metadata"])
def test_card_examples_run_against_the_folder(tmp_path, task, monkeypatch, capsys):
    args, model = finished_run(tmp_path, task)
    text = (tmp_path / "out" / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == (1 if args.isp == "learned" else 2)
    assert all(("intensity" in code) == (args.exposure == "metadata") for code in blocks)
    raw = (np.random.default_rng(2).random((256, 256)) * 30000 + 2000).astype(np.uint16)
    work = tmp_path / "work"
    work.mkdir()
    raw_isp.write_raw(work / "frame.tiff", raw, intensity=1.0)  # the exposure travels in the file
    monkeypatch.chdir(work)
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(raw)[None], intensity=torch.tensor([1.0])).logits
    for code in blocks:
        assert "import torch" in code or "torch." not in code
        exec(compile(code, "README.md example", "exec"), {})  # noqa: S102 - the card's own example
        printed = capsys.readouterr().out.strip().splitlines()
        if TASK[task] == "classification":
            assert printed[-1] == NAMES[task][int(logits.argmax(-1))]
        elif "load_raw_model" in code:
            fractions = eval(printed[-1])  # noqa: S307 - a dict literal the example printed
            assert set(fractions) == set(NAMES[task]) and sum(fractions.values()) == pytest.approx(1.0)
