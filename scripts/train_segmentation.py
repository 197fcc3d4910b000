#!/usr/bin/env python
"""Fine-tune a SegFormer on Raw-Drone car segmentation with the ISP as the model's first module.

Run with no arguments to train the default (SegFormer MiT-b0 size, random weights, offline) on
synthetic Raw-Drone tiles; ``accelerate launch`` runs it on several processes or GPUs. All
options: ``python scripts/train_segmentation.py --help``. Examples::

    accelerate launch scripts/train_segmentation.py
    accelerate launch scripts/train_segmentation.py --data_dir /data/raw-drone --isp learned
    accelerate launch scripts/train_segmentation.py --model_name_or_path nvidia/mit-b0 --intensity 0.05
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_training import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("segmentation"))
