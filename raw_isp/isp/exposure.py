"""Exposure: a digital gain on the black-level-subtracted mosaic, as camera pipelines apply it.

The stage sits right after black-level subtraction: ``x = gain * (raw - black_level)``, then the
rest of the chain (demosaic, white balance, ...). The gain comes from the ISP config's
``exposure`` setting (:class:`raw_isp.ISPConfig`):

- ``None``: no stage at all; the study's 12 pipelines, bit for bit.
- ``"metadata"``: ``gain = exposure_scale / intensity``, with the intensity ratio of each image
  (the datasets' ``intensity`` column: 1.0, 0.75, ..., 0.01) passed to the ISP's forward
  (``isp(raw, intensity=ratios)``). A frame captured at ratio 0.05 is brought back to the
  signal level of the full exposure; what stays different is the noise.
- ``"auto"``: auto-exposure from the frame itself, :func:`auto_exposure_gain`: average metering
  (a trimmed mean of the 2x2-tile means of the black-subtracted mosaic) against a mid-grey
  target, ``gain = exposure_scale * target / statistic``, at most ``max_gain``.
- a positive number ``g``: a fixed gain ``g`` for every image (how a trained gain is replayed).

No clipping after the gain: values above the white level (or below 0, read noise around black)
travel linearly through demosaicing, colour and the luma filters, and the chain's one clip to
[0, 1] before gamma bounds the output. This keeps the stage linear and differentiable
everywhere (a learnable gain gets gradient from highlights too, and gain 1 is the identity).
The alternative, clipping to the sensor's range after the gain, is measured beside it by
``benchmarks/bench_exposure.py``: on synthetic microscopy at ratio 0.01 it clips 0.07 % of the
values and changes the PSNR to the full-light view by 0.001 dB, so fidelity does not decide it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "EXPOSURE_MODES",
    "AUTO_EXPOSURE_TRIM",
    "AUTO_EXPOSURE_TARGET",
    "AUTO_EXPOSURE_MAX_GAIN",
    "check_exposure",
    "per_image_tensor",
    "auto_exposure_statistic",
    "auto_exposure_gain",
    "exposure_gain",
    "apply_gain",
]

#: Named exposure modes (besides None and a fixed positive gain).
EXPOSURE_MODES = ("metadata", "auto")

#: Fraction of the darkest and of the brightest 2x2 tiles left out of the auto-exposure mean.
AUTO_EXPOSURE_TRIM = 0.01
#: Level (normalised units above black) that auto-exposure brings the trimmed mean to: 0.18,
#: photographic middle grey, the calibration point of averaging light meters.
AUTO_EXPOSURE_TARGET = 0.18
#: Largest auto-exposure gain (8 stops, like a camera's ISO 100 to 25600); it is also the gain
#: of a frame whose statistic is <= 0 (all black), so the gain is continuous in the frame.
AUTO_EXPOSURE_MAX_GAIN = 256.0


def check_exposure(value, name: str = "exposure") -> str | float | None:
    """Validate an exposure setting: None, ``"metadata"``, ``"auto"`` or a positive finite gain.

    Returns the canonical value (a number becomes a Python float). Raises ValueError naming
    ``name`` otherwise.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in EXPOSURE_MODES:
            raise ValueError(
                f"{name}={value!r} is unknown; expected None, one of {EXPOSURE_MODES} or a positive gain (e.g. 2.0)"
            )
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be None, one of {EXPOSURE_MODES} or a positive gain, got {value!r}")
    gain = float(value)
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"{name}: a fixed gain must be a positive finite number, got {value!r}")
    return gain


_INTENSITY_HINT = " (an intensity ratio is the exposure relative to the full one, e.g. 0.05)"


def per_image_tensor(
    intensity, batch: int, like: torch.Tensor, name: str = "intensity", hint: str = _INTENSITY_HINT
) -> torch.Tensor:
    """Positive per-image values (intensity ratios, gains) as a ``(batch,)`` tensor on ``like``'s
    device and dtype.

    ``intensity``: one value for every image (a number or a 0-d / 1-element tensor or array) or
    one per image (a sequence, numpy array or tensor of length ``batch``). Every value must be
    positive and finite (an intensity ratio above 1 is a brighter exposure than the reference
    and gets a gain below 1). A tensor that requires grad keeps its graph. Errors name ``name``
    and end with ``hint``.
    """
    if isinstance(intensity, torch.Tensor):
        t = intensity.to(device=like.device, dtype=like.dtype)
    else:
        if isinstance(intensity, (str, bytes, bool, np.bool_)) or not isinstance(
            intensity, (numbers.Real, Sequence, np.ndarray)
        ):
            raise TypeError(f"{name} must be a number or one number per image, got {type(intensity).__name__}")
        try:
            arr = np.asarray(intensity, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number or one number per image, got {intensity!r}") from None
        t = torch.as_tensor(arr, device=like.device).to(like.dtype)
    if t.dim() > 1 or (t.dim() == 1 and t.shape[0] not in (1, batch)):
        raise ValueError(f"{name} must be one ratio or one per image ({batch}), got shape {tuple(t.shape)}")
    if t.is_complex() or not t.is_floating_point():
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    bad = ~(torch.isfinite(t) & (t > 0))
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        value = t.detach().reshape(-1)[i].item()
        where = "" if t.dim() == 0 else f" (image {i})"
        raise ValueError(f"{name} must be positive and finite, got {value!r}{where}{hint}")
    return t.reshape(-1).expand(batch)


def auto_exposure_statistic(raw: torch.Tensor, black_level=0.0, trim: float = AUTO_EXPOSURE_TRIM) -> torch.Tensor:
    """The metering statistic of auto-exposure, ``(B,)``, of mosaics ``(B, H, W)`` above black level.

    ``black_level``: 4 values for the positional CFA sites (or ``(B, 4)``, or one number).
    Each 2x2 CFA tile of the black-subtracted mosaic is averaged (one value per tile, the same
    for every Bayer pattern), the ``floor(trim * n)`` darkest and as many brightest of the
    ``n = H*W/4`` tile means are left out, and the rest is averaged (a trimmed mean, as
    ``scipy.stats.trim_mean(tiles, trim)``). Every tile holds each site once, so this is the
    trimmed mean of the raw tile means minus the mean black level (computed that way).

    Why this statistic: a mean is unbiased under zero-mean noise, so the gain it gives at a low
    light level is the full-light gain divided by the ratio (``benchmarks/bench_exposure.py``,
    synthetic microscopy: within 0.13 % at ratio 0.01), whereas a high percentile reads high at
    low light because noise widens the distribution; the trim makes it ignore hot and dead
    pixels and small specular highlights. Saturated pixels count at the white level. Differentiable (almost everywhere)
    in ``raw`` and ``black_level``; computed with two ``topk`` calls, no sort and no loop over images.
    """
    if not 0.0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim!r}")
    b = raw.shape[0]
    tiles = F.avg_pool2d(raw.unsqueeze(1), 2).reshape(b, -1)
    n = tiles.shape[1]
    k = int(trim * n)
    total = tiles.sum(dim=1)
    if k:
        total = total - tiles.topk(k, dim=1).values.sum(dim=1) - tiles.topk(k, dim=1, largest=False).values.sum(dim=1)
    bl = torch.as_tensor(black_level, dtype=raw.dtype, device=raw.device)
    return total / (n - 2 * k) - (bl.mean(dim=-1) if bl.dim() else bl)


def auto_exposure_gain(
    raw: torch.Tensor,
    black_level=0.0,
    trim: float = AUTO_EXPOSURE_TRIM,
    target: float = AUTO_EXPOSURE_TARGET,
    max_gain: float = AUTO_EXPOSURE_MAX_GAIN,
) -> torch.Tensor:
    """Per-image auto-exposure gain ``(B,)`` of mosaics ``(B, H, W)`` with black level ``black_level``.

    ``gain = target / max(s, target / max_gain)`` with ``s`` = :func:`auto_exposure_statistic`:
    the trimmed mean is brought to ``target`` (normalised units above black), and the gain never
    exceeds ``max_gain``. An all-black frame (``s <= 0``, read noise only) gets ``max_gain``, the
    limit of the gain as the frame darkens; an exactly black frame stays black whatever the
    gain. An over-exposed frame gets a gain below 1 (a white frame becomes ``target`` grey):
    digital gain cannot bring back what the sensor clipped.
    """
    stat = auto_exposure_statistic(raw, black_level, trim)
    floor = target / max_gain
    # Exactly max_gain below the floor (target / floor may round), no gradient there.
    return torch.where(stat > floor, target / stat.clamp_min(floor), stat.new_tensor(max_gain))


def exposure_gain(raw: torch.Tensor, black_level, config, intensity=None) -> torch.Tensor | None:
    """The gain ``(B,)`` of each image for ``config``'s exposure setting, or None (no stage).

    Args:
        raw: mosaics ``(B, H, W)`` in normalised units (before black-level subtraction).
        black_level: 4 values for the positional CFA sites of ``raw`` (or ``(B, 4)``), as
            :func:`raw_isp.isp.color.subtract_black_level` takes; used by ``"auto"``.
        config: an :class:`raw_isp.ISPConfig` (its ``exposure``, ``exposure_scale`` and
            ``auto_exposure_*`` fields).
        intensity: the intensity ratio of each image (see :func:`per_image_tensor`); required
            by ``"metadata"``, ignored by the other modes.

    Returns a tensor in ``raw``'s dtype and device (differentiable in ``raw``, the black level
    and the intensity where they require grad).
    """
    mode = config.exposure
    if mode is None:
        return None
    b = raw.shape[0]
    if mode == "metadata":
        if intensity is None:
            raise ValueError(
                "exposure='metadata' takes each image's gain from its intensity ratio (gain = 1 / ratio), but no "
                "intensity was given: call the ISP as isp(raw, intensity=ratios), e.g. intensity=batch['intensity']"
            )
        return config.exposure_scale / per_image_tensor(intensity, b, raw)
    if mode == "auto":
        gain = auto_exposure_gain(
            raw, black_level, config.auto_exposure_trim, config.auto_exposure_target, config.auto_exposure_max_gain
        )
        return gain * config.exposure_scale if config.exposure_scale != 1.0 else gain
    return raw.new_full((b,), mode)


def apply_gain(x: torch.Tensor, gain: torch.Tensor | float | None) -> torch.Tensor:
    """``x * gain`` per image for mosaics ``(B, H, W)``; ``gain`` is ``(B,)``, a scalar or None (no-op)."""
    if gain is None:
        return x
    if isinstance(gain, torch.Tensor) and gain.dim() > 0:
        gain = gain.reshape(-1, 1, 1)
    return x * gain
