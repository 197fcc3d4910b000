"""The files that :meth:`RawISPImageProcessor.save_pretrained
<raw_isp.models.processor.RawISPImageProcessor.save_pretrained>` writes beside
``preprocessor_config.json``, so that a saved folder loads with transformers' Auto classes.

* ``image_processing_raw_isp.py``, a two-line import shim, and the ``auto_map`` entry that names
  it (written into the config by ``to_dict``): a process that has not imported
  :mod:`raw_isp.models` loads the folder with ``AutoImageProcessor.from_pretrained(folder,
  trust_remote_code=True)``; the shim only imports the class from the installed package.
* ``video_preprocessor_config.json``, a note that there is no video processor (see
  :data:`NO_VIDEO_NOTE` for why ``pipeline()`` needs it).

Registration with the Auto classes themselves is in :mod:`raw_isp.models.registration`.
"""

from __future__ import annotations

import json
import os

from transformers.utils import VIDEO_PROCESSOR_NAME

from ..atomic import atomic_write

SHIM_MODULE = "image_processing_raw_isp"
SHIM_SOURCE = (
    "# Written by raw_isp.RawISPImageProcessor.save_pretrained: lets AutoImageProcessor find the class\n"
    "# (with trust_remote_code=True) in a process that has not imported raw_isp. The code itself is the\n"
    "# installed raw-isp-toolkit package; nothing else is defined here.\n"
    "from raw_isp.models.processor import RawISPImageProcessor  # noqa: F401\n"
)
AUTO_MAP = {"AutoImageProcessor": f"{SHIM_MODULE}.RawISPImageProcessor"}
#: Content of the ``video_preprocessor_config.json`` that save_pretrained writes. Why: for every
#: vision task, ``transformers.pipeline()`` also tries ``AutoVideoProcessor.from_pretrained``
#: (an optional component; failures are ignored). In a folder without a video processor config,
#: AutoVideoProcessor reads ``preprocessor_config.json`` and, for backward compatibility, turns its
#: ``auto_map["AutoImageProcessor"]`` into a video-processor class reference; nothing local matches
#: that name, so it counts as remote code and ``resolve_trust_remote_code`` asks "Do you wish to
#: run the custom code? [y/N]" (15 s in a terminal), even after ``import raw_isp.models``. With this file
#: present AutoVideoProcessor reads it instead, finds no video processor and gives up quietly.
#: The ``auto_map`` itself must stay in ``preprocessor_config.json``: it is what lets a process
#: without raw_isp load the processor with ``trust_remote_code=True``.
NO_VIDEO_NOTE = {
    "raw_isp_note": (
        "No video processor. Written by raw_isp.RawISPImageProcessor.save_pretrained so that transformers' "
        "AutoVideoProcessor reads this file instead of preprocessor_config.json, whose auto_map (for "
        "AutoImageProcessor) it would otherwise take for remote video code and ask whether to run it."
    )
}


def _is_our_video_note(path: str) -> bool:
    """True if ``path`` is absent or a note written by save_pretrained (so it may be written)."""
    if not os.path.exists(path):
        return True
    try:
        with open(path, encoding="utf-8") as fh:
            content = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and set(content) == set(NO_VIDEO_NOTE)


def write_loading_files(save_directory: str | os.PathLike) -> list[str]:
    """Write the import shim and the no-video note into the folder (a
    ``video_preprocessor_config.json`` of another origin is left as it is); the paths written."""
    shim = os.path.join(save_directory, f"{SHIM_MODULE}.py")
    atomic_write(shim, SHIM_SOURCE)
    written = [shim]
    video = os.path.join(save_directory, VIDEO_PROCESSOR_NAME)
    if _is_our_video_note(video):
        atomic_write(video, json.dumps(NO_VIDEO_NOTE, indent=2) + "\n")
        written.append(video)
    return written
