"""Drift synthesis (raw_isp.drift.synthesis and scripts/drift_synthesis.py) end to end on a tiny
model and tiny synthetic data."""

import csv
import json

import numpy as np
import pytest

import raw_isp
from raw_isp.isp.corruptions import CORRUPTIONS
from raw_isp.drift.synthesis import CELL_FIELDS, FIELDS, summarise, synthesize
from raw_isp.training.cli import main as train_main


@pytest.fixture(scope="module")
def drift_synthesis(script):
    return script("drift_synthesis")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    cache = str(root / "cache")
    out = root / "model"
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", cache, "--num_examples", "60",
                                         "--model_name_or_path", "vit-micro", "--max_train_steps", "2",
                                         "--per_device_train_batch_size", "8", "--max_eval_samples", "4",
                                         "--isp", "static:ma_u_ga"]) == 0
    return out


def read_rows(folder):
    with open(folder / "drift_synthesis.csv") as fh:
        return list(csv.DictReader(fh))


def test_grid_and_corruptions_are_written(drift_synthesis, trained, tmp_path, capsys):
    out = tmp_path / "ds"
    assert drift_synthesis.main(["--model", str(trained), "--output_dir", str(out), "--max_eval_samples", "4"]) == 0
    printed = capsys.readouterr().out
    assert "best :" in printed and "worst:" in printed and "spread" in printed and "corruptions" in printed
    rows = read_rows(out)
    assert list(rows[0]) == list(FIELDS)
    grid = [r for r in rows if r["metric"] == "accuracy" and not r["corruption"] and r["test_variant"] != "model"]
    assert {(r["test_variant"], float(r["intensity"])) for r in grid} == {
        (v, i) for v in raw_isp.ISP_VARIANTS for i in raw_isp.INTENSITY_RATIOS}
    assert len(grid) == 12 * 7
    corr = [r for r in rows if r["metric"] == "accuracy" and r["corruption"]]
    assert {(r["corruption"], int(r["severity"])) for r in corr} == {(c, s) for c in CORRUPTIONS for s in range(1, 6)}
    assert all(r["train_variant"] == "ma_u_ga" for r in rows)
    assert all(0.0 <= float(r["value"]) <= 1.0 for r in rows if r["metric"] != "loss")
    for name in ("drift_synthesis.json", "summary.md", "variant_intensity.png", "corruptions.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "drift_synthesis.json").read_text())["summary"]
    values = [float(r["value"]) for r in grid]
    assert summary["worst"]["value"] == min(values) and summary["best"]["value"] == max(values)
    assert summary["spread"] == pytest.approx(max(values) - min(values))
    assert not (tmp_path / "ds.partial").exists()


def test_own_view_equals_training_evaluation(drift_synthesis, trained, tmp_path):
    # The static ma_u_ga column at the training intensity is the model's own view: it must give
    # exactly the test metrics the training script wrote.
    out = tmp_path / "own"
    assert drift_synthesis.main(["--model", str(trained), "--output_dir", str(out), "--max_eval_samples", "4",
                                 "--intensities", "1.0", "--corruptions", "none", "--variants", "ma_u_ga,bi_s_ga"]) == 0
    rows = read_rows(out)
    results = json.loads((trained / "all_results.json").read_text())
    own = {r["metric"]: float(r["value"]) for r in rows if r["test_variant"] == "ma_u_ga"}
    model_view = {r["metric"]: float(r["value"]) for r in rows if r["test_variant"] == "model"}
    assert own["accuracy"] == pytest.approx(results["test_accuracy"]) == pytest.approx(model_view["accuracy"])
    assert own["loss"] == pytest.approx(results["test_loss"], rel=1e-5)


def test_train_variants_matrix(trained, tmp_path):
    # The library call: one model per training variant, each evaluated on every test variant.
    out = tmp_path / "tt"
    report = synthesize(trained, out, max_eval_samples=4, intensities=[1.0], corruptions=[],
                        train_variants=["bi_s_ga", "me_u_me"], variants=["bi_s_ga", "me_u_me", "ma_s_ga"])
    rows = [r for r in read_rows(out) if r["model"].startswith("train:") and r["metric"] == "accuracy"]
    assert {(r["train_variant"], r["test_variant"]) for r in rows} == {
        (a, b) for a in ("bi_s_ga", "me_u_me") for b in ("bi_s_ga", "me_u_me", "ma_s_ga")}
    assert (out / "train_test.png").is_file() and "train_test.png" in report["files"]
    assert (out / "models" / "me_u_me" / "all_results.json").is_file()
    assert json.loads((out / "models" / "me_u_me" / "isp_config.json").read_text())["isp"] == "static:me_u_me"
    # Run again into the same folder: the earlier report (models included) is replaced.
    again = synthesize(trained, out, max_eval_samples=4, intensities=[1.0], corruptions=[],
                       train_variants=["bi_s_ga"], variants=["bi_s_ga"])
    assert again["summary"]["metric"] == "accuracy" and not (out / "models" / "me_u_me").exists()


def test_a_folder_of_other_files_is_not_replaced(trained, tmp_path):
    from raw_isp.training.arguments import OptionError

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OptionError, match="holds files that are not this tool's report \\(notes.txt\\)"):
        synthesize(trained, out, max_eval_samples=4, intensities=[1.0], corruptions=[], variants=["bi_s_ga"])
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


def test_summary_of_a_hand_made_grid():
    rows = [{"test_variant": v, "intensity": i, "corruption": c, "severity": s, "metric": "accuracy", "value": x}
            for v, i, c, s, x in [("model", 1.0, "", "", 0.9), ("a", 1.0, "", "", 0.9), ("b", 1.0, "", "", 0.8),
                                  ("a", 0.5, "", "", 0.3), ("b", 0.5, "", "", 0.5), ("model", 1.0, "fog", 1, 0.5)]]
    summary = summarise(rows, "accuracy", 1.0)
    assert summary["worst"] == {"variant": "a", "intensity": 0.5, "value": 0.3}
    assert summary["isp_only_mean_drop"] == pytest.approx(0.05) and summary["corruption_mean_drop"] == pytest.approx(0.4)
    assert summary["corruption_to_isp_drop_ratio"] == pytest.approx(8.0)
    assert summary["mean_by_intensity"] == {"1.0": pytest.approx(0.85), "0.5": pytest.approx(0.4)}


@pytest.mark.parametrize("argv, message", [
    (["--variants", "xx_s_ga"], "--variants: unknown 'xx_s_ga'; expected 'all' or some of bi_s_ga"),
    (["--corruptions", "fog"], "--corruptions: unknown 'fog'"),
    (["--severities", "0,6"], "--severities: 0 must be in 1..5"),
    (["--intensities", "2"], "--intensities: 2 must be in (0, 1]"),
    (["--seeds", "1,y"], "--seeds: 'y' is not an integer"),
    (["--n_boot", "-2"], "--n_boot must be 0 (no intervals) or positive"),
    (["--compare", "nowhere"], "--compare nowhere: not a training output folder (no training_args.json / isp_config.json)"),
])
def test_bad_arguments(drift_synthesis, trained, argv, message, capsys):
    with pytest.raises(SystemExit):
        drift_synthesis.parse_args(["--model", str(trained), *argv])
    assert message in capsys.readouterr().err


def test_not_a_model_folder(drift_synthesis, tmp_path, capsys):
    with pytest.raises(SystemExit):
        drift_synthesis.parse_args(["--model", str(tmp_path)])
    assert "not a training output folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained_plain(trained):
    # A second condition on the same data: no flips, another ISP.
    out = trained.parent / "plain"
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", str(trained.parent / "cache"),
                                         "--num_examples", "60", "--model_name_or_path", "vit-micro",
                                         "--max_train_steps", "2", "--per_device_train_batch_size", "8",
                                         "--max_eval_samples", "4", "--isp", "static:bi_s_ga", "--augment", "none"]) == 0
    return out


def test_seeds_comparison_and_intervals(trained, trained_plain, tmp_path):
    out = tmp_path / "cmp"
    report = synthesize(trained, out, intensities=[1.0, 0.05], variants=["ma_u_ga", "me_s_me"],
                        corruptions=["gaussian_noise"], severities=[1, 3], compare=[trained_plain],
                        labels=["flips", "plain"], seeds=[42, 7], n_boot=200)
    rows = read_rows(out)
    assert list(rows[0]) == list(FIELDS)
    assert {(r["model"], r["seed"]) for r in rows} == {(m, s) for m in ("flips", "plain") for s in ("42", "7")}
    for m in ("flips", "plain"):  # the folder stands for seed 42; seed 7 was trained with its settings
        args = json.loads((out / "models" / f"{m}-seed7" / "training_args.json").read_text())
        assert args["seed"] == 7 and args["isp"] == {"flips": "static:ma_u_ga", "plain": "static:bi_s_ga"}[m]
    acc = [r for r in rows if r["metric"] == "accuracy"]
    assert all(float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"]) for r in acc)
    assert all(r["ci_low"] == "" for r in rows if r["metric"] == "loss")

    with open(out / "drift_synthesis_cells.csv") as fh:
        cells = list(csv.DictReader(fh))
    assert list(cells[0]) == list(CELL_FIELDS)
    per_seed = {}
    for r in acc:
        per_seed.setdefault((r["model"], r["test_variant"], r["intensity"], r["corruption"], r["severity"]), []).append(
            float(r["value"]))
    means = {}
    for c in (c for c in cells if c["metric"] == "accuracy"):
        key = (c["model"], c["test_variant"], c["intensity"], c["corruption"], c["severity"])
        values = per_seed[key]
        assert c["n_seeds"] == "2" and float(c["mean"]) == pytest.approx(np.mean(values))
        assert (float(c["min"]), float(c["max"])) == (min(values), max(values))
        assert float(c["ci_low"]) <= float(c["mean"]) <= float(c["ci_high"])
        means[key] = float(c["mean"])
    by_key = {(c["model"], c["test_variant"], c["intensity"], c["corruption"], c["severity"]): c
              for c in cells if c["metric"] == "accuracy"}
    for key, c in by_key.items():
        ref = (key[0], "model", "1.0", "", "")
        if key == ref:
            assert c["reference"] == "" and c["diff"] == ""
            continue
        assert c["reference"] == "model at 1" and float(c["diff"]) == pytest.approx(means[key] - means[ref])
        assert float(c["diff_ci_low"]) <= float(c["diff"]) <= float(c["diff_ci_high"])
        assert c["exceeds_seed_spread"] in ("True", "False")
    # A static model's own variant is its own view: the paired difference is exactly 0, image by image.
    same = by_key[("flips", "ma_u_ga", "1.0", "", "")]
    assert (float(same["diff"]), float(same["diff_ci_low"]), float(same["diff_ci_high"])) == (0.0, 0.0, 0.0)
    assert same["diff_excludes_zero"] == "False" and same["exceeds_seed_spread"] == "False"

    summary = json.loads((out / "drift_synthesis.json").read_text())["summary"]  # strict JSON
    assert set(summary["models"]) == {"flips", "plain"} and summary["comparison"]["reference"] == "flips"
    plain = summary["models"]["plain"]
    assert set(plain["by_intensity"]) == {"1.0", "0.05"}
    assert plain["isp_drop"]["cells"] == 2 and summary["models"]["flips"]["isp_drop"]["cells"] == 1
    assert plain["drop_ratio"]["study"] == [4.0, 10.0]
    vs = summary["comparison"]["models"]["plain"]["by_intensity"]["1.0"]
    assert vs["diff"] == pytest.approx(means[("plain", "model", "1.0", "", "")] - means[("flips", "model", "1.0", "", "")])
    assert {"compare_models.png", "variant_intensity.png", "corruptions.png"} <= set(report["files"])
    md = (out / "summary.md").read_text()
    assert "percentile bootstrap over the test images (200 resamples" in md and "| plain | gaussian_noise 3 | 1 |" in md
    assert "plain vs flips (own view, same test images)" in report["text"]


def test_compared_models_must_share_the_test_data(trained, tmp_path):
    from raw_isp.training.arguments import OptionError

    other = tmp_path / "other"
    other.mkdir()
    args = json.loads((trained / "training_args.json").read_text())
    (other / "training_args.json").write_text(json.dumps({**args, "num_examples": 50}))
    with pytest.raises(OptionError, match="trained on other data .*num_examples=50 vs 60"):
        synthesize(trained, tmp_path / "r", compare=[other], max_eval_samples=4)
    for labels, message in ((["a b", "c"], "must be letters"), (["a", "a"], "must differ"),
                            (["bi_s_ga", "c"], "not an ISP variant"), (["a"], "1 labels for 2 models")):
        with pytest.raises(OptionError, match=message):
            synthesize(trained, tmp_path / "r", compare=[trained], labels=labels, max_eval_samples=4)
    assert not (tmp_path / "r").exists()


def test_variants_take_the_models_exposure_and_each_batchs_intensity(trained):
    # A model whose ISP applies gain 1 / intensity: its own variant, rebuilt by the grid, must
    # develop every batch exactly as the model does, at full and at low light.
    from accelerate import Accelerator

    from raw_isp.drift.synthesis import evaluate_grid, load_by_intensity, training_settings
    from raw_isp.isp.config import CameraPreset
    from raw_isp.models.modeling import load_raw_model

    model, info = load_raw_model(trained)
    camera = CameraPreset.parse(info["camera"])
    exposed = model.with_isp(raw_isp.StaticISP("ma_u_ga", camera=camera, exposure="metadata"))
    data = load_by_intensity(training_settings(trained, max_eval_samples=4), "test", [1.0, 0.05])
    names = model.model.config.id2label
    names = [names[i] for i in range(len(names))]
    samples = {}
    acc = Accelerator(cpu=True)
    rows = evaluate_grid(exposed, data, acc, "classification", names, ["ma_u_ga"], camera, 8, samples=samples)
    loss = {(r["test_variant"], r["intensity"]): r["value"] for r in rows if r["metric"] == "loss"}
    for r in (1.0, 0.05):
        assert loss[("ma_u_ga", r)] == loss[("model", r)]
        np.testing.assert_array_equal(samples[("ma_u_ga", r, "", "")], samples[("model", r, "", "")])
    unexposed = model.with_isp(raw_isp.StaticISP("ma_u_ga", camera=camera, exposure=None))
    plain = evaluate_grid(unexposed, {0.05: data[0.05]}, acc, "classification", names, ["ma_u_ga"], camera, 8)
    assert [r["value"] for r in plain if r["metric"] == "loss"][0] != loss[("model", 0.05)]  # the gain mattered


def test_an_unrelated_partial_folder_beside_the_report_is_not_deleted(drift_synthesis, trained, tmp_path, capsys):
    # issue 18: drift_synthesis.py --output_dir X deleted a pre-existing X.partial with everything in it
    from raw_isp.drift.synthesis_report import write_report
    from raw_isp.training.folders import NotOwned

    out, staging = tmp_path / "X", tmp_path / "X.partial"
    (staging / "photos").mkdir(parents=True)
    (staging / "photos" / "a.jpg").write_bytes(b"mine")
    assert drift_synthesis.main(["--model", str(trained), "--output_dir", str(out), "--max_eval_samples", "4"]) == 2
    err = capsys.readouterr().err
    assert f"error: --output_dir {out}: the report is staged in {staging}, which already exists and was not written " \
           "by raw_isp (no marker; it holds photos/); it is not deleted" in err
    with pytest.raises(NotOwned, match="X.partial: this staging folder of a drift report was not written by raw_isp"):
        write_report(out, {}, {}, [])  # the mechanism itself, below the script's early check
    assert (staging / "photos" / "a.jpg").read_bytes() == b"mine" and not out.exists()
