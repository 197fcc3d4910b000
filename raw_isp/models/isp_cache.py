"""The :class:`~raw_isp.StaticISP` modules that :class:`~raw_isp.models.processor.RawISPImageProcessor`
runs, built once per (ISP config, camera values, device) and kept for the process, so repeated
calls (and copies of a processor) do not rebuild kernels.
"""

from __future__ import annotations

import functools
import json

import torch

from ..isp.config import CameraPreset, ISPConfig
from ..isp.static import StaticISP


def _camera_key(camera: CameraPreset) -> str:
    # The preset's name does not change the output, so it is not part of the key.
    d = camera.to_dict()
    d.pop("name", None)
    return json.dumps(d, sort_keys=True)


@functools.lru_cache(maxsize=16)
def _cached_isp(isp_json: str, camera_json: str, device: str) -> StaticISP:
    config = ISPConfig.from_dict(json.loads(isp_json))
    camera = CameraPreset(**json.loads(camera_json))
    return StaticISP(config, camera=camera, device=torch.device(device), dtype=torch.float32)


def isp_for(config: ISPConfig, camera: CameraPreset, device: torch.device) -> StaticISP:
    return _cached_isp(json.dumps(config.to_dict(), sort_keys=True), _camera_key(camera), str(device))
