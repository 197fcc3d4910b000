#!/usr/bin/env python
"""Drift optimisation: train with a static, the parametrized and the learned ISP at low light and
compare their validation curves (:mod:`raw_isp.drift.optimization`).

One model is trained per (ISP, intensity, seed) with the training scripts' own loop, evaluated on
the validation split after every epoch; each model is saved as the training scripts save it, under
``<output_dir>/runs/<isp>_i<intensity>/`` (``..._s<seed>/`` with ``--seeds``). Every option of the
training scripts passes through (``--model_name_or_path``, ``--data_dir``, ``--num_train_epochs``,
``--overwrite_output_dir``, ...), except ``--isp`` and ``--intensity`` (and ``--seed`` with
``--seeds``), which this script sets per run. A run already finished with the same settings in
the same ``--output_dir`` is reused rather than trained again (so ``--seeds 0,1 --no_report`` and
``--seeds 2 --no_report`` in two processes, then ``--seeds 0,1,2``, give one report of three
seeds). Examples::

    python scripts/drift_optimization.py
    python scripts/drift_optimization.py --intensities 0.01,0.05,1 --isps static:ma_s_me,parametrized:ma_s_me,learned
    python scripts/drift_optimization.py --seeds 0,1,2 --n_boot 1000
    python scripts/drift_optimization.py --task segmentation --num_train_epochs 2
    python scripts/drift_optimization.py --data_dir /data/raw-microscopy --full

The default per-run budget is small (``raw_isp.drift.optimization.QUICK_DEFAULTS``;
classification: the first 192 training images, 4 epochs of batch 16 = 48 steps; validation and
test splits whole) so that the default command finishes in a few minutes on 2 CPU cores: a smoke
test, too short for the static baseline to converge. ``--full`` trains with the training
scripts' own defaults instead (the budget to judge the ISPs at), and any training option given on the command
line overrides either. Writes ``drift_optimization.csv`` (isp, intensity, seed, step, metric,
value), ``drift_optimization.json``, ``drift_optimization.md`` (final and best validation metric
per run; per ISP and intensity the mean, sd and min-max over seeds, the test metric's 95 %
bootstrap interval over the test images, and the difference from the first ISP with whether it
exceeds the test-image noise and the seed spread) and ``drift_optimization.png`` (one panel per
intensity, one curve per ISP: the mean over seeds with a min-max band).
"""

from __future__ import annotations

import argparse
import sys
import time

from raw_isp.drift.optimization import QUICK_DEFAULTS, plan_runs, train_runs, write_report
from raw_isp.drift.reports import add_seed_options, check_seed_options
from raw_isp.models.modeling import parse_isp
from raw_isp.registry import TASKS
from raw_isp.training.arguments import OptionError, intensity_list, option_items, parse_training_args

DEFAULT_ISPS = "static:bi_s_ga,parametrized,learned"
DEFAULT_INTENSITIES = "0.01,0.05"
#: Training options this script sets per run.
RESERVED = ("--isp", "--intensity")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], allow_abbrev=False,
        epilog="Any other option is a training option (python scripts/train_classification.py --help).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--task", choices=tuple(TASKS), default="classification")
    p.add_argument("--intensities", default=DEFAULT_INTENSITIES,
                   help="comma-separated light intensity ratios to train at (captured ratios only)")
    p.add_argument("--isps", default=DEFAULT_ISPS,
                   help="comma-separated ISPs: static:<variant>, parametrized[:<variant>], learned, ...")
    p.add_argument("--output_dir", default="outputs/drift_optimization")
    p.add_argument("--no_report", action="store_true",
                   help="train (or reuse) and save the runs but write no report: for seeds split over processes "
                        "into one --output_dir, reported together by a last call with every seed")
    p.add_argument("--full", action="store_true",
                   help="train with the training scripts' defaults instead of the quick per-run budget")
    add_seed_options(p, "comma-separated training seeds: one model per ISP, intensity and seed (default: --seed alone)")
    return p


def parse_args(argv: list[str] | None = None):
    """This script's options, the base training settings and every run, all checked before any work."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    for token in rest:
        name = "--" + token.split("=", 1)[0].lstrip("-").replace("-", "_")
        if name in RESERVED:
            parser.error(f"{token.split('=', 1)[0]}: this script sets --isp and --intensity per run; "
                         "use --isps and --intensities")
        if name == "--seed" and args.seeds is not None:
            parser.error("--seed: give the training seeds with --seeds alone")
    try:
        check_seed_options(args)
        isps = list(dict.fromkeys(str(parse_isp(s)) for s in option_items(args.isps, "isps")))
        intensities = intensity_list(args.intensities)
    except ValueError as err:  # OptionError, or parse_isp's ValueError naming the spec
        parser.error(str(err) if isinstance(err, OptionError) else f"--isps: {err}")
    base = parse_training_args(args.task, rest, **({} if args.full else QUICK_DEFAULTS[args.task]))
    try:
        runs = plan_runs(base, isps, intensities, args.output_dir, args.seeds)
    except OptionError as err:
        parser.error(str(err))
    return args, base, runs


def main(argv: list[str] | None = None) -> int:
    args, base, runs = parse_args(argv)
    start = time.perf_counter()
    try:
        records, is_main = train_runs(runs)
    except OptionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not is_main:
        return 0
    if args.no_report:
        print(f"trained or reused {len(records)} run(s) in {args.output_dir}/runs/ (no report: --no_report)")
        return 0
    summary = write_report(args.output_dir, base, records, time.perf_counter() - start, args.n_boot,
                           args.bootstrap_seed)
    mean = " (mean over seeds)" if len(summary["seeds"]) > 1 else ""
    for intensity in summary["intensities"]:
        b = summary["best_per_intensity"][repr(intensity)]
        print(f"intensity {intensity:g}: best final validation {summary['metric']} {b['value']:.4f} with {b['isp']}{mean}")
    print(f"wrote {args.output_dir}/ (drift_optimization.csv, .json, .md, .png; models in runs/) "
          f"in {summary['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
