"""LearnedISP: shapes, ranges, start at the base view, gradients, fitting, save/rebuild, errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from raw_isp import PATTERNS, StaticISP, demosaic, mosaic
from raw_isp.isp.color import gamma_encode
from raw_isp.isp.learned import LearnedISP


def _raw(b=2, h=16, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, h, w, generator=g)


def _smooth_raws(n, size=32, seed=0, pattern="RGGB"):
    """Mosaics of smooth random RGB images (bilinear upsampling of 4x4 noise), in [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, size // 8, size // 8, generator=g)
    rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False)
    return mosaic(0.1 + 0.8 * rgb, pattern)


def _perturbed(isp, seed=1, std=0.05):
    """Give every parameter (the zero-initialised heads included) random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in isp.parameters():
            p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return isp


def test_shapes_and_range_for_batched_and_single_frames():
    isp = _perturbed(LearnedISP(base_channels=4, depth=2), std=0.5)
    raw = _raw()
    out = isp(raw)
    assert out.shape == (2, 3, 16, 20) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    # The residual is large here, so the clamp must be active somewhere.
    assert ((out == 0) | (out == 1)).any()
    single = isp(raw[1])
    assert single.shape == (3, 16, 20)
    torch.testing.assert_close(single, out[1], rtol=0, atol=1e-4)  # oneDNN sums in batch-dependent order
    assert isp(raw.numpy()).shape == (2, 3, 16, 20)


def test_uint16_input_equals_float_input_divided_by_65535():
    isp = _perturbed(LearnedISP(base_channels=4, depth=1))
    dn = np.random.default_rng(0).integers(0, 65536, size=(2, 12, 16), dtype=np.uint16)
    as_float = torch.from_numpy(dn.astype(np.float64) / 65535.0).float()
    assert torch.equal(isp(dn), isp(as_float))
    assert torch.equal(isp(torch.from_numpy(dn.astype(np.int32))), isp(as_float))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_at_init_the_output_is_the_bilinear_gamma_view(pattern):
    raw = _raw(h=18, w=22)  # planes 9x11: not a multiple of 2**depth, so padding is exercised
    isp = LearnedISP(base_channels=4, depth=2, pattern=pattern)
    expected = gamma_encode(demosaic(raw, "bilinear", pattern), 2.2)
    torch.testing.assert_close(isp(raw), expected, rtol=0, atol=1e-6)


def test_at_init_a_variant_base_is_the_static_isp_and_none_is_grey():
    raw = _raw()
    isp = LearnedISP(base_channels=4, depth=2, base="ma_s_me", camera="drone")
    assert torch.equal(isp(raw), StaticISP("ma_s_me", camera="drone")(raw))
    fft = {"demosaic": "menon2007", "sharpening": None, "denoising": "fft", "pattern": "GRBG"}
    isp = LearnedISP(base_channels=4, depth=2, pattern="GRBG", base=fft, camera="microscopy")
    assert torch.equal(isp(raw), StaticISP(fft, camera="microscopy")(raw))
    grey = LearnedISP(base_channels=4, depth=2, base=None)(raw)
    assert torch.equal(grey, torch.full_like(grey, 0.5))


def test_channels_mean_the_same_colour_for_every_pattern():
    # A flat colour image: the planes the network sees are (R, G, G, B) whatever the pattern.
    rgb = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    for pattern in PATTERNS:
        isp = LearnedISP(base_channels=4, depth=1, pattern=pattern)
        planes = isp.planes(mosaic(rgb, pattern))
        assert torch.equal(planes[0, :, 0, 0], torch.tensor([0.2, 0.5, 0.5, 0.8])), pattern
    # And each head channel "colour c at the R/G1/G2/B site" lands on that site of the tile.
    for pattern in PATTERNS:
        isp = LearnedISP(base_channels=4, depth=1, pattern=pattern, base=None)
        with torch.no_grad():
            isp.head.skip.bias.copy_(torch.arange(12) / 100.0)  # channel 4c + s
        out = isp(torch.zeros(1, 4, 4))[0]
        sites = ((0, 0), (0, 1), (1, 0), (1, 1))
        r_at = sites[pattern.index("R")]
        b_at = sites[pattern.index("B")]
        g1_at = (r_at[0], 1 - r_at[1])  # G1 shares a row with R
        g2_at = (1 - r_at[0], r_at[1])
        for s, (dy, dx) in enumerate((r_at, g1_at, g2_at, b_at)):
            for c in range(3):
                assert out[c, dy, dx].item() == pytest.approx(0.5 + (4 * c + s) / 100.0), (pattern, s, c)


def test_gradients_reach_every_parameter():
    isp = LearnedISP(base_channels=4, depth=3)
    raw, target = _raw(h=32, w=32), torch.rand(2, 3, 32, 32)
    loss = F.mse_loss(isp(raw), target)
    loss.backward()
    # Zero-initialised heads: in the first backward pass only they receive a gradient ...
    for name, p in isp.named_parameters():
        assert torch.isfinite(p.grad).all(), name
        if name.startswith("head."):
            assert p.grad.abs().sum() > 0, name
        else:
            assert p.grad.abs().sum() == 0, name
    # ... and after one step every parameter does.
    torch.optim.SGD(isp.parameters(), lr=0.1).step()
    isp.zero_grad()
    F.mse_loss(isp(raw), target).backward()
    for name, p in isp.named_parameters():
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_gradients_reach_a_raw_input_that_asks_for_them():
    isp = _perturbed(LearnedISP(base_channels=4, depth=2, base="bi_s_ga"))
    raw = _raw().double().requires_grad_()
    isp.double()(raw).square().sum().backward()
    assert torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0
    # The base view took no in-place write: the whole gradient is exact where nothing is
    # clamped (at clamped pixels the clamp's gradient is the designed surrogate, not the derivative).
    isp = _perturbed(LearnedISP(base_channels=4, depth=2, base="bi_s_ga"), std=0.01).double()
    small = (0.3 + 0.3 * _raw(b=1, h=8, w=8)).double().requires_grad_()
    out = isp(small)
    assert out.min() > 0 and out.max() < 1
    assert torch.autograd.gradcheck(isp, (small,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_clamp_keeps_gradients_that_pull_back_into_range():
    isp = LearnedISP(base_channels=4, depth=1, base=None)
    with torch.no_grad():
        isp.head.skip.bias.fill_(0.8)  # output 0.5 + 0.8 -> clamped to 1 everywhere
    out = isp(_raw(b=1, h=8, w=8))
    assert torch.equal(out, torch.ones_like(out))
    # Loss pulling the output down: the gradient passes the clamp (a plain clamp would block it).
    (out**2).sum().backward()
    assert isp.head.skip.bias.grad.min() > 0
    # Loss pushing it further up: blocked.
    isp.zero_grad()
    (-isp(_raw(b=1, h=8, w=8))).sum().backward()
    assert torch.equal(isp.head.skip.bias.grad, torch.zeros(12))


def test_a_few_dozen_adam_steps_fit_a_static_isp_view():
    torch.manual_seed(0)
    raws = _smooth_raws(8)
    # The target differs from the bilinear base by demosaicing, filters and the drone camera's colours.
    target = StaticISP("ma_s_me", camera="drone")(raws)
    isp = LearnedISP(base_channels=8, depth=2)
    opt = torch.optim.Adam(isp.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = F.mse_loss(isp(raws), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, losses


def test_state_dict_and_config_round_trip_give_identical_output(tmp_path):
    camera = {"black_level": [0.01, 0.02, 0.03, 0.04], "white_balance": [1.5, 1.0, 2.0],
              "colour_matrix": [1, 0, 0, 0, 1, 0, 0, 0, 1], "name": "mine"}
    isp = _perturbed(LearnedISP(base_channels=4, depth=2, pattern="GBRG", base="me_u_ga", camera=camera))
    path = tmp_path / "isp_config.json"
    path.write_text(json.dumps(isp.to_dict()))
    rebuilt = LearnedISP.from_dict(json.loads(path.read_text()))
    rebuilt.load_state_dict(isp.state_dict())
    raw = _raw(h=24, w=28)
    assert torch.equal(rebuilt(raw), isp(raw))
    assert rebuilt.to_dict() == isp.to_dict() == isp.config
    assert LearnedISP().to_dict() == {"base_channels": 16, "depth": 2, "pattern": "RGGB", "base": "bilinear",
                                      "camera": "neutral"}
    assert LearnedISP(camera="drone").config["camera"] == "drone"


def test_lower_precision_parameters_keep_a_float32_base_view():
    raw = _raw()
    isp = LearnedISP(base_channels=4, depth=2).to(torch.bfloat16)
    out = isp(raw)
    assert out.dtype == torch.bfloat16
    # At init the output is the float32 base view, rounded once to bfloat16.
    expected = gamma_encode(demosaic(raw, "bilinear"), 2.2).to(torch.bfloat16)
    assert torch.equal(out, expected)
    assert isp._base_isp[0].dtype == torch.float32
    _perturbed(isp)(raw).float().square().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 and torch.isfinite(p.grad).all()
               for p in isp.parameters())
    out64 = LearnedISP(base_channels=4, depth=2).double()(raw.double())
    assert out64.dtype == torch.float64


def test_default_parameter_count():
    assert sum(p.numel() for p in LearnedISP().parameters()) == 25_900


@pytest.mark.parametrize(
    "raw, match",
    [
        (torch.rand(2, 15, 16), r"15x16"),
        (torch.rand(16), r"\(16,\)"),
        (torch.rand(1, 1, 8, 8), r"\(1, 1, 8, 8\)"),
    ],
)
def test_bad_shapes_are_named_in_the_error(raw, match):
    with pytest.raises(ValueError, match=match):
        LearnedISP(base_channels=4, depth=1)(raw)


def test_small_frames_that_need_padding_work():
    for h, w in ((2, 2), (2, 6), (6, 10), (34, 38)):
        assert _perturbed(LearnedISP(base_channels=4, depth=3))(_raw(h=h, w=w)).shape == (2, 3, h, w)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"base_channels": 0}, "base_channels"),
        ({"depth": 0}, "depth"),
        ({"depth": 1.5}, "depth"),
        ({"pattern": "RGBG"}, "pattern"),
        ({"base": "nearest"}, "base='nearest'"),
        ({"base": {"demosaic": "bilinear", "pattern": "BGGR"}}, "pattern"),
        ({"camera": "phone"}, "phone"),
    ],
)
def test_bad_arguments_are_named_in_the_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LearnedISP(**kwargs)
    with pytest.raises(ValueError, match="unknown LearnedISP config keys"):
        LearnedISP.from_dict({"base_channels": 4, "width": 3})
