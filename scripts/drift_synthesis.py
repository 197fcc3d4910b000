#!/usr/bin/env python
"""Drift synthesis: test a trained model on the same raw test data developed by every static ISP
variant at every light intensity, and set that against augmentation testing with common
corruptions (Oala et al., TMLR 2023, section "drift synthesis"; :mod:`raw_isp.drift.synthesis`).

Input: a folder written by ``train_classification.py`` or ``train_segmentation.py``. The test data
is the model's own (dataset, source, fold, sizes from its ``training_args.json``), loaded at every
intensity; corruptions (:mod:`raw_isp.isp.corruptions`) are applied to the model's own view at
its training intensity.

    python scripts/drift_synthesis.py --model outputs/classification
    python scripts/drift_synthesis.py --model outputs/classification --train_variants bi_s_ga,ma_u_me,me_s_me --seeds 42,1
    python scripts/drift_synthesis.py --model outputs/plain --compare outputs/light outputs/isp_aug outputs/corrupt \
        --labels none,light,isp,corruptions --seeds 42,1,2

``--seeds``: each model folder is evaluated as it is and stands for its own training seed; every
other seed listed trains one more model with that folder's settings (and the ``--train_variants``
models are trained once per seed). ``--n_boot``: bootstrap resamples of the test images (one set
for the whole report, so all differences are paired; 0: no intervals). ``--compare``: models
trained differently on the same data, reported side by side on the same test images and views.

Writes into ``--output_dir`` (default ``<model>/drift_synthesis``): ``drift_synthesis.csv`` (long
format, one row per model, seed, cell and metric, with that model's 95 % interval),
``drift_synthesis_cells.csv`` (per cell over seeds: mean, sd, min-max, 95 % interval, and the
difference from the training condition with its paired interval and the seed check),
``drift_synthesis.json``, ``summary.md``, ``variant_intensity.png``, ``corruptions.png`` (cells
beyond the noise hatched and starred), with ``--train_variants`` ``train_test.png``, and with
``--compare`` ``compare_models.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from raw_isp.drift.reports import add_seed_options, check_model_folder, check_seed_options, check_staging_dir
from raw_isp.drift.synthesis import synthesize
from raw_isp.isp.config import ISP_VARIANTS
from raw_isp.isp.corruptions import CORRUPTIONS
from raw_isp.training.arguments import OptionError, intensity_list, name_list, number_list, option_items


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="outputs/classification", help="a training output folder")
    p.add_argument("--split", default="test", choices=("test", "validation", "train"))
    p.add_argument("--variants", default="all", help="test variants (comma-separated, or 'all')")
    p.add_argument("--intensities", default=None,
                   help="comma-separated ratios (default: every captured intensity of the dataset)")
    p.add_argument("--corruptions", default=",".join(CORRUPTIONS),
                   help="comma-separated corruptions for the augmentation baseline, or 'none'")
    p.add_argument("--severities", default="1,2,3,4,5")
    p.add_argument("--train_variants", default=None,
                   help="train one model per variant (comma-separated, or 'all') with the model's training "
                   "settings and evaluate each on every test variant: the train x test matrix")
    p.add_argument("--compare", nargs="+", default=[], metavar="FOLDER",
                   help="training output folders of models trained differently on the same data, reported beside --model")
    p.add_argument("--labels", default=None,
                   help="comma-separated names of --model and the --compare models (default: 'model' alone, "
                   "else the folder names)")
    add_seed_options(p, "comma-separated training seeds; a folder stands for its own seed, each other seed trains "
                     "one more model with its settings")
    p.add_argument("--per_device_eval_batch_size", type=int, default=64)
    p.add_argument("--max_eval_samples", type=int, default=None, help="use only the first N test images per intensity")
    p.add_argument("--data_dir", default=None, help="override the model's data folder (a local copy of the real data)")
    p.add_argument("--cache_dir", default=None, help="override the model's datasets cache folder")
    p.add_argument("--output_dir", default=None, help="default: <model>/drift_synthesis")
    p.add_argument("--seed", type=int, default=0, help="seed of the random corruptions (training seeds: --seeds)")
    p.add_argument("--mixed_precision", choices=("no", "bf16", "fp16"), default="no",
                   help="run the model under autocast (the ISP and the corruptions stay float32)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check(args)
    except OptionError as err:
        parser.error(str(err))
    for name in ("per_device_eval_batch_size", "max_eval_samples"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be a positive integer, got {value}")
    args.output_dir = args.output_dir or str(Path(args.model) / "drift_synthesis")
    return args


def _check(args: argparse.Namespace) -> None:
    """Parse the list options in place; OptionError naming the option."""
    check_model_folder(args.model)
    if args.data_dir is not None and not Path(args.data_dir).exists():
        raise OptionError(f"--data_dir {args.data_dir}: no such file or folder")
    args.variants = list(name_list(args.variants, "variants", ISP_VARIANTS))
    if args.intensities is not None:
        args.intensities = intensity_list(args.intensities)
    none = args.corruptions.strip().lower() == "none"
    args.corruptions = [] if none else list(name_list(args.corruptions, "corruptions", CORRUPTIONS))
    args.severities = number_list(args.severities, "severities", int, lambda s: 1 <= s <= 5, "must be in 1..5")
    if args.train_variants is not None:
        args.train_variants = list(name_list(args.train_variants, "train_variants", ISP_VARIANTS))
    for folder in args.compare:
        check_model_folder(folder, "--compare")
    if args.labels is not None:
        args.labels = option_items(args.labels, "labels")
        if len(args.labels) != 1 + len(args.compare):
            raise OptionError(f"--labels: give {1 + len(args.compare)} names (--model and each --compare folder), "
                              f"got {len(args.labels)}")
    check_seed_options(args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_staging_dir(args.output_dir)
        report = synthesize(args.model, args.output_dir, split=args.split, variants=args.variants,
                            intensities=args.intensities, corruptions=args.corruptions, severities=args.severities,
                            train_variants=args.train_variants, compare=args.compare, labels=args.labels,
                            seeds=args.seeds, n_boot=args.n_boot, bootstrap_seed=args.bootstrap_seed,
                            batch_size=args.per_device_eval_batch_size,
                            max_eval_samples=args.max_eval_samples, data_dir=args.data_dir, cache_dir=args.cache_dir,
                            seed=args.seed, mixed_precision=args.mixed_precision)
    except OptionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if report["is_main_process"]:
        print(report["text"])
        print(f"wrote {report['output_dir']}/ (drift_synthesis.csv, drift_synthesis_cells.csv, drift_synthesis.json, "
              f"summary.md, {', '.join(report['files'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
