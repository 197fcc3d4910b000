"""Structural similarity (SSIM) of RGB views, batched and differentiable (drift forensics' distance)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..isp.filters import gaussian_kernel1d

__all__ = ["ssim"]


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5, truncate: float = 3.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, differentiable.

    Args:
        x, y: images ``(B, C, H, W)`` (or ``(C, H, W)``), same shape, floating point.
        data_range: the value range (1 for images in [0, 1]).
        sigma, truncate: the Gaussian window (sigma 1.5, cut at 3.5 sigma: 11 x 11 taps).
        k1, k2: the stabilising constants, ``C1 = (k1 * data_range)^2``, ``C2 = (k2 * data_range)^2``.

    Returns:
        ``(B,)`` (or a scalar for unbatched input): the SSIM map averaged over the channels and
        over the pixels whose whole window lies inside the image. Population (co)variances.
        This is ``skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1, channel_axis=0)`` per image: scikit-image
        filters with reflected borders and then drops the border of width ``radius``, which
        leaves exactly the windows computed here without padding.
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    single = x.dim() == 3
    if single:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"ssim: expected floating-point images (B, C, H, W) or (C, H, W), got {tuple(x.shape)} "
                         f"{x.dtype}")
    taps = gaussian_kernel1d(sigma, truncate, dtype=x.dtype, device=x.device)
    k = taps.numel()
    b, c, h, w = x.shape
    if h < k or w < k:
        raise ValueError(f"ssim: images of {h}x{w} are smaller than the {k}x{k} window")
    # One grouped separable filter over the five statistics of every channel.
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (B, 5C, H, W)
    n = stats.shape[1]
    stats = F.conv2d(stats, taps.view(1, 1, k, 1).expand(n, 1, k, 1), groups=n)
    stats = F.conv2d(stats, taps.view(1, 1, 1, k).expand(n, 1, 1, k), groups=n)
    ux, uy, uxx, uyy, uxy = stats.split(c, dim=1)
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    out = s.mean(dim=(1, 2, 3))
    return out[0] if single else out
