"""Registration with transformers is explicit (raw_isp.models.registration.register, run when
raw_isp.models loads), and ``import raw_isp`` is plain: no import hooks, no transformers, no
aliases of the old flat module paths."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import transformers
from transformers.pipelines import PIPELINE_REGISTRY

import raw_isp.models
from raw_isp.models.registration import RawISPProcessorConfig, register

FRESH = """
import importlib, sys
before = list(sys.meta_path)
import raw_isp
print("meta_path unchanged", sys.meta_path == before)
print("transformers loaded", "transformers" in sys.modules)
for old in ("processor", "modeling", "cfa", "corruptions"):
    try:
        importlib.import_module("raw_isp." + old)
        print("raw_isp." + old, "imports")
    except ModuleNotFoundError:
        print("raw_isp." + old, "is gone")
import raw_isp.models
from transformers.pipelines import PIPELINE_REGISTRY
print("registered", "raw-image-classification" in PIPELINE_REGISTRY.get_supported_tasks())
"""


def test_import_raw_isp_installs_nothing_and_loads_no_transformers():
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(FRESH)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == [
        "meta_path unchanged True", "transformers loaded False", "raw_isp.processor is gone",
        "raw_isp.modeling is gone", "raw_isp.cfa is gone", "raw_isp.corruptions is gone", "registered True",
    ]  # fmt: skip


def test_register_is_idempotent():
    mapping = transformers.models.auto.image_processing_auto.IMAGE_PROCESSOR_MAPPING
    tasks = dict(PIPELINE_REGISTRY.supported_tasks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register()
        register()
    assert mapping[RawISPProcessorConfig] == {
        "torchvision": raw_isp.models.RawISPImageProcessor, "pil": raw_isp.models.RawISPImageProcessor}
    assert dict(PIPELINE_REGISTRY.supported_tasks) == tasks
    assert tasks["image-classification"]["impl"] is raw_isp.models.RawImageClassificationPipeline
    assert tasks["raw-image-classification"]["impl"] is raw_isp.models.RawImageClassificationPipeline
