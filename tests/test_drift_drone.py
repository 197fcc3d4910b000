"""The drift controls on Raw-Drone (segmentation scored with IoU, and the car / no-car
classification task) end to end on tiny synthetic data and tiny models."""

import json

import pytest

from raw_isp.training.cli import main as train_main

DRONE = ["--num_scenes", "10", "--frame_size", "512", "512", "--num_examples", "16",
         "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "3", "--logging_steps", "1"]


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("drone") / "seg"
    assert train_main("segmentation", ["--output_dir", str(out), "--cache_dir", cache, *DRONE,
                                       "--model_name_or_path", "segformer-micro", "--max_train_steps", "2"]) == 0
    return out


def test_drone_segmentation_drift_synthesis_reports_iou_and_the_all_background_baseline(script, segmenter, tmp_path,
                                                                                        capsys):
    out = tmp_path / "ds"
    assert script("drift_synthesis").main(["--model", str(segmenter), "--output_dir", str(out),
                                           "--variants", "bi_s_ga,ma_u_me", "--intensities", "1.0,0.05",
                                           "--corruptions", "gaussian_noise", "--severities", "1",
                                           "--n_boot", "100"]) == 0
    printed = capsys.readouterr().out
    assert "mean_iou" in printed and "trivial baseline (every pixel background" in printed
    summary = json.loads((out / "drift_synthesis.json").read_text())["summary"]
    assert summary["metric"] == "mean_iou" and summary["baseline"]["class"] == "background"
    assert 0 < summary["baseline"]["mean"] <= 0.5  # background IoU / 2: car IoU is 0 for all background
    assert "corruption_mean_drop" in summary and "isp_drop" in summary


def test_drone_segmentation_drift_optimisation_is_scored_with_iou(script, tmp_path, cache, capsys):
    out = tmp_path / "opt"
    assert script("drift_optimization").main([
        "--task", "segmentation", "--intensities", "0.05", "--isps", "static:bi_s_ga,parametrized", "--seeds", "0,1",
        "--output_dir", str(out), "--cache_dir", cache, *DRONE, "--model_name_or_path", "segformer-micro",
        "--max_train_steps", "2", "--n_boot", "50"]) == 0
    report = json.loads((out / "drift_optimization.json").read_text())
    assert report["metric"] == "mean_iou" and len(report["runs"]) == 4
    assert all(r["baseline"]["class"] == "background" for r in report["runs"])
    moved = [r for r in report["runs"] if r["isp"].startswith("parametrized")]
    assert all(r["isp_moves"] and "black_level" in r["isp_moves"] for r in moved)
    assert "Trivial baseline (always background" in (out / "drift_optimization.md").read_text()


def test_drone_forensics_runs_on_the_segmenter(script, segmenter, tmp_path):
    out = tmp_path / "fo"
    assert script("drift_forensics").main(["--model", str(segmenter), "--output_dir", str(out), "--lambdas", "0,1",
                                           "--steps", "1", "--max_eval_samples", "3"]) == 0
    assert (out / "forensics.md").is_file()


def test_drone_car_classification_goes_through_drift_synthesis(script, tmp_path, cache, capsys):
    model = tmp_path / "cls"
    assert train_main("classification", ["--output_dir", str(model), "--cache_dir", cache, "--dataset", "raw_drone",
                                         *DRONE, "--num_examples", "24", "--model_name_or_path", "vit-micro",
                                         "--max_train_steps", "2"]) == 0
    results = json.loads((model / "all_results.json").read_text())
    assert results["test_baseline_class"] in ("no_car", "car")
    out = tmp_path / "ds"
    assert script("drift_synthesis").main(["--model", str(model), "--output_dir", str(out), "--variants", "bi_s_ga",
                                           "--intensities", "1.0", "--corruptions", "none", "--n_boot", "50"]) == 0
    summary = json.loads((out / "drift_synthesis.json").read_text())["summary"]
    assert summary["baseline"]["class"] in ("no_car", "car")
