"""The project's one registration with transformers, run when :mod:`raw_isp.models` loads.

:func:`register` (idempotent) makes

* ``AutoImageProcessor`` know :class:`~raw_isp.models.processor.RawISPImageProcessor`, under
  the marker config :class:`RawISPProcessorConfig` (the transformers convention for a class
  outside the library: ``AutoImageProcessor.register``), so that
  ``AutoImageProcessor.from_pretrained(folder)`` returns it for a folder written by its
  ``save_pretrained``, offline and without ``trust_remote_code``;
* ``pipeline()`` know the task ``"raw-image-classification"`` and run the standard
  ``"image-classification"`` task with
  :class:`~raw_isp.models.pipelines.RawImageClassificationPipeline` (the built-in class for any
  other image processor; see that module for why).

``import raw_isp`` alone does not load transformers, so it registers nothing: import
:mod:`raw_isp.models` (or any name from it, ``raw_isp.RawISPImageProcessor`` included) first. A
process that never does loads a saved folder with ``trust_remote_code=True`` through the
``auto_map`` and import shim that ``save_pretrained`` writes (:mod:`raw_isp.models.shim`).
"""

from __future__ import annotations

from transformers import AutoImageProcessor, AutoModelForImageClassification
from transformers.configuration_utils import PreTrainedConfig
from transformers.pipelines import PIPELINE_REGISTRY

from .pipelines import STANDARD_TASK, TASK, RawImageClassificationPipeline
from .processor import RawISPImageProcessor

__all__ = ["RawISPProcessorConfig", "register"]


class RawISPProcessorConfig(PreTrainedConfig):
    """Marker config: the key under which :class:`RawISPImageProcessor` is registered with
    ``AutoImageProcessor``. It holds no settings and belongs to no model."""

    model_type = "raw_isp_processor"


def register() -> None:
    """Register the image processor and the pipeline task with transformers (idempotent)."""
    # One class for both backend names: the ISP runs in torch whichever backend is asked for.
    classes = {"torchvision": RawISPImageProcessor, "pil": RawISPImageProcessor}
    AutoImageProcessor.register(RawISPProcessorConfig, image_processor_classes=classes, exist_ok=True)

    standard = PIPELINE_REGISTRY.supported_tasks.get(STANDARD_TASK)
    if standard is not None and standard.get("impl") is not RawImageClassificationPipeline:
        # Set in place rather than through register_pipeline, which would warn about overwriting
        # and mark the class as Hub code (see below); the task's model classes and default stay.
        PIPELINE_REGISTRY.supported_tasks[STANDARD_TASK] = {**standard, "impl": RawImageClassificationPipeline}
    if TASK in PIPELINE_REGISTRY.get_supported_tasks():
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=RawImageClassificationPipeline, pt_model=AutoModelForImageClassification, type="image"
    )
    # The registry marks the class for export as Hub code: Pipeline.save_pretrained would then
    # copy the pipelines module and the raw_isp modules it imports into the folder and write
    # custom_pipelines into the model config. The code is an installed package, so save the
    # pipeline like a built-in one (model + RawISPImageProcessor) instead.
    if "_registered_impl" in vars(RawImageClassificationPipeline):
        del RawImageClassificationPipeline._registered_impl
