"""``RawISPImageProcessor``: a transformers image processor that develops raw Bayer mosaics.

Where a transformers image processor turns 8-bit RGB pictures into ``pixel_values``, this one
takes raw sensor frames (uint16 Bayer mosaics or the same in normalised float units) and runs
the project's static ISP (:class:`raw_isp.StaticISP`) on them before the usual resize and
normalisation. The ISP runs once per call on the whole batch, as tensors, on the chosen device.

    raw (B, H, W) uint16 --/raw_scale--> [0, 1] --StaticISP--> RGB (B, 3, H, W) in [0, 1]
        --resize--> (B, 3, h, w) --(x - mean) / std--> pixel_values

Beside it: the argument checks (:mod:`.processor_args`), input reading (:mod:`.processor_inputs`),
the ISP cache (:mod:`.isp_cache`), the files ``save_pretrained`` writes for the Auto classes
(:mod:`.shim`) and the registration with transformers (:mod:`.registration`).

Input is raw frames only: 8-bit data (uint8 arrays, PIL images in mode "L", RGB pictures) is
refused with a message, because it is almost always a picture developed already (an 8-bit raw
mosaic is developed when ``raw_scale=255`` says so). With ``exposure="metadata"`` each frame is
developed with gain 1 / its intensity ratio: ``intensity=``, else the ratio the frame carries (a
file written by ``raw_isp.write_raw(path, raw, intensity=0.05)``, a :class:`raw_isp.io.RawFrame`),
else ``default_intensity`` (1.0, the training reference) with a warning the first time.

Once :mod:`raw_isp.models` has loaded (``import raw_isp.models``, or any name from it such as
``raw_isp.RawISPImageProcessor``), ``AutoImageProcessor.from_pretrained(folder)`` returns this
class for a folder its ``save_pretrained`` wrote, offline and without ``trust_remote_code``, and
``pipeline("image-classification", model=folder)`` runs
:class:`~raw_isp.models.pipelines.RawImageClassificationPipeline`, which hands file paths to this
processor (the built-in pipeline decodes them to 8-bit RGB). Any other process loads the folder
with ``trust_remote_code=True`` through the ``auto_map`` and import shim that ``save_pretrained``
writes; a saved setting this version does not know is left out with a warning (:meth:`from_dict`).
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.processing_utils import ImagesKwargs

from ..isp.config import CameraPreset, ISPConfig
from ..isp.static import StaticISP
from .isp_cache import isp_for
from .processor_args import (
    NOT_FOR_RAW,
    RESAMPLE_MODES,
    RESIZE_MODES,
    SERVICE_KEYS,
    Options,
    as_spec,
    check_bool,
    check_camera,
    check_data_format,
    check_default_intensity,
    check_device,
    check_isp,
    check_raw_scale,
    check_resample,
    check_rescale,
    check_resize_mode,
    check_return_tensors,
    check_size,
    check_stats,
    refuse_not_for_raw,
    with_exposure,
)
from .processor_inputs import gather_with_intensity, read_labels, stored_or_default, strip_channel_axis, to_unit_batch
from .shim import AUTO_MAP, write_loading_files

__all__ = ["RawISPImageProcessor", "RESIZE_MODES", "RESAMPLE_MODES", "DEFAULT_INTENSITY", "CAMERA_NORMALIZATION"]

#: Suggested ``image_mean`` / ``image_std`` per camera (statistics of ISP output in [0, 1]).
#: The defaults of the processor are the neutral 0.5 / 0.5 of ViT; pass these to centre the data.
CAMERA_NORMALIZATION = {
    "microscopy": {"image_mean": [0.91, 0.84, 0.94], "image_std": [0.08, 0.12, 0.05]},
}
# What to_dict / save_pretrained store (all JSON values).
_SETTINGS = (
    "isp", "camera", "exposure", "default_intensity", "raw_scale", "do_resize", "size", "resize_mode", "do_normalize",
    "image_mean", "image_std",
)  # fmt: skip
#: The intensity ratio of the training reference (full light): what a frame without exposure
#: metadata is developed as under ``exposure="metadata"``, unless ``default_intensity`` says otherwise.
DEFAULT_INTENSITY = 1.0


class RawISPImageProcessorKwargs(ImagesKwargs, total=False):
    """Keyword arguments of :class:`RawISPImageProcessor` beyond the standard ``ImagesKwargs``.

    transformers uses this TypedDict (``valid_kwargs``) to decide which keyword arguments of
    ``from_pretrained`` override saved settings.
    """

    isp: str | dict | None
    camera: str | dict | None
    raw_scale: float | None
    resize_mode: str | None
    exposure: str | float | None
    default_intensity: float | None
    intensity: Any


class RawISPImageProcessor(BaseImageProcessor):
    r"""Develops raw Bayer mosaics with :class:`raw_isp.StaticISP`, then resizes and normalises.

    Args:
        isp: the ISP, a variant name of :data:`raw_isp.ISP_VARIANTS` (e.g. ``"bi_s_ga"``,
            ``"ma_s_me"``) or an ``ISPConfig`` as a dict (``ISPConfig.to_dict()``; an
            ``ISPConfig`` instance is stored as its dict). Explicit luma kernels
            (``"sharpening": "kernel"`` with ``"sharpen_kernel"``, ``"denoising": "kernel"`` with
            ``"blur_kernel"``, k x k nested lists) are stored as JSON lists; this is how a
            trained :class:`raw_isp.ParametrizedISP` is saved:
            ``RawISPImageProcessor(**isp.processor_settings(), size=...)`` develops raws as
            that module does (to float32 rounding).
        camera: colour parameters, ``"neutral"``, ``"drone"``, ``"microscopy"`` (see
            :data:`raw_isp.CAMERAS`) or a dict with ``black_level`` (4), ``white_balance`` (3),
            ``colour_matrix`` (9 row-major) in normalised units.
        exposure: the ISP's exposure stage (:mod:`raw_isp.isp.exposure`): None (default: the
            ``isp`` config's own setting, none for the study's variants), ``"metadata"`` (gain
            1 / intensity ratio: the ratio comes from ``intensity=``, else from the frame's own
            metadata, a file written by ``raw_isp.write_raw(path, raw, intensity=...)`` or the
            :class:`raw_isp.io.RawFrame` that ``read_raw`` returns, else ``default_intensity``),
            ``"auto"`` (auto-exposure from each frame) or a positive fixed gain. It must not
            contradict an ``exposure`` inside an ``isp`` dict.
        default_intensity: the intensity ratio a frame without one is developed as under
            ``exposure="metadata"`` (default 1.0, :data:`DEFAULT_INTENSITY`: the training
            reference, full light), with a warning the first time; None makes a missing ratio an
            error instead. Saved with the other settings.
        raw_scale: integer raws are divided by this to reach [0, 1] (default 65535 for uint16
            frames). Floating-point inputs are taken as already normalised to [0, 1].
        do_resize: resize the developed RGB batch to ``size``.
        size: ``{"height": h, "width": w}`` (an int n or a pair (h, w) is accepted and stored as
            that dict).
        resize_mode: ``"bilinear"`` (antialiased), ``"bicubic"`` (antialiased, result clipped to
            [0, 1]), ``"nearest"`` or ``"area"``; done with ``torch.nn.functional.interpolate``.
        do_normalize: apply ``(x - image_mean) / image_std`` per channel.
        image_mean, image_std: 3 values (or one for all channels). Defaults 0.5 / 0.5 as for
            ViT. For Raw-Microscopy, statistics of the ISP output are about mean
            ``[0.91, 0.84, 0.94]`` and std ``[0.08, 0.12, 0.05]`` (:data:`CAMERA_NORMALIZATION`).

    All settings are JSON values; they are what :meth:`to_dict` and :meth:`save_pretrained`
    store. The device is chosen per call and is never stored.

    transformers' common arguments: ``resample`` (a PIL filter, mapped to ``resize_mode``:
    NEAREST, BILINEAR, BICUBIC, BOX), ``rescale_factor`` (``1 / raw_scale``), ``do_rescale``
    (True only: integer DN are always scaled, floats never), ``data_format`` (``"channels_first"``
    or ``"channels_last"`` pixel values), ``input_data_format`` (a singleton channel axis on the
    mosaics), ``return_tensors``, ``device``. Arguments that do not apply to a raw mosaic
    (``do_convert_rgb``, ``do_center_crop`` / ``crop_size``, ``do_pad`` / ``pad_size``, ...) are
    refused with the reason unless they ask for nothing (False / None).
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = RawISPImageProcessorKwargs

    def __init__(
        self,
        isp: str | Mapping | ISPConfig = "bi_s_ga",
        camera: str | Mapping | CameraPreset = "neutral",
        raw_scale: float = 65535.0,
        do_resize: bool = True,
        size: int | Sequence[int] | Mapping[str, int] | None = None,
        resize_mode: str = "bilinear",
        do_normalize: bool = True,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        exposure: str | float | None = None,
        default_intensity: float | None = DEFAULT_INTENSITY,
        **kwargs: Any,
    ) -> None:
        for key in SERVICE_KEYS:
            kwargs.pop(key, None)
        # transformers' names for two of the settings, converted to the stored ones.
        if kwargs.get("resample") is not None:
            resize_mode = check_resample(kwargs.pop("resample"))
        raw_scale = check_rescale(kwargs.pop("do_rescale", None), kwargs.pop("rescale_factor", None),
                                   None if raw_scale == 65535.0 else raw_scale) or raw_scale
        kwargs.pop("resample", None)
        unknown = sorted(k for k in kwargs if k not in NOT_FOR_RAW and k not in ("default_to_square", "disable_grouping"))
        if unknown:
            raise TypeError(f"RawISPImageProcessor got unknown settings {unknown}")
        refuse_not_for_raw(kwargs, "RawISPImageProcessor")
        super().__init__()
        self.isp = as_spec(isp)
        self.camera = as_spec(camera)
        self.exposure = with_exposure(ISPConfig(), exposure).exposure  # validated, a number as float
        self.default_intensity = check_default_intensity(default_intensity)
        self._warned_default_intensity = False
        self.raw_scale = raw_scale
        self.do_resize = do_resize
        self.size = {"height": 224, "width": 224} if size is None else size
        self.resize_mode = resize_mode
        self.do_normalize = do_normalize
        self.image_mean = [0.5, 0.5, 0.5] if image_mean is None else image_mean
        self.image_std = [0.5, 0.5, 0.5] if image_std is None else image_std
        opts = self._options()  # fail now rather than at the first call
        # Store the canonical JSON forms.
        self.raw_scale, self.size = opts.raw_scale, opts.size
        self.image_mean, self.image_std = opts.image_mean, opts.image_std

    # ------------------------------------------------------------------ settings

    def _options(self, **overrides: Any) -> Options:
        """Defaults from ``self`` with non-None ``overrides``, all validated."""
        get = lambda k: overrides[k] if overrides.get(k) is not None else getattr(self, k)  # noqa: E731
        return Options(
            isp=with_exposure(check_isp(get("isp")), get("exposure")),
            camera=check_camera(get("camera")),
            raw_scale=check_raw_scale(get("raw_scale")),
            do_resize=check_bool(get("do_resize"), "do_resize"),
            size=check_size(get("size")),
            resize_mode=check_resize_mode(get("resize_mode")),
            do_normalize=check_bool(get("do_normalize"), "do_normalize"),
            image_mean=check_stats(get("image_mean"), "image_mean", positive=False),
            image_std=check_stats(get("image_std"), "image_std", positive=True),
            default_intensity=check_default_intensity(get("default_intensity")),
        )

    def get_isp(self, isp: Any = None, camera: Any = None, device: Any = None, exposure: Any = None) -> StaticISP:
        """The :class:`StaticISP` this processor runs (defaults, or the given overrides).

        Built once per (ISP config, camera values, device) and cached for the process, so
        repeated calls (and copies of the processor) do not rebuild kernels.
        """
        exposure = self.exposure if exposure is None else exposure
        cfg = with_exposure(check_isp(self.isp if isp is None else isp), exposure)
        cam = check_camera(self.camera if camera is None else camera)
        return isp_for(cfg, cam, check_device("cpu" if device is None else device))

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values, plus ``image_processor_type`` and ``auto_map``."""
        settings = json.loads(json.dumps({key: getattr(self, key) for key in _SETTINGS}))
        return {"image_processor_type": type(self).__name__, "auto_map": dict(AUTO_MAP), **settings}

    @classmethod
    def from_dict(cls, image_processor_dict: dict[str, Any], **kwargs: Any) -> RawISPImageProcessor:
        """Build from saved settings (``from_pretrained`` passes the content of
        ``preprocessor_config.json`` here).

        Keys that this version does not know (written by a newer version, or added by another
        tool) are left out with a ``UserWarning`` instead of failing, so a saved folder keeps
        loading across versions as transformers' own image processors do. Calling the
        constructor with an unknown setting is still a ``TypeError`` (a typo there is a bug).
        """
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        unknown = sorted(set(image_processor_dict) - known - set(SERVICE_KEYS))
        if unknown:
            warnings.warn(
                f"{cls.__name__}: ignoring saved settings that this version of raw_isp does not know: {unknown} "
                "(probably written by a newer version); the processor is built from the others",
                UserWarning,
                stacklevel=2,
            )
            image_processor_dict = {k: v for k, v in image_processor_dict.items() if k not in unknown}
        return super().from_dict(image_processor_dict, **kwargs)

    def save_pretrained(
        self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs: Any
    ) -> list[str]:
        """Write ``preprocessor_config.json``, the ``image_processing_raw_isp.py`` import shim
        and ``video_preprocessor_config.json`` (a note that there is no video processor).

        The shim lets ``AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)``
        work in a process that has not loaded :mod:`raw_isp.models`; once it has, the registered
        class is used and ``trust_remote_code`` is not needed. The video note keeps
        ``transformers.pipeline()`` from asking about custom code: see :data:`raw_isp.models.shim.NO_VIDEO_NOTE`.
        A ``video_preprocessor_config.json`` of another origin in the folder is left as it is.
        """
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory: {os.fspath(save_directory)} is a file, not a folder")
        os.makedirs(save_directory, exist_ok=True)
        written = write_loading_files(save_directory)
        files = super().save_pretrained(save_directory, push_to_hub=False)
        if push_to_hub:
            # push_to_hub saves into a temporary folder (shim included) and uploads all of it.
            repo_id = kwargs.pop("repo_id", os.path.basename(os.path.abspath(save_directory)))
            self.push_to_hub(repo_id, **kwargs)
        return [*files, *written]

    @classmethod
    def register_for_auto_class(cls, auto_class: str | type = "AutoImageProcessor") -> None:
        """Kept for API compatibility: :meth:`save_pretrained` always writes the ``auto_map``."""
        name = auto_class if isinstance(auto_class, str) else auto_class.__name__
        if name != "AutoImageProcessor":
            raise ValueError(f"auto_class: RawISPImageProcessor registers only with AutoImageProcessor, got {name!r}")

    # ---------------------------------------------------------------- processing

    def preprocess(
        self,
        images: Any,
        segmentation_maps: Any = None,
        *,
        isp: str | Mapping | ISPConfig | None = None,
        camera: str | Mapping | CameraPreset | None = None,
        raw_scale: float | None = None,
        do_resize: bool | None = None,
        size: int | Sequence[int] | Mapping[str, int] | None = None,
        resize_mode: str | None = None,
        do_normalize: bool | None = None,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        return_tensors: str | None = "pt",
        device: str | torch.device | None = None,
        exposure: str | float | None = None,
        intensity: Any = None,
        default_intensity: float | None = None,
        resample: Any = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        data_format: str | None = "channels_first",
        input_data_format: str | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Develop, resize and normalise a raw or a batch of raws.

        Args:
            images: one raw or a batch: numpy array / torch tensor ``(H, W)`` or ``(B, H, W)``,
                a list of ``(H, W)`` arrays/tensors, single-channel PIL images (mode ``"I;16"``
                etc.), or paths (str / ``os.PathLike``) of raw TIFF/DNG files (read with
                :func:`raw_isp.read_raw`; a DNG's CFA pattern must match the ISP's). Integer
                values are divided by ``raw_scale``; floating-point values must already be in
                [0, 1]. H and W even, one shape per call.
            segmentation_maps: optional integer class maps, one ``(H, W)`` per image, same
                H and W as the raws; resized with nearest-neighbour and returned as ``labels``.
            isp, camera, raw_scale, do_resize, size, resize_mode, do_normalize, image_mean,
                image_std, exposure: override the stored settings for this call only.
            intensity: the intensity ratio of each image (one number, or one per image: a list,
                array or tensor ``(B,)``, e.g. a dataset batch's ``"intensity"``), all positive;
                used when the exposure is ``"metadata"`` (gain 1 / ratio), ignored otherwise. It
                overrides the ratio a frame carries (a file written with ``write_raw(...,
                intensity=)``, a ``RawFrame``); a frame with neither is developed as
                ``default_intensity`` (1.0 unless set; a warning the first time), or refused
                when that is None.
            resample: a PIL resampling filter, instead of ``resize_mode`` (see the class).
            do_rescale, rescale_factor: transformers' names: ``rescale_factor = 1 / raw_scale``;
                ``do_rescale=False`` is refused (integer DN are always scaled).
            data_format: ``"channels_first"`` (default, ``(B, 3, h, w)``) or ``"channels_last"``
                (``(B, h, w, 3)``).
            input_data_format: None (mosaics ``(H, W)`` / ``(B, H, W)``), or
                ``"channels_first"`` / ``"channels_last"`` for arrays that carry a singleton
                channel axis (``(1, H, W)`` / ``(H, W, 1)``, batched ``(B, 1, H, W)`` /
                ``(B, H, W, 1)``), which is dropped.
            return_tensors: ``"pt"`` (default: stacked torch tensors, on ``device``), ``"np"``
                (stacked numpy arrays) or None (a list of one numpy array per image, as
                transformers' ``ViTImageProcessor`` returns). The default differs from ViT's
                (None) because the ISP runs in torch and the output feeds a torch model.
            device: where the ISP runs (e.g. ``"cpu"``, ``"cuda"``); ``"pt"`` outputs stay there.
                Default: the device of a tensor input, else the CPU.

        Returns:
            ``BatchFeature`` with ``pixel_values`` float32 ``(B, 3, h, w)`` and, with
            segmentation maps, ``labels`` int64 ``(B, h, w)`` (for ``return_tensors=None``:
            lists of B arrays ``(3, h, w)`` and ``(h, w)``).

        Raises:
            ValueError / TypeError naming the argument: unknown ISP variant or camera, bad
            size, RGB images, 8-bit data (unless ``raw_scale <= 255``), odd or mixed sizes,
            negative or non-finite values, integers above ``raw_scale``, floats above 1,
            unsupported ``return_tensors``, a missing or
            non-positive ``intensity`` with ``exposure="metadata"``.
        """
        refuse_not_for_raw(kwargs, "RawISPImageProcessor.preprocess")
        if resample is not None:
            resize_mode = check_resample(resample)
        raw_scale = check_rescale(do_rescale, rescale_factor, raw_scale)
        data_format = check_data_format(data_format, "data_format") or "channels_first"
        input_data_format = check_data_format(input_data_format, "input_data_format")
        opts = self._options(
            isp=isp, camera=camera, raw_scale=raw_scale, do_resize=do_resize, size=size, resize_mode=resize_mode,
            do_normalize=do_normalize, image_mean=image_mean, image_std=image_std, exposure=exposure,
            default_intensity=default_intensity,
        )  # fmt: skip
        return_tensors = check_return_tensors(return_tensors)
        dev = None if device is None else check_device(device)

        images = strip_channel_axis(images, input_data_format)
        tensors, batched, stored = gather_with_intensity(images, "images", opts.isp.pattern)
        if opts.isp.exposure == "metadata" and intensity is None:
            warn = not getattr(self, "_warned_default_intensity", False)
            intensity = stored_or_default(stored, opts.default_intensity, warn=warn)
            self._warned_default_intensity = not warn or None in stored
        if dev is None:
            on_device = [t.device for t in tensors if t.device.type != "cpu"]
            dev = check_device(on_device[0]) if on_device else torch.device("cpu")
        raw = to_unit_batch(tensors, batched, opts.raw_scale, dev)

        isp_module = isp_for(opts.isp, opts.camera, dev)
        with torch.no_grad():
            developed = isp_module(raw) if intensity is None else isp_module(raw, intensity=intensity)
            rgb = self._finish(developed, opts)

        if data_format == "channels_last":
            rgb = rgb.permute(0, 2, 3, 1)
        data: dict[str, torch.Tensor] = {"pixel_values": rgb}
        if segmentation_maps is not None:
            data["labels"] = read_labels(segmentation_maps, raw.shape, opts.size, opts.do_resize, dev)
        return _package(data, return_tensors)

    def to_pixel_values(self, rgb: torch.Tensor) -> torch.Tensor:
        """Resize and normalise developed views with this processor's settings.

        The second half of :meth:`preprocess`, for callers that develop the raws themselves
        (a learnable ISP inside a model): ``rgb (B, 3, H, W)`` in [0, 1] -> ``pixel_values
        (B, 3, h, w)``, differentiable, on ``rgb``'s device.
        """
        return self._finish(rgb, self._options())

    def _finish(self, rgb: torch.Tensor, opts: Options) -> torch.Tensor:
        if opts.do_resize:
            rgb = self._resize(rgb, opts.size, opts.resize_mode)
        if opts.do_normalize:
            mean = torch.tensor(opts.image_mean, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
            std = torch.tensor(opts.image_std, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
            rgb = (rgb - mean) / std
        return rgb

    @staticmethod
    def _resize(rgb: torch.Tensor, size: dict[str, int], resize_mode: str) -> torch.Tensor:
        target = (size["height"], size["width"])
        if tuple(rgb.shape[-2:]) == target:
            return rgb
        mode = RESIZE_MODES[resize_mode]
        if mode in ("bilinear", "bicubic"):
            out = F.interpolate(rgb, size=target, mode=mode, align_corners=False, antialias=True)
            return out.clamp_(0.0, 1.0) if mode == "bicubic" else out
        return F.interpolate(rgb, size=target, mode=mode)

    # ------------------------------------------------------------- post-processing

    def post_process_semantic_segmentation(
        self, outputs: Any, target_sizes: Sequence[Sequence[int]] | torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Class maps from segmentation logits.

        Args:
            outputs: a model output with ``logits`` (or a dict with ``"logits"``, or the logits
                tensor), float ``(B, C, h, w)``.
            target_sizes: optional ``(H, W)`` per image (a list or a ``(B, 2)`` tensor); the
                logits are upsampled bilinearly to it before the argmax.

        Returns:
            list of B int64 tensors ``(H, W)`` (or ``(h, w)`` without ``target_sizes``).
        """
        if isinstance(outputs, torch.Tensor):
            logits = outputs
        elif isinstance(outputs, Mapping) and "logits" in outputs:
            logits = outputs["logits"]
        elif hasattr(outputs, "logits"):
            logits = outputs.logits
        else:
            raise TypeError(f"outputs: expected a model output with logits, got {type(outputs).__name__}")
        if not isinstance(logits, torch.Tensor) or logits.ndim != 4:
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"outputs: logits must be a tensor (B, C, h, w), got {got}")
        if target_sizes is None:
            return list(logits.argmax(dim=1))
        if isinstance(target_sizes, torch.Tensor):
            target_sizes = target_sizes.tolist()
        if len(target_sizes) != logits.shape[0]:
            raise ValueError(f"target_sizes: got {len(target_sizes)} sizes for a batch of {logits.shape[0]} logits")
        sizes = []
        for i, s in enumerate(target_sizes):
            if len(s) != 2 or any(int(v) != v or v < 1 for v in s):
                raise ValueError(f"target_sizes[{i}]: expected (height, width) positive integers, got {s!r}")
            sizes.append((int(s[0]), int(s[1])))
        if len(set(sizes)) == 1:
            up = F.interpolate(logits, size=sizes[0], mode="bilinear", align_corners=False)
            return list(up.argmax(dim=1))
        return [
            F.interpolate(logits[i : i + 1], size=s, mode="bilinear", align_corners=False)[0].argmax(dim=0)
            for i, s in enumerate(sizes)
        ]


def _package(data: dict[str, torch.Tensor], return_tensors: str | None) -> BatchFeature:
    """Batched outputs as ``return_tensors`` asks: "pt" stacked tensors where they were
    computed; "np" stacked numpy arrays; None a list of one numpy array per image (what
    transformers' ViTImageProcessor returns)."""
    if return_tensors == "pt":
        return BatchFeature(data=data, tensor_type="pt")
    arrays = {key: value.cpu().numpy() for key, value in data.items()}
    if return_tensors == "np":
        return BatchFeature(data=arrays, tensor_type="np")
    return BatchFeature(data={key: list(value) for key, value in arrays.items()})
