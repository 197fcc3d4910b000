"""``RawImageClassificationPipeline``: transformers' image-classification pipeline for raw files.

The standard pipeline decodes a path with PIL and converts it to 8-bit RGB before the image
processor sees it, which destroys a 16-bit raw. This one hands its inputs to the
:class:`~raw_isp.models.processor.RawISPImageProcessor` untouched. When :mod:`raw_isp.models`
loads, :func:`raw_isp.models.registration.register` adds the task name
``"raw-image-classification"`` to ``transformers.pipeline`` and makes this class the
implementation of the standard ``"image-classification"`` task.

Why the standard task too: a raw model's folder is what HF users give to
``pipeline("image-classification", model=folder)``, and the built-in class neither takes
``intensity=`` (its ``_sanitize_parameters`` raises TypeError) nor leaves a path to the raw
processor (it decodes the file to 8-bit RGB). For any other image processor this class is the
built-in one: ``preprocess`` defers to ``ImageClassificationPipeline.preprocess`` and
``intensity=`` is refused with a ValueError, so ordinary models behave exactly as before.
"""

from __future__ import annotations

from typing import Any

from transformers.image_processing_utils import BatchFeature
from transformers.pipelines.image_classification import ImageClassificationPipeline

from .processor import RawISPImageProcessor

__all__ = ["RawImageClassificationPipeline", "TASK", "STANDARD_TASK"]

#: The task name registered with ``transformers.pipeline``.
TASK = "raw-image-classification"
#: The built-in task whose implementation the registration sets to the raw-aware class.
STANDARD_TASK = "image-classification"


class RawImageClassificationPipeline(ImageClassificationPipeline):
    """``ImageClassificationPipeline`` that hands its inputs to the image processor untouched.

    A path, array, tensor or PIL image goes straight to the :class:`RawISPImageProcessor`, which
    reads raw files itself (their exposure metadata included) and runs the ISP on the pipeline's
    device. Use it as
    ``pipeline("image-classification", model=..., image_processor=RawISPImageProcessor(...),
    pipeline_class=RawImageClassificationPipeline)`` or ``pipeline("raw-image-classification", ...)``.

    It never loads a video processor: ``pipeline()`` tries one for every pipeline class that
    leaves ``_load_video_processor`` unset (``ImageClassificationPipeline`` does), and on a folder
    whose processor has an ``auto_map`` that attempt asks whether to run custom code (see
    ``raw_isp.models.shim.NO_VIDEO_NOTE``).
    """

    _load_video_processor = False

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, timeout=None, intensity=None):
        preprocess, forward, postprocess = super()._sanitize_parameters(top_k, function_to_apply, timeout)
        if intensity is not None:
            preprocess["intensity"] = intensity
        return preprocess, forward, postprocess

    def preprocess(self, image: Any, timeout: float | None = None, intensity: Any = None) -> BatchFeature:
        """``intensity``: the frame's light intensity ratio, for a processor with metadata
        exposure (``pipe("frame.tiff", intensity=0.05)``). Without it the processor takes the
        ratio the frame carries (a file written with ``write_raw(..., intensity=)``, the
        ``RawFrame`` that ``read_raw`` returns), else its ``default_intensity`` (1.0)."""
        if not isinstance(self.image_processor, RawISPImageProcessor):
            if intensity is not None:
                raise ValueError("intensity= needs a RawISPImageProcessor (a raw model's own processor)")
            return super().preprocess(image, timeout=timeout)
        device = self.device if self.device.type != "meta" else None
        inputs = self.image_processor(images=image, return_tensors="pt", device=device, intensity=intensity)
        return inputs.to(self.dtype) if self.dtype is not None else inputs

