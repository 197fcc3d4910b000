#!/usr/bin/env python
"""Raw-to-logit explorer: one raw frame through the 12 ISP variants, 7 light levels and a trained model.

    pip install -e ".[demo]"
    python scripts/explorer.py                                   # synthetic Raw-Microscopy / Raw-Drone, no model
    python scripts/explorer.py --model outputs/classification    # with a folder written by train_classification.py
    python scripts/explorer.py --dataset raw_drone --data_dir /data/raw-drone --model outputs/segmentation

A Gradio app (http://127.0.0.1:7860 by default) that shows a raw Bayer frame (a dataset example or
an uploaded 16-bit TIFF / DNG) as its false-colour CFA mosaic, developed by the 12 ISP variants of
the Raw2Logit study side by side, at each of the 7 intensity ratios (the photons thinned with
``SensorModel.scale_intensity``), and through a :class:`raw_isp.ParametrizedISP` whose white
balance, gamma, sharpening and blur are sliders. With a trained model folder it shows what the
model predicts on every view and a table of how that changes across variants and intensities.
The app is :mod:`raw_isp.explorer`; this script parses the command line and serves it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from raw_isp.explorer import DATASET_NAMES, ExplorerError, serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None,
                   help="a folder written by scripts/train_classification.py or train_segmentation.py (optional)")
    p.add_argument("--model_root", default=None,
                   help="the folder whose model folders the page's model textbox may load (default: the folder "
                        "holding --model, else the current folder); other paths are refused")
    p.add_argument("--dataset", choices=list(DATASET_NAMES), default=None,
                   help="dataset shown first (default: the model's, else raw_microscopy)")
    p.add_argument("--data_dir", default=None,
                   help="a local copy of the real --dataset (folder or .zip); default: the synthetic simulator")
    p.add_argument("--cache_dir", default=None, help="datasets cache folder (default: the Hugging Face cache)")
    p.add_argument("--num_examples", type=int, default=60, help="synthetic Raw-Microscopy cells (default 60)")
    p.add_argument("--num_tiles", type=int, default=24, help="synthetic Raw-Drone tiles (default 24)")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to serve on (default 127.0.0.1, or $GRADIO_SERVER_NAME; 0.0.0.0 serves other "
                        "machines, as a Space does)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                   help="port (default 7860, or $GRADIO_SERVER_PORT)")
    p.add_argument("--device", default="cpu", help="torch device for the ISP and the model (default cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the fastest for the small per-interaction batches on "
                        "a shared 2-core machine; see benchmarks/bench_explorer.py)")
    p.add_argument("--no_warmup", action="store_true", help="skip rendering the first example before serving")
    args = p.parse_args(argv)
    if args.data_dir is not None and not Path(args.data_dir).exists():
        p.error(f"--data_dir {args.data_dir}: no such file or folder")
    if args.model is not None and not Path(args.model).is_dir():
        p.error(f"--model {args.model}: no such folder")
    if args.model_root is not None and not Path(args.model_root).is_dir():
        p.error(f"--model_root {args.model_root}: no such folder")
    for name in ("num_examples", "num_tiles", "threads"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    try:
        serve(model=args.model, dataset=args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir,
              num_examples=args.num_examples, num_tiles=args.num_tiles, host=args.host, port=args.port,
              device=args.device, warmup=not args.no_warmup, model_root=args.model_root)
    except ExplorerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
