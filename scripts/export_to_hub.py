"""Export Raw-Microscopy or Raw-Drone configurations as a Hugging Face dataset repository.

    python scripts/export_to_hub.py --dataset raw_microscopy --output_dir out/raw-microscopy
    python scripts/export_to_hub.py --dataset raw_drone --all --output_dir out/raw-drone
    python scripts/export_to_hub.py --dataset raw_microscopy --configs raw-100 --num_examples 20 \\
        --output_dir out/tiny --push_to_hub user/raw-microscopy-tiny --dry_run

The folder (``README.md`` + ``data/<config>/<split>-NNNNN-of-NNNNN.parquet``) loads with plain
``datasets.load_dataset(<folder or repo id>, <config>)``, no project code needed; see
:mod:`raw_isp.data.export`, which holds the logic. It is written beside ``--output_dir`` and moved
into place at the end; a non-empty ``--output_dir`` is refused unless ``--overwrite``.
``--push_to_hub REPO_ID`` uploads it, adding its configurations to those already in the repository
(their files and card entries are kept; ``--replace`` makes the repository hold exactly this
export); with ``--dry_run`` the files and sizes are only listed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from raw_isp.data.export import (ExportError, dataset_names, default_configs, export, human, list_files,
                                 parse_size, push)
from raw_isp.registry import get_dataset


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _builder_kwarg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--builder_kwarg expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare string


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    names = dataset_names()
    p.add_argument("--dataset", required=True, choices=names, help="which dataset package to export")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--configs", nargs="+", default=None, metavar="NAME",
                       help="configurations to export (default: the all-intensity raw ones: "
                            + "; ".join(f"{d}: {', '.join(default_configs(d))}" for d in names) + ")")
    which.add_argument("--all", action="store_true", help="export every configuration of the dataset")
    src = p.add_argument_group("builder arguments (passed to <dataset>.load_dataset)")
    src.add_argument("--source", default=None, help="synthetic | local | zenodo (builder default: synthetic)")
    src.add_argument("--data_dir", "--data-dir", default=None, help="a local copy of the real data")
    src.add_argument("--zenodo_record", "--zenodo-record", default=None, metavar="ID_OR_DOI",
                     help="another version of the Zenodo record (implies --source zenodo; default 5235536)")
    src.add_argument("--num_examples", "--num-examples", type=int, default=None,
                     help="size of a subset, for quick runs: cells (raw_microscopy num_examples) or tiles "
                          "(raw_drone num_tiles)")
    src.add_argument("--builder_kwarg", "--builder-kwarg", action="append", type=_builder_kwarg, default=[],
                     metavar="KEY=VALUE", help="any other builder keyword argument (VALUE read as JSON if it "
                                               "parses, else as a string); repeatable")
    src.add_argument("--cache_dir", "--cache-dir", default=None, help="datasets cache folder for preparing")
    out = p.add_argument_group("output")
    out.add_argument("--output_dir", "--output-dir", required=True, type=Path,
                     help="the dataset repository folder to write")
    out.add_argument("--max_shard_size", "--max-shard-size", type=_size, default=_size("500MB"),
                     help="largest Parquet shard, measured as the Arrow size of its rows (default 500MB)")
    out.add_argument("--overwrite", action="store_true", help="replace a non-empty --output_dir")
    out.add_argument("--verify", action="store_true",
                     help="after writing, load every config back with datasets.load_dataset and compare")
    hub = p.add_argument_group("Hugging Face Hub")
    hub.add_argument("--push_to_hub", "--push-to-hub", default=None, metavar="REPO_ID",
                     help="upload the folder to this dataset repository")
    hub.add_argument("--dry_run", "--dry-run", action="store_true",
                     help="list what would be uploaded (files and sizes); no network")
    hub.add_argument("--replace", action="store_true",
                     help="make the repository hold exactly this export: delete the remote files of configurations "
                          "it does not hold and use its card as is (default: add to the configurations already there)")
    hub.add_argument("--private", action="store_true", help="create the repository as private")
    hub.add_argument("--revision", default=None, help="branch to upload to")
    hub.add_argument("--token", default=None, help="Hub token (default: the cached login / HF_TOKEN)")
    hub.add_argument("--commit_message", "--commit-message", default=None)
    return p


def builder_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The package's ``load_dataset`` keyword arguments of a command line."""
    kwargs: dict[str, Any] = {}
    for name in ("source", "data_dir"):
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    if args.data_dir is not None and args.source is None:
        kwargs["source"] = "local"  # a local copy is what --data_dir means
    if args.zenodo_record is not None:
        kwargs.setdefault("source", "zenodo")
        kwargs["record"] = args.zenodo_record
    if args.num_examples is not None:
        kwargs[get_dataset(args.dataset).size_kwarg] = args.num_examples  # the size keyword, from the registry
    for key, value in args.builder_kwarg:
        if key in kwargs:
            raise SystemExit(f"error: --builder_kwarg {key}=... repeats a builder argument already given")
        kwargs[key] = value
    return kwargs


def _listing(files: list[tuple[str, int]]) -> None:
    for rel, size in files:
        print(f"  {size:>14,d}  {rel}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(message)s", level=logging.INFO, stream=sys.stdout)
    try:
        records = export(args.dataset, args.output_dir, args.configs, args.all, builder_kwargs_from_args(args),
                         args.cache_dir, args.max_shard_size, args.overwrite, args.verify)
    except ExportError as err:
        raise SystemExit(f"error: {err}") from None
    files = list_files(args.output_dir)
    total = sum(size for _, size in files)
    print(f"wrote {len(records)} configuration(s), {len(files)} files, {human(total)} to {args.output_dir}")
    if args.push_to_hub and args.dry_run:
        print(f"dry run: would create (if needed) the dataset repository {args.push_to_hub!r}"
              f"{' (private)' if args.private else ''} and upload {len(files)} files, {human(total)}"
              f"{f' to branch {args.revision!r}' if args.revision else ''}; "
              + ("remote files under data/ that are not listed would be deleted (--replace):" if args.replace else
                 "remote files of the exported configurations that are not listed would be deleted, other "
                 "configurations and their card entries kept (--replace would delete them):"))
        _listing(files)
    elif args.push_to_hub:
        push(args.output_dir, args.push_to_hub, private=args.private, revision=args.revision, token=args.token,
             commit_message=args.commit_message, replace=args.replace)
        print(f"uploaded {len(files)} files ({human(total)}) to https://huggingface.co/datasets/{args.push_to_hub}")
    elif args.dry_run:
        print("dry run: nothing to upload without --push_to_hub; files written:")
        _listing(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
