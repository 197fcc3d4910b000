"""Colour stages and spaces: black level, white balance, colour correction, YUV, HSV and gamma.

Shapes: mosaics are ``(B, H, W)``, colour images ``(B, 3, H, W)``. Values are in normalised
units (a 16-bit raw value divided by 65535). Parameters may be plain sequences or tensors;
tensors with a leading batch axis give one parameter set per image, and gradients flow to
every tensor parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .cfa import check_raw

__all__ = [
    "YUV_FROM_RGB",
    "RGB_FROM_YUV",
    "subtract_black_level",
    "white_balance",
    "color_correct",
    "apply_matrix",
    "rgb_to_yuv",
    "yuv_to_rgb",
    "gamma_encode",
    "rgb_to_hsv",
    "hsv_to_rgb",
]

# BT.601 YUV as in ``skimage.color.rgb2yuv``; the inverse is the exact matrix inverse, as there.
YUV_FROM_RGB = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ],
    dtype=torch.float64,
)
RGB_FROM_YUV = torch.linalg.inv(YUV_FROM_RGB)


def _as_param(value, like: torch.Tensor, size: int, name: str) -> torch.Tensor:
    """A parameter as a tensor of shape ``(size,)`` or ``(B, size)`` on ``like``'s device/dtype."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device) if not isinstance(value, torch.Tensor) else value
    t = t.to(device=like.device, dtype=like.dtype)
    if t.dim() == 0:
        t = t.expand(size)
    if t.shape[-1] != size or t.dim() > 2:
        raise ValueError(f"{name} must have {size} values (or shape (B, {size})), got shape {tuple(t.shape)}")
    return t


def subtract_black_level(raw: torch.Tensor, black_level: Sequence[float] | torch.Tensor | float) -> torch.Tensor:
    """Subtract a black level per positional CFA site from a mosaic ``(B, H, W)``.

    ``black_level`` holds 4 values for the sites (0,0), (0,1), (1,0), (1,1), or one for all.
    """
    raw = check_raw(raw)
    bl = _as_param(black_level, raw, 4, "black_level")
    b, h, w = raw.shape
    tile = bl.reshape(-1, 1, 2, 1, 2)  # (B or 1, 1, 2, 1, 2) broadcast over the 2x2 tile grid
    return (raw.reshape(b, h // 2, 2, w // 2, 2) - tile).reshape(b, h, w)


def white_balance(rgb: torch.Tensor, gains: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Multiply each colour channel of ``(B, 3, H, W)`` by its gain (no clipping; gains may be negative)."""
    g = _as_param(gains, rgb, 3, "white_balance")
    return rgb * g.reshape(-1, 3, 1, 1)


def apply_matrix(rgb: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``out[c] = sum_k matrix[c, k] * rgb[k]`` for ``(B, 3, H, W)``; matrix ``(3, 3)`` or ``(B, 3, 3)``."""
    if matrix.dim() == 2:
        return torch.einsum("ck,bkhw->bchw", matrix, rgb)
    return torch.einsum("bck,bkhw->bchw", matrix, rgb)


def color_correct(rgb: torch.Tensor, colour_matrix: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour-correction matrix (9 values row-major, or ``(3, 3)``, or ``(B, 3, 3)``)."""
    m = colour_matrix if isinstance(colour_matrix, torch.Tensor) else torch.as_tensor(colour_matrix, dtype=rgb.dtype)
    m = m.to(device=rgb.device, dtype=rgb.dtype)
    if m.shape[-2:] != (3, 3):
        if m.shape[-1] != 9:
            raise ValueError(f"colour_matrix must have 9 values or shape (3, 3), got shape {tuple(m.shape)}")
        m = m.reshape(*m.shape[:-1], 3, 3)
    return apply_matrix(rgb, m)


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 RGB -> YUV, ``(B, 3, H, W)`` -> ``(B, 3, H, W)`` (Y in [0, 1] for RGB in [0, 1])."""
    return apply_matrix(rgb, YUV_FROM_RGB.to(device=rgb.device, dtype=rgb.dtype))


def yuv_to_rgb(yuv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yuv`."""
    return apply_matrix(yuv, RGB_FROM_YUV.to(device=yuv.device, dtype=yuv.dtype))


def gamma_encode(x: torch.Tensor, gamma: float | torch.Tensor = 2.2, inplace: bool = False) -> torch.Tensor:
    """Clip to [0, 1] and apply ``x ** (1 / gamma)``.

    The derivative of ``x ** (1/gamma)`` is infinite at 0; where the clipped value is 0 the
    gradient is defined as 0 (for both ``x`` and ``gamma``) instead of NaN.
    """
    if not isinstance(gamma, torch.Tensor):
        if gamma <= 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
    else:
        gamma = gamma.to(device=x.device, dtype=x.dtype)
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or (isinstance(gamma, torch.Tensor) and gamma.requires_grad)
    )
    if not needs_grad:
        # In place, as exp2(log2(x) / gamma): several times faster than pow on CPU. Zeros are
        # raised to the smallest normal float first (log of 0 and exp of -inf take a slow
        # path); they come out below 1e-17 instead of exactly 0.
        tiny = torch.finfo(x.dtype).tiny
        x = x.clamp_(tiny, 1.0) if inplace else x.clamp(tiny, 1.0)
        return x.log2_().mul_(1.0 / gamma).exp2_()
    x = x.clamp(0.0, 1.0)
    positive = x > 0
    safe = torch.where(positive, x, torch.ones_like(x))
    return torch.where(positive, safe.pow(1.0 / gamma), torch.zeros_like(x))


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """RGB ``(..., 3, H, W)`` in [0, 1] -> HSV ``(..., 3, H, W)``, each channel in [0, 1].

    Same convention as ``colorsys`` and ``skimage.color.rgb2hsv``: hue in turns (0 = red,
    1/3 = green, 2/3 = blue), saturation ``(max - min) / max`` (0 for black), value ``max``.
    Greys get hue 0.
    """
    r, g, b = rgb.unbind(-3)
    v, arg = rgb.max(dim=-3)
    delta = v - rgb.min(dim=-3).values
    s = torch.where(v > 0, delta / torch.where(v > 0, v, 1), 0)
    d = torch.where(delta > 0, delta, 1)
    # Ties between channels give the same hue from either branch, so the argmax order is moot.
    h = torch.where(arg == 0, (g - b) / d, torch.where(arg == 1, 2 + (b - r) / d, 4 + (r - g) / d))
    h = torch.where(delta > 0, torch.remainder(h / 6, 1.0), 0)
    return torch.stack([h, s, v], dim=-3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """HSV ``(..., 3, H, W)`` (hue in turns, any real value; s, v in [0, 1]) -> RGB ``(..., 3, H, W)``.

    Each channel is ``v - v * s * clip(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 h) mod 6`` and
    n = 5, 3, 1 for R, G, B: the piecewise-linear hue ramps of the hexcone model, branch-free.
    """
    h, s, v = hsv.unbind(-3)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype, device=hsv.device).view(3, 1, 1)
    k = torch.remainder(n + 6 * h.unsqueeze(-3), 6)
    ramp = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    v, s = v.unsqueeze(-3), s.unsqueeze(-3)
    return v - v * s * ramp
