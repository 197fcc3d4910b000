"""Pictures of the explorer: developed views as uint8, the raw mosaic in false colour, car masks."""

from __future__ import annotations

import numpy as np
import torch

from ..io import raw_to_unit
from ..isp.cfa import cfa_masks
from ..isp.config import CAMERAS

__all__ = ["to_uint8", "cfa_false_colour", "overlay_mask", "mask_picture", "iou"]


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``(..., 3, H, W)`` float in [0, 1] -> ``(..., H, W, 3)`` uint8 (rounded)."""
    x = (rgb.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def cfa_false_colour(raw: np.ndarray, pattern: str = "RGGB", camera: str = "neutral") -> np.ndarray:
    """The raw mosaic as a picture: each pixel in the colour its CFA site samples.

    ``raw`` uint16 ``(H, W)`` -> uint8 ``(H, W, 3)``: black level (of the camera preset) removed,
    scaled so the 99.5th percentile is white, a 1/2.2 power for visibility; the other two
    channels of each pixel are 0.
    """
    cam = CAMERAS[camera] if isinstance(camera, str) else camera
    x = raw_to_unit(raw)
    h, w = x.shape
    black = np.tile(np.asarray(cam.black_level, dtype=np.float32).reshape(2, 2), (h // 2, w // 2))
    x = np.maximum(x - black, 0)
    top = float(np.percentile(x, 99.5))
    x = np.clip(x / top, 0, 1) ** (1 / 2.2) if top > 0 else x
    masks = cfa_masks(h, w, pattern).numpy()
    return (masks * x[None] * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def overlay_mask(view: np.ndarray, mask: np.ndarray, colour=(255, 40, 40), alpha: float = 0.45) -> np.ndarray:
    """``view (H, W, 3)`` uint8 with ``mask (H, W)`` bool tinted in ``colour``."""
    out = view.astype(np.float32)
    m = mask.astype(bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, dtype=np.float32)
    return (out + 0.5).astype(np.uint8)


def mask_picture(mask: np.ndarray) -> np.ndarray:
    """A 0/1 mask as a black-and-white uint8 ``(H, W, 3)`` picture."""
    return np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=-1)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0
