"""The exposure stage: modes None / "metadata" / "auto" / a fixed gain, in every ISP and the processor.

Independent checks: the gains are recomputed with numpy (``1 / ratio``; scipy's trimmed mean of
the 2x2-tile means of the black-subtracted planes), and whole pipelines are compared with the
float64 per-image reference (``raw_isp/testing/reference_isp.py``) run on the mosaic that numpy
has brought to the exposure (``black + gain * (raw - black)``), on the interior of the frame.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import scipy.stats
import torch

import raw_isp
from raw_isp import CAMERAS, SENSORS, ISPConfig, LearnedISP, ParametrizedISP, RawISPImageProcessor, StaticISP
from raw_isp.isp.exposure import (
    AUTO_EXPOSURE_MAX_GAIN,
    AUTO_EXPOSURE_TARGET,
    AUTO_EXPOSURE_TRIM,
    auto_exposure_gain,
    auto_exposure_statistic,
)
from raw_isp.isp.parametrized import PARAMETER_GROUPS
from raw_isp.testing.reference_isp import reference_batch, synthetic_raws

H, W = 40, 48


def _black_grid(camera: str, h: int = H, w: int = W) -> np.ndarray:
    return np.tile(np.asarray(CAMERAS[camera].black_level).reshape(2, 2), (h // 2, w // 2))


def _dim(camera: str, ratios, seed: int = 3, level: float = 0.6) -> np.ndarray:
    """Frames of a scene at full light scaled down to ``ratios`` (noise-free scaling above black), float64."""
    full = synthetic_raws(len(ratios), H, W, camera, "RGGB", seed=seed, level=level)
    black = _black_grid(camera)
    return black + np.asarray(ratios, dtype=np.float64)[:, None, None] * (full - black)


def _numpy_auto_gain(raw: np.ndarray, camera: str, trim=AUTO_EXPOSURE_TRIM, target=AUTO_EXPOSURE_TARGET,
                     max_gain=AUTO_EXPOSURE_MAX_GAIN) -> np.ndarray:
    """The auto-exposure gain per frame, by the definition, with numpy and scipy."""
    signal = raw - _black_grid(camera, *raw.shape[-2:])
    b, h, w = signal.shape
    tiles = signal.reshape(b, h // 2, 2, w // 2, 2).mean(axis=(2, 4)).reshape(b, -1)
    stat = np.array([scipy.stats.trim_mean(t, trim) for t in tiles])
    return np.where(stat > target / max_gain, target / np.maximum(stat, 1e-300), max_gain)


def _interior(x: np.ndarray, m: int) -> np.ndarray:
    return x[:, m : x.shape[1] - m, m : x.shape[2] - m]


# ----------------------------------------------------------------------------- the gain itself


def test_base_variant_names_the_pipeline_whatever_its_exposure():
    plain = raw_isp.ISPConfig.from_variant("ma_s_me")
    assert plain.variant == plain.base_variant == "ma_s_me"
    for exposure in ("metadata", "auto", 2.0):
        exposed = plain.with_exposure(exposure)
        assert exposed.variant is None and exposed.base_variant == "ma_s_me"
    tuned = dataclasses.replace(plain.with_exposure("auto"), auto_exposure_target=0.25, exposure_scale=0.5)
    assert tuned.base_variant == "ma_s_me"
    assert dataclasses.replace(plain, gamma=2.0).base_variant is None  # another pipeline, not an exposure


def test_auto_statistic_is_the_trimmed_mean_of_tile_means():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 32, 40, generator=g, dtype=torch.float64) - 0.1
    for trim in (0.0, 0.01, 0.1, 0.3):
        tiles = x.numpy().reshape(3, 16, 2, 20, 2).mean(axis=(2, 4)).reshape(3, -1)
        expected = [scipy.stats.trim_mean(t, trim) for t in tiles]
        np.testing.assert_allclose(auto_exposure_statistic(x, trim=trim).numpy(), expected, rtol=1e-12, atol=1e-15)
        # per-site black levels (one set, or one per image) come off the tile means
        bl = torch.tensor([[0.01, 0.02, 0.03, 0.04]] * 3, dtype=torch.float64)
        signal = x.numpy() - np.tile(bl[0].numpy().reshape(2, 2), (16, 20))
        tiles = signal.reshape(3, 16, 2, 20, 2).mean(axis=(2, 4)).reshape(3, -1)
        expected = [scipy.stats.trim_mean(t, trim) for t in tiles]
        for black in (bl[0], bl):
            np.testing.assert_allclose(auto_exposure_statistic(x, black, trim).numpy(), expected, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="trim"):
        auto_exposure_statistic(x, trim=0.5)


def test_auto_gain_ignores_outliers_and_is_defined_for_black_and_white_frames():
    x = torch.full((4, 16, 16), 0.09, dtype=torch.float64)
    x[1, 0, 0] = 1.0  # one hot pixel: trimmed away
    x[2] = 0.0  # all black: the largest gain, continuous limit
    x[3] = -0.001  # below black (read noise): the largest gain as well
    gain = auto_exposure_gain(x, trim=0.02)
    torch.testing.assert_close(gain[:2], torch.full((2,), AUTO_EXPOSURE_TARGET / 0.09, dtype=torch.float64))
    assert gain[2] == gain[3] == AUTO_EXPOSURE_MAX_GAIN
    # An exactly black frame stays black whatever the gain; a white frame becomes target grey.
    isp = StaticISP({"sharpening": None, "denoising": None, "gamma": 1.0}, exposure="auto", dtype=torch.float64)
    out = isp(torch.stack([torch.zeros(16, 16), torch.ones(16, 16)]).double())
    assert out[0].max() <= torch.finfo(torch.float64).tiny  # gamma's fast path writes 0 as the smallest normal
    torch.testing.assert_close(out[1], torch.full_like(out[1], AUTO_EXPOSURE_TARGET))


def test_auto_gain_follows_the_light_level_on_sensor_frames():
    # The statistic is a mean, so on photon-exact lower-light frames the gain is the full-light
    # gain over the ratio (no noise bias, unlike a high percentile).
    sensor = SENSORS["microscopy"]
    scene = synthetic_raws(1, 128, 128, "microscopy", seed=1, level=0.5)[0]
    full = np.round(scene * 65535).astype(np.uint16)
    isp = StaticISP("bi_s_ga", camera="microscopy", exposure="auto", dtype=torch.float64)
    g_full = float(isp.exposure_gain(full)[0])
    for ratio in (0.5, 0.1, 0.05):
        low = sensor.scale_intensity(full, ratio, seed=7)
        assert float(isp.exposure_gain(low)[0]) * ratio / g_full == pytest.approx(1.0, abs=0.01), ratio


# ------------------------------------------------------------------- modes against the reference


@pytest.mark.parametrize("camera", ["drone", "microscopy"])
@pytest.mark.parametrize("variant", ["bi_s_ga", "ma_u_me", "me_s_ga"])
def test_each_mode_matches_the_reference_on_the_exposed_mosaic(variant, camera):
    ratios = [0.5, 0.1, 0.05]
    raw = _dim(camera, ratios, level=0.8 if camera == "microscopy" else 0.5)
    black = _black_grid(camera)
    gains = {
        "metadata": 1.0 / np.asarray(ratios),
        "auto": _numpy_auto_gain(raw, camera),
        2.0: np.full(len(ratios), 2.0),
    }
    for mode, gain in gains.items():
        isp = StaticISP(variant, camera=camera, exposure=mode, dtype=torch.float64)
        ours = isp(torch.from_numpy(raw), intensity=torch.tensor(ratios)).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(isp.exposure_gain(raw, intensity=ratios).numpy(), gain, rtol=1e-12)
        expected = reference_batch(black + gain[:, None, None] * (raw - black), variant, camera)
        m = isp.margin
        np.testing.assert_allclose(_interior(ours, m), _interior(expected, m), atol=1e-6, rtol=0, err_msg=str(mode))


@pytest.mark.parametrize("mode", ["metadata", "auto", 1.7])
def test_exposure_stage_is_the_gain_on_the_black_subtracted_mosaic(mode):
    ratios = [0.25, 0.05]
    raw = _dim("drone", ratios)
    isp = ParametrizedISP("ma_s_ga", camera="drone", exposure=mode, dtype=torch.float64)
    _, stages = isp(torch.from_numpy(raw), return_stages=True, intensity=ratios)
    signal = raw - _black_grid("drone")
    gain = {"metadata": 1 / np.asarray(ratios), "auto": _numpy_auto_gain(raw, "drone")}.get(mode, np.full(2, mode))
    np.testing.assert_allclose(stages["black_level"].detach().numpy(), signal, rtol=0, atol=1e-15)
    exposed = stages["exposure"].detach().numpy()
    np.testing.assert_allclose(exposed, gain[:, None, None] * signal, rtol=1e-12, atol=1e-15)


def test_metadata_brings_a_dim_frame_back_to_the_full_view():
    full = _dim("drone", [1.0, 1.0])
    dim = _dim("drone", [0.05, 0.2])
    none = StaticISP("me_u_me", camera="drone", dtype=torch.float64)
    meta = StaticISP("me_u_me", camera="drone", exposure="metadata", dtype=torch.float64)
    torch.testing.assert_close(meta(dim, intensity=[0.05, 0.2]), none(full), atol=1e-9, rtol=0)
    assert (none(dim) - none(full)).abs().mean() > 0.1  # without exposure the view is far darker


@pytest.mark.parametrize("variant", raw_isp.ISP_VARIANTS)
def test_gain_one_is_bit_identical_to_no_exposure(variant):
    raw = torch.from_numpy(_dim("microscopy", [1.0, 1.0], level=0.8)).float()
    plain = StaticISP(variant, camera="microscopy")(raw)
    assert torch.equal(StaticISP(variant, camera="microscopy", exposure=1.0)(raw), plain)
    assert torch.equal(StaticISP(variant, camera="microscopy", exposure="metadata")(raw, intensity=1.0), plain)
    assert torch.equal(StaticISP(variant, camera="microscopy", exposure=None)(raw, intensity=0.5), plain)  # ignored


def test_fused_path_and_chunks_match_the_stage_chain():
    ratios = [0.5, 0.1, 0.05, 0.25, 0.75]
    raw = torch.from_numpy(_dim("drone", ratios))
    for mode in ("metadata", "auto", 3.0):
        stages = ParametrizedISP("me_s_ga", camera="drone", exposure=mode, dtype=torch.float64)
        with torch.no_grad():
            expected = stages(raw, intensity=ratios)
        whole = StaticISP("me_s_ga", camera="drone", exposure=mode, dtype=torch.float64)
        chunked = StaticISP("me_s_ga", camera="drone", exposure=mode, dtype=torch.float64, chunk_pixels=2 * H * W)
        torch.testing.assert_close(whole(raw, intensity=ratios), expected, atol=1e-12, rtol=0)
        torch.testing.assert_close(chunked(raw, intensity=ratios), expected, atol=1e-12, rtol=0)


def test_per_image_ratios_are_batched():
    ratios = [0.75, 0.25, 0.01]
    raw = torch.from_numpy(_dim("microscopy", ratios, level=0.8)).float()
    for isp in (StaticISP("bi_s_ga", camera="microscopy", exposure="metadata"),
                ParametrizedISP("bi_s_ga", camera="microscopy", exposure="metadata")):
        with torch.no_grad():
            batch = isp(raw, intensity=torch.tensor(ratios))
            for i, r in enumerate(ratios):
                torch.testing.assert_close(isp(raw[i], intensity=r), batch[i], atol=1e-6, rtol=0)
            # one ratio for the whole batch
            torch.testing.assert_close(isp(raw, intensity=0.25)[1], batch[1], atol=1e-6, rtol=0)
            torch.testing.assert_close(isp(raw, intensity=np.array([0.25]))[1], batch[1], atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------- gradients


def _small(seed=0, b=2):
    g = torch.Generator().manual_seed(seed)
    return 0.05 + 0.3 * torch.rand(b, 8, 8, generator=g, dtype=torch.float64)


def test_gradcheck_through_metadata_wrt_raw_and_intensity():
    isp = StaticISP("ma_u_ga", camera="drone", exposure="metadata", dtype=torch.float64)
    raw = _small().requires_grad_()
    ratio = torch.tensor([0.5, 0.2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r, q: isp(r, intensity=q), (raw, ratio), eps=1e-6, atol=1e-6)


def test_gradcheck_through_auto_wrt_raw():
    cfg = ISPConfig.from_variant("bi_s_ga", exposure="auto", auto_exposure_trim=0.1)  # 16 tiles: 1 cut per end
    isp = StaticISP(cfg, camera="neutral", dtype=torch.float64)
    raw = _small(seed=1).requires_grad_()
    assert torch.autograd.gradcheck(isp, (raw,), eps=1e-6, atol=1e-6)
    # the gain itself depends on the frame
    assert torch.autograd.grad(isp.exposure_gain(raw).sum(), raw)[0].abs().sum() > 0


@pytest.mark.parametrize("mode", [None, "metadata", "auto", 0.5])
def test_gradcheck_of_the_learnable_log_gain(mode):
    isp = ParametrizedISP("me_s_ga", camera="drone", dtype=torch.float64, exposure=mode)
    raw = _small(seed=2)
    ev = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)

    def f(e):
        return torch.func.functional_call(isp, {"exposure": e}, (raw,), {"intensity": [0.5, 0.25]})

    assert torch.autograd.gradcheck(f, (ev,), eps=1e-6, atol=1e-6)


def test_learnable_gain_finds_a_stop():
    raw = _small(seed=3, b=2).float() * 0.5
    target = StaticISP("bi_s_ga", camera="neutral", exposure=2.0)(raw)
    isp = ParametrizedISP("bi_s_ga", camera="neutral", learn=["exposure"])
    opt = torch.optim.Adam(isp.parameters(), lr=0.05)
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(isp(raw), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(isp.exposure.detach()) == pytest.approx(1.0, abs=0.02)  # log2(2.0)


# --------------------------------------------------------------------- ParametrizedISP / LearnedISP


def test_exposure_is_its_own_parameter_group():
    assert "exposure" in PARAMETER_GROUPS
    isp = ParametrizedISP("bi_s_ga", learn=["exposure"])
    assert {n for n, p in isp.named_parameters() if p.requires_grad} == {"exposure"}
    assert isp.exposure.shape == () and float(isp.exposure.detach()) == 0.0


@pytest.mark.parametrize("mode", [None, "metadata", "auto", 2.5])
def test_parametrized_starts_at_the_mode_and_replays_exactly(mode, tmp_path):
    ratios = [0.1, 0.5]
    raw = torch.from_numpy(_dim("drone", ratios))
    s = StaticISP("ma_s_me", camera="drone", exposure=mode, dtype=torch.float64)
    p = ParametrizedISP("ma_s_me", camera="drone", exposure=mode, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(p(raw, intensity=ratios), s(raw, intensity=ratios), atol=1e-12, rtol=0)
        p.exposure.fill_(0.4)
        p.white_balance.mul_(1.05)
        p.black_level.add_(0.001)
        moved = p(raw, intensity=ratios)
    config, camera = p.static_config()
    if mode in ("metadata", "auto"):
        assert config.exposure == mode and config.exposure_scale == pytest.approx(2**0.4)
    else:
        assert config.exposure == pytest.approx((1.0 if mode is None else mode) * 2**0.4)
    assert ISPConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    replay = StaticISP(config, camera=camera, dtype=torch.float64)
    torch.testing.assert_close(replay(raw, intensity=ratios), moved, atol=1e-12, rtol=0)
    # ... and through the processor, saved and loaded (float32)
    proc = RawISPImageProcessor(**p.processor_settings(), do_resize=False, do_normalize=False)
    proc.save_pretrained(tmp_path)
    loaded = RawISPImageProcessor.from_pretrained(tmp_path)
    out = loaded(raw.float(), intensity=ratios)["pixel_values"]
    torch.testing.assert_close(out, moved.float(), atol=2e-5, rtol=0)


def test_state_dicts_from_before_the_stage_load_as_zero_stops():
    old = {k: v for k, v in ParametrizedISP("bi_s_ga", camera="drone").state_dict().items() if k != "exposure"}
    isp = ParametrizedISP("bi_s_ga", camera="drone")
    with torch.no_grad():
        isp.exposure.fill_(1.0)
    isp.load_state_dict(old)  # strict: nothing missing
    assert float(isp.exposure.detach()) == 0.0
    wrapped = torch.nn.Sequential(ParametrizedISP("bi_s_ga"))
    missing, _ = wrapped.load_state_dict({f"0.{k}": v for k, v in old.items()}, strict=False)
    assert missing == []


def test_untrained_exposure_keeps_configs_as_before():
    p = ParametrizedISP("bi_s_ga", camera="drone")
    config, _ = p.static_config()
    assert config.exposure is None and "exposure" not in config.to_dict()
    assert "exposure" not in LearnedISP().to_dict()


@pytest.mark.parametrize("mode", ["metadata", "auto", 4.0])
@pytest.mark.parametrize("base", ["bilinear", "me_s_ga"])
def test_learned_isp_starts_from_the_exposed_base_view(mode, base):
    ratios = [0.05, 0.5]
    raw = torch.from_numpy(_dim("microscopy", ratios, level=0.8)).float()
    isp = LearnedISP(base=base, camera="microscopy", exposure=mode)
    static = StaticISP(isp.base_config, camera="microscopy")
    assert static.config.exposure == mode
    with torch.no_grad():
        out = isp(raw, intensity=ratios)
        torch.testing.assert_close(out, static(raw, intensity=ratios), atol=0, rtol=0)
    # The network's input is the mosaic brought to the same exposure.
    gain = isp.exposure_gain(raw, intensity=ratios)
    black = torch.tensor(_black_grid("microscopy"), dtype=torch.float32)
    torch.testing.assert_close(isp.exposed(raw, gain), black + gain.view(-1, 1, 1) * (raw - black), atol=1e-6, rtol=0)
    again = LearnedISP.from_dict(json.loads(json.dumps(isp.to_dict())))
    again.load_state_dict(isp.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(again(raw, intensity=ratios), out, atol=0, rtol=0)


def test_learned_isp_without_a_base_still_exposes_its_input():
    isp = LearnedISP(base=None, exposure="metadata")
    raw = torch.rand(2, 16, 16) * 0.1
    torch.testing.assert_close(isp.exposed(raw, isp.exposure_gain(raw, intensity=0.1)), raw * 10, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="intensity"):
        isp(raw)


# --------------------------------------------------------------------------- save / load


def test_config_round_trip_with_every_setting():
    configs = [
        ISPConfig.from_variant("ma_u_me", exposure="metadata", exposure_scale=1.25),
        ISPConfig.from_variant("bi_s_ga", exposure="auto", auto_exposure_trim=0.05, auto_exposure_target=0.3,
                               auto_exposure_max_gain=64.0),
        ISPConfig(exposure=3),
    ]
    for cfg in configs:
        d = json.loads(json.dumps(cfg.to_dict()))
        assert ISPConfig.from_dict(d) == cfg
    assert configs[2].exposure == 3.0 and isinstance(configs[2].exposure, float)
    assert configs[0].variant is None  # an exposure makes it another pipeline than the study's
    assert "auto_exposure_target" not in configs[0].to_dict()  # defaults are left out


@pytest.mark.parametrize("mode", ["metadata", "auto", 2.0])
def test_processor_saves_and_replays_the_exposure(mode, tmp_path):
    ratios = [0.05, 0.25, 1.0]
    raw16 = np.round(_dim("microscopy", ratios, level=0.8) * 65535).astype(np.uint16)
    proc = RawISPImageProcessor(isp="bi_s_ga", camera="microscopy", exposure=mode, do_resize=False, do_normalize=False)
    out = proc(raw16, intensity=ratios)["pixel_values"]
    expected = StaticISP("bi_s_ga", camera="microscopy", exposure=mode)(raw16, intensity=ratios)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    proc.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["exposure"] == mode
    for loaded in (RawISPImageProcessor.from_pretrained(tmp_path),
                   __import__("transformers").AutoImageProcessor.from_pretrained(tmp_path)):
        assert loaded.exposure == mode
        torch.testing.assert_close(loaded(raw16, intensity=ratios)["pixel_values"], out, atol=0, rtol=0)


def test_processor_exposure_overrides_and_defaults(tmp_path):
    raw16 = np.round(_dim("drone", [0.1, 0.1]) * 65535).astype(np.uint16)
    proc = RawISPImageProcessor(isp="me_s_me", camera="drone", do_resize=False, do_normalize=False)
    assert proc.exposure is None and proc.to_dict()["exposure"] is None
    plain = proc(raw16)["pixel_values"]
    torch.testing.assert_close(proc(raw16, intensity=0.1)["pixel_values"], plain, atol=0, rtol=0)  # ignored
    per_call = proc(raw16, exposure="metadata", intensity=[0.1, 0.1])["pixel_values"]
    fixed = proc(raw16, exposure=10.0)["pixel_values"]
    torch.testing.assert_close(per_call, fixed, atol=1e-6, rtol=0)
    assert per_call.mean() > plain.mean() + 0.1
    # an exposure setting given at load time
    proc.save_pretrained(tmp_path)
    loaded = RawISPImageProcessor.from_pretrained(tmp_path, exposure="auto")
    assert loaded.exposure == "auto" and loaded.get_isp().config.exposure == "auto"
    # an isp dict that carries its own exposure
    inner = RawISPImageProcessor(isp=ISPConfig.from_variant("me_s_me", exposure=10.0), camera="drone",
                                 do_resize=False, do_normalize=False)
    torch.testing.assert_close(inner(raw16)["pixel_values"], fixed, atol=0, rtol=0)


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", ["bright", "Auto", 0, -1.0, math.nan, math.inf, True, [1.0]])
def test_bad_exposure_values_are_refused(bad):
    for build in (lambda: StaticISP("bi_s_ga", exposure=bad), lambda: ParametrizedISP(exposure=bad),
                  lambda: LearnedISP(exposure=bad), lambda: ISPConfig(exposure=bad)):
        with pytest.raises(ValueError, match="exposure"):
            build()
    with pytest.raises(ValueError, match="^exposure"):
        RawISPImageProcessor(exposure=bad)


def test_bad_exposure_settings_and_conflicts():
    with pytest.raises(ValueError, match="exposure_scale=2.0 only applies"):
        ISPConfig(exposure_scale=2.0)
    with pytest.raises(ValueError, match="exposure_scale=2.0 only applies"):
        ISPConfig(exposure=3.0, exposure_scale=2.0)
    with pytest.raises(ValueError, match="auto_exposure_trim must be in"):
        ISPConfig(exposure="auto", auto_exposure_trim=0.5)
    with pytest.raises(ValueError, match="auto_exposure_target must be positive"):
        ISPConfig(exposure="auto", auto_exposure_target=0.0)
    with pytest.raises(ValueError, match="only used with exposure='auto'"):
        ISPConfig(exposure="metadata", auto_exposure_max_gain=16.0)
    with pytest.raises(ValueError, match="conflicts with the ISP config's exposure='metadata'"):
        StaticISP(ISPConfig(exposure="metadata"), exposure="auto")
    with pytest.raises(ValueError, match="^exposure: .*conflicts"):
        RawISPImageProcessor(isp={"demosaic": "bilinear", "exposure": 2.0}, exposure="auto")
    with pytest.raises(ValueError, match="unknown ISPConfig keys"):
        ISPConfig.from_dict({"exposure_mode": "auto"})


def test_bad_intensities_are_refused():
    raw = torch.rand(3, 16, 16)
    isp = StaticISP("bi_s_ga", exposure="metadata")
    with pytest.raises(ValueError, match=r"exposure='metadata' .* no intensity was given"):
        isp(raw)
    with pytest.raises(ValueError, match=r"intensity must be positive and finite, got 0.0 \(image 1\)"):
        isp(raw, intensity=[0.5, 0.0, 0.1])
    with pytest.raises(ValueError, match="got -0.5"):
        isp(raw, intensity=-0.5)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="positive and finite"):
            isp(raw, intensity=bad)
    with pytest.raises(ValueError, match=r"one ratio or one per image \(3\), got shape \(2,\)"):
        isp(raw, intensity=[0.5, 0.5])
    with pytest.raises(TypeError, match="intensity must be a number"):
        isp(raw, intensity="0.5")
    with pytest.raises(ValueError, match="gain must be positive"):
        StaticISP("bi_s_ga")(raw, gain=0.0)
    with pytest.raises(ValueError, match="intensity"):
        ParametrizedISP(exposure="metadata")(raw)
    proc = RawISPImageProcessor(exposure="metadata", default_intensity=None)  # no default: the ratio is required
    with pytest.raises(ValueError, match="^intensity: exposure='metadata'"):
        proc(raw)
    with pytest.raises(ValueError, match="intensity must be positive"):
        proc(raw, intensity=[0.1, 0.2, 0.0])
