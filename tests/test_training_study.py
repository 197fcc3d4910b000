"""What the drift study relies on in the training loop: twins that differ only in their ISP,
ISP parameters in units that mean the same at every light level, a resume that equals the
uninterrupted run on an epoch's last step, the trivial baseline, Dice losses and the Raw2Logit
protocol preset. Tiny synthetic data and tiny models."""

import json

import numpy as np
import pytest
import torch

from raw_isp import ParametrizedISP, StaticISP
from raw_isp.training import parse_training_args, train
from raw_isp.training.cli import main as train_main
from raw_isp.training.evaluation import constant_prediction_scores
from raw_isp.training.loop import build_model, dice_loss, task_loss
from raw_isp.training.protocols import PROTOCOLS

# The tiny runs of the training tests: the same sizes and the same module-scoped datasets cache.
from test_training import DRONE, MICRO  # noqa: E402


def _args(tmp_path, cache, name, *extra, task="classification"):
    return parse_training_args(task, ["--output_dir", str(tmp_path / name), "--cache_dir", cache,
                                      *(MICRO if task == "classification" else DRONE), *extra])


def _losses(result):
    return [h["train_loss"] for h in result.history if "train_loss" in h]


def test_frozen_parametrized_isp_reproduces_the_static_one(tmp_path, cache):
    # Same seed, same data order, same task-model initialisation: a parametrized ISP whose
    # parameters do not train is the static pipeline, so the two runs agree to float rounding.
    runs = {}
    for isp in ("static:ma_s_ga", "parametrized-frozen:ma_s_ga"):
        args = _args(tmp_path, cache, isp.replace(":", "-"), "--isp", isp, "--intensity", "0.05",
                     "--max_train_steps", "6")
        runs[isp] = train(args)
    static, frozen = runs["static:ma_s_ga"], runs["parametrized-frozen:ma_s_ga"]
    assert np.allclose(_losses(static), _losses(frozen), rtol=0, atol=1e-5)
    assert max(abs(a - b) for a, b in zip(_losses(static), _losses(frozen))) < 1e-5
    for key in ("test_accuracy", "test_macro_f1", "eval_accuracy"):
        assert frozen.results[key] == static.results[key], key
    assert frozen.results["test_loss"] == pytest.approx(static.results["test_loss"], abs=1e-5)


def test_every_isp_kind_starts_from_the_same_task_model(tmp_path, cache):
    # The learned ISP draws its own weights; it must not shift the task model's initialisation.
    names = ["BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC"]
    weights = {}
    for isp in ("static:bi_s_ga", "parametrized", "learned"):
        torch.manual_seed(7)
        model = build_model(_args(tmp_path, cache, "x", "--isp", isp), names)
        weights[isp] = model.model.state_dict()
        after = torch.rand(3)  # and the global generator is left where a static ISP leaves it
        weights[isp]["_after"] = after
    for isp in ("parametrized", "learned"):
        for key, value in weights["static:bi_s_ga"].items():
            assert torch.equal(value, weights[isp][key]), (isp, key)


def test_black_level_rate_is_scaled_by_the_exposure_gain():
    isp = ParametrizedISP("bi_s_ga", camera="microscopy", exposure="metadata")
    groups = {g["name"]: g["lr"] for g in isp.optimizer_groups(1e-3, reference_gain=100.0)}
    assert groups["isp.black_level"] == pytest.approx(1e-5)
    assert {k: v for k, v in groups.items() if k != "isp.black_level"} == {
        f"isp.{n}": 1e-3 for n in ("exposure", "white_balance", "colour_matrix", "sharpen_kernel", "blur_kernel",
                                   "gamma")}
    frozen = ParametrizedISP("bi_s_ga", learn=("gamma",))
    assert [g["name"] for g in frozen.optimizer_groups(1e-3)] == ["isp.gamma"]
    with pytest.raises(ValueError, match="reference_gain"):
        isp.optimizer_groups(1e-3, reference_gain=0.0)

    # One optimiser step in these units moves the developed view alike at full light and at 0.01.
    rng = np.random.default_rng(0)
    raw = torch.from_numpy(rng.uniform(0.05, 0.9, (2, 32, 32)).astype(np.float32))
    moved = {}
    for ratio in (1.0, 0.01):
        isp = ParametrizedISP("bi_s_ga", camera="microscopy", exposure="metadata", learn=("black_level",))
        dim = raw * ratio
        before = isp(dim, intensity=ratio).detach()
        gain = float(isp.exposure_gain(dim, intensity=ratio).mean())
        opt = torch.optim.Adam(isp.optimizer_groups(1e-3, reference_gain=gain))
        isp(dim, intensity=ratio).mean().backward()
        opt.step()
        moved[ratio] = float((isp(dim, intensity=ratio).detach() - before).abs().mean())
    assert moved[0.01] == pytest.approx(moved[1.0], rel=0.5)


def test_learned_kernels_keep_their_sum_and_replay_in_the_static_isp():
    isp = ParametrizedISP("bi_u_ga", learn=("sharpen_kernel", "blur_kernel"))
    raw = torch.rand(1, 24, 24)
    assert torch.allclose(isp(raw), StaticISP("bi_u_ga")(raw), atol=3e-6)  # the identity at initialisation (float32)
    with torch.no_grad():
        isp.sharpen_kernel.add_(0.3)
        isp.blur_kernel.mul_(2.0)
    assert float(isp._kernel("sharpen_kernel").sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(isp._kernel("blur_kernel").sum()) == pytest.approx(1.0, abs=1e-5)
    flat = torch.full((1, 24, 24), 0.4)
    assert torch.allclose(isp(flat), StaticISP("bi_u_ga")(flat), atol=1e-5)  # a flat patch keeps its level
    assert torch.allclose(StaticISP(*isp.static_config())(raw), isp(raw).detach(), atol=1e-5)


def test_resume_from_a_checkpoint_on_an_epochs_last_step_keeps_that_epochs_validation(tmp_path, cache):
    # 44 training images in batches of 11: epochs of 4 steps; a checkpoint every 4 steps falls on
    # each epoch's last step. The run killed there and resumed equals the uninterrupted one.
    common = [*MICRO, "--per_device_train_batch_size", "11", "--num_train_epochs", "3", "--checkpointing_steps", "4"]
    full = tmp_path / "full"
    assert train_main("classification", ["--output_dir", str(full), "--cache_dir", cache, *common]) == 0

    class Killed(Exception):
        pass

    class KillAt:
        def on_checkpoint(self, step, folder):
            if step == 4:
                raise Killed

        def __getattr__(self, name):  # every other callback event: nothing to do
            return lambda *a, **k: None

    killed = tmp_path / "killed"
    args = parse_training_args("classification", ["--output_dir", str(killed), "--cache_dir", cache, *common])
    with pytest.raises(Killed):
        train(args, callbacks=[KillAt()])
    state = json.loads((killed / "step_4" / "trainer_state.json").read_text())
    assert any(h.get("step") == 4 and "eval_loss" in h for h in state["history"])  # validated before saving
    assert train_main("classification", ["--output_dir", str(killed), "--cache_dir", cache, *common,
                                         "--resume_from_checkpoint"]) == 0
    history = lambda folder: [{k: v for k, v in e.items() if k != "images_per_second"}  # noqa: E731
                              for e in json.loads((folder / "train_history.json").read_text())]
    assert history(killed) == history(full)
    assert [h["step"] for h in history(full) if "eval_loss" in h] == [4, 8, 12]
    a, b = (json.loads((f / "all_results.json").read_text()) for f in (full, killed))
    for key in ("best_step", "best_metric", "test_accuracy", "test_loss"):
        assert a[key] == b[key], key
    assert (killed / "model.safetensors").read_bytes() == (full / "model.safetensors").read_bytes()


def test_results_carry_the_trivial_baseline(tmp_path, cache, capsys):
    out = tmp_path / "cls"
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", cache, *MICRO,
                                         "--max_train_steps", "2"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_baseline_class"] in ("BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC")
    assert 0 < results["test_baseline_accuracy"] < 1
    assert "baseline (always " in capsys.readouterr().out


def test_constant_prediction_scores_match_an_independent_count():
    train_counts, test_counts = [5, 30, 10], [4, 20, 6]
    scores = constant_prediction_scores(train_counts, test_counts, "classification", ["a", "b", "c"])
    assert scores["class"] == "b"
    assert scores["accuracy"] == pytest.approx(20 / 30)
    f1_b = 2 * (20 / 30) * 1.0 / ((20 / 30) + 1.0)
    assert scores["macro_f1"] == pytest.approx(f1_b / 3)
    seg = constant_prediction_scores([900, 100], [800, 200], "segmentation", ["background", "car"])
    assert seg["class"] == "background" and seg["iou_car"] == 0.0
    assert seg["mean_iou"] == pytest.approx(0.8 / 2) and seg["pixel_accuracy"] == pytest.approx(0.8)


def test_dice_loss_matches_an_independent_computation():
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(2, 3, 5, 4)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 3, (2, 5, 4)))
    labels[0, 0, 0] = 255  # ignored
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    valid = labels.numpy() != 255
    dice = []
    for c in (1, 2):
        pc, yc = p[:, c][valid], (labels.numpy() == c)[valid]
        dice.append((2 * (pc * yc).sum() + 1) / (pc.sum() + yc.sum() + 1))
    assert float(dice_loss(logits, labels)) == pytest.approx(1 - np.mean(dice), abs=1e-6)
    ce = torch.nn.functional.cross_entropy(logits, labels, ignore_index=255)
    both = task_loss(logits, labels, "segmentation", loss="dice_ce")
    assert float(both) == pytest.approx(float(ce) + 1 - np.mean(dice), abs=1e-5)
    perfect = torch.nn.functional.one_hot(labels.clamp(0, 2), 3).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(perfect, labels)) < 1e-3


def test_dice_loss_trains_a_segmenter_and_is_refused_for_classification(tmp_path, cache, capsys):
    out = tmp_path / "seg"
    assert train_main("segmentation", ["--output_dir", str(out), "--cache_dir", cache, *DRONE, "--loss", "dice_ce",
                                       "--max_train_steps", "2"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_baseline_class"] == "background" and results["test_baseline_iou_car"] == 0.0
    assert json.loads((out / "training_args.json").read_text())["loss"] == "dice_ce"
    with pytest.raises(SystemExit):
        parse_training_args("classification", ["--output_dir", str(tmp_path / "c"), "--loss", "dice"])
    assert "Dice losses are for segmentation" in capsys.readouterr().err


def test_raw2logit_protocol_sets_the_studys_settings_and_trains_a_step(tmp_path, cache):
    args = parse_training_args("classification", ["--output_dir", str(tmp_path / "p"), "--protocol", "raw2logit"])
    assert (args.model_name_or_path, args.optim, args.learning_rate, args.isp_learning_rate,
            args.per_device_train_batch_size, args.exposure, args.isp_rate_units) == (
        "resnet-18", "adam", 1e-5, 1e-5, 32, "none", "raw")
    seg = parse_training_args("segmentation", ["--output_dir", str(tmp_path / "s"), "--protocol", "raw2logit"])
    assert (seg.model_name_or_path, seg.loss) == ("upernet-resnet34", "dice")
    # Options on the command line override the preset; reduced, it trains offline.
    out = tmp_path / "run"
    assert train_main("classification", ["--output_dir", str(out), "--cache_dir", cache, "--protocol", "raw2logit",
                                         "--num_examples", "60", "--model_name_or_path", "resnet-micro",
                                         "--image_size", "64", "--per_device_train_batch_size", "8",
                                         "--max_train_steps", "1", "--split_seed", "3", "--isp", "parametrized"]) == 0
    saved = json.loads((out / "training_args.json").read_text())
    assert (saved["protocol"], saved["optim"], saved["split_seed"], saved["model_name_or_path"]) == (
        "raw2logit", "adam", 3, "resnet-micro")
    assert set(PROTOCOLS["raw2logit"]) == {"classification", "segmentation"}


def test_split_seed_resplits_the_data(tmp_path, cache):
    from raw_isp.training.data import load_splits

    ids = {}
    for seed in (0, 1):
        splits = load_splits(_args(tmp_path, cache, "s", "--split_seed", str(seed)))
        ids[seed] = sorted(splits["test"]["image_id"])
    assert ids[0] != ids[1]


def test_drift_synthesis_states_the_trivial_baseline_and_flags_a_model_at_it(script, tmp_path, cache, capsys):
    # A two-step model predicts (nearly) one class: the report gives the baseline beside the own
    # view and warns that the drift figures measure little.
    model = tmp_path / "model"
    assert train_main("classification", ["--output_dir", str(model), "--cache_dir", cache, *MICRO,
                                         "--max_train_steps", "1", "--learning_rate", "0"]) == 0
    capsys.readouterr()
    out = tmp_path / "ds"
    assert script("drift_synthesis").main(["--model", str(model), "--output_dir", str(out), "--variants", "bi_s_ga",
                                           "--intensities", "1.0", "--corruptions", "none", "--n_boot", "200"]) == 0
    printed = capsys.readouterr().out
    assert "trivial baseline (every image " in printed
    summary = json.loads((out / "drift_synthesis.json").read_text())["summary"]
    base = summary["baseline"]
    truth = np.bincount([int(v) for v in __import__("raw_microscopy").load_dataset(
        "raw", split="test", num_examples=60, cache_dir=cache, intensity=1.0)["label"]], minlength=9)
    assert base["mean"] == pytest.approx(truth.max() / truth.sum())
    assert ("WARNING: the model's own view is within the test-image noise" in printed) == base["within_noise"]
    assert base["own_minus_baseline"]["diff"] == pytest.approx(summary["clean"] - base["mean"], abs=1e-9)


def test_baseline_warning_separates_a_constant_model_from_one_that_learned():
    from raw_isp.drift.synthesis_report import _add_baseline, _baseline_lines
    from raw_isp.drift.statistics import cell_values
    from raw_isp.metrics.bootstrap import metric_function, resample_indices

    names = ["a", "b", "c"]
    labels = np.array([1] * 30 + [0] * 15 + [2] * 15)
    fn = metric_function("classification", "accuracy", names)
    idx = resample_indices(len(labels), 300, 0)

    def confusions(pred):
        cm = np.zeros((len(labels), 3, 3), dtype=np.int64)
        cm[np.arange(len(labels)), labels, pred] = 1
        return cm

    for pred, flagged in ((np.ones_like(labels), True), (labels.copy(), False)):
        cm = confusions(pred)
        key = ("m", "model", 1.0, "", "")
        cells = {(*key, "accuracy"): cell_values([cm], fn, idx)}
        out = {}
        _add_baseline(out, "m", 0, 1.0, cells, {("m", 0, "model", 1.0, "", ""): cm}, fn, idx, names, "accuracy", 0.95)
        assert out["baseline"]["class"] == "b" and out["baseline"]["mean"] == pytest.approx(0.5)
        assert out["baseline"]["within_noise"] is flagged
        assert any("WARNING" in line for line in _baseline_lines(out["baseline"], "accuracy")) is flagged
