"""Training-time drift augmentation, drawn per batch on the device: physically faithful light
levels and ISP variants (the study's "targeted generalisation"), and, for comparison,
ImageNet-C-style corruptions of the developed view.

* **Light** (``--train_intensities 1.0,0.5,0.1,0.05``): each frame of a batch gets a ratio ``r``
  drawn uniformly from the list (per frame, so one batch mixes light levels), and a frame
  captured at intensity ``i`` is thinned to ``i * r`` by the dataset's sensor model
  (:meth:`raw_isp.SensorModel.scale_intensity_batch`: whole photo-electrons binomially thinned,
  fresh read noise, quantisation; ``r = 1`` leaves a frame bit for bit). The batch's
  ``intensity`` becomes ``i * r``, so ``exposure="metadata"`` develops each frame with its true
  gain. Runs on the raw int16 batch before the ISP.
* **ISP variant** (``--train_isp_variants all|bi_s_ga,ma_u_me,...``): one static variant per
  batch develops it instead of the model's ISP (same camera, pattern and exposure setting).
  Validation, test and the saved model keep ``--isp``.
* **Corruption** (``--corruption_augment [all|names]``): one corruption and one severity per
  batch (:func:`raw_isp.isp.corruptions.corrupt`) on the developed RGB view, before the flips
  and the processor's resize and normalisation; float32, autocast off.

What makes it repeatable (and a resumed run exact): every draw of micro-batch ``micro`` of
optimiser step ``step`` comes from generators seeded by :func:`draw_seed` from ``(seed, step,
micro, stream, process)``, nothing else. The discrete choices (which ratio, variant,
corruption, severity) are drawn on the host (they decide host-side work: which module runs);
the pixel noise (thinning, read noise, noise corruptions) on the batch's device. Variant,
corruption and severity are drawn without the process index, so all processes of a
distributed run use the same ones for their shards of a batch; the per-frame ratios and the
noise include it, so the shards get independent draws. Results are bit-identical for the same
key on the same device (CPU and CUDA generators differ).

The corruptions are :mod:`raw_isp.isp.corruptions`'s (imported on use):
image operations that the design files under drift, used here as the augmentation baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["STREAMS", "draw_seed", "host_generator", "device_generator", "Draw", "DriftAugmentation", "compose"]

#: Stream ids of :func:`draw_seed`: independent random streams per kind of draw.
STREAMS = {"light": 1, "light_noise": 2, "isp": 3, "corruption": 4, "corruption_noise": 5}


def draw_seed(seed: int, step: int, micro: int, stream: str, process: int = 0) -> int:
    """A 63-bit generator seed from a draw's key (``numpy.random.SeedSequence`` mixes the parts,
    so nearby keys give unrelated streams). ``stream``: a key of :data:`STREAMS`."""
    parts = [int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, int(step), int(micro), STREAMS[stream], int(process)]
    return int(np.random.SeedSequence(parts).generate_state(1, dtype=np.uint64)[0]) >> 1


def host_generator(seed: int, step: int, micro: int, stream: str, process: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by :func:`draw_seed`."""
    return torch.Generator().manual_seed(draw_seed(seed, step, micro, stream, process))


def device_generator(device: torch.device | str, seed: int, step: int, micro: int, stream: str,
                     process: int = 0) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded by :func:`draw_seed`."""
    return torch.Generator(device=torch.device(device)).manual_seed(draw_seed(seed, step, micro, stream, process))


@dataclass(frozen=True)
class Draw:
    """What one micro-batch got: ``ratios`` ``(B,)`` (None: no light augmentation), ``variant``
    (None: the model's ISP), ``corruption`` and ``severity`` (None: none)."""

    ratios: tuple[float, ...] | None
    variant: str | None
    corruption: str | None
    severity: int | None


class DriftAugmentation:
    """Per-batch light, ISP-variant and corruption augmentation (see the module docstring).

    Args:
        seed: the run's seed.
        ratios: light ratios to draw from (empty: none).
        sensor: a :class:`raw_isp.SensorModel` (needed with ``ratios``): the dataset's.
        variants: static ISP variants to draw from (empty: none).
        isp_factory: ``variant -> ISP module`` for the variants (e.g. ``build_isp`` with the run's
            camera, pattern and exposure); modules are built once and kept on the device.
        corruptions: corruption names to draw from (empty: none).
        severities: severities 1..5 to draw from.

    Calling it, ``aug(raw, intensity, step, micro=0, process=0)`` with ``raw (B, H, W)`` int16
    (the loaders' bit view of uint16) and ``intensity (B,)`` on one device returns
    ``(raw, intensity, isp, view_fn, draw)``: the thinned batch and its new intensities, the ISP
    module to develop it with (None: the model's), a function on RGB views ``(B, 3, H, W)``
    (the corruption; None without one) and the :class:`Draw`.
    """

    def __init__(self, seed: int, ratios=(), sensor=None, variants=(), isp_factory: Callable[[str], Any] | None = None,
                 corruptions=(), severities=(1, 2, 3, 4, 5)) -> None:
        self.seed = int(seed)
        self.ratios = tuple(float(r) for r in ratios)
        self.variants = tuple(variants)
        self.corruptions = tuple(corruptions)
        self.severities = tuple(int(s) for s in severities)
        if self.ratios and sensor is None:
            raise ValueError("ratios: light augmentation needs the dataset's sensor model")
        if self.variants and isp_factory is None:
            raise ValueError("variants: ISP augmentation needs isp_factory")
        if self.corruptions and not self.severities:
            raise ValueError("severities: give at least one severity for the corruptions")
        self.sensor, self.isp_factory = sensor, isp_factory
        self._isps: dict[tuple[str, str], Any] = {}

    @property
    def active(self) -> bool:
        """Whether any augmentation is configured."""
        return bool(self.ratios or self.variants or self.corruptions)

    def draw(self, batch: int, step: int, micro: int = 0, process: int = 0) -> Draw:
        """The choices for a micro-batch of ``batch`` frames (host side, no device work)."""
        ratios = variant = corruption = severity = None
        if self.ratios:
            g = host_generator(self.seed, step, micro, "light", process)
            idx = torch.randint(len(self.ratios), (batch,), generator=g).tolist()
            ratios = tuple(self.ratios[i] for i in idx)
        if self.variants:
            g = host_generator(self.seed, step, micro, "isp")
            variant = self.variants[int(torch.randint(len(self.variants), (1,), generator=g))]
        if self.corruptions:
            g = host_generator(self.seed, step, micro, "corruption")
            corruption = self.corruptions[int(torch.randint(len(self.corruptions), (1,), generator=g))]
            severity = self.severities[int(torch.randint(len(self.severities), (1,), generator=g))]
        return Draw(ratios, variant, corruption, severity)

    def isp(self, variant: str, device: torch.device) -> Any:
        """The static ISP of ``variant`` on ``device`` (built on first use)."""
        key = (variant, str(device))
        if key not in self._isps:
            self._isps[key] = self.isp_factory(variant).to(device)
        return self._isps[key]

    def __call__(self, raw: torch.Tensor, intensity: torch.Tensor, step: int, micro: int = 0, process: int = 0):
        draw = self.draw(raw.shape[0], step, micro, process)
        if draw.ratios is not None and any(r != 1.0 for r in draw.ratios):
            g = device_generator(raw.device, self.seed, step, micro, "light_noise", process)
            r = torch.tensor(draw.ratios, dtype=torch.float64)
            raw = self.sensor.scale_intensity_batch(raw, r, generator=g)
            intensity = (intensity.double() * r.to(intensity.device)).to(intensity.dtype)
        isp = None if draw.variant is None else self.isp(draw.variant, raw.device)
        view_fn = None
        if draw.corruption is not None:
            name, severity = draw.corruption, draw.severity
            key = (self.seed, step, micro, "corruption_noise", process)

            def view_fn(rgb: torch.Tensor) -> torch.Tensor:
                from ..isp.corruptions import corrupt

                with torch.autocast(device_type=rgb.device.type, enabled=False):
                    return corrupt(rgb.float(), name, severity, generator=device_generator(rgb.device, *key))

        return raw, intensity, isp, view_fn, draw

    @classmethod
    def from_args(cls, args: Any, pattern: str = "RGGB") -> "DriftAugmentation":
        """The augmentation of a run's :class:`~raw_isp.training.arguments.RawTrainingArguments`:
        the dataset's sensor (registry), the ISP variants with the run's camera, ``pattern`` and
        exposure."""
        from ..models.modeling import build_isp
        from ..sensor import SENSORS
        from ..registry import get_dataset

        sensor = SENSORS[get_dataset(args.dataset).sensor] if args.train_intensity_ratios else None
        camera, exposure = args.camera_name, args.exposure_setting

        def factory(variant: str):
            return build_isp(f"static:{variant}", camera=camera, pattern=pattern, exposure=exposure)

        return cls(args.seed, ratios=args.train_intensity_ratios, sensor=sensor, variants=args.train_isp_variant_names,
                   isp_factory=factory, corruptions=args.corruption_names, severities=args.corruption_severity_levels)


def compose(*fns: Callable[[torch.Tensor], torch.Tensor] | None) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The functions that are not None, applied left to right (None if there are none)."""
    fns = [f for f in fns if f is not None]
    if not fns:
        return None
    if len(fns) == 1:
        return fns[0]

    def chained(x: torch.Tensor) -> torch.Tensor:
        for f in fns:
            x = f(x)
        return x

    return chained
