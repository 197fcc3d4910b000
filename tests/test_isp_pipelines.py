"""StaticISP (fused) against the stage-by-stage chain, and ParametrizedISP (gradients)."""

import numpy as np
import pytest
import torch

from raw_isp import CAMERAS, ISP_VARIANTS, ISPConfig, ParametrizedISP, StaticISP, run_stages
from raw_isp.isp.parametrized import PARAMETER_GROUPS
from raw_isp.isp.static import STAGE_NAMES, config_denoise_fn, config_sharpen_fn


def _raw(b=2, h=40, w=52, seed=0, lo=0.25, hi=0.8):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(b, h, w, generator=g, dtype=torch.float64)


def _stages(raw, cfg, camera, margin):
    cam = CAMERAS[camera]
    return run_stages(
        raw,
        demosaic=cfg.demosaic,
        pattern=cfg.pattern,
        black_level=torch.tensor(cam.black_level, dtype=raw.dtype),
        white_balance_gains=cam.white_balance,
        colour_matrix=cam.colour_matrix,
        sharpen_fn=config_sharpen_fn(cfg),
        denoise_fn=config_denoise_fn(cfg),
        gamma=cfg.gamma,
        margin=margin,
    )


@pytest.mark.parametrize("camera", sorted(CAMERAS))
@pytest.mark.parametrize("variant", ISP_VARIANTS)
def test_fused_static_isp_equals_the_stage_chain(variant, camera):
    raw = _raw()
    isp = StaticISP(variant, camera=camera, dtype=torch.float64)
    assert isp.fused
    out = isp(raw)
    assert out.shape == (2, 3, 40, 52) and out.dtype == torch.float64
    ref = _stages(raw, isp.config, camera, isp.margin)
    torch.testing.assert_close(out, ref, atol=1e-11, rtol=0)


@pytest.mark.parametrize("pattern", ["BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("variant", ["bi_u_me", "ma_s_ga", "me_s_me"])
def test_fused_path_for_every_bayer_pattern(variant, pattern):
    raw = _raw(1, 36, 44, seed=3)
    cfg = ISPConfig.from_variant(variant, pattern=pattern)
    isp = StaticISP(cfg, camera="drone", dtype=torch.float64)
    torch.testing.assert_close(isp(raw), _stages(raw, cfg, "drone", isp.margin), atol=1e-11, rtol=0)


def test_other_settings_and_fft_take_their_paths():
    raw = _raw(1, 32, 32)
    for cfg in (
        ISPConfig(denoising="fft", fft_keep_fraction=0.2),
        ISPConfig(demosaic="malvar2004", denoising="median", median_size=5),
        ISPConfig(sharpening=None, denoising=None, gamma=1.0),
        ISPConfig(sharpening="unsharp_masking", sharpen_radius=2.0, sharpen_amount=0.5, gaussian_sigma=1.2),
    ):
        isp = StaticISP(cfg, dtype=torch.float64)
        torch.testing.assert_close(isp(raw), _stages(raw, cfg, "neutral", isp.margin), atol=1e-11, rtol=0)


def test_chunking_does_not_change_the_result():
    raw = _raw(5, 32, 40).float()
    whole = StaticISP("me_u_ga", camera="microscopy", chunk_pixels=10**9)(raw)
    chunked = StaticISP("me_u_ga", camera="microscopy", chunk_pixels=32 * 40 * 2)(raw)
    torch.testing.assert_close(whole, chunked, atol=0, rtol=0)


def test_inputs_numpy_uint16_single_frame():
    raw16 = (np.random.default_rng(0).random((32, 48)) * 60000).astype(np.uint16)
    isp = StaticISP("ma_s_me", camera="drone")
    single = isp(raw16)
    assert single.shape == (3, 32, 48) and single.dtype == torch.float32
    batch = isp(torch.from_numpy(raw16.astype(np.float32) / 65535)[None])
    torch.testing.assert_close(single, batch[0], atol=2e-6, rtol=0)
    assert 0 <= float(single.min()) and float(single.max()) <= 1


def test_static_isp_is_a_module_and_passes_gradients_to_the_input():
    isp = StaticISP("bi_s_ga")
    assert isinstance(isp, torch.nn.Module) and list(isp.parameters()) == []
    raw = _raw(1, 24, 24).float().requires_grad_()
    isp(raw).mean().backward()
    assert raw.grad is not None and raw.grad.abs().sum() > 0


def test_static_isp_argument_errors():
    with pytest.raises(ValueError, match="xx_s_ga"):
        StaticISP("xx_s_ga")
    with pytest.raises(ValueError, match="unknown camera 'phone'"):
        StaticISP("bi_s_ga", camera="phone")
    with pytest.raises(ValueError, match="even"):
        StaticISP("bi_s_ga")(torch.rand(1, 31, 32))
    with pytest.raises(ValueError, match="demosaic="):
        ISPConfig(demosaic="nearest")
    with pytest.raises(ValueError, match="gamma"):
        ISPConfig(gamma=0)
    with pytest.raises(ValueError, match="float32 or torch.float64"):
        StaticISP("bi_s_ga", dtype=torch.float16)
    with pytest.raises(ValueError, match="float32 or torch.float64"):
        ParametrizedISP("bi_s_ga", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="unknown ISPConfig keys"):
        ISPConfig.from_dict({"demosaic": "bilinear", "colour": 1})


def test_config_round_trip_and_variant_names():
    for name in ISP_VARIANTS:
        cfg = ISPConfig.from_variant(name)
        assert cfg.variant == name
        assert ISPConfig.from_dict(cfg.to_dict()) == cfg
    assert ISPConfig(gaussian_sigma=0.7).variant is None


# ----------------------------------------------------------------------------- ParametrizedISP


@pytest.mark.parametrize("camera", ["drone", "microscopy"])
@pytest.mark.parametrize("variant", ISP_VARIANTS)
def test_parametrized_isp_starts_equal_to_the_static_one(variant, camera):
    raw = _raw(1, 36, 44, seed=5)
    p = ParametrizedISP(variant, camera=camera, dtype=torch.float64)
    s = StaticISP(variant, camera=camera, dtype=torch.float64)
    torch.testing.assert_close(p(raw), s(raw), atol=1e-11, rtol=0)


def test_parametrized_stages_and_gradients_reach_every_parameter():
    isp = ParametrizedISP("ma_u_ga", camera="drone")
    assert {n for n, _ in isp.named_parameters()} == set(PARAMETER_GROUPS)
    raw = _raw(2, 32, 32).float()
    rgb, stages = isp(raw, return_stages=True)
    assert set(stages) == set(STAGE_NAMES)
    mosaics = ("black_level", "exposure")
    for name in STAGE_NAMES:
        assert stages[name].shape == ((2, 32, 32) if name in mosaics else (2, 3, 32, 32)), name
    assert torch.equal(stages["output"], rgb)
    rgb.mean().backward()
    for name, p in isp.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    # Each stage's gradient, cropped to the frame, is kept for inspection.
    assert set(isp.stage_grads) == set(STAGE_NAMES)
    for name in STAGE_NAMES:
        assert isp.stage_grads[name].shape == stages[name].shape
        assert isp.stage_grads[name].abs().sum() > 0, name
    # The output gradient of mean() is uniform.
    torch.testing.assert_close(isp.stage_grads["output"], torch.full_like(rgb, 1 / rgb.numel()))


def test_parametrized_frozen_groups():
    isp = ParametrizedISP("bi_s_me", learn=["gamma", "white_balance"])
    assert isp.blur_kernel is None  # a median has no blur kernel
    trainable = {n for n, p in isp.named_parameters() if p.requires_grad}
    assert trainable == {"gamma", "white_balance"}
    with pytest.raises(ValueError, match="focus"):
        ParametrizedISP("bi_s_ga", learn=["focus"])


@pytest.mark.parametrize("variant", ["bi_s_ga", "ma_u_ga", "me_s_ga"])
def test_parametrized_gradcheck(variant):
    isp = ParametrizedISP(variant, camera="neutral", dtype=torch.float64)
    raw = _raw(1, 12, 12, seed=7, lo=0.3, hi=0.7)
    names = [n for n, _ in isp.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in isp.named_parameters())

    def f(*ps):
        return torch.func.functional_call(isp, dict(zip(names, ps)), (raw,))

    assert torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-6, fast_mode=True)


def test_parametrized_learns_a_white_balance():
    # The view through a target camera is reachable from a neutral start by gradient descent.
    raw = _raw(1, 16, 16, seed=11).float()
    target = StaticISP("bi_s_ga", camera="drone")(raw)
    isp = ParametrizedISP("bi_s_ga", camera="drone", learn=["white_balance"])
    with torch.no_grad():
        isp.white_balance.copy_(torch.tensor([2.0, 1.0, 1.4]))
    opt = torch.optim.Adam(isp.parameters(), lr=0.05)
    first = None
    for _ in range(80):
        loss = torch.nn.functional.mse_loss(isp(raw), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first * 1e-3
    torch.testing.assert_close(isp.white_balance.detach(), torch.tensor(CAMERAS["drone"].white_balance), atol=0.05, rtol=0)


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("variant", ["bi_s_ga", "me_u_me"])
def test_black_level_is_applied_per_input_site(variant, pattern):
    # A flat scene whose four sites sit on four different black levels: after subtraction the
    # mosaic is flat, so every variant must give a uniform grey (the sites map correctly).
    bl = (0.01, 0.02, 0.03, 0.04)
    raw = torch.full((1, 24, 28), 0.3, dtype=torch.float64)
    for i, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        raw[:, dy::2, dx::2] += bl[i]
    camera = {"black_level": bl, "white_balance": (1, 1, 1), "colour_matrix": (1, 0, 0, 0, 1, 0, 0, 0, 1)}
    cfg = ISPConfig.from_variant(variant, pattern=pattern)
    for isp in (StaticISP(cfg, camera=camera, dtype=torch.float64), ParametrizedISP(cfg, camera=camera, dtype=torch.float64)):
        torch.testing.assert_close(isp(raw), torch.full((1, 3, 24, 28), 0.3 ** (1 / 2.2), dtype=torch.float64), atol=1e-12, rtol=0)


def test_a_frame_too_small_for_the_filters_is_named():
    # issue 18: a 2x2 frame into the processor gave "RuntimeError: narrow(): length must be non-negative"
    import raw_isp
    from raw_isp.isp.filters import correlate_valid
    from raw_isp.isp.static import MIN_FRAME_SIDE

    processor = raw_isp.RawISPImageProcessor()
    with pytest.raises(ValueError, match=r"raw frame 2x2: too small for ISP bi_s_ga, whose filters need up to 8x8 "
                                         r"pixels .*; ValueError: frame too small for a \d+-tap filter"):
        processor(np.full((2, 2), 1000, np.uint16))
    with pytest.raises(ValueError, match=r"raw frame 6x64: too small for ISP bi_u_me, whose filters need up to 8x8"):
        StaticISP("bi_u_me")(torch.full((1, 6, 64), 0.3))
    base = ISPConfig(demosaic="bilinear", sharpening=None, denoising=None)  # no filters: a learned ISP's base view
    assert StaticISP(base)(torch.full((1, 2, 2), 0.3)).shape == (1, 3, 2, 2)
    with pytest.raises(ValueError, match=r"frame too small for a 5-tap filter: 2 pixels along axis -1"):
        correlate_valid(torch.zeros(1, 8, 2), [1.0] * 5, -1)
    frame = torch.full((1, MIN_FRAME_SIDE, MIN_FRAME_SIDE), 0.3)
    for variant in ISP_VARIANTS:  # the smallest frame works for every variant
        out = StaticISP(variant, camera=CAMERAS["microscopy"])(frame)
        assert out.shape == (1, 3, MIN_FRAME_SIDE, MIN_FRAME_SIDE) and torch.isfinite(out).all()
