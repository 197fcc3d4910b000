"""Each ISP stage of raw_isp against an independent computation (scipy, scikit-image, numpy)."""

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import skimage.color
import skimage.filters
import torch

from raw_isp.isp import cfa, color, filters

RNG = np.random.default_rng(1234)


def _img(b=2, h=18, w=22):
    return torch.from_numpy(RNG.random((b, h, w)))


# ----------------------------------------------------------------------------- CFA helpers


@pytest.mark.parametrize("pattern", cfa.PATTERNS)
def test_mosaic_keeps_the_pattern_colour_at_each_site(pattern):
    rgb = torch.from_numpy(RNG.random((2, 3, 6, 8)))
    raw = cfa.mosaic(rgb, pattern)
    masks = cfa.cfa_masks(6, 8, pattern)
    expected = (rgb * masks.unsqueeze(0)).sum(1)
    assert torch.equal(raw, expected)
    # Each positional site holds the colour the pattern names.
    colours = cfa.pattern_colours(pattern)
    for site, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        assert torch.equal(raw[:, dy::2, dx::2], rgb[:, colours[site], dy::2, dx::2])


def test_split_and_merge_planes_round_trip():
    raw = _img(3, 8, 10)
    planes = cfa.split_planes(raw)
    assert planes.shape == (3, 4, 4, 5)
    assert torch.equal(planes[:, 1], raw[:, 0::2, 1::2])
    assert torch.equal(planes[:, 2], raw[:, 1::2, 0::2])
    assert torch.equal(cfa.merge_planes(planes), raw)


def test_pad_mosaic_keeps_the_cfa_phase():
    raw = cfa.mosaic(torch.from_numpy(RNG.random((1, 3, 8, 8))), "RGGB")
    padded = cfa.pad_mosaic(raw, 4)
    colour_at = cfa.cfa_masks(16, 16, "RGGB").float().argmax(0)
    # Every padded pixel copies a pixel of the same colour.
    for y in range(16):
        for x in range(16):
            sy, sx = abs(y - 4), abs(x - 4)
            sy = sy if sy < 8 else 14 - sy
            sx = sx if sx < 8 else 14 - sx
            assert padded[0, y, x] == raw[0, sy, sx]
            assert colour_at[y, x] == colour_at[sy + 4, sx + 4]


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 5, 4), "even"),
        (torch.zeros(4, 4, 3, 2), "shape"),
        (np.zeros((4, 4)), "torch.Tensor"),
    ],
)
def test_check_raw_errors(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        cfa.check_raw(bad)


def test_unknown_pattern_is_named():
    with pytest.raises(ValueError, match="XYZW"):
        cfa.pattern_colours("XYZW")


# ----------------------------------------------------------------------------- colour


def test_yuv_matches_skimage_both_ways():
    rgb = torch.from_numpy(RNG.random((2, 3, 5, 7)))
    yuv = color.rgb_to_yuv(rgb)
    ref = np.stack([skimage.color.rgb2yuv(im.permute(1, 2, 0).numpy()) for im in rgb]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(yuv.numpy(), ref, atol=1e-12)
    back = color.yuv_to_rgb(yuv)
    ref_back = np.stack([skimage.color.yuv2rgb(im.transpose(1, 2, 0)) for im in ref]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(back.numpy(), ref_back, atol=1e-12)
    np.testing.assert_allclose(back.numpy(), rgb.numpy(), atol=1e-12)


def test_black_level_white_balance_and_matrix():
    raw = _img(1, 4, 6)
    out = color.subtract_black_level(raw, [0.1, 0.2, 0.3, 0.4])
    expected = raw.numpy().copy()
    expected[:, 0::2, 0::2] -= 0.1
    expected[:, 0::2, 1::2] -= 0.2
    expected[:, 1::2, 0::2] -= 0.3
    expected[:, 1::2, 1::2] -= 0.4
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-15)

    rgb = torch.from_numpy(RNG.random((2, 3, 4, 5)))
    gains = [-0.5, 2.0, 3.0]
    m = RNG.normal(size=9)
    out = color.color_correct(color.white_balance(rgb, gains), m)
    ref = np.einsum("bkhw,ck->bchw", rgb.numpy() * np.array(gains)[None, :, None, None], m.reshape(3, 3))
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


def test_per_image_parameters_broadcast():
    raw = _img(2, 4, 4)
    bl = torch.tensor([[0.0] * 4, [0.5] * 4], dtype=torch.float64)
    out = color.subtract_black_level(raw, bl)
    assert torch.allclose(out[0], raw[0]) and torch.allclose(out[1], raw[1] - 0.5)


def test_gamma_encode_value_and_gradient_at_zero():
    x = torch.tensor([-0.5, 0.0, 0.25, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor(2.2, dtype=torch.float64, requires_grad=True)
    y = color.gamma_encode(x, g)
    np.testing.assert_allclose(y.detach().numpy(), np.clip(x.detach().numpy(), 0, 1) ** (1 / 2.2), atol=1e-15)
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(g.grad)
    assert x.grad[0] == 0 and x.grad[1] == 0 and x.grad[4] == 0
    np.testing.assert_allclose(float(x.grad[2]), (1 / 2.2) * 0.25 ** (1 / 2.2 - 1), rtol=1e-12)
    # Without gradients it is computed in place by log/exp: same values.
    with torch.no_grad():
        z = color.gamma_encode(x.detach().clone(), 2.2)
    np.testing.assert_allclose(z.numpy(), y.detach().numpy(), atol=1e-14)


# ----------------------------------------------------------------------------- luma filters


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.7])
def test_gaussian_blur_matches_scipy(sigma):
    y = _img()
    ref = np.stack([scipy.ndimage.gaussian_filter(im, sigma) for im in y.numpy()])
    np.testing.assert_allclose(filters.gaussian_blur(y, sigma).numpy(), ref, atol=1e-13)


def test_gaussian_blur_wider_than_the_image_matches_scipy():
    y = _img(1, 4, 6)
    ref = scipy.ndimage.gaussian_filter(y[0].numpy(), 3.0)
    np.testing.assert_allclose(filters.gaussian_blur(y, 3.0)[0].numpy(), ref, atol=1e-13)


def test_sharpen_matches_convolve2d_with_zero_fill():
    y = _img()
    k = np.array(filters.SHARPEN_KERNEL)
    ref = np.stack([scipy.signal.convolve2d(im, k, mode="same", boundary="fill", fillvalue=0) for im in y.numpy()])
    np.testing.assert_allclose(filters.sharpen(y).numpy(), ref, atol=1e-13)
    asym = RNG.normal(size=(3, 3))
    ref = scipy.signal.convolve2d(y[0].numpy(), asym, mode="same", boundary="fill", fillvalue=0)
    np.testing.assert_allclose(filters.sharpen(y, asym.tolist())[0].numpy(), ref, atol=1e-13)
    np.testing.assert_allclose(filters.sharpen(y, torch.from_numpy(asym))[0].numpy(), ref, atol=1e-13)


@pytest.mark.parametrize("radius, amount", [(1.0, 1.0), (2.0, 0.5), (0.7, 3.0)])
def test_unsharp_mask_matches_skimage(radius, amount):
    y = _img()
    ref = np.stack([skimage.filters.unsharp_mask(im, radius=radius, amount=amount, preserve_range=True) for im in y.numpy()])
    np.testing.assert_allclose(filters.unsharp_mask(y, radius, amount).numpy(), ref, atol=1e-13)


@pytest.mark.parametrize("size", [3, 5])
def test_median_matches_scipy(size):
    y = _img()
    y[0, 3:6, 3:6] = 0.5  # ties
    ref = np.stack([scipy.ndimage.median_filter(im, size=size) for im in y.numpy()])
    np.testing.assert_array_equal(filters.median_filter(y, size).numpy(), ref)


def test_median_network_on_every_ordering_of_nine_values():
    # 3x3 windows holding random permutations (with ties) of 9 values: the min/max network
    # must pick the middle value every time.
    vals = torch.tensor(RNG.integers(0, 5, size=(500, 9)), dtype=torch.float64)
    windows = vals.view(500, 3, 3)
    out = filters.median3x3_valid(windows)
    assert torch.equal(out[:, 0, 0], vals.median(dim=1).values)


def test_fft_lowpass_against_numpy():
    y = _img(1, 16, 20)
    keep = 0.25
    spec = np.fft.fft2(y[0].numpy())
    spec[int(16 * keep) : int(16 * (1 - keep)), :] = 0
    spec[:, int(20 * keep) : int(20 * (1 - keep))] = 0
    np.testing.assert_allclose(filters.fft_lowpass(y, keep)[0].numpy(), np.fft.ifft2(spec).real, atol=1e-13)
    # Keeping everything is the identity.
    np.testing.assert_allclose(filters.fft_lowpass(y, 0.5).numpy(), y.numpy(), atol=1e-13)


def test_filter_argument_errors():
    y = _img()
    with pytest.raises(ValueError, match="sigma"):
        filters.gaussian_blur(y, 0.0)
    with pytest.raises(ValueError, match="odd"):
        filters.median_filter(y, 4)
    with pytest.raises(ValueError, match="keep_fraction"):
        filters.fft_lowpass(y, 0.0)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        filters.gaussian_blur(y[0], 0.5)
