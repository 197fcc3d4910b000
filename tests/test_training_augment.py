"""Drift augmentation in training (raw_isp.training.augment): light levels thinned by the sensor
model, ISP variants and corruptions, drawn per batch and deterministic per seed and step; the
batches' intensity and the options that set it all up."""

import numpy as np
import pytest
import torch

import raw_isp
from raw_isp.isp.corruptions import CORRUPTIONS, corrupt
from raw_isp.models.modeling import build_isp
from raw_isp.training import parse_training_args
from raw_isp.training.augment import DriftAugmentation, compose, device_generator, draw_seed


def _frames(n=6, size=64, seed=0, level=20000.0):
    """uint16 frames (as the loaders' int16 view) of a smooth scene well above black."""
    rng = np.random.default_rng(seed)
    scene = rng.random((n, size // 8, size // 8)).repeat(8, 1).repeat(8, 2)
    dn = (1000 + level * (0.3 + 0.7 * scene)).astype(np.uint16)
    return torch.from_numpy(dn).view(torch.int16)


def _dn(raw):
    return raw.view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).double()


def test_draw_seeds_depend_on_every_part_of_the_key():
    base = draw_seed(42, 10, 0, "light", 0)
    assert base == draw_seed(42, 10, 0, "light", 0) and 0 <= base < 2**63
    others = {draw_seed(43, 10, 0, "light"), draw_seed(42, 11, 0, "light"), draw_seed(42, 10, 1, "light"),
              draw_seed(42, 10, 0, "isp"), draw_seed(42, 10, 0, "light", 1)}
    assert base not in others and len(others) == 5


def test_light_levels_are_photon_exact_per_frame_and_deterministic():
    sensor = raw_isp.SENSORS["microscopy"]
    aug = DriftAugmentation(7, ratios=(1.0, 0.5, 0.1), sensor=sensor)
    raw, intensity = _frames(12), torch.full((12,), 0.75)
    out, new_intensity, isp, view, draw = aug(raw, intensity, step=3)
    assert isp is None and view is None and draw.variant is None and draw.corruption is None
    ratios = torch.tensor(draw.ratios, dtype=torch.float64)
    assert set(draw.ratios) <= {1.0, 0.5, 0.1} and len(set(draw.ratios)) > 1  # drawn per frame
    assert out.dtype == torch.int16 and out.shape == raw.shape
    # The batch's intensity becomes i * r, so exposure="metadata" sees the true ratio.
    torch.testing.assert_close(new_intensity, (0.75 * ratios).float())
    full = ratios == 1.0
    assert torch.equal(out[full], raw[full])  # a ratio of 1 leaves the frame bit for bit
    # The mean signal above black scales by r (shot noise averages out over 4096 pixels).
    signal = (_dn(out) - sensor.black_level).mean((1, 2)) / (_dn(raw) - sensor.black_level).mean((1, 2))
    np.testing.assert_allclose(signal.numpy(), ratios.numpy(), rtol=0.01)
    # Same key, same frames; another step or another process, other draws.
    again = aug(raw, intensity, step=3)
    assert torch.equal(again[0], out) and again[4] == draw
    assert not torch.equal(aug(raw, intensity, step=4)[0], out)
    other = aug(raw, intensity, step=3, process=1)
    assert other[4].ratios != draw.ratios or not torch.equal(other[0], out)
    # Exactly what SensorModel.scale_intensity_batch gives with the documented generator.
    g = device_generator("cpu", 7, 3, 0, "light_noise", 0)
    assert torch.equal(sensor.scale_intensity_batch(raw, ratios, generator=g), out)


def test_isp_variants_and_corruptions_are_drawn_per_batch():
    calls = []

    def factory(variant):
        calls.append(variant)
        return build_isp(f"static:{variant}", camera="microscopy", exposure="metadata")

    variants = ("bi_s_ga", "ma_u_me", "me_s_me")
    aug = DriftAugmentation(1, variants=variants, isp_factory=factory, corruptions=("gaussian_noise", "contrast"),
                            severities=(2, 5))
    raw, intensity = _frames(4), torch.ones(4)
    seen_variants, seen_corruptions = set(), set()
    for step in range(40):
        out, new_intensity, isp, view, draw = aug(raw, intensity, step=step)
        assert out is raw and new_intensity is intensity and draw.ratios is None
        assert isp.config == raw_isp.ISPConfig.from_variant(draw.variant).with_exposure("metadata")
        seen_variants.add(draw.variant)
        seen_corruptions.add((draw.corruption, draw.severity))
        # Variant, corruption and severity are shared by all processes' shards of a batch.
        shard = aug.draw(4, step, process=3)
        assert (shard.variant, shard.corruption, shard.severity) == (draw.variant, draw.corruption, draw.severity)
    assert seen_variants == set(variants) and len(calls) == 3  # each ISP built once
    assert {c for c, _ in seen_corruptions} == {"gaussian_noise", "contrast"} and {s for _, s in seen_corruptions} == {2, 5}
    # The view function is the corruption with its documented generator, repeatable.
    _, _, _, view, draw = aug(raw, intensity, step=5)
    rgb = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    expected = corrupt(rgb, draw.corruption, draw.severity, generator=device_generator("cpu", 1, 5, 0, "corruption_noise"))
    assert torch.equal(view(rgb), expected) and torch.equal(view(rgb), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert view(rgb).dtype == torch.float32  # corruptions run in float32 under autocast


def test_the_model_develops_with_the_given_isp_and_intensity():
    from raw_isp.training.loop import build_model

    args = parse_training_args("classification", ["--model_name_or_path", "vit-micro", "--exposure", "metadata"])
    torch.manual_seed(0)
    model = build_model(args, ["a", "b"]).eval()
    assert model.isp.config.exposure == "metadata" and model.processor.exposure == "metadata"
    raw = _frames(2, size=256)
    intensity = torch.tensor([1.0, 0.25])
    other = build_isp("static:me_s_me", camera="microscopy", exposure="metadata")
    with torch.no_grad():
        own = model.pixel_values(raw, intensity)
        varied = model.pixel_values(raw, intensity, isp=other)
        logits = model(raw, intensity=intensity, isp=other).logits
        flipped = model.pixel_values(raw, intensity, augment=lambda rgb: rgb.flip(-1))
    torch.testing.assert_close(own, model.processor.to_pixel_values(model.isp(raw_isp.io.raw_to_unit(raw),
                                                                              intensity=intensity)))
    torch.testing.assert_close(varied, model.processor.to_pixel_values(other(raw_isp.io.raw_to_unit(raw),
                                                                             intensity=intensity)))
    assert not torch.allclose(own, varied)
    torch.testing.assert_close(flipped, own.flip(-1))
    torch.testing.assert_close(logits, model.model(pixel_values=varied).logits)
    with pytest.raises(ValueError, match="no intensity was given"):
        model.pixel_values(raw)


def test_from_args_uses_the_datasets_sensor_and_the_runs_isp_settings():
    args = parse_training_args("segmentation", ["--train_intensities", "0.5, 0.05,0.5", "--train_isp_variants", "all",
                                                "--corruption_augment", "--corruption_severities", "3,1",
                                                "--exposure", "auto"])
    assert args.train_intensities == "0.5,0.05" and args.train_isp_variants == "all"
    assert args.corruption_augment == "all" and args.corruption_severities == "3,1"
    aug = DriftAugmentation.from_args(args)
    assert aug.sensor is raw_isp.SENSORS["drone"] and aug.ratios == (0.5, 0.05)
    assert aug.variants == raw_isp.ISP_VARIANTS and aug.corruptions == CORRUPTIONS and aug.severities == (3, 1)
    isp = aug.isp("ma_u_me", torch.device("cpu"))
    assert isp.config == raw_isp.ISPConfig.from_variant("ma_u_me").with_exposure("auto") and isp.camera.name == "drone"
    assert not DriftAugmentation.from_args(parse_training_args("classification", [])).active
    assert compose(None, None) is None
    assert compose(lambda x: x + 1, None, lambda x: x * 2)(torch.ones(1)).item() == 4


@pytest.mark.parametrize("argv, message", [
    (["--train_intensities", "1.0,0"], "--train_intensities: ratios must be in (0, 1]"),
    (["--train_intensities", "1.5"], "--train_intensities: ratios must be in (0, 1]"),
    (["--train_intensities", "0.5,x"], "--train_intensities: 'x' is not a number"),
    (["--train_intensities", "0.5,,0.1"], "without empty entries"),
    (["--train_isp_variants", "bi_s_ga,xx"], "--train_isp_variants: unknown 'xx'"),
    (["--train_isp_variants", "all", "--isp", "parametrized"], "--train_isp_variants: needs a static --isp"),
    (["--corruption_augment", "fog"], "--corruption_augment: unknown 'fog'"),
    (["--corruption_severities", "0,2"], "--corruption_severities: severities are 1..5"),
    (["--exposure", "bright"], "invalid choice"),
    (["--class_balance", "oversample"], "invalid choice"),
    (["--metric_for_best_model", "iou_car"], "--metric_for_best_model 'iou_car': not a validation metric"),
])
def test_bad_augmentation_options_name_the_option(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_training_args("classification", argv)
    assert message in capsys.readouterr().err


def test_option_defaults():
    """Metadata exposure by default (README, "Which exposure the training scripts use"); no
    augmentation beyond flips, no class balancing; the best macro-F1 epoch is kept."""
    args = parse_training_args("classification", [])
    assert (args.exposure, args.train_intensities, args.train_isp_variants, args.corruption_augment,
            args.class_balance, args.metric_for_best_model, args.load_best_model_at_end) == (
        "metadata", None, None, None, "none", "macro_f1", True)
    assert args.exposure_setting == "metadata" and args.train_intensity_ratios == () and args.corruption_names == ()
    seg = parse_training_args("segmentation", ["--metric_for_best_model", "eval_iou_car",
                                               "--no_load_best_model_at_end"])
    assert seg.metric_for_best_model == "iou_car" and not seg.load_best_model_at_end and seg.greater_is_better
    assert not parse_training_args("classification", ["--metric_for_best_model", "loss"]).greater_is_better
    with pytest.raises(SystemExit):
        parse_training_args("segmentation", ["--class_balance", "sampler"])
