"""The output-folder rules of a training run (the transformers convention): a folder that holds
something is refused unless the run replaces it (--overwrite_output_dir) or continues it
(--resume_from_checkpoint); nothing is deleted otherwise; an unusable folder is an error before
any data is loaded."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raw_isp.training import check_output_dir, parse_training_args
from raw_isp.training.cli import main as train_main
from raw_isp.training.folders import MARKER_NAME, mark_owned
from raw_isp.training.outputs import run_entries

MICRO = ["--num_examples", "60", "--model_name_or_path", "vit-micro", "--per_device_train_batch_size", "8",
         "--per_device_eval_batch_size", "6", "--max_train_steps", "1"]


def earlier_run(folder: Path) -> None:
    """A finished run (raw_isp's marker included) with a checkpoint, and a file of the user's."""
    (folder / "step_99").mkdir(parents=True)
    mark_owned(folder, "training run")
    (folder / "step_99" / "trainer_state.json").write_text('{"completed_steps": 99, "epoch": 9}')
    (folder / "all_results.json").write_text('{"test_accuracy": 2.0}')
    (folder / "config.json").write_text("{}")
    (folder / "notes.txt").write_text("mine")


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_holding_a_run_is_refused_before_any_data_and_kept(tmp_path, capsys):
    out, never = tmp_path / "run", tmp_path / "cache_never_made"
    earlier_run(out)
    before = listing(out)
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", str(never), *MICRO]) == 2
    err = capsys.readouterr().err
    assert f"--output_dir {out}: not empty, it holds another run" in err and "step_99/" in err
    assert "--overwrite_output_dir" in err and "--resume_from_checkpoint" in err
    assert listing(out) == before and not never.exists()


def test_a_folder_of_other_files_is_refused_too(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", str(tmp_path / "c"), *MICRO]) == 2
    assert "not empty, it holds files (README.md)" in capsys.readouterr().err
    (out / "README.md").unlink()
    (out / "photo.jpg").write_bytes(b"x")
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", str(tmp_path / "c"), *MICRO]) == 2
    assert "not empty, it holds files (photo.jpg)" in capsys.readouterr().err
    assert (out / "photo.jpg").read_bytes() == b"x"


def test_overwrite_replaces_the_earlier_run_and_keeps_other_files(tmp_path, cache):
    out = tmp_path / "run"
    earlier_run(out)
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", cache, *MICRO,
                                         "--overwrite_output_dir"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    assert results["train_steps"] == 1 and "test_accuracy" in results and results["test_accuracy"] <= 1
    assert not (out / "step_99").exists() and (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "training_args.json").read_text())["overwrite_output_dir"] is True
    assert not list(out.glob(".write_test_*"))


def test_resume_keeps_the_folder(tmp_path, cache):
    out = tmp_path / "run"
    common = ["--output_dir", str(out), "--cache_dir", cache, *MICRO[:-2], "--max_train_steps", "2",
              "--checkpointing_steps", "1"]
    assert train_main("classification", common) == 0
    (out / "notes.txt").write_text("mine")
    assert train_main("classification", [*common, "--resume_from_checkpoint", str(out / "step_1")]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "step_1").is_dir() and (out / "step_2").is_dir()


@pytest.mark.parametrize("case", ["file", "under_a_file", "unwritable"])
def test_an_unusable_output_dir_is_an_error_before_any_data(tmp_path, capsys, case):
    never = tmp_path / "cache_never_made"
    if case == "file":
        out = tmp_path / "out.txt"
        out.write_text("a file")
        message = f"--output_dir {out}: is a file, not a folder"
    elif case == "under_a_file":
        (tmp_path / "file").write_text("a file")
        out = tmp_path / "file" / "out"
        message = f"--output_dir {out}: {tmp_path / 'file'} is a file, not a folder"
    else:
        if os.geteuid() != 0:
            (tmp_path / "ro").mkdir(mode=0o500)
            out = tmp_path / "ro" / "out"
        else:  # root writes anywhere permissions allow; /sys refuses new entries
            out = Path("/sys/raw_isp_output_test")
            try:
                out.mkdir()
                out.rmdir()
                pytest.skip("no read-only folder to test with")
            except OSError:
                pass
        message = f"--output_dir {out}: cannot write there"
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", str(never), *MICRO]) == 2
    assert message in capsys.readouterr().err
    assert not never.exists()
    if case == "file":
        assert out.read_text() == "a file"


def test_check_output_dir_creates_an_empty_folder_and_allows_it(tmp_path):
    args = parse_training_args("classification", ["--output_dir", str(tmp_path / "a" / "b")])
    check_output_dir(args)
    assert (tmp_path / "a" / "b").is_dir() and not any((tmp_path / "a" / "b").iterdir())
    check_output_dir(args)  # an empty folder is fine


def test_run_entries_name_what_a_run_writes(tmp_path):
    for name in ("all_results.json", "model.safetensors", "isp_config.json", "notes.txt", "step_3", ".tmp_step_4",
                 "step_x"):
        (tmp_path / name).mkdir() if name.startswith(("step", ".tmp")) else (tmp_path / name).write_text("")
    assert [p.name for p in run_entries(tmp_path)] == [".tmp_step_4", "all_results.json", "isp_config.json",
                                                       "model.safetensors", "step_3"]


def test_overwrite_refuses_a_folder_raw_isp_did_not_write_and_deletes_nothing(tmp_path, capsys):
    # issue 18: the user's README.md, config.json and drift_synthesis/ were deleted by name pattern
    out, never = tmp_path / "mine", tmp_path / "cache_never_made"
    (out / "drift_synthesis").mkdir(parents=True)
    (out / "drift_synthesis" / "notes.md").write_text("mine")
    (out / "README.md").write_text("my notes")
    (out / "config.json").write_text('{"mine": 1}')
    before = listing(out)
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", str(never), *MICRO,
                                         "--overwrite_output_dir"]) == 2
    err = capsys.readouterr().err
    assert f"--output_dir {out}: --overwrite_output_dir replaces only a folder written by raw_isp" in err
    assert MARKER_NAME in err and "README.md, config.json, drift_synthesis/" in err and "nothing is deleted" in err
    assert listing(out) == before and not (out / MARKER_NAME).exists() and not never.exists()


_HOLD = """
import sys
from raw_isp.training.folders import lock_output_dir
lock_output_dir(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_training_into_a_folder_in_use_fails_at_once_naming_the_other(tmp_path, capsys):
    # issue 18: two trainings into one empty folder both passed the check; one died with a RuntimeError
    out, never = tmp_path / "run", tmp_path / "cache_never_made"
    other = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert other.stdout.readline().strip() == "locked"
        assert train_main("classification", ["--output_dir", str(out), "--cache_dir", str(never), *MICRO]) == 2
        err = capsys.readouterr().err
        assert f"--output_dir {out}: in use by another process (pid {other.pid} on " in err
        assert "choose another folder" in err and not never.exists()
    finally:
        other.communicate("")
    from raw_isp.training.folders import lock_output_dir, unlock_output_dir

    lock_output_dir(out)  # free once the other process is gone
    unlock_output_dir(out)


def test_a_finished_run_carries_the_marker_and_releases_its_lock(tmp_path, cache):
    from raw_isp.training.folders import held_folders, is_owned

    out = tmp_path / "run"
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", cache, *MICRO]) == 0
    assert is_owned(out) and str(out.resolve()) not in held_folders()
