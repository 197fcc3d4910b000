"""Hugging Face Space entry point of the Raw-to-logit explorer.

The Space holds this file beside copies of the project's packages and the explorer script:

    app.py  requirements.txt  README.md      (this folder: docs/space/)
    raw_isp/  raw_microscopy/  raw_drone/    (the project's packages)
    scripts/explorer.py
    model/                                   (optional: a folder written by the training scripts)

Spaces run ``python app.py`` and route the public URL to port 7860.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "scripts")]

from explorer import main  # noqa: E402

argv = ["--host", "0.0.0.0", "--port", os.environ.get("GRADIO_SERVER_PORT", "7860")]
if (HERE / "model").is_dir():
    argv += ["--model", str(HERE / "model")]
sys.exit(main(argv))
