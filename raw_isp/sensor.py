"""Sensor physics: photo-electrons, read noise, ADC quantisation and intensity scaling.

A raw frame is a uint16 array of digital numbers (DN) as stored in the file. The sensor model
maps between DN and photo-electrons (e-) with the linear photon-transfer model

    DN = black_level + gain * (photo_electrons + read_noise_electrons)

quantised to the ADC step and clipped to ``[0, white_level]``. Photo-electron counts are
Poisson distributed, so the DN variance of a flat patch with mean ``m`` electrons is

    var_DN = gain**2 * (m + read_noise**2) + adc_step**2 / 12.

Every method accepts numpy arrays or torch tensors of any shape (for example ``(H, W)`` or
``(B, H, W)``) and returns the same kind. The work is done in numpy on the CPU (torch tensors
are converted and converted back, onto their original device), so a numpy input and a torch
input give bit-identical results for the same seed.

Presets in ``SENSORS`` ("drone", "microscopy"): only the drone gain (and its 12-bit
left-justified format) comes from the Raw-Drone datasheet; the black levels match the camera
presets, and every other value (read noise, the microscopy gain) is a plausible ASSUMPTION,
not calibration data of the actual cameras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["SensorModel", "SENSORS", "INTENSITY_RATIOS"]

#: Relative exposures of the intensity-scaled copies in Raw-Microscopy and Raw-Drone.
INTENSITY_RATIOS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)

Seed = int | np.random.Generator | None


def _to_numpy(x: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Return ``x`` as a numpy array and a function that turns a result back into x's kind."""
    if isinstance(x, torch.Tensor):
        device = x.device
        arr = x.detach().cpu().numpy()

        def back(out: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(out)).to(device)

        return arr, back
    return np.asarray(x), lambda out: out


def _check_ratio(ratio: Any) -> float:
    if isinstance(ratio, bool):
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}") from None
    if not 0.0 < r <= 1.0:  # also rejects nan
        raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
    return r


@dataclass(frozen=True)
class SensorModel:
    """Linear photon-transfer model of a camera sensor and its ADC.

    All DN quantities refer to the numbers as STORED in the raw file (uint16), which for a
    left-justified 12-bit ADC are the ADC codes shifted left by ``justify_bits``.

    Attributes:
        name: a short label.
        gain: conversion gain in DN per photo-electron (DN/e-) on the stored numbers; > 0.
        black_level: DN of a pixel that received no light (offset), on the stored numbers.
        read_noise: read noise in electrons rms (a Gaussian added before the ADC); >= 0.
        bit_depth: ADC resolution in bits (1..16).
        justify_bits: left shift of ADC codes when stored in 16 bits (4 for 12-bit data
            left-justified to 16 bits, 0 when the ADC codes are stored as they are).
    """

    name: str
    gain: float
    black_level: float
    read_noise: float
    bit_depth: int
    justify_bits: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gain) and self.gain > 0):
            raise ValueError(f"gain must be a finite number > 0 DN/e-, got {self.gain!r}")
        if not (math.isfinite(self.read_noise) and self.read_noise >= 0):
            raise ValueError(f"read_noise must be a finite number >= 0 e-, got {self.read_noise!r}")
        if not 1 <= self.bit_depth <= 16:
            raise ValueError(f"bit_depth must be in 1..16, got {self.bit_depth!r}")
        if not 0 <= self.justify_bits <= 16 - self.bit_depth:
            raise ValueError(
                f"justify_bits must be in 0..{16 - self.bit_depth} so that codes fit in 16 bits, "
                f"got {self.justify_bits!r}"
            )
        if not (math.isfinite(self.black_level) and 0 <= self.black_level < self.white_level):
            raise ValueError(
                f"black_level must be in [0, white_level={self.white_level}) DN, got {self.black_level!r}"
            )

    @property
    def white_level(self) -> int:
        """Largest stored DN: ``(2**bit_depth - 1) << justify_bits``."""
        return ((1 << self.bit_depth) - 1) << self.justify_bits

    @property
    def adc_step(self) -> int:
        """Spacing of stored DN values: ``2**justify_bits``."""
        return 1 << self.justify_bits

    @property
    def full_well(self) -> float:
        """Photo-electrons that bring a pixel from black to white level (the ADC ceiling), in e-."""
        return (self.white_level - self.black_level) / self.gain

    # ------------------------------------------------------------------ conversions

    def electrons(self, raw: Any) -> Any:
        """Photo-electron estimate ``(raw - black_level) / gain``, clipped at >= 0.

        Args:
            raw: DN, any shape (usually a uint16 frame), numpy or torch.
        Returns:
            numpy float64, or torch float32 (float64 if ``raw`` is float64), same shape.
        """
        if isinstance(raw, torch.Tensor):
            dtype = torch.float64 if raw.dtype == torch.float64 else torch.float32
            return ((raw.to(dtype) - self.black_level) / self.gain).clamp_min(0.0)
        e = (np.asarray(raw, dtype=np.float64) - self.black_level) / self.gain
        return np.maximum(e, 0.0)

    def _readout(self, electrons: np.ndarray, rng: np.random.Generator, read_noise: float) -> np.ndarray:
        """Read noise (e- rms), gain, ADC quantisation and clipping; returns uint16 DN."""
        e = np.asarray(electrons, dtype=np.float64)
        if read_noise > 0:
            e = e + read_noise * rng.standard_normal(e.shape)
        dn = self.black_level + self.gain * e
        step = self.adc_step
        dn = np.rint(dn) if step == 1 else np.rint(dn / step) * step
        np.clip(dn, 0, self.white_level, out=dn)
        return dn.astype(np.uint16)

    def digitize(self, electrons: Any, seed: Seed = None) -> Any:
        """Read a photo-electron map out into a raw frame.

        Adds Gaussian read noise (``read_noise`` e- rms), converts to DN with
        ``black_level + gain * e``, rounds to the nearest multiple of ``adc_step`` and clips
        to ``[0, white_level]``.

        Args:
            electrons: photo-electrons (e-), any shape, finite; numpy or torch.
            seed: None (fresh randomness), an int, or a ``numpy.random.Generator``.
        Returns:
            uint16 DN of the same shape and kind (numpy array or torch tensor).
        """
        e, back = _to_numpy(electrons)
        e = e.astype(np.float64, copy=False)
        if not np.all(np.isfinite(e)):
            raise ValueError("electrons must be finite (found nan or inf)")
        return back(self._readout(e, np.random.default_rng(seed), self.read_noise))

    def expose(self, mean_electrons: Any, seed: Seed = None) -> Any:
        """Simulate a raw frame from an expected photo-electron map.

        Draws Poisson shot noise around ``mean_electrons`` and reads the counts out with
        :meth:`digitize` (read noise, quantisation, clipping).

        Args:
            mean_electrons: expected photo-electrons per pixel (e-), >= 0, any shape.
            seed: None, an int, or a ``numpy.random.Generator``.
        Returns:
            uint16 raw frame (DN), same shape and kind as ``mean_electrons``.
        """
        m, back = _to_numpy(mean_electrons)
        m = m.astype(np.float64, copy=False)
        if not np.all(np.isfinite(m)) or (m.size and m.min() < 0):
            raise ValueError("mean_electrons must be finite and >= 0")
        rng = np.random.default_rng(seed)
        counts = rng.poisson(m)
        return back(self._readout(counts, rng, self.read_noise))

    def scale_intensity(self, raw: Any, ratio: float, seed: Seed = None) -> Any:
        """A physically consistent lower-light version of a raw frame.

        The frame is converted to whole photo-electron counts (dithered rounding, so the counts
        are unbiased), each count is thinned binomially with probability ``ratio`` (a Poisson
        count thinned this way is a Poisson count of the dimmer exposure, so the shot noise is
        exactly that of the dimmer exposure), and the counts are read out again: read noise,
        quantisation to the ADC step, clipping to ``[0, white_level]``.

        The read noise (plus quantisation) already in the input survives the thinning with
        variance ``ratio**2 * (read_noise**2 + adc_step**2 / (12 gain**2) + 1/6)`` e-²; the
        fresh readout adds only the remainder, so that the result follows the photon-transfer
        relation ``var_DN = gain**2 * (ratio * m + read_noise**2) + adc_step**2 / 12`` of a
        real exposure with ``ratio * m`` mean electrons. (For ratios very close to 1 the
        carried-over part can exceed ``read_noise**2``; then no read noise is added.)
        Saturated input pixels are treated as holding ``full_well`` electrons, and pixels
        below black level as holding none.

        Args:
            raw: uint16 raw frame(s) in DN, shape ``(H, W)`` or ``(B, H, W)`` (any shape
                works), numpy array or torch tensor. Any integer dtype with values in
                0..65535 is accepted; floats are refused.
            ratio: relative exposure in (0, 1]. 1.0 returns an exact copy (no new noise).
            seed: None (fresh randomness), an int, or a ``numpy.random.Generator``. The same
                int seed gives a bit-identical frame.
        Returns:
            uint16 frame of the same shape and kind (numpy array or torch tensor, same device).
        Raises:
            ValueError: ratio outside (0, 1] (or nan), or integer values outside 0..65535.
            TypeError: ``raw`` is not an integer array.
        """
        r = _check_ratio(ratio)
        arr, back = _to_numpy(raw)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"raw must hold integer DN (raw frames are uint16 DN), got dtype {arr.dtype}")
        if arr.dtype != np.uint16 and arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(
                f"raw values must be in 0..65535 DN, got range [{arr.min()}, {arr.max()}]"
            )
        if r == 1.0:
            return back(arr.astype(np.uint16, copy=True))

        rng = np.random.default_rng(seed)
        # Dithered rounding to whole electrons: unbiased, unlike np.rint, whose error does not
        # average out because the DN grid seen in electrons is coarse and offset by the black level.
        counts = np.floor((arr - self.black_level) / self.gain + rng.random(arr.shape))
        np.maximum(counts, 0.0, out=counts)
        thinned = rng.binomial(counts.astype(np.int64), r)

        return back(self._readout(thinned, rng, self._fresh_read_noise(r)))

    def _fresh_read_noise(self, ratio: float) -> float:
        """Read noise (e- rms) to add after thinning by ``ratio`` so that the total matches a real
        exposure: the input's read noise and quantisation survive thinning scaled by ratio**2."""
        # 1/6 e-^2: mean variance of the dithered rounding, frac * (1 - frac) with frac uniform.
        carried = ratio * ratio * (self.read_noise**2 + self.adc_step**2 / (12.0 * self.gain**2) + 1.0 / 6.0)
        return math.sqrt(max(self.read_noise**2 - carried, 0.0))

    def scale_intensity_batch(self, raw: torch.Tensor, ratios: torch.Tensor | Sequence[float],
                              generator: torch.Generator | None = None) -> torch.Tensor:
        """:meth:`scale_intensity` for a batch on its own device, one ratio per frame.

        The same physics (dithered rounding to whole electrons, binomial thinning, fresh read
        noise for the remainder, quantisation, clipping), written in torch so that training can
        draw a light level per batch without leaving the accelerator. The random streams are
        torch's, so for the same seed the frames differ from :meth:`scale_intensity`'s (numpy)
        ones, while following the same distribution; a given ``generator`` state gives
        bit-identical frames on the same device.

        Args:
            raw: ``(B, H, W)`` uint16 DN, or its int16 bit view (what the training loaders
                send); any device.
            ratios: ``(B,)`` relative exposures in (0, 1]; a frame with ratio 1 is returned
                unchanged.
            generator: a ``torch.Generator`` on ``raw``'s device (None: torch's default one).
        Returns:
            ``(B, H, W)`` tensor of ``raw``'s dtype and device.
        """
        if raw.dim() != 3 or raw.dtype not in (torch.uint16, torch.int16):
            raise TypeError(f"raw must be a (B, H, W) uint16 tensor or its int16 view, got {raw.dtype} {tuple(raw.shape)}")
        r = torch.as_tensor(ratios, dtype=torch.float64).reshape(-1)
        if r.numel() != raw.shape[0]:
            raise ValueError(f"ratios: expected {raw.shape[0]} values (one per frame), got {r.numel()}")
        for value in r.tolist():
            _check_ratio(value)
        dn = raw.view(torch.int16).to(torch.int32).bitwise_and_(0xFFFF).to(torch.float64)
        rd = r.to(raw.device).view(-1, 1, 1)
        u = torch.rand(dn.shape, generator=generator, dtype=torch.float64, device=raw.device)
        counts = torch.floor((dn - self.black_level) / self.gain + u).clamp_min_(0.0)
        thinned = torch.binomial(counts, rd.expand_as(counts), generator=generator)
        fresh = torch.tensor([self._fresh_read_noise(v) for v in r.tolist()], dtype=torch.float64,
                             device=raw.device).view(-1, 1, 1)
        e = thinned + fresh * torch.randn(dn.shape, generator=generator, dtype=torch.float64, device=raw.device)
        out = self.black_level + self.gain * e
        step = self.adc_step
        out = torch.round(out) if step == 1 else torch.round(out / step) * step
        out = out.clamp_(0, self.white_level)
        out = torch.where(rd == 1.0, dn, out)
        v = out.to(torch.int32)
        return torch.where(v > 32767, v - 65536, v).to(torch.int16).view(raw.dtype)  # uint16 bits


# Presets. None of these numbers is calibration data of the actual cameras: the gains of the
# drone camera come from the Raw-Drone datasheet, everything else is a documented assumption.
SENSORS: dict[str, SensorModel] = {
    # Sony IMX183 in the DJI Mavic 2 Pro (Hasselblad L1D-20c) at ISO 200. Datasheet facts: gain
    # 0.528 DN/e- on the 12-bit ADC codes, left-justified to 16 bits, so 8.448 DN/e- on the
    # stored numbers. Black level 256 at 12 bits = 4096 on the 16-bit numbers (the drone camera
    # preset's normalised black level 0.0625 = 4096/65536). Read noise 2.5 e- is an ASSUMPTION:
    # typical published values for IMX183 cameras run from about 3 e- at the lowest gain to
    # below 2 e- at high gain; ~1.9 e-/ADU (this gain) sits in between. White level 65520,
    # full well at the ADC ceiling (65520 - 4096) / 8.448 ~ 7271 e-.
    "drone": SensorModel(
        name="drone", gain=8.448, black_level=4096.0, read_noise=2.5, bit_depth=12, justify_bits=4
    ),
    # A 16-bit scientific CMOS camera. ALL ASSUMPTIONS, not calibration data: gain 2.0 DN/e-
    # (so the 16-bit ceiling is ~32.8k e-, a typical sCMOS full well), read noise 1.5 e- rms
    # (typical of sCMOS), black level 0.644 DN = the microscopy camera preset's normalised black
    # level 9.834368e-06 times 65535.
    "microscopy": SensorModel(
        name="microscopy", gain=2.0, black_level=9.834368e-06 * 65535, read_noise=1.5, bit_depth=16
    ),
}
