"""Report folders of the drift tools: which folder a report may go to, and its CSV tables.

A drift tool replaces its own earlier report in ``--output_dir``, and nothing else: a folder that
holds anything the tool does not write is refused before any work (:func:`check_report_dir`).
A report staged in ``<output_dir>.partial`` (drift synthesis) replaces an earlier staging folder
only when it carries raw_isp's marker (:mod:`raw_isp.training.folders`); one that does not is
the user's and refused (:func:`check_staging_dir`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..atomic import atomic_write, atomic_write_json
from ..training.arguments import TRAINING_ARGS_NAME, OptionError, number_list
from ..training.folders import PROJECT_FILES, describe, is_owned, user_entries

__all__ = ["check_report_dir", "check_staging_dir", "staging_dir", "write_csv", "write_json", "plain_json"]


def check_report_dir(path: str | os.PathLike, own: Iterable[str], option: str = "--output_dir") -> None:
    """Raise :class:`~raw_isp.training.arguments.OptionError` if ``path`` is a file, or a folder
    holding entries whose names are not in ``own`` (what the tool itself writes there)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"{option} {folder}: is a file, not a folder")
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in {*own, *PROJECT_FILES})
        if foreign:
            shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
            raise OptionError(f"{option} {folder}: holds files that are not this tool's report ({shown}); "
                              "choose an empty folder or the folder of an earlier report")


def staging_dir(path: str | os.PathLike) -> Path:
    """Where a report for ``path`` is written before it is renamed into place: ``<path>.partial``."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def check_staging_dir(path: str | os.PathLike, option: str = "--output_dir") -> None:
    """Raise :class:`~raw_isp.training.arguments.OptionError` if ``<path>.partial`` exists and is
    not raw_isp's own (no marker): it is someone else's folder, and the report would replace it."""
    staging = staging_dir(path)
    if (staging.exists() or staging.is_symlink()) and not is_owned(staging):
        held = describe(user_entries(staging)) if staging.is_dir() and not staging.is_symlink() else "not a folder"
        raise OptionError(f"{option} {path}: the report is staged in {staging}, which already exists and was not "
                          f"written by raw_isp (no marker; it holds {held or 'nothing'}); it is not deleted: move it "
                          "away or choose another folder")


def write_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    """``rows`` as a CSV table with the columns ``fields``; None becomes an empty cell, an
    infinite number ``inf`` / ``-inf``."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(fields))
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    atomic_write(path, text.getvalue())


def plain_json(value: Any) -> Any:
    """``value`` with only strict JSON in it: numpy scalars and arrays as numbers and lists, NaN
    as None, infinities as the strings ``"inf"`` / ``"-inf"`` (an interval without an upper
    bound), tuples as lists."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return plain_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json(path: str | os.PathLike, value: Any) -> None:
    """``value`` as strict JSON (:func:`plain_json`), one key per line at the top level."""
    atomic_write_json(path, plain_json(value), indent=1, allow_nan=False)


def add_seed_options(parser: Any, seeds_help: str) -> None:
    """The drift scripts' ``--seeds`` (comma-separated training seeds), ``--n_boot`` and
    ``--bootstrap_seed`` options, on an ``argparse`` parser; :func:`check_seed_options` reads them."""
    parser.add_argument("--seeds", default=None, help=seeds_help)
    parser.add_argument("--n_boot", type=int, default=1000,
                        help="bootstrap resamples of the test images for the 95%% intervals (0: none)")
    parser.add_argument("--bootstrap_seed", type=int, default=0, help="seed of the bootstrap resamples")


def check_seed_options(args: Any) -> None:
    """Parse ``args.seeds`` into a list of ints (None stays None) and check ``args.n_boot``;
    :class:`OptionError` naming the option otherwise."""
    if args.seeds is not None:
        args.seeds = number_list(args.seeds, "seeds", int)
    if args.n_boot < 0:
        raise OptionError(f"--n_boot must be 0 (no intervals) or positive, got {args.n_boot}")


def check_model_folder(folder: str | os.PathLike, option: str = "--model") -> None:
    """:class:`OptionError` unless ``folder`` is a training output folder (its training settings
    and its ISP's record)."""
    from ..models.modeling import ISP_CONFIG_NAME

    names = (TRAINING_ARGS_NAME, ISP_CONFIG_NAME)
    if not all((Path(folder) / name).is_file() for name in names):
        raise OptionError(f"{option} {folder}: not a training output folder (no {' / '.join(names)})")
