"""Tests of raw_isp.isp.corruptions: ImageNet-C style corruptions on torch tensors."""

from __future__ import annotations

import colorsys
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from raw_isp.isp.corruptions import (
    CORRUPTIONS,
    JPEG_QUALITIES,
    SEVERITY_PARAMETERS,
    corrupt,
    disk_kernel,
    jpeg_quantization_tables,
    jpeg_round_trip,
)
from raw_isp.isp.color import hsv_to_rgb, rgb_to_hsv

NOISES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
REQUIRED = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "gaussian_blur",
    "brightness", "contrast", "saturate", "jpeg_compression", "pixelate",
)


def smooth_field(batch: int, seed: int, h: int = 48, w: int = 64) -> torch.Tensor:
    """Natural-looking test images (B, 3, h, w) in [0, 1]: a smooth random luminance field plus
    weaker, smoother colour variations (moderate saturation, like photographs)."""
    g = torch.Generator().manual_seed(seed)
    lum = torch.rand(batch, 1, h // 8 + 1, w // 8 + 1, generator=g)
    col = torch.rand(batch, 3, h // 16 + 1, w // 16 + 1, generator=g) - 0.5
    lum = F.interpolate(lum, size=(h, w), mode="bicubic", align_corners=True)
    col = F.interpolate(col, size=(h, w), mode="bicubic", align_corners=True)
    return (0.15 + 0.6 * lum + 0.25 * col).clamp(0, 1)


def mean_change(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().mean().item()


def pil_jpeg(images: torch.Tensor, quality: int) -> tuple[torch.Tensor, list]:
    """Round trip each image of (B, 3, H, W) (multiples of 1/255) through Pillow's JPEG."""
    out, tables = [], []
    for img in images:
        arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=quality)
        buf.seek(0)
        decoded = Image.open(buf)
        tables.append(decoded.quantization)
        out.append(torch.from_numpy(np.array(decoded.convert("RGB"))).permute(2, 0, 1).float() / 255)
    return torch.stack(out), tables


# --------------------------------------------------------------------------- catalogue


def test_catalogue_has_the_required_names_and_five_severities():
    assert set(REQUIRED) <= set(CORRUPTIONS)
    assert all(len(SEVERITY_PARAMETERS[n]) == 5 for n in CORRUPTIONS)
    assert JPEG_QUALITIES == (25, 18, 15, 10, 7)


# --------------------------------------------------------------------------- behaviour per severity


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_severity_changes_the_image(name):
    x = smooth_field(2, seed=3)
    for severity in range(1, 6):
        assert mean_change(corrupt(x, name, severity, generator=0), x) > 2e-3, severity


def test_mean_change_grows_strictly_with_severity():
    # Averaged over 3 image seeds (and noise seeds). Every reference parameter changes at every
    # step, so no step may be flat. Smallest measured step ratios over 30 seeds: pixelate 1.02,
    # contrast 1.06, saturate 1.08 (the 2 -> 3 step, desaturate 90% -> saturate 2x), others > 1.1.
    totals = {name: np.zeros(5) for name in CORRUPTIONS}
    for seed in range(3):
        x = smooth_field(2, seed)
        for name in CORRUPTIONS:
            totals[name] += [mean_change(corrupt(x, name, s, generator=seed), x) for s in range(1, 6)]
    for name, t in totals.items():
        assert np.all(np.diff(t) > 0), (name, t / 3)


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize(
    "shape,dtype",
    [((3, 20, 28), torch.float32), ((2, 3, 17, 23), torch.float64), ((2, 3, 16, 16), torch.bfloat16)],
)
def test_shape_dtype_device_and_range_are_kept(name, shape, dtype):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    y = corrupt(x, name, 5, generator=1)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1 and torch.isfinite(y).all()
    assert y.data_ptr() != x.data_ptr()


def test_severity_zero_is_an_unchanged_copy():
    x = smooth_field(1, 0)
    for name in CORRUPTIONS:
        y = corrupt(x, name, 0)
        assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("name", NOISES)
def test_noise_is_reproducible_and_seed_dependent(name):
    x = smooth_field(2, 1)
    assert torch.equal(corrupt(x, name, 3, generator=7), corrupt(x, name, 3, generator=7))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a, b = corrupt(x, name, 3, generator=g1), corrupt(x, name, 3, generator=g2)
    assert torch.equal(a, b)
    assert not torch.equal(corrupt(x, name, 3, generator=g1), a)  # the generator advanced
    assert not torch.equal(corrupt(x, name, 3, generator=8), a)


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if n not in NOISES])
def test_deterministic_corruptions_act_per_image(name):
    x = smooth_field(3, 2, h=24, w=40)
    batched = corrupt(x, name, 4)
    single = torch.stack([corrupt(img, name, 4) for img in x])
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- noise statistics


def test_noise_statistics_follow_the_reference_parameters():
    grey = torch.full((4, 3, 64, 64), 0.5, dtype=torch.float64)
    # Gaussian: x + N(0, c^2) (no clipping at 0.5 +- 5 sigma for c = 0.08).
    d = corrupt(grey, "gaussian_noise", 1, generator=0) - grey
    assert abs(d.std().item() - 0.08) < 0.002 and abs(d.mean().item()) < 0.002
    # Shot: Poisson(c x) / c, mean x and variance x / c, on the lattice k / c.
    c = SEVERITY_PARAMETERS["shot_noise"][0]
    y = corrupt(grey * 0.8, "shot_noise", 1, generator=0)
    assert abs(y.mean().item() - 0.4) < 0.003 and abs(y.var().item() - 0.4 / c) < 0.0004
    assert torch.allclose(y * c, (y * c).round())
    # Impulse: a fraction c of the values set to 0 or 1, half each.
    c = SEVERITY_PARAMETERS["impulse_noise"][4]
    y = corrupt(grey, "impulse_noise", 5, generator=0)
    salt, pepper = (y == 1).double().mean().item(), (y == 0).double().mean().item()
    assert abs(salt + pepper - c) < 0.01 and abs(salt - pepper) < 0.01
    assert torch.all((y == 0) | (y == 1) | (y == 0.5))


# --------------------------------------------------------------------------- blur, pixelate, contrast


@pytest.mark.parametrize("name", ["defocus_blur", "gaussian_blur", "pixelate"])
def test_blur_and_pixelate_leave_a_constant_image_unchanged(name):
    colour = torch.tensor([0.2, 0.55, 0.9]).view(1, 3, 1, 1)
    x = colour.expand(2, 3, 30, 44).clone()
    for severity in range(1, 6):
        torch.testing.assert_close(corrupt(x, name, severity), x, atol=1e-5, rtol=0)


def test_gaussian_blur_matches_scipy_with_nearest_borders():
    from scipy.ndimage import gaussian_filter

    x = smooth_field(1, 4, h=40, w=30).double()
    for severity, sigma in enumerate(SEVERITY_PARAMETERS["gaussian_blur"], start=1):
        ref = gaussian_filter(x[0].numpy(), sigma=(0, sigma, sigma), mode="nearest", truncate=4.0)
        np.testing.assert_allclose(corrupt(x, "gaussian_blur", severity)[0].numpy(), ref, atol=1e-9)


def test_defocus_blur_matches_direct_correlation_with_the_disk():
    from scipy.ndimage import correlate

    x = smooth_field(1, 5, h=36, w=50).double()
    for severity, (radius, alias) in enumerate(SEVERITY_PARAMETERS["defocus_blur"], start=1):
        k = disk_kernel(radius, alias, dtype=torch.float64).numpy()
        # scipy's "mirror" is OpenCV's default border (d c b | a b c d).
        ref = np.stack([correlate(ch, k, mode="mirror") for ch in x[0].numpy()])
        np.testing.assert_allclose(corrupt(x, "defocus_blur", severity)[0].numpy(), ref, atol=1e-9)


def test_disk_kernel_shape_and_support():
    for radius, alias in SEVERITY_PARAMETERS["defocus_blur"]:
        k = disk_kernel(radius, alias, dtype=torch.float64)
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert abs(k.sum().item() - 1) < 1e-12
        assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0))
        c = k.shape[0] // 2
        # Inside the disk the weight is flat (about 1 / (pi r^2)); well outside it is zero.
        assert abs(k[c, c].item() * np.pi * radius**2 - 1) < 0.15
        assert k.shape[0] <= 2 * radius + 5


def test_pixelate_is_a_block_mean_for_an_exact_factor():
    x = smooth_field(1, 6, h=32, w=48)
    y = corrupt(x, "pixelate", 2)  # factor 0.5: 2x2 block means, repeated
    blocks = F.avg_pool2d(x, 2).repeat_interleave(2, -2).repeat_interleave(2, -1)
    torch.testing.assert_close(y, blocks, atol=1e-6, rtol=0)


def test_contrast_keeps_the_mean_of_a_grey_image():
    grey = smooth_field(3, 7)[:, :1].expand(3, 3, 48, 64).clone()
    for severity in range(1, 6):
        y = corrupt(grey, "contrast", severity)
        torch.testing.assert_close(y.mean(dim=(1, 2, 3)), grey.mean(dim=(1, 2, 3)), atol=1e-6, rtol=0)
        assert y.std() < grey.std()


# --------------------------------------------------------------------------- HSV


def test_hsv_conversions_match_colorsys():
    rgb = torch.rand(1, 3, 10, 20, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    rgb[0, :, 0, :3] = torch.tensor([[0.0, 0.5, 1.0]]).T  # greys: black, mid, white
    rgb[0, :, 1, 0] = torch.tensor([0.7, 0.7, 0.2])  # a tie for the maximum
    hsv = rgb_to_hsv(rgb)
    ref = [colorsys.rgb_to_hsv(*rgb[0, :, i, j].tolist()) for i in range(10) for j in range(20)]
    np.testing.assert_allclose(hsv[0].permute(1, 2, 0).reshape(-1, 3).numpy(), np.array(ref), atol=1e-12)
    ref_back = [colorsys.hsv_to_rgb(*hsv[0, :, i, j].tolist()) for i in range(10) for j in range(20)]
    back = hsv_to_rgb(hsv)
    np.testing.assert_allclose(back[0].permute(1, 2, 0).reshape(-1, 3).numpy(), np.array(ref_back), atol=1e-12)
    torch.testing.assert_close(back, rgb, atol=1e-12, rtol=0)


def test_brightness_and_saturate_act_on_value_and_saturation_only():
    x = smooth_field(2, 9).double()
    hsv = rgb_to_hsv(x)
    b = rgb_to_hsv(corrupt(x, "brightness", 2))
    torch.testing.assert_close(b[:, 2], (hsv[:, 2] + 0.2).clamp(max=1), atol=1e-12, rtol=0)
    torch.testing.assert_close(b[:, 1], hsv[:, 1], atol=1e-9, rtol=0)
    s = rgb_to_hsv(corrupt(x, "saturate", 4))
    torch.testing.assert_close(s[:, 1], (hsv[:, 1] * 5 + 0.1).clamp(max=1), atol=1e-12, rtol=0)
    torch.testing.assert_close(s[:, 2], hsv[:, 2], atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_brightness_and_saturate_equal_the_hsv_round_trip(dtype, atol):
    """The closed forms against the definition: RGB -> HSV, change v or s, HSV -> RGB, on every
    severity, with greys, black, white and channel ties among the pixels."""
    x = torch.rand(3, 3, 24, 32, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    x[0, :, 0, :4] = torch.tensor([[0.0, 0.4, 1.0, 0.0]]) * torch.ones(3, 1)  # black, grey, white
    x[0, :, 1, 0] = torch.tensor([0.7, 0.7, 0.2])  # a tie for the maximum
    x[0, :, 1, 1] = torch.tensor([0.3, 0.9, 0.3])  # a tie for the minimum
    x[1] = x[1].round(decimals=1)  # many exact ties
    x = x.to(dtype)
    hsv = rgb_to_hsv(x.double())
    for severity in range(1, 6):
        c = SEVERITY_PARAMETERS["brightness"][severity - 1]
        want = hsv_to_rgb(torch.stack([hsv[:, 0], hsv[:, 1], (hsv[:, 2] + c).clamp(0, 1)], dim=1)).clamp(0, 1)
        torch.testing.assert_close(corrupt(x, "brightness", severity).double(), want, atol=atol, rtol=0)
        a, b = SEVERITY_PARAMETERS["saturate"][severity - 1]
        want = hsv_to_rgb(torch.stack([hsv[:, 0], (hsv[:, 1] * a + b).clamp(0, 1), hsv[:, 2]], dim=1)).clamp(0, 1)
        torch.testing.assert_close(corrupt(x, "saturate", severity).double(), want, atol=atol, rtol=0)


# --------------------------------------------------------------------------- JPEG


@pytest.mark.parametrize("quality", JPEG_QUALITIES)
def test_jpeg_tables_match_pillow(quality):
    luma, chroma = jpeg_quantization_tables(quality)
    _, tables = pil_jpeg(torch.full((1, 3, 8, 8), 0.5), quality)
    assert list(tables[0][0]) == luma.flatten().tolist()
    assert list(tables[0][1]) == chroma.flatten().tolist()


@pytest.mark.parametrize("size", [(48, 64), (37, 45)])
def test_jpeg_round_trip_is_close_to_pillow(size):
    # Measured (4 smooth fields each size): mean |ours - PIL| 0.0018-0.0032 (0.45-0.8 of an
    # 8-bit level: libjpeg's integer DCT and 8-bit intermediates) against a mean change of
    # 0.014 (q = 25) to 0.038 (q = 7); ratio 0.05-0.22.
    x = (smooth_field(4, 10, *size) * 255).round() / 255
    for severity, quality in enumerate(JPEG_QUALITIES, start=1):
        ours = corrupt(x, "jpeg_compression", severity)
        torch.testing.assert_close(ours, jpeg_round_trip(x, quality))
        pil, _ = pil_jpeg(x, quality)
        err, change = mean_change(ours, pil), mean_change(pil, x)
        assert err < 1.2 / 255 and err < 0.3 * change, (quality, err, change)


def test_jpeg_without_subsampling_is_closer_at_the_same_quality():
    x = (smooth_field(2, 11) * 255).round() / 255
    full = jpeg_round_trip(x, 25, chroma_subsampling=False)
    sub = jpeg_round_trip(x, 25)
    assert mean_change(full, x) < mean_change(sub, x)


# --------------------------------------------------------------------------- errors


def test_errors_name_the_argument():
    x = smooth_field(1, 0)
    with pytest.raises(ValueError, match="name"):
        corrupt(x, "fog", 1)
    for bad in (6, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="severity"):
            corrupt(x, "contrast", bad)
    for shape in [(1, 4, 8, 8), (8, 8), (1, 1, 3, 8, 8), (3, 0, 8)]:
        with pytest.raises(ValueError, match="images"):
            corrupt(torch.zeros(shape), "contrast", 1)
    with pytest.raises(ValueError, match="images.*floating"):
        corrupt((x * 255).to(torch.uint8), "contrast", 1)
    with pytest.raises(TypeError, match="images"):
        corrupt(x.numpy(), "contrast", 1)
    with pytest.raises(TypeError, match="generator"):
        corrupt(x, "gaussian_noise", 1, generator="seed")
    with pytest.raises(ValueError, match="quality"):
        jpeg_quantization_tables(0)
