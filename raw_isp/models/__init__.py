"""The transformers side: the image processor and the model with the ISP as its first module.

    processor   RawISPImageProcessor (a transformers BaseImageProcessor that runs the ISP)
    modeling    RawISPModel, ISP specs, task-model presets, save / load of a trained folder
    pipelines   RawImageClassificationPipeline (``pipeline("raw-image-classification")``)
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
from .processor import RawISPImageProcessor

__all__ = [
    "MODEL_PRESETS", "RawISPModel", "build_isp", "build_task_model", "load_raw_model", "parse_isp",
    "save_raw_model", "RawISPImageProcessor",
]  # fmt: skip
