"""Common image corruptions in the style of ImageNet-C, on batched torch tensors.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019. The corruptions act on a model's input view: RGB images
``(B, 3, H, W)`` or ``(3, H, W)``, floating point, values in [0, 1]. :func:`corrupt` returns a
tensor of the same shape, dtype and device, clipped to [0, 1]. Everything runs batched on the
tensor's own device (no OpenCV, PIL, scikit-image or Python loop over images or pixels).

Severity is an int 1..5 (0 returns an unchanged copy). The numbers per severity are the
reference parameters of ImageNet-C (:data:`SEVERITY_PARAMETERS`); what they mean:

=================  ==========================================================  ===================
name               operation (x in [0, 1])                                     severities 1..5
=================  ==========================================================  ===================
gaussian_noise     x + N(0, c^2), independent per value                        c = .08 ... .38
shot_noise         Poisson(c * x) / c (photon noise at c photons per unit)     c = 60 ... 3
impulse_noise      salt and pepper: a fraction c of the values (each channel   c = .03 ... .27
                   drawn on its own) set to 0 or 1 with equal odds
speckle_noise      x + x * N(0, c^2)                                           c = .15 ... .6
defocus_blur       disk of radius r pixels (aliased disk, then a Gaussian of   (r, s) = (3, .1)
                   sigma s over 3x3, or 5x5 for r > 8), per channel            ... (10, .5)
gaussian_blur      Gaussian of sigma c pixels, truncated at 4 sigma,           c = 1 ... 6
                   edge-replicated borders (scikit-image's ``mode="nearest"``)
brightness         HSV value v -> clip(v + c)                                  c = .1 ... .5
contrast           (x - m) * c + m, m the mean of each channel of each image   c = .4 ... .05
saturate           HSV saturation s -> clip(s * a + b)                         (a, b) = (.3, 0),
                                                                               (.1, 0), (2, 0),
                                                                               (5, .1), (20, .2)
jpeg_compression   JPEG round trip at IJG quality q, :func:`jpeg_round_trip`      q = 25 ... 7
pixelate           area-downsample to int(c * H) x int(c * W), nearest back    c = .6 ... .25
=================  ==========================================================  ===================

Adaptations to images of any size (the reference works on 224x224 uint8 images):

- Blur radii and sigmas are in pixels, as in the reference at 224x224; they are not rescaled
  with the image size, so on a 448-pixel image a blur is relatively half as strong.
- ``pixelate`` scales each side by the factor (the reference's ``int(224 * c)``, per side).
- Borders: ``defocus_blur`` mirrors without repeating the edge (OpenCV's default,
  ``d c b | a b c d``), falling back to the repeating mirror on images smaller than the disk;
  ``gaussian_blur`` replicates the edge. The disk kernel is renormalised to sum 1 after its own
  Gaussian and cropped to its support, so constant images stay constant. (The reference skips
  the renormalisation; its mirrored border lets the kernel sum to 1.013 at r = 8 and 1.011 at
  r = 10, which brightens severities 4 and 5 by about 1%.)
- Both blurs are computed by FFT (equal to direct correlation to float rounding, ~1e-6).
- No 8-bit quantisation of the output (the reference stores uint8).

Severity steps: every corruption's parameter moves in the stronger direction at each step, so
the mean absolute change grows with severity on typical images. ``saturate`` is the exception in
principle: severities 1 and 2 desaturate (by 70% and 90%), 3 to 5 saturate, so the step from 2
to 3 only grows for images of moderate saturation (s < 0.5 everywhere gives a larger change at 3
than at 2); for strongly coloured images it may shrink. Clipping can make steps non-strict for
``brightness`` (already-white pixels) and for the noises at saturated values.

Random corruptions draw from ``generator``: a :class:`torch.Generator` (samples are drawn on its
device, then moved to the images' device), an int seed (a fresh generator on the images' device),
or None (torch's global generator for the images' device).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .filters import gaussian_kernel1d, pad2d

__all__ = [
    "CORRUPTIONS",
    "SEVERITY_PARAMETERS",
    "JPEG_QUALITIES",
    "IJG_LUMINANCE_TABLE",
    "IJG_CHROMINANCE_TABLE",
    "corrupt",
    "disk_kernel",
    "jpeg_quantization_tables",
    "jpeg_round_trip",
]

#: Reference parameters of ImageNet-C per corruption, one entry per severity 1..5.
SEVERITY_PARAMETERS: dict[str, tuple] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "gaussian_blur": (1, 2, 3, 4, 6),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "saturate": ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)),
    "jpeg_compression": (25, 18, 15, 10, 7),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
}

#: Names accepted by :func:`corrupt`.
CORRUPTIONS: tuple[str, ...] = tuple(SEVERITY_PARAMETERS)

#: IJG quality per severity of ``jpeg_compression``.
JPEG_QUALITIES: tuple[int, ...] = SEVERITY_PARAMETERS["jpeg_compression"]

#: Base quantisation tables of the JPEG standard (ITU-T T.81 Annex K), natural (row-major) order:
#: row = vertical frequency, column = horizontal frequency. libjpeg scales them by quality.
IJG_LUMINANCE_TABLE: tuple[tuple[int, ...], ...] = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
IJG_CHROMINANCE_TABLE: tuple[tuple[int, ...], ...] = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
) + ((99,) * 8,) * 4

# JFIF (full-range BT.601) YCbCr, on 0..255 values; offsets of 128 are left out as the DCT level
# shift removes them again.
_YCBCR_FROM_RGB = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ],
    dtype=torch.float64,
)
_RGB_FROM_YCBCR = torch.linalg.inv(_YCBCR_FROM_RGB)


# --------------------------------------------------------------------------- arguments


def _check_images(images) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, 3, H, W) or (3, H, W), got {type(images).__name__}")
    if not images.is_floating_point():
        raise ValueError(
            f"images must be a floating-point tensor with values in [0, 1], got dtype {images.dtype} "
            "(divide integer images by their maximum, e.g. 255, first)"
        )
    if images.dim() not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W) or (3, H, W), got {tuple(images.shape)}")
    if images.shape[-1] == 0 or images.shape[-2] == 0:
        raise ValueError(f"images must have a non-empty height and width, got {tuple(images.shape)}")
    return images


def _check_severity(severity) -> int:
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 5:
        raise ValueError(f"severity must be an int from 0 to 5, got {severity!r}")
    return severity


def _resolve_generator(generator, device: torch.device) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        g = torch.Generator(device=device)
        g.manual_seed(generator)
        return g
    raise TypeError(f"generator must be None, an int seed or a torch.Generator, got {type(generator).__name__}")


def _rand(kind: str, like: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """Uniform [0, 1) (``kind="rand"``) or standard normal (``"randn"``) samples shaped like ``like``."""
    draw = torch.rand if kind == "rand" else torch.randn
    device = like.device if g is None else g.device
    out = draw(like.shape, generator=g, device=device, dtype=like.dtype)
    return out.to(like.device)


# --------------------------------------------------------------------------- blur kernels


def disk_kernel(radius: float, alias_blur: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Defocus kernel ``(k, k)``, summing to 1: the ImageNet-C "aliased disk, then Gaussian".

    A binary disk ``x^2 + y^2 <= radius^2`` on the grid -8..8 (or -radius..radius when
    radius > 8), normalised, blurred by a separable Gaussian of sigma ``alias_blur`` over 3 taps
    (5 taps when radius > 8) with mirrored borders (as OpenCV's ``GaussianBlur``), then cropped to
    the rows and columns holding more than 1e-9 of the weight and renormalised.
    """
    if radius <= 0 or alias_blur <= 0:
        raise ValueError(f"radius and alias_blur must be positive, got {radius} and {alias_blur}")
    half = 8 if radius <= 8 else int(math.ceil(radius))
    taps = 3 if radius <= 8 else 5
    grid = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2).to(torch.float64)
    disk /= disk.sum()
    g = gaussian_kernel1d(alias_blur, radius=taps // 2, dtype=torch.float64)
    pad = taps // 2
    blurred = F.pad(disk[None, None], (pad, pad, pad, pad), mode="reflect")
    blurred = F.conv2d(blurred, g.view(1, 1, taps, 1))
    blurred = F.conv2d(blurred, g.view(1, 1, 1, taps))[0, 0]
    keep_rows = torch.nonzero(blurred.sum(1) > 1e-9).flatten()
    keep_cols = torch.nonzero(blurred.sum(0) > 1e-9).flatten()
    lo, hi = int(min(keep_rows[0], keep_cols[0])), int(max(keep_rows[-1], keep_cols[-1]))
    lo = min(lo, blurred.shape[0] - 1 - hi)  # stay centred
    k = blurred[lo : blurred.shape[0] - lo, lo : blurred.shape[1] - lo]
    return (k / k.sum()).to(dtype=dtype, device=device)


def _correlate(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Correlate every channel of ``(B, C, H, W)`` with one odd square kernel ``(k, k)``;
    same-size output, borders padded by ``mode`` (see :func:`raw_isp.isp.filters.pad2d`).

    Computed by FFT on the padded planes (for the 7- to 49-tap kernels here several times faster
    than ``conv2d`` on CPU, and equal to it to float rounding): the padding is as wide as the
    kernel's radius, so the circular wrap-around only reaches samples that are cropped away.
    """
    b, c, h, w = x.shape
    r = kernel.shape[-1] // 2
    if mode == "reflect" and (r >= h or r >= w):
        mode = "symmetric"  # the non-repeating mirror needs the image to be wider than the pad
    planes = pad2d(x.reshape(b * c, h, w), r, r, mode)
    ph, pw = planes.shape[-2:]
    # Convolution with the flipped kernel is correlation; the kernel's centre lands at (r, r),
    # so output sample (i, j) of the image sits at (i + 2r, j + 2r) of the circular result.
    taps = torch.zeros(ph, pw, dtype=x.dtype, device=x.device)
    taps[: 2 * r + 1, : 2 * r + 1] = kernel.to(dtype=x.dtype, device=x.device).flip(-2, -1)
    out = torch.fft.irfft2(torch.fft.rfft2(planes) * torch.fft.rfft2(taps), s=(ph, pw))
    return out[..., 2 * r : 2 * r + h, 2 * r : 2 * r + w].reshape(b, c, h, w)


# --------------------------------------------------------------------------- JPEG


def jpeg_quantization_tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """IJG (libjpeg ``jpeg_set_quality``, baseline) luminance and chrominance tables ``(8, 8)``.

    ``quality`` 1..100: scale = 5000 // q below 50, else 200 - 2 q; entry = (base * scale + 50)
    // 100 clipped to 1..255. Natural order (row = vertical frequency), int64.
    """
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int from 1 to 100, got {quality!r}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    tables = []
    for base in (IJG_LUMINANCE_TABLE, IJG_CHROMINANCE_TABLE):
        t = (torch.tensor(base, dtype=torch.int64) * scale + 50) // 100
        tables.append(t.clamp(1, 255))
    return tables[0], tables[1]


def _dct_matrix(dtype, device) -> torch.Tensor:
    """Orthonormal 8-point DCT-II ``(8, 8)``: row u holds basis function u (JPEG's FDCT)."""
    n = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(dtype=dtype, device=device)


def _quantise_blocks(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """DCT, quantise with ``table``, dequantise, IDCT on each 8x8 block of ``(N, C, H, W)``
    (H, W multiples of 8; values level-shifted to be centred on 0, in 0..255 units)."""
    n, c, h, w = plane.shape
    d = _dct_matrix(plane.dtype, plane.device)
    basis = torch.kron(d, d)  # (64, 64): 2-D DCT of a row-major flattened block
    blocks = plane.reshape(n, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(-1, 64)
    q = table.to(dtype=plane.dtype, device=plane.device).reshape(64)
    coeffs = torch.round(blocks @ basis.T / q) * q
    blocks = coeffs @ basis
    return blocks.reshape(n, c, h // 8, w // 8, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def _fancy_upsample(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Double ``dim`` with libjpeg's triangular ("fancy") filter: each output sample is 3/4 of the
    nearest input sample plus 1/4 of the next nearest, edges replicated."""
    size = x.shape[dim]
    prev = torch.cat([x.narrow(dim, 0, 1), x.narrow(dim, 0, size - 1)], dim=dim)
    nxt = torch.cat([x.narrow(dim, 1, size - 1), x.narrow(dim, size - 1, 1)], dim=dim)
    even = 0.75 * x + 0.25 * prev
    odd = 0.75 * x + 0.25 * nxt
    out = torch.stack([even, odd], dim=dim + 1 if dim >= 0 else dim)
    shape = list(x.shape)
    shape[dim] = 2 * size
    return out.reshape(shape)


def jpeg_round_trip(images: torch.Tensor, quality: int, chroma_subsampling: bool = True) -> torch.Tensor:
    """Encode and decode ``(B, 3, H, W)`` RGB in [0, 1] as baseline JPEG at IJG ``quality``.

    The steps of libjpeg's defaults, in floating point: RGB -> JFIF YCbCr (0..255 scale), edge
    replication to whole MCUs (16x16 with 4:2:0 subsampling, else 8x8), chroma averaged over
    2x2 (``chroma_subsampling``), orthonormal 8x8 DCT-II per block, rounding to multiples of the
    quality-scaled standard tables (:func:`jpeg_quantization_tables`), inverse DCT, chroma
    upsampled with libjpeg's triangular ("fancy") filter, back to RGB, cropped and clipped to
    [0, 1]. Not modelled: entropy coding (lossless), libjpeg's integer DCT and rounding of
    intermediate values to 8 bits (each well below one 8-bit level).
    """
    _check_images(images)
    luma_table, chroma_table = jpeg_quantization_tables(quality)
    squeeze = images.dim() == 3
    x = images.unsqueeze(0) if squeeze else images
    h, w = x.shape[-2:]
    mcu = 16 if chroma_subsampling else 8
    ph, pw = -h % mcu, -w % mcu
    x = F.pad(x * 255.0, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x * 255.0
    ycc = torch.einsum("ij,bjhw->bihw", _YCBCR_FROM_RGB.to(x), x)
    luma = ycc[:, :1] - 128.0
    chroma = ycc[:, 1:]
    if chroma_subsampling:
        chroma = F.avg_pool2d(chroma, 2)
    luma = _quantise_blocks(luma, luma_table)[..., :h, :w]
    chroma = _quantise_blocks(chroma, chroma_table)
    if chroma_subsampling:
        # The decoder sees ceil(H/2) x ceil(W/2) chroma samples and replicates beyond them.
        chroma = chroma[..., : (h + 1) // 2, : (w + 1) // 2]
        chroma = _fancy_upsample(_fancy_upsample(chroma, -2), -1)
    ycc = torch.cat([luma + 128.0, chroma[..., :h, :w]], dim=1)
    rgb = torch.einsum("ij,bjhw->bihw", _RGB_FROM_YCBCR.to(x), ycc) / 255.0
    rgb = rgb.clamp(0, 1)
    return rgb.squeeze(0) if squeeze else rgb


# --------------------------------------------------------------------------- corruptions


def _gaussian_noise(x, c, g):
    return x + _rand("randn", x, g) * c


def _shot_noise(x, c, g):
    rate = (x.clamp(min=0) * c).to(x.device if g is None else g.device)
    return torch.poisson(rate, generator=g).to(x.device) / c


def _impulse_noise(x, c, g):
    hit = _rand("rand", x, g) < c
    salt = _rand("rand", x, g) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def _speckle_noise(x, c, g):
    return x + x * _rand("randn", x, g) * c


def _defocus_blur(x, c, g):
    radius, alias_blur = c
    return _correlate(x, disk_kernel(radius, alias_blur, dtype=x.dtype, device=x.device), "reflect")


def _gaussian_blur(x, c, g):
    taps = gaussian_kernel1d(float(c), dtype=x.dtype, device=x.device)  # radius int(4 c + 0.5)
    return _correlate(x, torch.outer(taps, taps), "replicate")


def _brightness(x, c, g):
    # HSV value v -> clip(v + c) with hue and saturation kept, without the round trip: every
    # channel of hsv_to_rgb is linear in v (``v - v s ramp(h)``), so each pixel scales by v' / v;
    # black (v = 0, saturation 0) becomes the grey v'.
    v = x.amax(dim=-3, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    lit = v > 0
    return torch.addcmul(torch.where(lit, 0, v_new), x, torch.where(lit, v_new / torch.where(lit, v, 1), 0))


def _contrast(x, c, g):
    means = x.mean(dim=(-2, -1), keepdim=True)
    return (x - means) * c + means


def _saturate(x, c, g):
    # HSV saturation s -> clip(s a + b) with hue and value kept, without the round trip: each
    # channel of hsv_to_rgb is ``v - v s ramp(h)``, and ``v s ramp(h) = v - x``, so the distance
    # below v scales by s' / s. Greys (s = 0) have hue 0 (red), whose ramp is (0, 1, 1).
    v = x.amax(dim=-3, keepdim=True)
    delta = v - x.amin(dim=-3, keepdim=True)
    s = torch.where(v > 0, delta / torch.where(v > 0, v, 1), 0)
    s_new = (s * c[0] + c[1]).clamp(0, 1)
    red_ramp = torch.tensor([0.0, 1.0, 1.0], dtype=x.dtype, device=x.device).view(3, 1, 1)
    coloured = delta > 0
    # Greys have v - x = 0, so one expression serves both: v - ((v - x) s'/s + [grey] v s' ramp).
    below = (v - x).mul_(torch.where(coloured, s_new / torch.where(coloured, s, 1), 0))
    below.addcmul_(torch.where(coloured, 0, v * s_new), red_ramp)
    return below.neg_().add_(v)


def _jpeg_compression(x, c, g):
    return jpeg_round_trip(x.clamp(0, 1), int(c))


def _pixelate(x, c, g):
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, int(h * c)), max(1, int(w * c))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


_FUNCTIONS = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "speckle_noise": _speckle_noise,
    "defocus_blur": _defocus_blur,
    "gaussian_blur": _gaussian_blur,
    "brightness": _brightness,
    "contrast": _contrast,
    "saturate": _saturate,
    "jpeg_compression": _jpeg_compression,
    "pixelate": _pixelate,
}


def corrupt(
    images: torch.Tensor,
    name: str,
    severity: int,
    generator: torch.Generator | int | None = None,
) -> torch.Tensor:
    """Apply the corruption ``name`` at ``severity`` (0..5) to RGB ``images``.

    images: ``(B, 3, H, W)`` or ``(3, H, W)``, floating point, values in [0, 1].
    name: one of :data:`CORRUPTIONS`. severity: int, 0 returns an unchanged copy.
    generator: ``torch.Generator``, int seed or None; only the noise corruptions draw from it,
    and the same generator state (or seed) gives the same result.
    Returns a new tensor of the same shape, dtype and device, clipped to [0, 1]. Half-precision
    inputs are processed in float32 and cast back.
    """
    images = _check_images(images)
    if name not in _FUNCTIONS:
        raise ValueError(f"name must be one of {', '.join(CORRUPTIONS)}; got {name!r}")
    severity = _check_severity(severity)
    g = _resolve_generator(generator, images.device)
    if severity == 0:
        return images.clone()
    work = images if images.dtype in (torch.float32, torch.float64) else images.float()
    batched = work.unsqueeze(0) if work.dim() == 3 else work
    out = _FUNCTIONS[name](batched, SEVERITY_PARAMETERS[name][severity - 1], g).clamp(0, 1)
    out = out.reshape(images.shape)
    return out.to(images.dtype) if out.dtype != images.dtype else out
