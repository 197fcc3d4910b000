"""The transformers side: the image processor and the model with the ISP as its first module.

    processor         RawISPImageProcessor (a transformers BaseImageProcessor that runs the ISP);
                      beside it processor_args (argument checks), processor_inputs (input
                      reading), isp_cache (the StaticISP per config), shim (the files
                      save_pretrained writes for the Auto classes)
    modeling          RawISPModel, ISP specs, task-model presets, save / load of a trained folder
    pipelines         RawImageClassificationPipeline (``pipeline("raw-image-classification")``)
    registration      register(): the one registration with transformers, run below

Loading this subpackage (``import raw_isp.models``, or any name from it) registers the processor
with ``AutoImageProcessor`` and the pipeline with ``pipeline()``; ``import raw_isp`` alone does not
load transformers and registers nothing.
"""

from .modeling import (
    MODEL_PRESETS,
    RawISPModel,
    build_isp,
    build_task_model,
    load_raw_model,
    parse_isp,
    save_raw_model,
)
from .pipelines import RawImageClassificationPipeline
from .processor import RawISPImageProcessor
from .registration import register

__all__ = [
    "MODEL_PRESETS", "RawISPModel", "build_isp", "build_task_model", "load_raw_model", "parse_isp",
    "save_raw_model", "RawISPImageProcessor", "RawImageClassificationPipeline", "register",
]  # fmt: skip

register()
