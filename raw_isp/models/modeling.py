"""A task model with the ISP as its first module: raw mosaics in, logits out.

:class:`RawISPModel` wraps a transformers vision model (ViT, SegFormer, ...) behind an ISP, so
raw ``uint16`` batches travel to the device and are developed there, batched, inside the model:

    raw (B, H, W) uint16 --ISP--> RGB (B, 3, H, W) in [0, 1] --resize, normalise--> model --> logits

The ISP is one of (``--isp`` in the training scripts, :func:`parse_isp`):

* ``static:<variant>``: a fixed :class:`raw_isp.StaticISP` (one of :data:`raw_isp.ISP_VARIANTS`);
* ``parametrized[:<variant>]``: :class:`raw_isp.ParametrizedISP`, trained with the task model
  (drift optimisation);
* ``parametrized-frozen[:<variant>]``: the same module with every parameter frozen;
* ``learned``: :class:`raw_isp.isp.learned.LearnedISP`, a small U-Net from the Bayer planes to RGB.

:func:`save_raw_model` writes a folder that the transformers ``Auto`` classes read: the task
model (``save_pretrained``, safetensors), a :class:`raw_isp.RawISPImageProcessor` that replays
the training view (static and parametrized ISPs), and the ISP itself (``isp_config.json`` +
``isp.safetensors``), which :func:`load_raw_model` reads back for every kind of ISP.
``isp_config.json`` records the task, so :func:`load_raw_model` picks the task's ``Auto`` class
from the registry (:mod:`raw_isp.registry`) for any architecture.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write, atomic_write_json
from ..io import raw_to_unit
from ..isp.config import ISP_VARIANTS, CameraPreset, ISPConfig
from ..isp.parametrized import ParametrizedISP
from ..isp.static import StaticISP
from .processor import RawISPImageProcessor

__all__ = [
    "ISP_KINDS",
    "IspSpec",
    "parse_isp",
    "build_isp",
    "isp_exposure",
    "RawISPModel",
    "MODEL_PRESETS",
    "build_task_model",
    "describe_isp",
    "save_raw_model",
    "load_raw_model",
    "decode_raw",
    "logits_at",
    "task_outputs",
    "ISP_CONFIG_NAME",
    "ISP_WEIGHTS_NAME",
]

#: The kinds of ISP a :class:`RawISPModel` can have.
ISP_KINDS = ("static", "parametrized", "parametrized-frozen", "learned")
ISP_CONFIG_NAME = "isp_config.json"
ISP_WEIGHTS_NAME = "isp.safetensors"


@dataclass(frozen=True)
class IspSpec:
    """A parsed ``--isp`` value: ``kind`` in :data:`ISP_KINDS`, ``variant`` (static and
    parametrized kinds; the initial view of a parametrized ISP)."""

    kind: str
    variant: str | None = None

    def __str__(self) -> str:
        return self.kind if self.variant is None else f"{self.kind}:{self.variant}"


def parse_isp(spec: str | IspSpec) -> IspSpec:
    """Parse ``"static:ma_s_me"``, ``"parametrized"``, ``"parametrized:bi_u_me"``,
    ``"parametrized-frozen:me_s_ga"`` or ``"learned"``; raise ``ValueError`` naming the problem."""
    if isinstance(spec, IspSpec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"isp must be a string such as 'static:bi_s_ga', got {type(spec).__name__}")
    kind, _, variant = spec.partition(":")
    if kind not in ISP_KINDS:
        raise ValueError(f"isp {spec!r}: unknown kind {kind!r}; expected one of {ISP_KINDS} (e.g. 'static:ma_s_me')")
    if kind == "learned":
        if variant:
            raise ValueError(f"isp {spec!r}: the learned ISP takes no variant; write 'learned'")
        return IspSpec("learned")
    if kind == "static" and not variant:
        raise ValueError(f"isp {spec!r}: a static ISP needs a variant, e.g. 'static:bi_s_ga'; one of {ISP_VARIANTS}")
    variant = variant or "bi_s_ga"
    if variant not in ISP_VARIANTS:
        raise ValueError(f"isp {spec!r}: unknown variant {variant!r}; expected one of {ISP_VARIANTS}")
    return IspSpec(kind, variant)


def build_isp(spec: str | IspSpec, camera: str | CameraPreset = "neutral", pattern: str = "RGGB",
              learned_options: dict | None = None, exposure: str | float | None = None) -> torch.nn.Module:
    """The ISP module of a spec (:func:`parse_isp`): raw ``(B, H, W)`` in [0, 1] -> ``(B, 3, H, W)``.

    ``camera`` sets the colour parameters (the initial ones of a parametrized ISP; the base view
    of the learned ISP). ``learned_options``: keyword arguments of ``LearnedISP`` (an
    ``exposure`` among them must agree with ``exposure``). ``exposure``: the exposure stage
    after black level (:mod:`raw_isp.isp.exposure`): None (none; the study's pipelines),
    ``"metadata"`` (gain 1 / the intensity ratio passed to the ISP's forward), ``"auto"`` or a
    fixed gain; a parametrized ISP learns a log-gain on top of it.
    """
    spec = parse_isp(spec)
    if spec.kind == "learned":
        from ..isp.learned import LearnedISP

        cam = CameraPreset.parse(camera)
        options = {"pattern": pattern, "camera": cam.to_dict(), **(learned_options or {})}
        if exposure is not None:
            if options.get("exposure", exposure) != exposure:
                raise ValueError(f"exposure={exposure!r} conflicts with learned_options' exposure={options['exposure']!r}")
            options["exposure"] = exposure
        return LearnedISP(**options)
    config = ISPConfig.from_variant(spec.variant, pattern=pattern)
    if spec.kind == "static":
        return StaticISP(config, camera=camera, exposure=exposure)
    learn = None if spec.kind == "parametrized" else ()
    return ParametrizedISP(config, camera=camera, learn=learn, exposure=exposure)


def isp_exposure(isp: torch.nn.Module) -> str | float | None:
    """The exposure setting an ISP module was built with (``build_isp``'s ``exposure``; a
    parametrized ISP's learned log-gain is a parameter, not part of it)."""
    config = getattr(isp, "exposure_config", None) or getattr(isp, "config", None)
    return getattr(config, "exposure", None)


def decode_raw(raw: torch.Tensor) -> torch.Tensor:
    """Raw batch as float32 in [0, 1] (:func:`raw_isp.io.raw_to_unit`): ``(B, H, W)`` uint16, its
    int16 bit view (what the training loaders send), or float already in [0, 1]."""
    return raw_to_unit(raw)


class RawISPModel(torch.nn.Module):
    """ISP + transformers vision model, trained and evaluated as one module.

    Args:
        isp: the ISP module (:func:`build_isp`).
        model: a transformers model taking ``pixel_values`` (e.g. ``ViTForImageClassification``,
            ``SegformerForSemanticSegmentation``).
        processor: the :class:`RawISPImageProcessor` whose resize / normalisation settings make
            the model's input (:meth:`RawISPImageProcessor.to_pixel_values`); for static and
            parametrized ISPs it also replays the ISP (see :func:`save_raw_model`).

    ``forward(raw, labels=None, intensity=None, augment=None, isp=None, **kwargs)``: ``raw (B, H, W)``
    uint16 DN (or its int16 bit view, or float in [0, 1]) -> the model's output (``logits``, and
    ``loss`` when ``labels`` are given). ``intensity``: the frames' light intensity ratios ``(B,)``
    (a batch's ``"intensity"``), passed to the ISP (required by ``exposure="metadata"``, ignored
    by ISPs without it). ``augment``: a function on the developed RGB views. ``isp``: another ISP
    module to develop this batch with (training on ISP variants); the model's own otherwise.
    The ISP runs in float32 with autocast off (half precision is too coarse for it); the model
    runs under whatever autocast is active.

    :meth:`save_pretrained` / :meth:`from_pretrained` write and read the folder of
    :func:`save_raw_model` / :func:`load_raw_model`; ``transformers.Trainer`` works through
    :class:`raw_isp.training.trainer.RawISPTrainer`.
    """

    #: What ``transformers.Trainer`` reads: the batch entry holding the input, and that
    #: ``forward``'s ``**kwargs`` go to the task model, not to a loss (no ``num_items_in_batch``).
    main_input_name = "raw"
    accepts_loss_kwargs = False

    def __init__(self, isp: torch.nn.Module, model: torch.nn.Module, processor: RawISPImageProcessor) -> None:
        super().__init__()
        self.isp = isp
        self.model = model
        self.processor = processor
        self.trainable_isp = any(p.requires_grad for p in isp.parameters())

    def with_isp(self, isp: torch.nn.Module) -> "RawISPModel":
        """The same task model and processor behind another ISP (shares the model's weights):
        how drift synthesis renders one trained model's input through every static variant."""
        return RawISPModel(isp.to(next(self.model.parameters()).device), self.model, self.processor)

    def views(self, raw: torch.Tensor, intensity: Any = None, isp: torch.nn.Module | None = None) -> torch.Tensor:
        """Developed RGB views ``(B, 3, H, W)`` in [0, 1] (float32) of a raw batch, by ``isp``
        (default: the model's); ``intensity``: the frames' intensity ratios (see the class)."""
        x = decode_raw(raw)
        module = self.isp if isp is None else isp
        trainable = self.trainable_isp if isp is None else any(p.requires_grad for p in isp.parameters())
        kwargs = {} if intensity is None else {"intensity": intensity}
        with torch.autocast(device_type=x.device.type, enabled=False):
            if trainable and torch.is_grad_enabled():
                return module(x, **kwargs)
            with torch.no_grad():
                return module(x, **kwargs)

    def pixel_values(self, raw: torch.Tensor, intensity: Any = None, augment: Any = None,
                     isp: torch.nn.Module | None = None) -> torch.Tensor:
        """The model's input ``(B, 3, h, w)``: views (:meth:`views`), then ``augment`` (a function
        on RGB views), then the processor's resize and normalisation."""
        rgb = self.views(raw, intensity, isp)
        if augment is not None:
            rgb = augment(rgb)
        return self.processor.to_pixel_values(rgb)

    def forward(self, raw: torch.Tensor, labels: torch.Tensor | None = None, intensity: Any = None,
                augment: Any = None, isp: torch.nn.Module | None = None, **kwargs: Any):
        return self.model(pixel_values=self.pixel_values(raw, intensity, augment, isp), labels=labels, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, task: str | None = None, **kwargs: Any) -> list[str]:
        """:func:`save_raw_model` into ``save_directory`` (the ISP's spec and camera read from the
        module, :func:`describe_isp`); ``kwargs``: its other arguments."""
        return save_raw_model(self, save_directory, task=task, **kwargs)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> "RawISPModel":
        """The model of a folder written by :meth:`save_pretrained` or the training scripts
        (:func:`load_raw_model`), in eval mode on ``device``."""
        return load_raw_model(folder, device)[0]


def logits_at(logits: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Segmentation logits ``(B, C, h, w)`` (SegFormer's are at quarter resolution) upsampled
    bilinearly to ``size`` = (H, W), as float32; unchanged when already that size."""
    logits = logits.float()
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = torch.nn.functional.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return logits


def task_outputs(logits: torch.Tensor, labels: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image cross-entropy ``(B,)`` and predicted classes of a batch, as every evaluation in
    the project scores it: classification ``logits (B, C)``, ``labels (B,)`` -> predictions
    ``(B,)``; segmentation ``logits (B, C, h, w)``, ``labels (B, H, W)`` -> logits upsampled to
    (H, W) once, loss averaged over pixels, predictions ``(B, H, W)``."""
    from ..registry import get_task

    dense = get_task(task).dense
    logits = logits_at(logits, labels.shape[-2:]) if dense else logits.float()
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    if dense:
        losses = losses.flatten(1).mean(1)
    return losses, logits.argmax(1)


# ---------------------------------------------------------------- task models

#: Offline presets: transformers configs with random weights (no download). ``image_size`` is
#: set by :func:`build_task_model`. The "micro" ones are for tests.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # ViT-Tiny width and depth (Touvron et al., DeiT-Ti: 192 wide, 12 layers, 3 heads); patch 32
    # makes 64 tokens at 256x256, 4x cheaper than patch 16 (the CPU default).
    "vit-tiny-32": {"model_type": "vit", "hidden_size": 192, "num_hidden_layers": 12, "num_attention_heads": 3,
                    "intermediate_size": 768, "patch_size": 32},
    "vit-tiny-16": {"model_type": "vit", "hidden_size": 192, "num_hidden_layers": 12, "num_attention_heads": 3,
                    "intermediate_size": 768, "patch_size": 16},
    "vit-small-16": {"model_type": "vit", "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
                     "intermediate_size": 1536, "patch_size": 16},
    "vit-base-16": {"model_type": "vit", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                    "intermediate_size": 3072, "patch_size": 16},
    "vit-micro": {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "intermediate_size": 64, "patch_size": 32},
    # SegFormer MiT-b0 (Xie et al. 2021): the transformers SegformerConfig defaults.
    "segformer-b0": {"model_type": "segformer"},
    "segformer-b1": {"model_type": "segformer", "hidden_sizes": [64, 128, 320, 512], "decoder_hidden_size": 256},
    "segformer-micro": {"model_type": "segformer", "hidden_sizes": [8, 16, 32, 32], "depths": [1, 1, 1, 1],
                        "num_attention_heads": [1, 1, 2, 2], "decoder_hidden_size": 32},
    # ResNets (He et al. 2016), the study's CNN classifiers: ResNet-18 has basic blocks [2, 2, 2, 2]
    # of widths 64..512, ResNet-50 bottleneck blocks [3, 4, 6, 3] of output widths 256..2048
    # (the transformers ResNetConfig defaults); stem width 64.
    "resnet-18": {"model_type": "resnet", "layer_type": "basic", "depths": [2, 2, 2, 2],
                  "hidden_sizes": [64, 128, 256, 512], "embedding_size": 64},
    "resnet-34": {"model_type": "resnet", "layer_type": "basic", "depths": [3, 4, 6, 3],
                  "hidden_sizes": [64, 128, 256, 512], "embedding_size": 64},
    "resnet-50": {"model_type": "resnet", "layer_type": "bottleneck", "depths": [3, 4, 6, 3],
                  "hidden_sizes": [256, 512, 1024, 2048], "embedding_size": 64},
    "resnet-micro": {"model_type": "resnet", "layer_type": "basic", "depths": [1, 1], "hidden_sizes": [8, 16],
                     "embedding_size": 8},
    # UperNet (Xiao et al. 2018) on a ResNet backbone, the CNN beside SegFormer: decoder width 512
    # (the transformers UperNetConfig default). No auxiliary FCN head (a training aid whose loss
    # only the model computes; --class_balance weighted_loss computes the loss outside it).
    "upernet-resnet18": {"model_type": "upernet", "hidden_size": 512, "backbone": "resnet-18"},
    # The same with a decoder of width 128: its 3x3 fusion convolutions at 1/4 resolution are
    # most of the width-512 model's cost (13.7 M parameters instead of 40.8 M).
    "upernet-resnet18-h128": {"model_type": "upernet", "hidden_size": 128, "backbone": "resnet-18"},
    "upernet-resnet34": {"model_type": "upernet", "hidden_size": 512, "backbone": "resnet-34"},
    "upernet-resnet50": {"model_type": "upernet", "hidden_size": 512, "backbone": "resnet-50"},
    "upernet-micro": {"model_type": "upernet", "hidden_size": 16, "pool_scales": [1, 2], "backbone": "resnet-micro"},
}

_TASK_TYPES = {"classification": ("vit", "resnet"), "segmentation": ("segformer", "upernet")}


def _preset_model(kind: str, preset: dict[str, Any], labels: dict[str, Any], image_size: int) -> torch.nn.Module:
    """A random-init transformers model of a :data:`MODEL_PRESETS` entry (without its ``model_type``)."""
    import transformers as tf

    if kind == "vit":
        return tf.ViTForImageClassification(tf.ViTConfig(image_size=image_size, **preset, **labels))
    if kind == "resnet":
        return tf.ResNetForImageClassification(tf.ResNetConfig(**preset, **labels))
    if kind == "upernet":
        backbone = dict(MODEL_PRESETS[preset.pop("backbone")])
        backbone.pop("model_type")
        stages = [f"stage{i + 1}" for i in range(len(backbone["depths"]))]
        config = tf.UperNetConfig(backbone_config=tf.ResNetConfig(**backbone, out_features=stages),
                                  use_auxiliary_head=False, **preset, **labels)
        return tf.UperNetForSemanticSegmentation(config)
    return tf.SegformerForSemanticSegmentation(tf.SegformerConfig(**preset, **labels))


#: Every preset network reduces its input 32x (ResNet and SegFormer stages, the ViT's largest patch):
#: a smaller input leaves it nothing to look at.
MIN_IMAGE_SIZE = 32


def check_image_size(model: str, preset: dict[str, Any], image_size: int) -> None:
    """Raise ``ValueError`` for an ``image_size`` a preset network cannot use: below
    :data:`MIN_IMAGE_SIZE`, or, for a ViT, not a whole number of its patches (the pixels past
    the last whole patch are dropped: 63 with patch 32 shows the model one 32x32 patch)."""
    patch = preset.get("patch_size")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"--image_size {image_size}: smaller than the {MIN_IMAGE_SIZE} pixels the {model} network "
                         "reduces its input by; use at least 32 (the data are 256x256)")
    if patch and image_size % patch:
        keep = image_size // patch * patch
        raise ValueError(f"--image_size {image_size}: not a multiple of the patch size {patch} of {model}; the ViT "
                         f"would see only {keep}x{keep} of the {image_size}x{image_size} view "
                         f"({image_size // patch}x{image_size // patch} patches); use e.g. {max(keep, patch)} "
                         f"or {keep + patch}")


def build_task_model(task: str, model: str, label_names: list[str], image_size: int = 256) -> torch.nn.Module:
    """A transformers model for ``task`` ("classification" | "segmentation").

    ``model`` is a key of :data:`MODEL_PRESETS` (random weights, offline: ViTs and ResNets for
    classification, SegFormers and UperNet-ResNets for segmentation) or anything
    ``from_pretrained`` takes (a Hub id such as ``google/vit-base-patch16-224-in21k``,
    ``microsoft/resnet-50``, ``nvidia/mit-b0`` or ``openmmlab/upernet-convnext-tiny``, or a local
    folder); a pretrained head is replaced to fit the labels.
    """
    from transformers import AutoConfig

    from ..registry import get_task

    auto = get_task(task).auto_model_class()
    labels = {"id2label": dict(enumerate(label_names)), "label2id": {n: i for i, n in enumerate(label_names)}}
    if model in MODEL_PRESETS:
        preset = dict(MODEL_PRESETS[model])
        kind = preset.pop("model_type")
        if kind not in _TASK_TYPES[task]:
            raise ValueError(f"model preset {model!r} is a {kind} model, not one for {task}; "
                             f"choose one of {[k for k, v in MODEL_PRESETS.items() if v['model_type'] in _TASK_TYPES[task]]}")
        check_image_size(model, preset, image_size)
        return _preset_model(kind, preset, labels, image_size)
    try:
        config = AutoConfig.from_pretrained(model, **labels)
    except OSError as err:
        raise ValueError(
            f"model_name_or_path {model!r} is neither a preset ({sorted(MODEL_PRESETS)}) nor a loadable "
            f"model folder or Hub id: {err}"
        ) from None
    return auto.from_pretrained(model, config=config, ignore_mismatched_sizes=True)


def model_input_size(model: torch.nn.Module, default: int) -> dict[str, int]:
    """The input size a model expects (ViT: its ``image_size``; others: ``default``)."""
    size = getattr(model.config, "image_size", None) if getattr(model.config, "model_type", "") == "vit" else None
    n = int(size if isinstance(size, int) else (size[0] if size else default))
    return {"height": n, "width": n}


# ---------------------------------------------------------------- saving and loading

def isp_processor_settings(isp: torch.nn.Module) -> dict[str, Any] | None:
    """``isp`` and ``camera`` settings of a :class:`RawISPImageProcessor` that replays ``isp``
    exactly, or None for the learned ISP (a network the processor cannot run)."""
    if isinstance(isp, StaticISP):
        return {"isp": isp.config.to_dict(), "camera": isp.camera.to_dict()}
    if isinstance(isp, ParametrizedISP):
        return isp.processor_settings()
    return None


def describe_isp(isp: torch.nn.Module) -> tuple[IspSpec, CameraPreset]:
    """The spec (:func:`parse_isp`) and camera from which :func:`build_isp` rebuilds ``isp``
    before its weights are loaded: what :func:`save_raw_model` records when it is not told.
    A parametrized ISP with no trainable parameter is ``parametrized-frozen``; its camera is
    the preset it started from when that is a named one (its learned values are weights).
    The exposure setting is recorded apart (:func:`isp_exposure`). Raises ValueError for a
    static or parametrized ISP whose config (exposure aside) is none of the 12 variants."""
    from ..isp.config import CAMERAS
    from ..isp.learned import LearnedISP

    if isinstance(isp, LearnedISP):
        return IspSpec("learned"), isp.camera
    if not isinstance(isp, (StaticISP, ParametrizedISP)):
        raise TypeError(f"cannot describe an ISP of type {type(isp).__name__}; expected StaticISP, "
                        "ParametrizedISP or LearnedISP (or give isp_spec and camera)")
    variant = isp.config.base_variant
    if variant is None:
        raise ValueError(f"the ISP's config is none of the named variants {ISP_VARIANTS} ({isp.config}); a saved "
                         "folder records the ISP by its variant")
    if isinstance(isp, StaticISP):
        return IspSpec("static", variant), isp.camera
    kind = "parametrized" if any(p.requires_grad for p in isp.parameters()) else "parametrized-frozen"
    return IspSpec(kind, variant), CAMERAS.get(isp.camera_name) or isp.camera_preset()


def save_raw_model(model: RawISPModel, output_dir: str | os.PathLike, isp_spec: str | IspSpec | None = None,
                   camera: str | CameraPreset | None = None, save_function: Any = None, task: str | None = None,
                   state_dict: dict[str, torch.Tensor] | None = None) -> list[str]:
    """Write ``model`` to ``output_dir`` so that the ``Auto`` classes and :func:`load_raw_model` reload it.

    Files: the task model (``config.json``, ``model.safetensors``), ``preprocessor_config.json``
    (a :class:`RawISPImageProcessor` replaying the training view; not written for the learned
    ISP, which it cannot run), ``isp_config.json`` (the task, the ISP spec, camera, pattern,
    exposure setting, learned-ISP options) and ``isp.safetensors`` (the ISP's parameters, if it
    has any: a parametrized ISP's learned log-gain among them).
    ``task``: "classification" or "segmentation" (a key of the registry's ``TASKS``); None
    guesses it from the model's config (:func:`raw_isp.registry.guess_task`).
    ``isp_spec``, ``camera``: how the ISP was built; None reads them from ``model.isp``
    (:func:`describe_isp`). ``state_dict``: the whole model's weights (keys ``isp.*`` and
    ``model.*``) to write instead of the module's own, as ``transformers.Trainer`` passes them
    when the model is sharded (FSDP, DeepSpeed).
    """
    from safetensors.torch import save as save_safetensors

    from ..registry import get_task, guess_task

    task = get_task(task).name if task is not None else guess_task(model.model.config)

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isp_spec is None or camera is None:
        described = describe_isp(model.isp)
        isp_spec, camera = isp_spec or described[0], camera or described[1]
    spec = parse_isp(isp_spec)
    written = []
    kwargs = {"save_function": save_function} if save_function is not None else {}
    if state_dict is not None:
        kwargs["state_dict"] = {k[len("model."):]: v for k, v in state_dict.items() if k.startswith("model.")}
    model.model.save_pretrained(out, safe_serialization=True, **kwargs)
    written.append("model")
    settings = isp_processor_settings(model.isp)
    processor_file = out / "preprocessor_config.json"
    if settings is not None:
        proc = RawISPImageProcessor(**{**model.processor.to_dict(), **settings})
        proc.save_pretrained(out)
        written.append(str(processor_file))
    elif processor_file.exists():
        processor_file.unlink()  # a stale processor from another run would replay the wrong view
    cam = CameraPreset.parse(camera)
    info = {
        "task": task,
        "isp": str(spec),
        "camera": cam.to_dict(),
        "pattern": getattr(getattr(model.isp, "config", None), "pattern", None) or getattr(model.isp, "pattern", "RGGB"),
        "exposure": isp_exposure(model.isp),
        "processor": {k: v for k, v in model.processor.to_dict().items() if k not in ("auto_map",)},
    }
    if spec.kind == "learned":
        info["learned_options"] = model.isp.to_dict()
    isp_state = model.isp.state_dict() if state_dict is None else {
        k[len("isp."):]: v for k, v in state_dict.items() if k.startswith("isp.")}
    state = {k: v.detach().contiguous().cpu() for k, v in isp_state.items()}
    if state:
        atomic_write(out / ISP_WEIGHTS_NAME, save_safetensors(state))
        written.append(str(out / ISP_WEIGHTS_NAME))
    atomic_write_json(out / ISP_CONFIG_NAME, info)
    written.append(str(out / ISP_CONFIG_NAME))
    return written


#: The keys :func:`save_raw_model` writes into ``isp_config.json`` and the type of each value.
ISP_INFO_KEYS: dict[str, tuple[type, ...]] = {
    "task": (str, type(None)), "isp": (str,), "camera": (str, dict), "pattern": (str, type(None)),
    "exposure": (str, int, float, type(None)), "processor": (dict,), "learned_options": (dict, type(None)),
}


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def read_isp_info(info_file: str | os.PathLike) -> dict[str, Any]:
    """The content of an ``isp_config.json``, checked: JSON, an object, ``isp`` and ``processor``
    present, each known key of the type :func:`save_raw_model` writes (a dict where a string was
    is a newer format: an error naming the file and key). Keys this version does not know are
    left out with a ``UserWarning``, as the processor does with its own settings.

    Raises:
        ValueError: the file is not one this version can read; the message names it.
    """
    info_file = Path(info_file)
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{info_file}: not readable as JSON ({_first_line(err)})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{info_file}: expected a JSON object, got {type(info).__name__}")
    for key in ("isp", "processor"):
        if key not in info:
            raise ValueError(f"{info_file}: no {key!r}; not an ISP description written by the training scripts")
    for key, types in ISP_INFO_KEYS.items():
        if key in info and (not isinstance(info[key], types) or isinstance(info[key], bool)):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"{info_file}: {key!r} is {type(info[key]).__name__} {info[key]!r:.80}, expected {names} "
                             "(a newer format of isp_config.json? this version of raw_isp cannot read it)")
    unknown = sorted(set(info) - set(ISP_INFO_KEYS))
    if unknown:
        warnings.warn(f"{info_file}: ignoring keys that this version of raw_isp does not know: {unknown} (probably "
                      "written by a newer version); the model is loaded from the others", UserWarning, stacklevel=3)
        info = {k: v for k, v in info.items() if k in ISP_INFO_KEYS}
    try:
        parse_isp(info["isp"])
    except ValueError as err:
        raise ValueError(f"{info_file}: unreadable ISP description ({err})") from None
    return info


def load_raw_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[RawISPModel, dict[str, Any]]:
    """Reload a folder written by :func:`save_raw_model` (any ISP kind) as a :class:`RawISPModel`
    in eval mode on ``device``; also returns the ``isp_config.json`` content, with ``"task"``
    (guessed from the model's config for folders saved before the task was recorded). The task
    model is loaded by the task's ``Auto`` class, so any architecture of the task round-trips."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from ..registry import get_task, guess_task

    folder = Path(path)
    info_file = folder / ISP_CONFIG_NAME
    if not info_file.is_file():
        raise FileNotFoundError(f"{folder}: no {ISP_CONFIG_NAME}; not a folder written by the training scripts")
    info = read_isp_info(info_file)
    spec = parse_isp(info["isp"])
    config_file = folder / "config.json"
    try:
        config = AutoConfig.from_pretrained(folder)
    except Exception as err:  # OSError, JSONDecodeError, ValueError, KeyError: transformers says it many ways
        raise ValueError(f"{config_file}: not a readable model config ({_first_line(err)})") from None
    try:
        task = get_task(info["task"]).name if info.get("task") is not None else guess_task(config)
    except ValueError as err:
        raise ValueError(f"{info_file}: {err}") from None
    info["task"] = task
    try:
        task_model = get_task(task).auto_model_class().from_pretrained(folder)
    except Exception as err:  # safetensors' SafetensorError, OSError, RuntimeError (shapes), ...
        weights = sorted(p.name for p in folder.glob("model*.safetensors")) or ["model.safetensors"]
        raise ValueError(f"{folder / weights[0]}: the task model's weights cannot be loaded, the file is truncated, "
                         f"empty or not from this config ({_first_line(err)})") from None
    try:
        camera = CameraPreset.parse(info["camera"])
        isp = build_isp(spec, camera=camera, pattern=info.get("pattern") or "RGGB",
                        learned_options=info.get("learned_options"), exposure=info.get("exposure"))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"{info_file}: {_first_line(err)}") from None
    weights = folder / ISP_WEIGHTS_NAME
    if weights.is_file():
        try:
            state = load_file(str(weights))
        except Exception as err:  # SafetensorError
            raise ValueError(f"{weights}: the ISP's weights cannot be read, the file is truncated or empty "
                             f"({_first_line(err)})") from None
        missing, unexpected = isp.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if m in dict(isp.named_parameters())]:
            raise ValueError(f"{weights}: does not fit the {spec} ISP (missing {missing}, unexpected {unexpected})")
    proc_settings = {k: v for k, v in info["processor"].items() if k != "image_processor_type"}
    try:
        processor = RawISPImageProcessor(**proc_settings)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{info_file}: 'processor': {_first_line(err)}") from None
    model = RawISPModel(isp, task_model, processor).to(device).eval()
    return model, info

