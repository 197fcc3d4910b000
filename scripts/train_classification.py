#!/usr/bin/env python
"""Fine-tune a ViT classifier on raw images with the ISP as the model's first module.

Run with no arguments to train the small default (ViT-Tiny width and depth, patch 32, random
weights, offline) on synthetic Raw-Microscopy; ``accelerate launch`` runs it on several processes
or GPUs. All options: ``python scripts/train_classification.py --help``
(:class:`raw_isp.training.RawTrainingArguments`). Examples::

    accelerate launch scripts/train_classification.py
    accelerate launch scripts/train_classification.py --data_dir /data/raw-microscopy --isp parametrized
    accelerate launch scripts/train_classification.py --dataset raw_drone --isp static:ma_s_me
    accelerate launch --mixed_precision bf16 scripts/train_classification.py \\
        --model_name_or_path google/vit-base-patch16-224-in21k --per_device_train_batch_size 128
"""

import sys

from raw_isp.training.cli import main

if __name__ == "__main__":
    sys.exit(main("classification"))
