"""Drift optimisation (raw_isp.drift.optimization and scripts/drift_optimization.py): one tiny model
per (ISP, intensity), validation curves, tables, picture."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from raw_isp.training import RawTrainingArguments


@pytest.fixture(scope="module")
def drift_optimization(script):
    return script("drift_optimization")


# 60 cells: 42 train images, cut to 16 -> 2 steps of 8 per epoch; 2 epochs -> validations at steps 2 and 4.
TINY = ["--num_examples", "60", "--model_name_or_path", "vit-micro", "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "6", "--max_train_samples", "16", "--num_train_epochs", "2",
        "--logging_steps", "1"]
ISPS = ("static:bi_s_ga", "parametrized:bi_s_ga", "learned")


def test_end_to_end_writes_curves_for_every_run(drift_optimization, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--output_dir", str(out), "--cache_dir", str(tmp_path / "hf_cache"), *TINY]
    assert drift_optimization.main(argv) == 0  # default --isps and --intensities
    printed = capsys.readouterr().out
    assert "intensity 0.01: best final validation accuracy" in printed

    for name in ("drift_optimization.csv", "drift_optimization.json", "drift_optimization.md",
                 "drift_optimization.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with open(out / "drift_optimization.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["isp", "intensity", "seed", "step", "metric", "value"]
    assert {r["seed"] for r in rows} == {"42"}  # the training default, one model per (ISP, intensity)
    expected = {(isp, intensity, step, metric) for isp in ISPS for intensity in (0.01, 0.05) for step in (2, 4)
                for metric in ("accuracy", "macro_f1", "loss")}
    got = [(r["isp"], float(r["intensity"]), int(r["step"]), r["metric"]) for r in rows]
    assert sorted(got) == sorted(expected)  # each exactly once
    for r in rows:
        value = float(r["value"])
        assert value >= 0 and (r["metric"] == "loss" or value <= 1)

    summary = json.loads((out / "drift_optimization.json").read_text())
    assert [(r["isp"], r["intensity"]) for r in summary["runs"]] == [
        (isp, intensity) for intensity in (0.01, 0.05) for isp in ISPS]
    md = (out / "drift_optimization.md").read_text()
    for run in summary["runs"]:
        # The saved model is the run's best validation epoch (load_best_model_at_end, macro-F1):
        # its validation figures are those of that step in the run's history.
        folder = Path(run["output_dir"])
        results = json.loads((folder / "all_results.json").read_text())
        assert run["final"]["step"] == 4 and results["train_steps"] == 4
        at_best = [h for h in run["history"] if h.get("step") == results["best_step"] and "accuracy" in h]
        assert at_best and at_best[-1]["accuracy"] == pytest.approx(results["eval_accuracy"])
        assert json.loads((folder / "isp_config.json").read_text())["isp"] == run["isp"]
        assert json.loads((folder / "training_args.json").read_text())["intensity"] == run["intensity"]
        assert f"| {run['isp']} | {run['intensity']:g} | {run['final']['accuracy']:.4f} (4) |" in md
    # Low light: the two intensities are different data.
    by_intensity = {r["intensity"]: r for r in summary["runs"] if r["isp"] == "static:bi_s_ga"}
    assert by_intensity[0.01]["history"] != by_intensity[0.05]["history"]

    # The same command again trains nothing: every run is finished with these settings, so it
    # is reused and the report is the same (but for the seconds it took).
    assert drift_optimization.main(argv) == 0
    assert capsys.readouterr().out.count("reused the finished run") == len(summary["runs"])
    again = json.loads((out / "drift_optimization.json").read_text())
    assert again["runs"] == summary["runs"] and again["cells"] == summary["cells"]
    # Other settings in the same folders are refused before any training: they hold other runs.
    before = (out / "drift_optimization.json").read_bytes()
    with pytest.raises(SystemExit):
        drift_optimization.main([*argv, "--learning_rate", "1e-3"])
    assert "not empty, it holds another run" in capsys.readouterr().err
    assert (out / "drift_optimization.json").read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["--isp", "learned"], "--isp: this script sets --isp and --intensity per run"),
    (["--intensity=0.5"], "--intensity: this script sets --isp"),
    (["--intensity", "0.5"], "this script sets --isp"),
    (["--isps", "static:bi_s_ga,fancy"], "--isps: isp 'fancy': unknown kind 'fancy'"),
    (["--intensities", "0.01,2"], "--intensities: 2 must be in (0, 1]"),
    (["--intensities", "0.3"], "captured at"),
    (["--num_train_epochs", "0"], "--num_train_epochs must be a positive integer"),
    (["--task", "segmentation", "--dataset", "raw_microscopy"], "Raw-Microscopy has no segmentation task"),
    (["--no_such_option", "1"], "--no_such_option"),
    (["--seeds", "0,1", "--seed", "3"], "--seed: give the training seeds with --seeds alone"),
    (["--seeds", "0,x"], "--seeds: 'x' is not an integer"),
    (["--seeds", "0,,1"], "--seeds '0,,1': expected comma-separated values without empty entries"),
    (["--n_boot", "-1"], "--n_boot must be 0 (no intervals) or positive"),
])
def test_bad_arguments_fail_before_training(drift_optimization, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        drift_optimization.main(["--output_dir", str(out), *argv])
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_quick_budget_full_budget_and_overrides(drift_optimization, tmp_path):
    common = ["--output_dir", str(tmp_path / "out"), "--isps", "learned", "--intensities", "0.05"]
    _, _, [quick] = drift_optimization.parse_args(common)
    assert (quick.isp, quick.intensity, quick.args.intensity, quick.args.isp) == ("learned", 0.05, 0.05, "learned")
    assert (quick.args.max_train_samples, quick.args.num_train_epochs, quick.args.per_device_train_batch_size) == (
        192, 4, 16)
    assert quick.args.output_dir == str(tmp_path / "out" / "runs" / "learned_i0.05")
    _, _, [full] = drift_optimization.parse_args([*common, "--full"])
    defaults = RawTrainingArguments()
    assert (full.args.max_train_samples, full.args.num_train_epochs, full.args.per_device_train_batch_size) == (
        None, defaults.num_train_epochs, defaults.per_device_train_batch_size)
    _, _, [mine] = drift_optimization.parse_args([*common, "--num_train_epochs", "7"])
    assert (mine.args.max_train_samples, mine.args.num_train_epochs) == (192, 7)


def test_seeds_give_spread_intervals_and_differences(drift_optimization, tmp_path, capsys):
    out = tmp_path / "seeds"
    argv = ["--output_dir", str(out), "--cache_dir", str(tmp_path / "hf_cache"), *TINY, "--max_train_steps", "2",
            "--isps", "static:bi_s_ga,parametrized:bi_s_ga", "--intensities", "0.05", "--seeds", "0,1",
            "--n_boot", "200"]
    assert drift_optimization.main(argv) == 0
    assert "intensity 0.05: best final validation accuracy" in capsys.readouterr().out
    with open(out / "drift_optimization.csv") as fh:
        assert {r["seed"] for r in csv.DictReader(fh)} == {"0", "1"}
    summary = json.loads((out / "drift_optimization.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["n_boot"] == 200
    runs = {(r["isp"], r["seed"]): r for r in summary["runs"]}
    for (isp, seed), run in runs.items():
        folder = Path(run["output_dir"])
        assert folder.name == f"{isp.replace(':', '-')}_i0.05_s{seed}"
        assert json.loads((folder / "training_args.json").read_text())["seed"] == seed
        assert "test_confusions" not in run
        # The extra per-image pass scores the saved model exactly as the training's own test evaluation.
        ti = run["test_interval"]["accuracy"]
        assert ti["value"] == pytest.approx(run["test"]["accuracy"]) and ti["ci_low"] <= ti["value"] <= ti["ci_high"]
    first, second = summary["cells"]
    assert (first["isp"], second["isp"]) == ("static:bi_s_ga", "parametrized:bi_s_ga") and "vs_first" not in first
    for cell in (first, second):
        finals = [runs[(cell["isp"], s)]["final"]["accuracy"] for s in (0, 1)]
        tests = [runs[(cell["isp"], s)]["test"]["accuracy"] for s in (0, 1)]
        assert cell["final"]["accuracy"]["mean"] == pytest.approx(np.mean(finals))
        assert cell["final"]["accuracy"]["sd"] == pytest.approx(np.std(finals, ddof=1))
        t = cell["test"]["accuracy"]
        assert t["mean"] == pytest.approx(np.mean(tests)) and t["ci_low"] <= t["mean"] <= t["ci_high"]
    vs = second["vs_first"]
    assert vs["isp"] == "static:bi_s_ga"
    assert vs["test"]["accuracy"]["diff"] == pytest.approx(second["test"]["accuracy"]["mean"]
                                                           - first["test"]["accuracy"]["mean"])
    assert vs["final"]["accuracy"]["diff_ci_low"] is None  # no per-image validation scores: seeds only
    assert isinstance(vs["test"]["accuracy"]["exceeds_seed_spread"], bool)
    md = (out / "drift_optimization.md").read_text()
    assert "## Per ISP and intensity (mean \u00b1 sd (min to max) over seeds; 95% CI" in md
    assert "| parametrized:bi_s_ga | 0.05 |" in md


def test_seeds_trained_apart_are_reported_together(drift_optimization, tmp_path, capsys):
    """Seed 0 trained by one call (with no report), then seeds 0 and 1 by another into the same
    folder: seed 0 is reused, not trained again, and its figures are those of a call that trains
    both."""
    common = ["--cache_dir", str(tmp_path / "hf_cache"), *TINY, "--max_train_steps", "2", "--isps",
              "static:bi_s_ga", "--intensities", "0.05", "--n_boot", "50"]
    apart, together = tmp_path / "apart", tmp_path / "together"
    assert drift_optimization.main(["--output_dir", str(apart), *common, "--seeds", "0", "--no_report"]) == 0
    assert "(no report: --no_report)" in capsys.readouterr().out
    assert (apart / "runs" / "static-bi_s_ga_i0.05_s0" / "drift_optimization_run.json").is_file()
    assert not [n for n in ("csv", "json", "md", "png") if (apart / f"drift_optimization.{n}").exists()]
    assert drift_optimization.main(["--output_dir", str(apart), *common, "--seeds", "0,1"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("reused the finished run") == 1 and "seed 0    reused" in printed
    assert drift_optimization.main(["--output_dir", str(together), *common, "--seeds", "0,1"]) == 0
    a = json.loads((apart / "drift_optimization.json").read_text())
    b = json.loads((together / "drift_optimization.json").read_text())
    drop = ("output_dir", "seconds")
    assert [{k: v for k, v in r.items() if k not in drop} for r in a["runs"]] == \
        [{k: v for k, v in r.items() if k not in drop} for r in b["runs"]]
    assert a["cells"] == b["cells"]
    # A run whose record lost its confusions is not finished: its folder is refused, nothing is reused.
    (apart / "runs" / "static-bi_s_ga_i0.05_s1" / "drift_optimization_run_confusions.npy").unlink()
    with pytest.raises(SystemExit):
        drift_optimization.main(["--output_dir", str(apart), *common, "--seeds", "0,1"])
    assert "static-bi_s_ga_i0.05_s1: not empty" in capsys.readouterr().err
