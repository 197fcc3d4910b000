"""RawTrainingArguments: parsed by HfArgumentParser, checked in __post_init__, round-tripped as
training_args.json (never the Hub token)."""

import dataclasses
import json

import pytest

from raw_isp.training import OptionError, RawTrainingArguments, build_parser, parse_training_args
from raw_isp.training.arguments import TASK_DEFAULTS


def test_defaults_follow_the_task():
    cls = RawTrainingArguments()
    assert (cls.task, cls.dataset, cls.model_name_or_path, cls.per_device_train_batch_size, cls.num_train_epochs,
            cls.output_dir, cls.source, cls.camera_name, cls.label_column) == (
        "classification", "raw_microscopy", "vit-tiny-32", 32, 8, "outputs/classification", "synthetic",
        "microscopy", "label")
    seg = RawTrainingArguments(task="segmentation")
    assert (seg.dataset, seg.model_name_or_path, seg.per_device_train_batch_size, seg.learning_rate,
            seg.label_column, seg.camera_name, seg.config_name) == (
        "raw_drone", "segformer-b0", 8, 6e-4, "mask", "drone", "segmentation")
    assert seg.headline_metrics == ("mean_iou", "iou_car", "pixel_accuracy")
    drone_cls = RawTrainingArguments(dataset="raw_drone")
    assert drone_cls.label_column == "label" and drone_cls.config_name == "classification"


def test_the_parser_is_the_dataclass_and_shows_each_tasks_defaults(capsys):
    args = parse_training_args("segmentation", ["--isp", "parametrized", "--frame_size", "512", "640",
                                                "--with_tracking", "--resume_from_checkpoint", "--intensity", "0.05"])
    assert isinstance(args, RawTrainingArguments)
    assert (args.task, args.isp, args.frame_size, args.with_tracking, args.resume_from_checkpoint,
            args.intensity) == ("segmentation", "parametrized:bi_s_ga", [512, 640], True, "latest", 0.05)
    assert parse_training_args("classification", []) == RawTrainingArguments()
    with pytest.raises(SystemExit):
        build_parser("segmentation").parse_args(["--help"])
    text = capsys.readouterr().out
    assert "segformer-b0" in text and "--hub_token" in text and "(default: 8)" in text
    assert "the task's default" not in text  # the help shows real defaults


def test_quick_defaults_of_a_caller_can_be_overridden_on_the_command_line():
    quick = {"max_train_samples": 192, "num_train_epochs": 4}
    args = parse_training_args("classification", ["--num_train_epochs", "7"], **quick)
    assert (args.max_train_samples, args.num_train_epochs) == (192, 7)


@pytest.mark.parametrize("kwargs, message", [
    ({"intensity": 2.0}, "--intensity must be in (0, 1], got 2.0"),
    ({"intensity": 0.3}, "--intensity 0.3: the data is captured at"),
    ({"isp": "static"}, "--isp: isp 'static': a static ISP needs a variant"),
    ({"task": "detection"}, "--task 'detection'"),
    ({"dataset": "raw_microscopy", "task": "segmentation"}, "--dataset raw_microscopy: Raw-Microscopy has no "
     "segmentation task (datasets with one: raw_drone)"),
    ({"dataset": "cifar10"}, "--dataset: unknown dataset 'cifar10'"),
    ({"source": "local"}, "--source local needs --data_dir"),
    ({"fold": 5}, "--fold must be in 0..4"),
    ({"zenodo_record": "5235536"}, "--zenodo_record 5235536: only with --source zenodo"),
    ({"source": "zenodo", "zenodo_record": "latest"}, "--zenodo_record: record must be a Zenodo record id"),
    ({"num_examples": 0}, "--num_examples must be a positive integer, got 0"),
    ({"learning_rate": float("nan")}, "--learning_rate must be a finite number >= 0"),
    ({"checkpointing_steps": "often"}, "--checkpointing_steps must be a positive integer or 'epoch'"),
    ({"gradient_accumulation_steps": 0}, "--gradient_accumulation_steps must be a positive integer"),
])
def test_bad_values_name_the_option(kwargs, message):
    with pytest.raises(OptionError) as err:
        RawTrainingArguments(**kwargs)
    assert str(err.value).startswith(message), str(err.value)


def test_zenodo_record_reaches_the_builder_as_its_record_id():
    from raw_isp.training.data import builder_kwargs

    args = RawTrainingArguments(source="zenodo", zenodo_record="10.5281/zenodo.7654321")
    assert args.zenodo_record == "7654321"
    assert builder_kwargs(args, 1.0)["record"] == "7654321"
    assert "record" not in builder_kwargs(RawTrainingArguments(source="zenodo"), 1.0)


def test_json_round_trip_without_the_hub_token(tmp_path):
    args = parse_training_args("segmentation", ["--hub_token", "hf_topsecret", "--num_examples", "16",
                                                "--frame_size", "512", "512", "--checkpointing_steps", "epoch",
                                                "--output_dir", str(tmp_path / "run")])
    args.to_json_file(tmp_path / "training_args.json")
    text = (tmp_path / "training_args.json").read_text()
    assert "hf_topsecret" not in text and "hub_token" not in text
    back = RawTrainingArguments.from_output_dir(tmp_path)
    assert back == dataclasses.replace(args, hub_token=None)
    assert RawTrainingArguments.from_json_file(tmp_path / "training_args.json", isp="learned").isp == "learned"
    assert not list(tmp_path.glob("*.tmp"))


def test_old_and_foreign_json_files(tmp_path, caplog):
    # A file from before overwrite_output_dir existed, with a key this version does not know.
    saved = {**RawTrainingArguments(task="segmentation").to_dict(), "old_option": 1}
    del saved["overwrite_output_dir"]
    del saved["exposure"]  # and from before the exposure stage: those runs had none
    (tmp_path / "training_args.json").write_text(json.dumps(saved))
    args = RawTrainingArguments.from_output_dir(tmp_path)
    assert args.task == "segmentation" and args.overwrite_output_dir is False and args.exposure == "none"
    assert RawTrainingArguments(task="segmentation").exposure == "metadata"  # today's default
    assert "old_option" in caplog.text
    # Overrides apply before the checks: a moved data folder is replaced, not refused.
    moved = {**saved, "data_dir": str(tmp_path / "gone"), "source": "local"}
    (tmp_path / "training_args.json").write_text(json.dumps(moved))
    with pytest.raises(OptionError, match="--data_dir .*gone: no such file or folder"):
        RawTrainingArguments.from_output_dir(tmp_path)
    here = RawTrainingArguments.from_output_dir(tmp_path, data_dir=str(tmp_path))
    assert here.data_dir == str(tmp_path) and here.source == "local"
    with pytest.raises(TypeError, match="unknown training settings"):
        RawTrainingArguments.from_output_dir(tmp_path, data_dri=str(tmp_path))
    (tmp_path / "training_args.json").write_text("[1, 2]")
    with pytest.raises(OptionError, match="expected a JSON object"):
        RawTrainingArguments.from_output_dir(tmp_path)
    with pytest.raises(OptionError, match="no training_args.json; not a folder written by the training scripts"):
        RawTrainingArguments.from_output_dir(tmp_path / "elsewhere")


def test_task_defaults_cover_every_task():
    from raw_isp.registry import TASKS

    assert set(TASK_DEFAULTS) == set(TASKS)
    for task, defaults in TASK_DEFAULTS.items():
        args = RawTrainingArguments(task=task)
        assert all(getattr(args, k) == v for k, v in defaults.items())
