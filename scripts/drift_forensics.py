#!/usr/bin/env python
"""Drift forensics: search the ISP's parameters for the settings a trained model is most sensitive to.

For a model folder written by ``train_classification.py`` / ``train_segmentation.py`` (static
or parametrized ISP), the model's ISP becomes a :class:`raw_isp.ParametrizedISP` (the reference)
and, per parameter group and penalty weight lambda, Adam moves that group to raise the task loss
while ``lambda * distance(adversarial view, reference view)`` keeps the view close
(:mod:`raw_isp.drift.forensics`; distance ``1 - SSIM`` or mean squared error on RGB views in [0, 1]).
The iterate with the smallest ``metric + lambda * distance`` is reported, so with lambda = 0 the
attained metric is at most the clean one, and for lambda > 0 the distance is at most
``clean metric / lambda``. Examples::

    python scripts/drift_forensics.py --model outputs/classification
    python scripts/drift_forensics.py --model outputs/segmentation --groups all,gamma,white_balance \\
        --lambdas 0,1,100 --distance l2 --steps 5

Writes into ``--output_dir`` (:func:`raw_isp.drift.forensics_report.run_forensics`):
``forensics.csv`` (one row per group and lambda), ``forensics.json`` (settings, rows and every
step), ``forensics.md`` (summary), ``forensics.png`` (attained metric against lambda per group),
``worst_case.png`` (reference view, adversarial view, amplified difference) and
``adversarial/<group>_lambda<lambda>/`` (a ``RawISPImageProcessor`` that replays that adversarial
ISP: ``AutoImageProcessor.from_pretrained(folder)``, plus ``adversarial.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from raw_isp.drift.forensics import DISTANCES, parse_groups
from raw_isp.drift.forensics_report import reference_from_info, run_forensics
from raw_isp.isp.parametrized import PARAMETER_GROUPS
from raw_isp.models.modeling import ISP_CONFIG_NAME
from raw_isp.training.arguments import OptionError, RawTrainingArguments, number_list

DEFAULT_LAMBDAS = "0,0.1,1,10,100"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="a training output folder (static or parametrized ISP)")
    p.add_argument("--split", choices=("train", "validation", "test"), default="test", help="evaluation split")
    p.add_argument("--groups", default=None,
                   help="comma-separated parameter groups: all, black_level, white_balance, colour_matrix, "
                   "sharpen_kernel (or sharpening), blur_kernel (or blur; Gaussian denoising only), gamma "
                   "(None: all, then each group the ISP has)")
    p.add_argument("--lambdas", default=DEFAULT_LAMBDAS, help="comma-separated penalty weights (>= 0)")
    p.add_argument("--distance", choices=DISTANCES, default="ssim",
                   help="ssim: 1 - SSIM; l2: mean squared error; on RGB views in [0, 1]")
    p.add_argument("--steps", type=int, default=5, help="Adam steps per search (each one pass over the data)")
    p.add_argument("--lr", type=float, default=0.05,
                   help="Adam step size relative to each parameter's scale (RMS of its reference values, >= 0.05)")
    p.add_argument("--max_eval_samples", type=int, default=32,
                   help="evaluate on the first N images of the split (0: all of it)")
    p.add_argument("--batch_size", type=int, default=None,
                   help="images per batch (None: the training run's per_device_eval_batch_size)")
    p.add_argument("--data_dir", default=None, help="the real data, if it moved since training (None: as trained)")
    p.add_argument("--cache_dir", default=None, help="datasets cache folder (None: as trained)")
    p.add_argument("--output_dir", default="outputs/drift_forensics")
    return p


def parse_lambdas(text: str) -> list[float]:
    """``"0,0.1,1"`` -> ``[0.0, 0.1, 1.0]`` (repeats dropped); OptionError naming a bad value."""
    return number_list(text, "lambdas", float, lambda v: math.isfinite(v) and v >= 0, "must be a finite number >= 0")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check everything that can be checked before the model or data are loaded: the
    folder's ISP and training settings (``args.info``, ``args.settings``), groups, lambdas."""
    parser = build_parser()
    args = parser.parse_args(argv)
    folder = Path(args.model)
    if not folder.is_dir():
        parser.error(f"--model {folder}: no such folder")
    if not (folder / ISP_CONFIG_NAME).is_file():
        parser.error(f"--model {folder}: no {ISP_CONFIG_NAME}; not a folder written by the training scripts")
    if args.data_dir is not None and not Path(args.data_dir).exists():
        parser.error(f"--data_dir {args.data_dir}: no such file or folder")
    overrides = {"data_dir": args.data_dir, "source": "local"} if args.data_dir is not None else {}
    if args.cache_dir is not None:
        overrides["cache_dir"] = args.cache_dir
    try:
        args.settings = RawTrainingArguments.from_output_dir(folder, **overrides)
        args.info = json.loads((folder / ISP_CONFIG_NAME).read_text())
        probe = reference_from_info(args.info)
    except OptionError as err:
        parser.error(f"--model {folder}: {err}")
    except (ValueError, KeyError, TypeError) as err:
        parser.error(f"--model {folder}: {err}; drift forensics needs a model trained with a static or "
                     f"parametrized ISP")
    try:
        args.lambda_values = parse_lambdas(args.lambdas)
    except ValueError as err:
        parser.error(str(err))
    try:
        wanted = args.groups or ["all", *(g for g in PARAMETER_GROUPS if getattr(probe, g) is not None)]
        args.group_names = parse_groups(wanted, probe)
    except ValueError as err:
        parser.error(f"--groups: {err}")
    for name in ("steps", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")
    if args.max_eval_samples < 0:
        parser.error(f"--max_eval_samples must be >= 0, got {args.max_eval_samples}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run_forensics(args.model, args.output_dir, args.settings, groups=args.group_names, lambdas=args.lambda_values,
                      distance=args.distance, steps=args.steps, lr=args.lr, split=args.split,
                      max_samples=args.max_eval_samples, batch_size=args.batch_size)
    except OptionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
