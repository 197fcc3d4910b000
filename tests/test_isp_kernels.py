"""Explicit-kernel ISP stages ("kernel" sharpening / denoising) and replaying a trained
``ParametrizedISP`` with ``StaticISP`` and ``RawISPImageProcessor``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers

from raw_isp import CAMERAS, CameraPreset, ISPConfig, ParametrizedISP, StaticISP, run_stages
from raw_isp.isp.filters import SHARPEN_KERNEL, conv2d_same, correlate2d_valid, gaussian_kernel1d
from raw_isp.isp.static import config_denoise_fn, config_sharpen_fn
from raw_isp.models.processor import RawISPImageProcessor

# The study's 3x3 sharpening kernel as a correlation kernel (it is symmetric, so unchanged).
SHARPEN_CORR = tuple(tuple(row[::-1]) for row in SHARPEN_KERNEL[::-1])
ASYM = ((0.1, -0.3, 0.05), (0.2, 1.4, -0.25), (-0.1, 0.0, -0.1))


def _raw(b=2, h=36, w=44, seed=0, lo=0.1, hi=0.9):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(b, h, w, generator=g, dtype=torch.float64)


def _stages(raw, cfg: ISPConfig, camera: CameraPreset, margin: int):
    return run_stages(
        raw,
        demosaic=cfg.demosaic,
        pattern=cfg.pattern,
        black_level=torch.tensor(camera.black_level, dtype=raw.dtype),
        white_balance_gains=camera.white_balance,
        colour_matrix=camera.colour_matrix,
        sharpen_fn=config_sharpen_fn(cfg),
        denoise_fn=config_denoise_fn(cfg),
        gamma=cfg.gamma,
        margin=margin,
    )


def _gaussian2d(sigma: float) -> tuple[tuple[float, ...], ...]:
    g = gaussian_kernel1d(sigma, dtype=torch.float64)
    return tuple(tuple(r) for r in torch.outer(g, g).tolist())


# ---------------------------------------------------------------------------- the config


def test_kernel_config_validation_names_the_field():
    with pytest.raises(ValueError, match="sharpen_kernel is required"):
        ISPConfig(sharpening="kernel")
    with pytest.raises(ValueError, match="blur_kernel is required"):
        ISPConfig(denoising="kernel")
    with pytest.raises(ValueError, match="sharpen_kernel is only used with sharpening='kernel'"):
        ISPConfig(sharpen_kernel=SHARPEN_CORR)
    with pytest.raises(ValueError, match="blur_kernel is only used with denoising='kernel'"):
        ISPConfig(denoising="median", blur_kernel=((1.0,),))
    bad = {
        "odd number of rows": [[1.0, 0.0], [0.0, 1.0]],
        r"square \(3 x 3\), but row 1 has 2 values": [[0, 0, 0], [0, 1], [0, 0, 0]],
        r"blur_kernel\[0\]\[1\] must be a finite number": [[0.1, float("nan"), 0.1]] * 3,
        r"blur_kernel\[2\]\[2\] must be a finite number": [[0.1] * 3, [0.1] * 3, [0.1, 0.1, "x"]],
        r"blur_kernel\[0\]\[0\] must be a finite number": [[True]],
        "square k x k kernel": "abc",
    }
    for message, kernel in bad.items():
        with pytest.raises(ValueError, match=message):
            ISPConfig(denoising="kernel", blur_kernel=kernel)
    with pytest.raises(ValueError, match="odd number of rows.*got 0 rows"):
        ISPConfig(sharpening="kernel", sharpen_kernel=[])


def test_kernel_config_is_frozen_hashable_and_round_trips_through_json():
    cfg = ISPConfig(
        demosaic="malvar2004",
        pattern="GBRG",
        sharpening="kernel",
        sharpen_kernel=np.array(ASYM),  # arrays and tensors are accepted and stored as tuples
        denoising="kernel",
        blur_kernel=torch.tensor(_gaussian2d(0.8), dtype=torch.float64),
        gamma=2.05,
    )
    assert cfg.sharpen_kernel == ASYM and isinstance(cfg.sharpen_kernel[0], tuple)
    assert cfg.blur_kernel == _gaussian2d(0.8)
    hash(cfg)
    with pytest.raises(AttributeError):
        cfg.sharpen_kernel = SHARPEN_CORR
    assert (cfg.sharpen_support, cfg.denoise_support, cfg.support) == (1, 3, 2 + 1 + 3)
    assert cfg.variant is None

    d = cfg.to_dict()
    assert d["sharpen_kernel"] == [list(r) for r in ASYM] and isinstance(d["blur_kernel"][0], list)
    back = ISPConfig.from_dict(json.loads(json.dumps(d)))
    assert back == cfg and hash(back) == hash(cfg)
    assert ISPConfig.parse(d) == cfg

    # Configs without kernels give the same dict as before the kernel fields existed.
    plain = ISPConfig.from_variant("ma_s_me")
    assert "sharpen_kernel" not in plain.to_dict() and "blur_kernel" not in plain.to_dict()
    assert plain.variant == "ma_s_me" and ISPConfig.from_dict(plain.to_dict()) == plain
    assert ISPConfig.from_dict({**plain.to_dict(), "sharpen_kernel": None, "blur_kernel": None}) == plain


def test_correlate2d_valid_is_a_correlation_for_fixed_and_tensor_kernels():
    x = _raw(2, 9, 11, seed=5)
    kernel = torch.arange(15, dtype=torch.float64).reshape(3, 5) / 10 - 0.7
    expected = torch.zeros(2, 7, 7, dtype=torch.float64)
    for u in range(3):
        for v in range(5):
            expected += kernel[u, v] * x[:, u : u + 7, v : v + 7]
    torch.testing.assert_close(correlate2d_valid(x, kernel.tolist()), expected, atol=1e-14, rtol=0)
    torch.testing.assert_close(correlate2d_valid(x, kernel), expected, atol=1e-14, rtol=0)
    # Same-size: symmetric (scipy "reflect") padding by the kernel radius, then valid.
    padded = F.pad(x[:, None], (2, 2, 1, 1), mode="reflect")[:, 0]  # torch "reflect" is not scipy's
    assert not torch.allclose(conv2d_same(x, kernel), correlate2d_valid(padded, kernel))
    sym = torch.cat([x[:, :1].flip(1), x, x[:, -1:].flip(1)], dim=1)
    sym = torch.cat([sym[..., :2].flip(-1), sym, sym[..., -2:].flip(-1)], dim=-1)
    torch.testing.assert_close(conv2d_same(x, kernel), correlate2d_valid(sym, kernel), atol=1e-14, rtol=0)
    with pytest.raises(ValueError, match="odd"):
        correlate2d_valid(x, [[1.0, 0.0]])


# ------------------------------------------------------------- kernels equal the fixed stages


@pytest.mark.parametrize("camera", ["drone", "microscopy"])
def test_kernel_stages_equal_the_named_filters(camera):
    """The study's sharpening filter and a Gaussian blur written as explicit kernels."""
    raw = _raw(seed=1)
    cam = CAMERAS[camera]
    for demosaic, sigma in (("bilinear", 0.5), ("menon2007", 1.1)):
        named = ISPConfig(demosaic=demosaic, sharpening="sharpening_filter", denoising="gaussian", gaussian_sigma=sigma)
        explicit = ISPConfig(
            demosaic=demosaic, sharpening="kernel", sharpen_kernel=SHARPEN_CORR,
            denoising="kernel", blur_kernel=_gaussian2d(sigma),
        )  # fmt: skip
        assert explicit.support == named.support
        a = StaticISP(named, cam, dtype=torch.float64)
        b = StaticISP(explicit, cam, dtype=torch.float64)
        assert a.fused and b.fused and a.margin == b.margin
        out = b(raw)
        torch.testing.assert_close(out, a(raw), atol=1e-12, rtol=0)
        # run_stages with the configs' stage functions: the same images.
        torch.testing.assert_close(_stages(raw, explicit, cam, b.margin), out, atol=1e-12, rtol=0)
        torch.testing.assert_close(_stages(raw, named, cam, a.margin), out, atol=1e-12, rtol=0)


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG"])
def test_fused_kernel_path_equals_the_stage_chain_for_asymmetric_kernels(pattern):
    """A non-separable, non-symmetric kernel (so correlation vs convolution matters), 5x5 blur."""
    blur = np.random.default_rng(0).random((5, 5))
    cfg = ISPConfig(
        demosaic="malvar2004", pattern=pattern, sharpening="kernel", sharpen_kernel=ASYM,
        denoising="kernel", blur_kernel=blur / blur.sum(), gamma=1.8,
    )  # fmt: skip
    raw = _raw(2, 32, 40, seed=2)
    isp = StaticISP(cfg, "drone", dtype=torch.float64)
    assert isp.fused and isp.margin == 2 + 1 + 2 + 1
    torch.testing.assert_close(isp(raw), _stages(raw, cfg, CAMERAS["drone"], isp.margin), atol=1e-12, rtol=0)
    # With the FFT denoiser StaticISP runs the stage chain; a kernel sharpening still works there.
    fft = ISPConfig(demosaic="bilinear", sharpening="kernel", sharpen_kernel=ASYM, denoising="fft")
    isp = StaticISP(fft, "drone", dtype=torch.float64)
    assert not isp.fused
    torch.testing.assert_close(isp(raw), _stages(raw, fft, CAMERAS["drone"], isp.margin), atol=1e-12, rtol=0)


# ------------------------------------------------------------- replaying a ParametrizedISP


def _perturbed(variant: str, camera: str, seed: int, dtype=torch.float64) -> ParametrizedISP:
    """A ParametrizedISP with every parameter moved randomly (a stand-in for training)."""
    isp = ParametrizedISP(variant, camera=camera, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in isp.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype)
            scale = 0.002 if name == "black_level" else 0.05
            p.add_(scale * noise * p.abs().clamp(min=0.1))
    return isp


@pytest.mark.parametrize(
    "variant, camera, pattern",
    [("bi_s_ga", "drone", "RGGB"), ("ma_u_me", "microscopy", "BGGR"), ("me_s_ga", "neutral", "GBRG")],
)
def test_static_config_replays_the_parametrized_isp(variant, camera, pattern):
    isp = ParametrizedISP(ISPConfig.from_variant(variant, pattern=pattern), camera=camera, dtype=torch.float64)
    moved = _perturbed(variant, camera, seed=3)
    isp.load_state_dict(moved.state_dict())
    start = ParametrizedISP(ISPConfig.from_variant(variant, pattern=pattern), camera=camera, dtype=torch.float64)
    for name, p in isp.named_parameters():  # every parameter has moved
        assert not torch.equal(p, getattr(start, name)), name

    cfg, cam = isp.static_config()
    assert cfg.sharpening == "kernel" and cfg.demosaic == isp.config.demosaic and cfg.pattern == pattern
    assert cfg.denoising == ("median" if variant.endswith("_me") else "kernel")
    assert cfg.gamma == float(isp.gamma.detach()) and cam == isp.camera_preset()
    # The written kernel is the one the forward pass applies: the parameter projected onto its initial sum.
    assert cfg.sharpen_kernel == tuple(tuple(r) for r in isp._kernel("sharpen_kernel").tolist())

    raw = _raw(2, 40, 52, seed=4)
    static = StaticISP(cfg, cam, dtype=torch.float64)
    assert static.fused and static.margin == isp.margin
    out = static(raw)
    ref = isp(raw)  # with gradients on, as in training
    assert ref.requires_grad
    # Whole frame, borders included: both extend the mosaic by the same margin.
    torch.testing.assert_close(out, ref.detach(), atol=1e-12, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(out, isp(raw), atol=1e-12, rtol=0)
    # A ParametrizedISP built from the written config starts where the trained one ended.
    again = ParametrizedISP(cfg, camera=cam, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(again(raw), ref.detach(), atol=1e-12, rtol=0)
    assert again.static_config() == (cfg, cam)


def test_static_config_with_fft_denoiser_and_float32_parameters():
    isp = _perturbed("ma_s_ga", "drone", seed=6, dtype=torch.float32)
    isp_fft = ParametrizedISP(ISPConfig(denoising="fft", fft_keep_fraction=0.25), "drone", dtype=torch.float64)
    cfg, _ = isp_fft.static_config()
    assert cfg.denoising == "fft" and cfg.fft_keep_fraction == 0.25 and cfg.blur_kernel is None
    raw = _raw(1, 32, 32, seed=7)
    with torch.no_grad():
        torch.testing.assert_close(StaticISP(*isp_fft.static_config(), dtype=torch.float64)(raw), isp_fft(raw), atol=1e-12, rtol=0)
        # float32 parameters are written exactly (as Python floats), so a float32 replay agrees to float32 rounding.
        cfg32, cam32 = isp.static_config()
        assert cfg32.sharpen_kernel == tuple(tuple(r) for r in isp._kernel("sharpen_kernel").double().tolist())
        torch.testing.assert_close(StaticISP(cfg32, cam32)(raw.float()), isp(raw.float()), atol=2e-5, rtol=0)


def test_static_config_rejects_an_invalid_learned_gamma():
    isp = ParametrizedISP("bi_s_ga", dtype=torch.float64)
    with torch.no_grad():
        isp.gamma.fill_(-0.5)
    with pytest.raises(ValueError, match="gamma must be a positive number"):
        isp.static_config()


def test_processor_from_processor_settings_replays_the_trained_isp(tmp_path):
    isp = _perturbed("bi_u_ga", "drone", seed=8, dtype=torch.float32)
    settings = isp.processor_settings()
    assert set(settings) == {"isp", "camera"}
    json.dumps(settings)  # JSON values only
    proc = RawISPImageProcessor(**settings, size={"height": 12, "width": 20}, image_mean=[0.4, 0.5, 0.6], image_std=0.25)
    proc.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["isp"]["sharpening"] == "kernel" and len(saved["isp"]["sharpen_kernel"]) == 9  # unsharp, radius 4

    raw16 = np.random.default_rng(9).integers(3000, 60000, size=(2, 24, 40), dtype=np.uint16)
    with torch.no_grad():
        rgb = isp(raw16)  # uint16 DN / 65535, float32
    rgb = F.interpolate(rgb, size=(12, 20), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)
    expected = (rgb - mean) / 0.25
    for loaded in (RawISPImageProcessor.from_pretrained(tmp_path), transformers.AutoImageProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is RawISPImageProcessor
        assert ISPConfig.from_dict(loaded.isp) == isp.static_config()[0]
        out = loaded(raw16)["pixel_values"]
        assert out.shape == (2, 3, 12, 20) and out.dtype == torch.float32
        torch.testing.assert_close(out, expected, atol=2e-5, rtol=0)  # float32 ISPs (~2e-6), then / 0.25
