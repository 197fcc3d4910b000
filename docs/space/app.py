"""Hugging Face Space entry point of the Raw-to-logit explorer.

The Space holds this file beside copies of the project's packages (or installs them):

    app.py  requirements.txt  README.md      (this folder: docs/space/)
    raw_isp/  raw_microscopy/  raw_drone/    (the project's packages)
    model/                                   (optional: a folder written by the training scripts)

Spaces run ``python app.py`` (with this folder as the working directory, so the packages beside
it import) and route the public URL to port 7860.
"""

import os
from pathlib import Path

from raw_isp.explorer import serve

HERE = Path(__file__).resolve().parent
model = HERE / "model"
serve(model=str(model) if model.is_dir() else None, host="0.0.0.0", port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
