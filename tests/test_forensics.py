"""Drift forensics: SSIM, the adversarial ISP search and its bounds (raw_isp.drift.forensics), the
report on a trained folder (raw_isp.drift.forensics_report) and scripts/drift_forensics.py."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch

import raw_isp
from raw_isp.drift.forensics import AdversarialISPSearch, parse_groups, ssim, view_distance
from raw_isp.drift.forensics_report import load_batches, reference_from_info, reference_isp
from raw_isp.training import RawTrainingArguments
from raw_isp.training.cli import main as train_main

MICRO = ["--num_examples", "60", "--model_name_or_path", "vit-micro", "--per_device_train_batch_size", "8",
         "--per_device_eval_batch_size", "6", "--logging_steps", "1", "--max_train_steps", "2"]


# ---------------------------------------------------------------- SSIM and distances

def _images(seed, shape=(3, 3, 40, 37)):
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(shape, generator=g, dtype=torch.float64), 5, 1, 2)
    x = (0.6 * smooth + 0.4 * torch.rand(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    y = (x + 0.15 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    x, y = _images(0)
    ours = ssim(x, y)
    ref = [structural_similarity(x[i].numpy(), y[i].numpy(), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1, channel_axis=0) for i in range(3)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-12)
    assert ours.shape == (3,) and (ours < 0.99).all()
    np.testing.assert_allclose(ssim(x.float(), y.float()).numpy(), ref, atol=2e-6)
    assert ssim(x[0], y[0]).shape == ()  # unbatched
    assert torch.equal(ssim(x.float(), x.float()), torch.ones(3))
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        ssim(torch.rand(1, 3, 10, 20), torch.rand(1, 3, 10, 20))
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 21))


def test_view_distances():
    x, y = _images(1)
    np.testing.assert_allclose(view_distance(x, y, "l2").numpy(), ((x - y).numpy() ** 2).reshape(3, -1).mean(1))
    np.testing.assert_allclose(view_distance(x, y, "ssim").numpy(), 1 - ssim(x, y).numpy())
    assert (view_distance(x, y, "ssim") > 0).all()
    with pytest.raises(ValueError, match="distance must be one of"):
        view_distance(x, y, "l1")


def test_parameter_groups():
    isp = raw_isp.ParametrizedISP("bi_s_ga")
    assert parse_groups("all, gamma,sharpening,blur,gamma", isp) == ["all", "gamma", "sharpen_kernel", "blur_kernel"]
    with pytest.raises(ValueError, match="unknown parameter group 'hue'"):
        parse_groups("gamma,hue", isp)
    with pytest.raises(ValueError, match="no such parameter"):
        parse_groups("blur_kernel", raw_isp.ParametrizedISP("bi_s_me"))  # median denoising: no blur kernel


# ---------------------------------------------------------------- the search on a tiny model

class TinyClassifier(torch.nn.Module):
    """Logits from per-channel means and contrasts of the view: sensitive to colour and gamma."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 3)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[8.0, -4, 0, 2, 0, 0], [-4, 8, 0, 0, 2, 0], [0, -4, 8, 0, 0, 2]]))
            self.linear.bias.zero_()

    def forward(self, views):
        return self.linear(torch.cat([views.mean((2, 3)), views.std((2, 3))], 1))


@pytest.fixture(scope="module")
def tiny_search_inputs():
    g = torch.Generator().manual_seed(5)
    rgb = torch.rand(12, 3, 1, 1, generator=g) * 0.6 + 0.2
    rgb = (rgb + 0.05 * torch.rand(12, 3, 32, 32, generator=g)).clamp(0, 1)
    raws = raw_isp.mosaic(rgb)  # (12, 32, 32) in [0, 1]
    model = TinyClassifier().eval()
    reference = raw_isp.ParametrizedISP("bi_s_ga", learn=())
    with torch.no_grad():
        labels = model(reference(raws)).argmax(1)  # the model is right on the reference views
    labels[:3] = (labels[:3] + 1) % 3  # ... except on three images
    batches = [(raws[:5], labels[:5]), (raws[5:], labels[5:])]
    return reference, model, batches


@pytest.mark.parametrize("distance", ["ssim", "l2"])
def test_search_bounds_and_replay(tiny_search_inputs, distance):
    reference, model, batches = tiny_search_inputs
    search = AdversarialISPSearch(reference, model, batches, "classification", 3, distance=distance,
                                  metric="accuracy")
    assert search.clean.metric == pytest.approx(9 / 12)
    free = search.search("all", 0.0, steps=4, lr=0.2)
    assert free.attained <= free.clean
    assert free.attained < free.clean  # the search really finds a worse ISP here
    assert free.history[1]["loss"] > free.history[0]["loss"]  # the first step raises the loss
    # The reported metric is the metric of the returned parameters, recomputed independently.
    isp = search.isp_for(free.state)
    with torch.no_grad():
        preds = torch.cat([model(isp(raw)).argmax(1) for raw, _ in batches])
    labels = torch.cat([lab for _, lab in batches])
    assert (preds == labels).double().mean().item() == pytest.approx(free.attained)
    with torch.no_grad():
        dist = torch.cat([view_distance(isp(raw), reference(raw), distance) for raw, _ in batches]).mean()
    assert dist.item() == pytest.approx(free.distance, rel=1e-4, abs=1e-7)
    # The replayed processor develops the adversarial view.
    proc = raw_isp.RawISPImageProcessor(**isp.processor_settings(), do_resize=False, do_normalize=False)
    torch.testing.assert_close(proc(batches[0][0])["pixel_values"], isp(batches[0][0]), atol=2e-5, rtol=0)

    for lam in (1.0, 30.0, 1e4):
        r = search.search("all", lam, steps=4, lr=0.2)
        assert r.distance <= r.clean / lam
        assert r.attained + lam * r.distance <= r.clean
    untouched = search.search("gamma", 1e4, steps=2, lr=0.2)
    assert untouched.step == 0 and untouched.attained == untouched.clean and untouched.distance == 0.0


def test_search_moves_only_its_group(tiny_search_inputs):
    reference, model, batches = tiny_search_inputs
    search = AdversarialISPSearch(reference, model, batches, "classification", 3)
    r = search.search("white_balance", 0.0, steps=2, lr=0.2)
    hist = [h["step"] for h in r.history]
    assert hist == [0, 1, 2]
    for name, value in r.state.items():
        same = torch.equal(value, getattr(reference, name).detach())
        assert same == (name != "white_balance" or r.step == 0), name
    with pytest.raises(ValueError, match="lambda must be"):
        search.search("gamma", -1.0)
    with pytest.raises(ValueError, match="unknown parameter group"):
        search.search("hue", 1.0)


def test_batches_pass_their_intensity_to_the_isp(tiny_search_inputs):
    # Frames at a quarter of the light, developed with exposure="metadata" (gain 1 / 0.25), give
    # the reference views of the full-light frames (neutral camera: black level 0), so the same
    # metric; without the batches' intensity such an ISP cannot run.
    reference, model, batches = tiny_search_inputs
    plain = AdversarialISPSearch(reference, model, batches, "classification", 3, metric="accuracy")
    metered = raw_isp.ParametrizedISP("bi_s_ga", learn=(), exposure="metadata")
    dim = [(raw * 0.25, labels, torch.full((raw.shape[0],), 0.25)) for raw, labels in batches]
    search = AdversarialISPSearch(metered, model, dim, "classification", 3, metric="accuracy")
    assert search.metric_name == "accuracy" and search.clean.metric == plain.clean.metric
    torch.testing.assert_close(search.reference_view(7), plain.reference_view(7), atol=1e-5, rtol=0)
    assert search.intensity(7).tolist() == [0.25] and plain.intensity(7) is None
    assert torch.equal(search.raw(7), dim[1][0][2])
    # The learnable gain on top of the metadata one is searched like any group.
    r = search.search("exposure", 0.0, steps=2, lr=0.3)
    assert r.attained <= r.clean and set(r.state) >= {"exposure"}
    # The log-gain starts at 0 stops: Adam's step is relative to 1 stop for it (a step of lr 0.05
    # moves it 0.05 stops), not to the generic floor of 0.05 (0.0025 stops, too small to matter).
    assert search.scales()["exposure"] == 1.0 and search.scales()["gamma"] == pytest.approx(2.2)
    with pytest.raises(ValueError, match="no intensity was given"):
        AdversarialISPSearch(metered, model, batches, "classification", 3)
    assert AdversarialISPSearch(reference, model, batches, "classification", 3).metric_name == "macro_f1"


# ---------------------------------------------------------------- the script

@pytest.fixture(scope="module")
def drift_forensics(script):
    return script("drift_forensics")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny classifier (static ISP) and a tiny one with a trained parametrized ISP."""
    root = tmp_path_factory.mktemp("forensics")
    cache = str(root / "hf_cache")
    models = {}
    for name, isp, extra in (("static", "static:bi_s_ga", ()), ("param", "parametrized:bi_u_ga", ()),
                             ("metadata", "static:bi_s_ga", ("--exposure", "metadata", "--intensity", "0.25"))):
        out = root / name
        argv = ["--output_dir", str(out), "--cache_dir", cache, *MICRO, "--isp", isp, "--isp_learning_rate", "0.05",
                *extra]
        assert train_main("classification", argv) == 0
        models[name] = out
    return root, cache, models


def _run(drift_forensics, model, out, cache, *extra):
    argv = ["--model", str(model), "--output_dir", str(out), "--cache_dir", cache, *extra]
    assert drift_forensics.main(argv) == 0
    return json.loads((out / "forensics.json").read_text())


def test_script_writes_everything_and_keeps_its_bounds(drift_forensics, trained, tmp_path, capsys):
    from transformers import AutoImageProcessor

    root, cache, models = trained
    out = tmp_path / "out"
    summary = _run(drift_forensics, models["static"], out, cache, "--groups", "all,gamma,sharpening",
                   "--lambdas", "0,10000",
                   "--steps", "2", "--lr", "0.3", "--max_eval_samples", "0")
    printed = capsys.readouterr().out
    # The registry's main metric of classification (macro-F1) is the default.
    assert "clean macro_f1" in printed and "worst case:" in printed and "most sensitive group:" in printed
    for name in ("forensics.csv", "forensics.json", "forensics.md", "forensics.png", "worst_case.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with open(out / "forensics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["group"], float(r["lambda"])) for r in rows] == [
        (g, lam) for g in ("all", "gamma", "sharpen_kernel") for lam in (0.0, 1e4)]
    assert {r["distance_kind"] for r in rows} == {"ssim"} and {r["metric"] for r in rows} == {"macro_f1"}
    clean = float(rows[0]["clean"])
    assert clean == summary["clean"] and all(float(r["clean"]) == clean for r in rows)
    for r in rows:
        if float(r["lambda"]) == 0:
            assert float(r["attained"]) <= clean
        else:
            assert float(r["distance"]) <= clean / float(r["lambda"])
            assert float(r["bound"]) == pytest.approx(clean / float(r["lambda"]))
    assert summary["num_samples"] == 9  # the whole test split of 60 examples
    md = (out / "forensics.md").read_text()
    assert f"{clean:.4f}" in md and summary["most_sensitive_group"] in md

    # The clean metric is the model's own test macro-F1 (StaticISP and ParametrizedISP agree).
    results = json.loads((models["static"] / "all_results.json").read_text())
    assert clean == pytest.approx(results["test_macro_f1"])

    # Each adversarial processor replays its ISP; the worst case's replay gives the reported metric.
    settings = RawTrainingArguments.from_output_dir(models["static"], cache_dir=cache)
    batches, _ = load_batches(settings, "test", None, None, torch.device("cpu"))
    model, info = raw_isp.models.modeling.load_raw_model(models["static"])
    worst = summary["worst_case"]
    for row in rows:
        folder = out / row["processor"]
        record = json.loads((folder / "adversarial.json").read_text())
        isp = reference_from_info(info)
        with torch.no_grad():
            for name, value in record["parameters"].items():
                getattr(isp, name).copy_(torch.tensor(value))
        processor = AutoImageProcessor.from_pretrained(folder)
        assert isinstance(processor, raw_isp.RawISPImageProcessor)
        raw = (batches[0][0] * 65535).round().to(torch.int32).numpy().astype(np.uint16)
        ratio = batches[0][2]  # the frames' intensity ratios (the models use metadata exposure)
        replayed = processor(raw, intensity=ratio)["pixel_values"]
        with torch.no_grad():
            expected = model.processor.to_pixel_values(isp(batches[0][0], intensity=ratio))
        torch.testing.assert_close(replayed, expected, atol=1e-4, rtol=0)
        if row["processor"] == worst["processor"]:
            preds, refs = [], []
            with torch.no_grad():
                for raw_f, labels, ratios in batches:
                    raw16 = (raw_f * 65535).round().to(torch.int32).numpy().astype(np.uint16)
                    preds.append(model.model(**processor(raw16, intensity=ratios)).logits.argmax(1))
                    refs.append(labels)
            cm = raw_isp.metrics.confusion_matrix(torch.cat(preds), torch.cat(refs), num_labels=len(info_labels(model)))
            assert raw_isp.metrics.classification_scores(cm)["macro_f1"] == pytest.approx(worst["attained"])


def test_parametrized_model_is_searched_from_its_trained_parameters(drift_forensics, trained, tmp_path):
    root, cache, models = trained
    model, info = raw_isp.models.modeling.load_raw_model(models["param"])
    reference = reference_isp(model, info)
    start = raw_isp.ParametrizedISP("bi_u_ga", camera="microscopy")
    for name, p in reference.named_parameters():
        assert torch.equal(p, getattr(model.isp, name)) and not p.requires_grad
        assert not torch.equal(p, getattr(start, name)), name  # trained, not the initial values
    summary = _run(drift_forensics, models["param"], tmp_path / "out", cache, "--groups", "white_balance",
                   "--lambdas", "0",
                   "--distance", "l2", "--steps", "1")
    results = json.loads((models["param"] / "all_results.json").read_text())
    assert summary["clean"] == pytest.approx(results["test_macro_f1"])
    assert summary["rows"][0]["distance_kind"] == "l2" and summary["rows"][0]["attained"] <= summary["clean"]


def test_a_model_with_metadata_exposure_is_searched_with_its_frames_intensity(drift_forensics, trained, tmp_path):
    root, cache, models = trained
    model, info = raw_isp.models.modeling.load_raw_model(models["metadata"])
    assert info["exposure"] == "metadata" and reference_isp(model, info).config.exposure == "metadata"
    settings = RawTrainingArguments.from_output_dir(models["metadata"], cache_dir=cache)
    batches, _ = load_batches(settings, "test", None, None, torch.device("cpu"))
    assert all(torch.equal(b[2], torch.full_like(b[2], 0.25)) for b in batches)
    summary = _run(drift_forensics, models["metadata"], tmp_path / "out", cache, "--groups", "exposure,gamma",
                   "--lambdas", "0", "--steps", "1")
    results = json.loads((models["metadata"] / "all_results.json").read_text())
    assert summary["clean"] == pytest.approx(results["test_macro_f1"])
    assert (tmp_path / "out" / "worst_case.png").is_file()


def info_labels(model):
    return model.model.config.id2label


def _fake_model(folder, source, isp):
    folder.mkdir()
    for name in ("training_args.json", "isp_config.json"):
        shutil.copy(source / name, folder / name)
    info = json.loads((folder / "isp_config.json").read_text())
    info["isp"] = isp
    (folder / "isp_config.json").write_text(json.dumps(info))
    return folder


@pytest.mark.parametrize("extra, message", [
    (["--groups", "all,hue"], "unknown parameter group 'hue'"),
    (["--groups", "blur_kernel"], None),  # set per case below
    (["--lambdas", "0,-1"], "--lambdas: -1 must be a finite number >= 0"),
    (["--lambdas", "0,x"], "--lambdas: 'x' is not a number"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--lr", "-0.1"], "--lr must be a positive number"),
])
def test_bad_arguments_fail_before_work(drift_forensics, trained, tmp_path, capsys, extra, message):
    root, cache, models = trained
    model = models["static"]
    if extra == ["--groups", "blur_kernel"]:
        model = _fake_model(tmp_path / "median", models["static"], "static:bi_s_me")
        message = "--groups: parameter group 'blur_kernel': this ISP (bi_s_me) has no such parameter"
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        drift_forensics.main(["--model", str(model), "--output_dir", str(out), *extra])
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unusable_model_folders_are_refused(drift_forensics, trained, tmp_path, capsys):
    root, cache, models = trained
    learned = _fake_model(tmp_path / "learned", models["static"], "learned")
    cases = [
        (learned, "its ISP is 'learned'"),
        (tmp_path / "missing", "no such folder"),
        (tmp_path, "no isp_config.json"),
    ]
    for folder, message in cases:
        with pytest.raises(SystemExit):
            drift_forensics.main(["--model", str(folder), "--output_dir", str(tmp_path / "out")])
        assert message in capsys.readouterr().err, folder
    assert not (tmp_path / "out").exists()


def test_segmentation_model(drift_forensics, tmp_path):
    out = tmp_path / "seg"
    cache = str(tmp_path / "hf_cache")
    argv = ["--output_dir", str(out), "--cache_dir", cache, "--num_scenes", "10", "--frame_size", "512", "512",
            "--num_examples", "16", "--model_name_or_path", "segformer-micro", "--per_device_train_batch_size", "4",
            "--per_device_eval_batch_size", "3", "--max_train_steps", "2"]
    assert train_main("segmentation", argv) == 0
    summary = _run(drift_forensics, out, tmp_path / "forensics", cache, "--groups", "gamma,colour_matrix",
                   "--lambdas", "0,100",
                   "--steps", "2", "--lr", "0.3")
    results = json.loads((out / "all_results.json").read_text())
    assert summary["metric"] == "mean_iou" and summary["clean"] == pytest.approx(results["test_mean_iou"])
    assert [(r["group"], r["lambda"]) for r in summary["rows"]] == [
        ("gamma", 0.0), ("gamma", 100.0), ("colour_matrix", 0.0), ("colour_matrix", 100.0)]
    for r in summary["rows"]:
        assert r["attained"] <= r["clean"] if r["lambda"] == 0 else r["distance"] <= r["clean"] / r["lambda"]
    assert (tmp_path / "forensics" / "worst_case.png").is_file()


def test_sweep_order_and_shared_passes(tiny_search_inputs):
    reference, model, batches = tiny_search_inputs
    search = AdversarialISPSearch(reference, model, batches, "classification", 3)
    assert search.passes == 1  # the reference
    lambdas = [0.0, 1.0, 10.0]
    results = search.sweep(["gamma", "all"], lambdas, steps=3, lr=0.2)
    assert [(r.group, r.lam) for r in results] == [(g, lam) for g in ("gamma", "all") for lam in lambdas]
    # Per group: the first iterate (it does not depend on lambda) once, then steps - 1 passes per lambda.
    assert search.passes == 1 + 2 * (1 + len(lambdas) * 2)
    again = AdversarialISPSearch(reference, model, batches, "classification", 3).search("all", 1.0, steps=3, lr=0.2)
    assert again.history == results[4].history and again.step == results[4].step
