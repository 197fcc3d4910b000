"""Spatial filters on single-channel image batches ``(B, H, W)`` (used on luma).

Boundary handling follows the scipy/scikit-image functions the study used, so each filter
matches its reference on the whole frame: ``"symmetric"`` is scipy's ``mode="reflect"``
(``d c b a | a b c d``), ``"zeros"`` is ``convolve2d(..., boundary="fill", fillvalue=0)``.
All filters are differentiable in the image; the Gaussian, unsharp and kernel filters also in
their continuous parameters (sigma, radius, amount, kernel weights).

:func:`gaussian_taps_numpy` and :func:`gaussian_blur_numpy` are the numpy side of the Gaussian
for the synthetic-data simulators (``raw_drone.synthetic``, ``raw_microscopy.synthetic``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "SHARPEN_KERNEL",
    "pad2d",
    "gaussian_kernel1d",
    "gaussian_radius",
    "conv2d_same",
    "correlate_valid",
    "correlate2d_valid",
    "gaussian_blur",
    "gaussian_blur_valid",
    "gaussian_taps_numpy",
    "gaussian_blur_numpy",
    "sharpen_valid",
    "unsharp_mask_valid",
    "sharpen",
    "unsharp_mask",
    "median_filter",
    "median3x3_valid",
    "fft_lowpass",
]

#: The fixed 3x3 sharpening kernel of the study ("s").
SHARPEN_KERNEL = ((0.0, -1.0, 0.0), (-1.0, 5.0, -1.0), (0.0, -1.0, 0.0))


def _check_image(y: torch.Tensor, name: str = "image") -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.dim() != 3:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{name} must be a tensor of shape (B, H, W), got {shape}")
    return y


def pad2d(x: torch.Tensor, pad_y: int, pad_x: int, mode: str = "symmetric") -> torch.Tensor:
    """Pad the last two axes of ``x``. ``mode``: "symmetric" (scipy reflect), "reflect"
    (scipy mirror), "replicate" or "zeros"."""
    if pad_y == 0 and pad_x == 0:
        return x
    if mode == "zeros":
        return F.pad(x, (pad_x, pad_x, pad_y, pad_y))
    if mode in ("reflect", "replicate"):
        lead = x.shape[:-2]
        x4 = F.pad(x.reshape(-1, 1, *x.shape[-2:]), (pad_x, pad_x, pad_y, pad_y), mode=mode)
        return x4.reshape(*lead, *x4.shape[-2:])
    if mode != "symmetric":
        raise ValueError(f"unknown padding mode {mode!r}")
    h, w = x.shape[-2:]
    if pad_y > h or pad_x > w:
        # Wider than the frame: index the periodic (period 2n) symmetric extension directly.
        return x.index_select(-2, _symmetric_index(h, pad_y, x.device)).index_select(
            -1, _symmetric_index(w, pad_x, x.device)
        )
    if pad_y:
        x = torch.cat([x[..., :pad_y, :].flip(-2), x, x[..., h - pad_y :, :].flip(-2)], dim=-2)
    if pad_x:
        x = torch.cat([x[..., :pad_x].flip(-1), x, x[..., w - pad_x :].flip(-1)], dim=-1)
    return x


def _symmetric_index(n: int, pad: int, device) -> torch.Tensor:
    idx = torch.arange(-pad, n + pad, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Kernel radius used by ``scipy.ndimage.gaussian_filter``: ``int(truncate * sigma + 0.5)``."""
    return int(truncate * float(sigma) + 0.5)


def gaussian_kernel1d(
    sigma: float | torch.Tensor, truncate: float = 4.0, dtype=torch.float32, device=None, radius: int | None = None
) -> torch.Tensor:
    """Normalised 1-D Gaussian ``(2r + 1,)``: the one Gaussian kernel factory of the project.

    ``r`` follows scipy's rule (:func:`gaussian_radius`, ``truncate`` sigmas) unless ``radius``
    is given. Computed in float64 from a float ``sigma`` (in the dtype of a tensor ``sigma``,
    differentiable in it), then cast to ``dtype``. The ISP's blurs, SSIM, the corruptions and
    both simulators' optics use it.
    """
    s = sigma if isinstance(sigma, torch.Tensor) else torch.tensor(float(sigma), dtype=torch.float64)
    if float(s.detach()) <= 0:
        raise ValueError(f"sigma must be positive, got {float(s)}")
    r = gaussian_radius(float(s.detach()), truncate) if radius is None else int(radius)
    x = torch.arange(-r, r + 1, dtype=s.dtype, device=s.device)
    k = torch.exp(-0.5 * (x / s) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def conv2d_same(y: torch.Tensor, kernel, mode: str = "symmetric") -> torch.Tensor:
    """Correlate ``(B, H, W)`` with a 2-D kernel ``(kh, kw)`` (odd sizes), same-size output.

    ``kernel``: a tensor (gradients flow to it) or a nested sequence of floats; borders are
    padded by ``mode`` (see :func:`pad2d`). :func:`correlate2d_valid` on the padded image.
    (Correlation, not convolution: for learned, asymmetric kernels the two differ.)
    """
    _check_image(y)
    kh, kw = _kernel_shape(kernel)
    return correlate2d_valid(pad2d(y, kh // 2, kw // 2, mode), kernel)


def _kernel_shape(kernel) -> tuple[int, int]:
    if isinstance(kernel, torch.Tensor):
        if kernel.dim() != 2:
            raise ValueError(f"kernel must be 2-D (kh, kw), got shape {tuple(kernel.shape)}")
        kh, kw = kernel.shape
    else:
        kh, kw = len(kernel), len(kernel[0])
        if any(len(row) != kw for row in kernel):
            raise ValueError("kernel rows must all have the same length")
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel sizes must be odd, got {kh}x{kw}")
    return kh, kw


def correlate2d_valid(x: torch.Tensor, kernel) -> torch.Tensor:
    """2-D correlation without padding: ``(B, H, W)`` -> ``(B, H - kh + 1, W - kw + 1)``.

    ``out[b, i, j] = sum_{u, v} kernel[u][v] * x[b, i + u, j + v]``; the kernel need not be
    separable. A tensor kernel ``(kh, kw)`` (learnable weights) goes through ``conv2d``, whose
    backward pass is cheap for many taps. Fixed weights (a nested sequence of floats) are
    summed as shifted slices, skipping zero taps: on CPU that is 3-20x faster than ``conv2d``
    with one channel (3x3 to 9x9 kernels, float32 and float64).
    """
    kh, kw = _kernel_shape(kernel)
    if isinstance(kernel, torch.Tensor):
        k = kernel.to(device=x.device, dtype=x.dtype).reshape(1, 1, kh, kw)
        lead = x.shape[:-2]
        out = F.conv2d(x.reshape(-1, 1, *x.shape[-2:]), k)
        return out.reshape(*lead, *out.shape[-2:])
    h, w = x.shape[-2] - kh + 1, x.shape[-1] - kw + 1
    grad = torch.is_grad_enabled() and x.requires_grad
    acc = None
    for i in range(kh):
        for j in range(kw):
            wt = float(kernel[i][j])
            if wt == 0:
                continue
            view = x[..., i : i + h, j : j + w]
            if acc is None:
                acc = view * wt
            elif grad:
                acc = acc + view * wt
            else:
                acc.add_(view, alpha=wt)
    return acc if acc is not None else x.new_zeros(*x.shape[:-2], h, w)


def correlate_valid(x: torch.Tensor, taps, axis: int) -> torch.Tensor:
    """1-D correlation along ``axis`` (-1 or -2) without padding: ``n`` samples -> ``n - len(taps) + 1``.

    Written as a sum of shifted slices: for the short kernels of an ISP this is several times
    faster on CPU than ``conv2d`` with one channel, and it works for tensor taps (gradients).
    """
    k = len(taps)
    n = x.shape[axis] - k + 1
    if n < 1:
        raise ValueError(f"frame too small for a {k}-tap filter: {x.shape[axis]} pixels along axis {axis} "
                         f"(shape {tuple(x.shape)}); it needs at least {k}")
    acc = None
    for i, w in enumerate(taps):
        view = x.narrow(axis, i, n)
        if isinstance(w, torch.Tensor):
            term = view * w
            acc = term if acc is None else acc + term
        elif acc is None:
            acc = view * w
        elif torch.is_grad_enabled() and x.requires_grad:
            acc = acc + view * w
        else:
            acc.add_(view, alpha=float(w))
    return acc


def gaussian_blur_valid(x: torch.Tensor, sigma: float | torch.Tensor = 0.5, truncate: float = 4.0) -> torch.Tensor:
    """Gaussian filter without padding: ``(B, H, W)`` -> ``(B, H - 2r, W - 2r)``, r = :func:`gaussian_radius`."""
    k = gaussian_kernel1d(sigma, truncate, dtype=x.dtype, device=x.device)
    taps = list(k) if k.requires_grad else k.tolist()
    return correlate_valid(correlate_valid(x, taps, -2), taps, -1)


def gaussian_blur(
    y: torch.Tensor, sigma: float | torch.Tensor = 0.5, truncate: float = 4.0, mode: str = "symmetric"
) -> torch.Tensor:
    """Gaussian filter of ``(B, H, W)`` equal to ``scipy.ndimage.gaussian_filter(y, sigma)``."""
    _check_image(y)
    r = gaussian_radius(float(sigma.detach()) if isinstance(sigma, torch.Tensor) else sigma, truncate)
    return gaussian_blur_valid(pad2d(y, r, r, mode), sigma, truncate)


@functools.lru_cache(maxsize=64)
def gaussian_taps_numpy(sigma: float) -> np.ndarray:
    """Taps of :func:`gaussian_kernel1d` truncated at 3 sigma (rounded up, at least 1), as a
    read-only float32 numpy array: the PSF kernel of both synthetic-data simulators."""
    taps = gaussian_kernel1d(sigma, radius=max(1, math.ceil(3.0 * sigma))).numpy()
    taps.setflags(write=False)
    return taps


def gaussian_blur_numpy(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a numpy ``(..., H, W)`` float32, reflecting at the edges (sigma
    in px, rounded to 3 decimals; :func:`gaussian_taps_numpy`). The simulators' blur, on CPU.

    The row pass runs first, then the column pass, each as shifted sums: for these small kernels
    that beats FFT and ``conv2d`` on a CPU. Frames smaller than the kernel get a clipped,
    renormalised kernel (reflection needs a radius below the frame size).
    """
    image = np.asarray(image, dtype=np.float32)
    if sigma <= 0:
        return image
    k = gaussian_taps_numpy(round(float(sigma), 3))
    h, w = image.shape[-2:]
    r = min(len(k) // 2, h - 1, w - 1)
    if r < len(k) // 2:
        k = k[len(k) // 2 - r: len(k) // 2 + r + 1]
        k = k / k.sum()
    pad = [(0, 0)] * (image.ndim - 2) + [(r, r), (r, r)]
    p = np.pad(image, pad, mode="reflect")
    rows = k[0] * p[..., :, 0:w]
    for j in range(1, len(k)):
        rows += k[j] * p[..., :, j:j + w]
    out = k[0] * rows[..., 0:h, :]
    for j in range(1, len(k)):
        out += k[j] * rows[..., j:j + h, :]
    return out


def sharpen_valid(x: torch.Tensor, kernel=SHARPEN_KERNEL) -> torch.Tensor:
    """Convolve with a 3x3 kernel (nested sequence) without padding: ``(B, H, W)`` -> ``(B, H-2, W-2)``."""
    # Convolution is correlation with the flipped kernel.
    return correlate2d_valid(x, [list(row)[::-1] for row in kernel][::-1])


def sharpen(y: torch.Tensor, kernel=SHARPEN_KERNEL, mode: str = "zeros") -> torch.Tensor:
    """Sharpen ``(B, H, W)`` with a 3x3 kernel, as ``convolve2d(y, kernel, "same", boundary="fill")``."""
    if isinstance(kernel, torch.Tensor):
        return conv2d_same(y, kernel.flip(-2, -1), mode)
    _check_image(y)
    return sharpen_valid(pad2d(y, 1, 1, mode), kernel)


def unsharp_mask_valid(
    x: torch.Tensor, radius: float | torch.Tensor = 1.0, amount: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """:func:`unsharp_mask` without padding: ``(B, H, W)`` -> ``(B, H - 2r, W - 2r)``."""
    r = gaussian_radius(float(radius.detach()) if isinstance(radius, torch.Tensor) else radius)
    y = x[..., r : x.shape[-2] - r, r : x.shape[-1] - r]
    return y + (y - gaussian_blur_valid(x, radius)) * amount


def unsharp_mask(
    y: torch.Tensor, radius: float | torch.Tensor = 1.0, amount: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """Unsharp masking ``y + amount * (y - gaussian(y, sigma=radius))`` with scipy-reflect borders.

    Same semantics as ``skimage.filters.unsharp_mask(y, radius, amount, preserve_range=True)``
    (no clipping).
    """
    _check_image(y)
    r = gaussian_radius(float(radius.detach()) if isinstance(radius, torch.Tensor) else radius)
    return unsharp_mask_valid(pad2d(y, r, r, "symmetric"), radius, amount)


def _sort2(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.minimum(a, b), torch.maximum(a, b)


def _median3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    lo, hi = _sort2(a, b)
    return torch.maximum(lo, torch.minimum(hi, c))


def median3x3_valid(x: torch.Tensor) -> torch.Tensor:
    """3x3 median of ``(B, H+2, W+2)`` without padding, giving ``(B, H, W)`` (min/max network)."""
    h, w = x.shape[-2] - 2, x.shape[-1] - 2
    top, mid, bot = x[:, 0:h], x[:, 1 : h + 1], x[:, 2 : h + 2]
    lo, hi = _sort2(top, mid)
    lo, bot_s = _sort2(lo, bot)  # lo: column minimum
    mid_s, hi = _sort2(hi, bot_s)  # mid_s: column median, hi: column maximum
    max_lo = torch.maximum(torch.maximum(lo[..., 0:w], lo[..., 1 : w + 1]), lo[..., 2 : w + 2])
    min_hi = torch.minimum(torch.minimum(hi[..., 0:w], hi[..., 1 : w + 1]), hi[..., 2 : w + 2])
    med_mid = _median3(mid_s[..., 0:w], mid_s[..., 1 : w + 1], mid_s[..., 2 : w + 2])
    return _median3(max_lo, med_mid, min_hi)


def median_filter(y: torch.Tensor, size: int = 3, mode: str = "symmetric") -> torch.Tensor:
    """Median over a ``size x size`` window, equal to ``scipy.ndimage.median_filter(y, size)``.

    3x3 uses a min/max network (no sorting): each column triple is sorted once, and the
    median of 9 is the median of (max of lows, median of middles, min of highs) over three
    neighbouring columns. Other odd sizes fall back to ``unfold`` + ``median``.
    """
    _check_image(y)
    if size < 1 or size % 2 == 0:
        raise ValueError(f"median size must be a positive odd integer, got {size}")
    if size == 1:
        return y
    r = size // 2
    x = pad2d(y, r, r, mode)
    if size == 3:
        return median3x3_valid(x)
    patches = F.unfold(x.unsqueeze(1), size)  # (B, size*size, H*W)
    return patches.median(dim=1).values.reshape(y.shape)


def fft_lowpass(y: torch.Tensor, keep_fraction: float = 0.3) -> torch.Tensor:
    """Keep the lowest ``keep_fraction`` of spatial frequencies along each axis (periodic borders).

    Coefficients with index in ``[int(n * f), int(n * (1 - f)))`` along an axis are zeroed, so
    ``keep_fraction >= 0.5`` keeps everything.
    """
    _check_image(y)
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"fft keep_fraction must be in (0, 1], got {keep_fraction}")
    h, w = y.shape[-2:]
    spec = torch.fft.fft2(y)
    keep_y = torch.ones(h, dtype=torch.bool, device=y.device)
    keep_y[int(h * keep_fraction) : int(h * (1 - keep_fraction))] = False
    keep_x = torch.ones(w, dtype=torch.bool, device=y.device)
    keep_x[int(w * keep_fraction) : int(w * (1 - keep_fraction))] = False
    mask = (keep_y[:, None] & keep_x[None, :]).to(spec.real.dtype)
    return torch.fft.ifft2(spec * mask).real
