#!/usr/bin/env python
"""Fine-tune a SegFormer on Raw-Drone car segmentation with the ISP as the model's first module.

Run with no arguments to train the default (SegFormer MiT-b0 size, random weights, offline) on
synthetic Raw-Drone tiles; ``accelerate launch`` runs it on several processes or GPUs. Any
transformers semantic-segmentation model works (``--model_name_or_path`` a Hub id or a local
folder). All options: ``python scripts/train_segmentation.py --help``
(:class:`raw_isp.training.RawTrainingArguments`). Examples::

    accelerate launch scripts/train_segmentation.py
    accelerate launch scripts/train_segmentation.py --data_dir /data/raw-drone --isp learned
    accelerate launch scripts/train_segmentation.py --model_name_or_path nvidia/mit-b0 --intensity 0.05
"""

import sys

from raw_isp.training.cli import main

if __name__ == "__main__":
    sys.exit(main("segmentation"))
