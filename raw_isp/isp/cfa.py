"""Colour-filter-array (Bayer) helpers.

A Bayer mosaic ``(B, H, W)`` holds one colour sample per pixel, repeating a 2x2 tile.
The four *positional* sites of the tile are ordered ``(0,0), (0,1), (1,0), (1,1)``
(row, column, both mod 2); a pattern string such as ``"RGGB"`` names the colour at each
site in that order. Colour indices are 0 = R, 1 = G, 2 = B.

H and W must be even. All functions are batched, work on any device and dtype, and are
differentiable where that makes sense (``mosaic``, ``split_planes``, ``merge_planes``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_COLOUR_INDEX = {"R": 0, "G": 1, "B": 2}

__all__ = [
    "PATTERNS",
    "check_pattern",
    "pattern_colours",
    "split_planes",
    "merge_planes",
    "mosaic",
    "cfa_masks",
    "pad_mosaic",
    "check_raw",
]


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` upper-cased, or raise ``ValueError`` if it is not a Bayer pattern."""
    if not isinstance(pattern, str) or pattern.upper() not in PATTERNS:
        raise ValueError(f"pattern={pattern!r} is not a Bayer pattern; expected one of {PATTERNS}")
    return pattern.upper()


def pattern_colours(pattern: str = "RGGB") -> tuple[int, int, int, int]:
    """Colour index (0=R, 1=G, 2=B) at each positional site (0,0), (0,1), (1,0), (1,1)."""
    return tuple(_COLOUR_INDEX[c] for c in check_pattern(pattern))  # type: ignore[return-value]


def check_raw(raw: torch.Tensor, name: str = "raw") -> torch.Tensor:
    """Validate a mosaic and return it as ``(B, H, W)`` (a 2-D input gains a batch axis)."""
    if not isinstance(raw, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(raw).__name__}")
    if raw.dim() == 2:
        raw = raw.unsqueeze(0)
    if raw.dim() != 3:
        raise ValueError(f"{name} must have shape (B, H, W) or (H, W), got {tuple(raw.shape)}")
    h, w = raw.shape[-2:]
    if h % 2 or w % 2 or h < 2 or w < 2:
        raise ValueError(f"{name} has size {h}x{w}; a Bayer mosaic needs even, non-zero height and width")
    return raw


def split_planes(raw: torch.Tensor) -> torch.Tensor:
    """Split a mosaic ``(B, H, W)`` into its four sites ``(B, 4, H/2, W/2)`` in positional order."""
    raw = check_raw(raw)
    return F.pixel_unshuffle(raw.unsqueeze(1), 2)


def merge_planes(planes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_planes`: ``(B, 4, h, w)`` -> ``(B, 2h, 2w)``."""
    if planes.dim() != 4 or planes.shape[1] != 4:
        raise ValueError(f"planes must have shape (B, 4, h, w), got {tuple(planes.shape)}")
    return F.pixel_shuffle(planes, 2).squeeze(1)


def mosaic(rgb: torch.Tensor, pattern: str = "RGGB") -> torch.Tensor:
    """Sample an RGB image ``(B, 3, H, W)`` through a Bayer CFA, giving ``(B, H, W)``.

    Each pixel keeps only the channel that the pattern puts at its site.
    """
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must have shape (B, 3, H, W), got {tuple(rgb.shape)}")
    check_raw(rgb[:, 0])
    colours = pattern_colours(pattern)
    # Each site of the 2x2 tile is the matching colour channel, sampled with stride 2.
    planes = torch.stack(
        [rgb[:, c, dy::2, dx::2] for c, (dy, dx) in zip(colours, ((0, 0), (0, 1), (1, 0), (1, 1)))], dim=1
    )
    return merge_planes(planes)


def cfa_masks(
    height: int, width: int, pattern: str = "RGGB", device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean masks ``(3, H, W)``: ``masks[c, y, x]`` is True where the CFA samples colour ``c``."""
    colours = pattern_colours(pattern)
    site = torch.tensor(colours, device=device).view(2, 2)
    tile = site.repeat((height + 1) // 2, (width + 1) // 2)[:height, :width]
    return torch.stack([tile == c for c in range(3)])


def pad_mosaic(raw: torch.Tensor, pad: int) -> torch.Tensor:
    """Extend a mosaic ``(B, H, W)`` by ``pad`` pixels on every side, keeping the CFA phase.

    Uses whole-sample reflection (``x[-k] = x[k]``), which maps every site onto a site of the
    same colour because ``-k`` and ``k`` have the same parity. ``pad`` must be below H and W.
    """
    if pad == 0:
        return raw
    h, w = raw.shape[-2:]
    if pad >= h or pad >= w:
        # Reflection needs more pixels than the frame has; tile-and-reflect would still keep
        # the phase, but such tiny frames are better handled by the caller.
        raise ValueError(f"cannot pad a {h}x{w} mosaic by {pad} pixels; the frame is too small")
    return F.pad(raw.unsqueeze(1), (pad, pad, pad, pad), mode="reflect").squeeze(1)
