"""Export Raw-Microscopy or Raw-Drone configurations as a Hugging Face dataset repository.

    python scripts/export_to_hub.py --dataset raw_microscopy --output_dir out/raw-microscopy
    python scripts/export_to_hub.py --dataset raw_drone --all --output_dir out/raw-drone
    python scripts/export_to_hub.py --dataset raw_microscopy --configs raw-100 --num_examples 20 \\
        --output_dir out/tiny --push_to_hub user/raw-microscopy-tiny --dry_run

The folder it writes is a dataset repository that current ``datasets`` (4.x, 5.x: no loading
scripts) reads with no project code installed::

    README.md                                   dataset card; YAML lists configs and features
    data/<config>/<split>-00000-of-0000N.parquet

``datasets.load_dataset(<folder or repo id>, <config>)`` then returns the same rows, in the same
order, with the same features as ``<dataset>.load_dataset(<config>)``. The features survive twice
over: in each Parquet file's schema metadata (key ``huggingface``, written by ``datasets``) and in
the card's ``dataset_info`` section, so ``Array2D`` dtypes and shapes and ``ClassLabel`` names come
back exactly. The card's ``configs:`` section lists exactly the files written (not a glob, so stale
shards of an earlier export can never be picked up), and its row-count table and source statement
are rewritten from what was exported.

The export is written into a hidden temporary folder beside ``--output_dir`` and renamed into
place at the end, so an interrupted run leaves nothing half-written; a non-empty ``--output_dir``
is refused unless ``--overwrite`` (a ``.git`` folder in it is kept). ``--push_to_hub REPO_ID``
uploads the folder with ``huggingface_hub``; with ``--dry_run`` it only lists the files and sizes
that would be uploaded and makes no network call.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Scripts run from the repository root without installing the package.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

DATASETS = ("raw_microscopy", "raw_drone")

#: Configurations exported when neither --configs nor --all is given: the all-intensity raw
#: configurations. The per-intensity ones are filters of these and the RGB ones are recomputed
#: from them by the project's ISP, so they would only multiply the upload size.
DEFAULT_CONFIGS: dict[str, tuple[str, ...]] = {
    "raw_microscopy": ("raw",),
    "raw_drone": ("segmentation", "classification"),
}

_SOURCE_BLOCK = re.compile(r"(<!-- export:source:start -->\n).*?(<!-- export:source:end -->)", re.S)
_SPLITS_BLOCK = re.compile(r"(<!-- export:splits:start -->\n).*?(<!-- export:splits:end -->)", re.S)


# --------------------------------------------------------------------------- arguments


def parse_size(text: str | int) -> int:
    """Bytes from ``"500MB"``, ``"2GiB"``, ``"1e9"`` or an int; decimal (MB) and binary (MiB) units."""
    if isinstance(text, int):
        size = text
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([KMGT]i?B|B)?\s*", str(text), re.I)
        if not m:
            raise argparse.ArgumentTypeError(f"--max_shard_size: cannot read {text!r} (examples: 500MB, 2GiB, 100000)")
        unit = (m.group(2) or "B").upper()
        scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
                 "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}[unit]
        size = int(float(m.group(1)) * scale)
    if size <= 0:
        raise argparse.ArgumentTypeError(f"--max_shard_size must be positive, got {text!r}")
    return size


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
    p.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset package to export")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--configs", nargs="+", default=None, metavar="NAME",
                       help="configurations to export (default: the all-intensity raw ones: "
                            + "; ".join(f"{d}: {', '.join(c)}" for d, c in DEFAULT_CONFIGS.items()) + ")")
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
    out.add_argument("--max_shard_size", "--max-shard-size", type=parse_size, default=parse_size("500MB"),
                     help="largest Parquet shard, measured as the Arrow size of its rows (default 500MB)")
    out.add_argument("--overwrite", action="store_true", help="replace a non-empty --output_dir")
    out.add_argument("--verify", action="store_true",
                     help="after writing, load every config back with datasets.load_dataset and compare")
    hub = p.add_argument_group("Hugging Face Hub")
    hub.add_argument("--push_to_hub", "--push-to-hub", default=None, metavar="REPO_ID",
                     help="upload the folder to this dataset repository")
    hub.add_argument("--dry_run", "--dry-run", action="store_true",
                     help="list what would be uploaded (files and sizes); no network")
    hub.add_argument("--private", action="store_true", help="create the repository as private")
    hub.add_argument("--revision", default=None, help="branch to upload to")
    hub.add_argument("--token", default=None, help="Hub token (default: the cached login / HF_TOKEN)")
    hub.add_argument("--commit_message", "--commit-message", default=None)
    return p


def builder_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- the dataset packages


def get_dataset(name: str):
    """The registry's entry of a dataset package (``raw_isp.training.registry``)."""
    from raw_isp.training.registry import get_dataset as registry_entry

    return registry_entry(name)


def dataset_module(name: str):
    if name not in DATASETS:
        raise ValueError(f"--dataset must be one of {DATASETS}, got {name!r}")
    return get_dataset(name).module()


def builder_class(module) -> type:
    """The dataset's ``GeneratorBasedBuilder`` subclass (``RawMicroscopy`` or ``RawDrone``), from the registry."""
    return get_dataset(module.__name__).builder_class()


def available_configs(module) -> list[str]:
    """Every configuration name the dataset's builder defines, in its own order."""
    return [cfg.name for cfg in builder_class(module).BUILDER_CONFIGS]


def config_descriptions(module) -> dict[str, str]:
    return {cfg.name: (cfg.description or "") for cfg in builder_class(module).BUILDER_CONFIGS}


def resolve_configs(dataset: str, requested: Sequence[str] | None, everything: bool, available: Sequence[str]
                    ) -> list[str]:
    if everything:
        return list(available)
    names = list(requested) if requested else [c for c in DEFAULT_CONFIGS[dataset] if c in available]
    unknown = [c for c in names if c not in available]
    if unknown:
        raise SystemExit(f"error: --configs: {dataset} has no configuration {', '.join(map(repr, unknown))}; "
                         f"it has: {', '.join(available)}")
    if not names:
        raise SystemExit(f"error: none of the default configurations {DEFAULT_CONFIGS[dataset]} exist in {dataset}; "
                         "name some with --configs")
    return list(dict.fromkeys(names))  # drop repeats, keep order


# --------------------------------------------------------------------------- writing


@dataclass
class SplitExport:
    name: str
    files: list[str]  # paths relative to the repository root, posix
    num_examples: int
    num_bytes: int  # Arrow size of the rows
    file_bytes: int  # Parquet bytes on disk


@dataclass
class ConfigExport:
    name: str
    description: str
    features: Any  # datasets.Features
    splits: list[SplitExport] = field(default_factory=list)

    @property
    def num_examples(self) -> int:
        return sum(s.num_examples for s in self.splits)


def _rows_per_group(num_rows: int, num_bytes: int) -> int:
    """Rows per Parquet row group: about 32 MiB of Arrow data, at most 1000 rows, at least 1."""
    if num_rows == 0:
        return 1
    per_row = max(1, num_bytes // num_rows)
    return max(1, min(1000, (32 << 20) // per_row))


def write_split(ds, root: Path, config: str, split: str, max_shard_bytes: int) -> SplitExport:
    """Write one split as ``data/<config>/<split>-NNNNN-of-NNNNN.parquet`` shards under ``root``.

    Shards are contiguous runs of rows, so reading the files in name order gives the split's row
    order; each holds at most ``max_shard_bytes`` of Arrow data (at least one row). The Parquet
    options are those of ``Dataset.to_parquet`` (snappy, content-defined chunking for the Hub's
    deduplicating storage, the features in the schema metadata).
    """
    import datasets
    from datasets.features.features import require_storage_embed
    from datasets.table import embed_table_storage

    if ds._indices is not None:  # a selection or shuffle: write the rows it shows, in its order
        ds = ds.flatten_indices()
    if require_storage_embed(ds.features):  # e.g. Image columns that point at local files
        ds = ds.with_format("arrow").map(embed_table_storage, batched=True, desc="embedding files")
        ds = ds.with_format(None)
    num_rows = len(ds)
    num_bytes = int(ds.data.nbytes)
    num_shards = max(1, math.ceil(num_bytes / max_shard_bytes))
    num_shards = min(num_shards, max(1, num_rows))
    folder = root / "data" / config
    folder.mkdir(parents=True, exist_ok=True)
    files, file_bytes = [], 0
    group = _rows_per_group(num_rows, num_bytes)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar per shard is noise; the caller prints a line per split
    try:
        for i in range(num_shards):
            shard = ds.shard(num_shards=num_shards, index=i, contiguous=True) if num_shards > 1 else ds
            rel = f"data/{config}/{split}-{i:05d}-of-{num_shards:05d}.parquet"
            shard.to_parquet(str(root / rel), batch_size=group)
            files.append(rel)
            file_bytes += (root / rel).stat().st_size
    finally:
        if bars:
            datasets.enable_progress_bars()
    return SplitExport(split, files, num_rows, num_bytes, file_bytes)


def export_config(module, config: str, root: Path, builder_kwargs: dict[str, Any], cache_dir: str | None,
                  max_shard_bytes: int, description: str = "") -> tuple[ConfigExport, Any]:
    """Prepare ``config`` with the package's ``load_dataset`` and write all its splits.

    Returns the export record and the ``DatasetDict`` that was written (for verification).
    """
    kwargs = dict(builder_kwargs)
    if cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    # output=None: the plain Arrow-backed DatasetDict (the project's uint16 formatting is for
    # reading rows; the export writes the stored Arrow columns as they are).
    dd = module.load_dataset(name=config, split=None, output=None, **kwargs)
    if not hasattr(dd, "items"):
        raise RuntimeError(f"{module.__name__}.load_dataset(name={config!r}, split=None) returned "
                           f"{type(dd).__name__}, expected a DatasetDict")
    record = ConfigExport(config, description, None)
    for split, ds in dd.items():
        if len(ds) == 0:
            # `datasets` cannot load a split without rows ("corresponds to no data"), so an empty
            # split (only possible with tiny synthetic subsets) is left out of the repository.
            print(f"  warning: config {config!r} split {split!r} has no rows; not exported", file=sys.stderr)
            continue
        if record.features is None:
            record.features = ds.features
        elif ds.features != record.features:
            raise RuntimeError(f"config {config!r}: split {split!r} has other features than the first split")
        record.splits.append(write_split(ds, root, config, split, max_shard_bytes))
    return record, dd


# --------------------------------------------------------------------------- the card


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "n>1T" if n >= 10**12 else "1B<n<10B" if n < 10**10 else "10B<n<100B" if n < 10**11 else "100B<n<1T"


def splits_table(configs: Sequence[ConfigExport]) -> str:
    split_names: list[str] = []
    for cfg in configs:
        for s in cfg.splits:
            if s.name not in split_names:
                split_names.append(s.name)
    head = "| configuration | " + " | ".join(split_names) + " | total |"
    rule = "|---|" + "---:|" * (len(split_names) + 1)
    rows = []
    for cfg in configs:
        counts = {s.name: s.num_examples for s in cfg.splits}
        cells = [f"{counts[n]:,}" if n in counts else "-" for n in split_names]
        rows.append(f"| `{cfg.name}` | " + " | ".join(cells) + f" | {cfg.num_examples:,} |")
    described = [f"- `{cfg.name}`: {cfg.description}" for cfg in configs if cfg.description]
    return "\n".join([head, rule, *rows] + ([""] + described if described else []))


def _zenodo_id(builder_kwargs: dict[str, Any]) -> str:
    from raw_isp.data.zenodo import record_id

    return record_id(builder_kwargs.get("record") or 5235536)


def source_statement(dataset: str, builder_kwargs: dict[str, Any], version: str | None) -> str:
    source = builder_kwargs.get("source") or ("local" if builder_kwargs.get("data_dir") else "synthetic")
    shown = {k: ("<local path>" if k == "data_dir" else v) for k, v in sorted(builder_kwargs.items())}
    args = ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "defaults"
    what = {
        "synthetic": "**synthetic** rows generated by this project's simulator, not the real recordings",
        "local": "a local copy of the **real** data (the Zenodo files)",
        "zenodo": f"the **real** data downloaded from Zenodo (DOI 10.5281/zenodo.{_zenodo_id(builder_kwargs)})",
    }.get(source, f"source {source!r}")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    ver = f" {version}" if version else ""
    return (f"*Source of the data:* {what}. Exported on {stamp} by `scripts/export_to_hub.py` with "
            f"`{dataset}` (raw-isp-toolkit{ver}; builder arguments: {args}).")


def _project_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("raw-isp-toolkit")
    except Exception:  # not installed: running from a checkout
        return None


def render_card(template: str, dataset: str, configs: Sequence[ConfigExport], builder_kwargs: dict[str, Any],
                default_config: str | None) -> str:
    """The package's card with its YAML rewritten from the export (configs, features, sizes)."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    card = DatasetCard(template)
    data = card.data
    for key in ("configs", "dataset_info"):  # rebuilt from scratch: never merged with the template's
        data.pop(key, None)
    infos, metadata = {}, {}
    for cfg in configs:
        split_dict = SplitDict()
        for s in cfg.splits:
            split_dict.add(SplitInfo(name=s.name, num_bytes=s.num_bytes, num_examples=s.num_examples))
        infos[cfg.name] = DatasetInfo(features=cfg.features, splits=split_dict,
                                      download_size=sum(s.file_bytes for s in cfg.splits),
                                      dataset_size=sum(s.num_bytes for s in cfg.splits))
        entry: dict[str, Any] = {"data_files": [{"split": s.name, "path": list(s.files)} for s in cfg.splits]}
        if cfg.name == default_config:
            entry["default"] = True
        metadata[cfg.name] = entry
    DatasetInfosDict(infos).to_dataset_card_data(data)
    MetadataConfigs(metadata).to_dataset_card_data(data)
    data["size_categories"] = [size_category(max((c.num_examples for c in configs), default=0))]
    source = builder_kwargs.get("source") or ("local" if builder_kwargs.get("data_dir") else "synthetic")
    tags = [t for t in (data.get("tags") or []) if t != "synthetic"]
    if source == "synthetic":
        tags.append("synthetic")
    data["tags"] = tags
    text = card.content
    text, n_src = _SOURCE_BLOCK.subn(
        lambda m: m.group(1) + source_statement(dataset, builder_kwargs, _project_version()) + "\n" + m.group(2),
        text)
    text, n_tab = _SPLITS_BLOCK.subn(
        lambda m: m.group(1) + "Row counts of the configurations in this repository:\n\n" + splits_table(configs)
        + "\n" + m.group(2), text)
    if n_src != 1 or n_tab != 1:
        raise RuntimeError(f"the {dataset} card template must hold one export:source and one export:splits block "
                           f"(found {n_src} and {n_tab})")
    return text


def card_template(module) -> str:
    path = Path(module.__file__).resolve().parent / "README.md"
    if not path.is_file():
        raise FileNotFoundError(f"dataset card template not found: {path}")
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the output folder


def check_output_dir(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise SystemExit(f"error: --output_dir {path} exists and is not a folder")
    if path.is_dir() and any(p.name != ".git" for p in path.iterdir()) and not overwrite:
        raise SystemExit(f"error: --output_dir {path} is not empty; pass --overwrite to replace its contents")


def move_into_place(staged: Path, target: Path) -> None:
    """Replace ``target`` by ``staged`` (same file system), keeping a ``.git`` folder of ``target``.

    The old ``target`` is first renamed aside, so if anything fails it is put back as it was.
    """
    if not target.exists():
        staged.rename(target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old = aside / target.name
    target.rename(old)
    try:
        if (old / ".git").exists():
            (old / ".git").rename(staged / ".git")
        staged.rename(target)
    except BaseException:
        if (staged / ".git").exists():
            (staged / ".git").rename(old / ".git")
        old.rename(target)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def list_files(root: Path) -> list[tuple[str, int]]:
    """(path relative to root, size in bytes) of every file that an upload would send."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(".git/") and rel != ".git":
            out.append((rel, p.stat().st_size))
    return out


def human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


# --------------------------------------------------------------------------- verification


def verify_folder(folder: Path, originals: dict[str, Any], cache_dir: str | None = None) -> None:
    """Load each config of ``folder`` with plain ``datasets.load_dataset`` and compare to ``originals``."""
    import datasets

    for config, dd in originals.items():
        loaded = datasets.load_dataset(str(folder), config, cache_dir=cache_dir)
        expected = {split for split, ds in dd.items() if len(ds)}
        if set(loaded) != expected:
            raise RuntimeError(f"verify {config!r}: splits {sorted(loaded)} != {sorted(expected)}")
        for split, ds in dd.items():
            if len(ds) == 0:
                continue  # not exported
            got = loaded[split]
            if got.features != ds.features:
                raise RuntimeError(f"verify {config!r}/{split}: features differ:\n{got.features}\n!=\n{ds.features}")
            # Table.equals compares contents whatever the chunking, without copying the tables.
            expected = ds.flatten_indices() if ds._indices is not None else ds
            if not got.data.table.equals(expected.data.table):
                raise RuntimeError(f"verify {config!r}/{split}: rows differ after the round trip")


# --------------------------------------------------------------------------- upload


def push(folder: Path, repo_id: str, *, private: bool, revision: str | None, token: str | None,
         commit_message: str | None, dry_run: bool) -> list[tuple[str, int]]:
    files = list_files(folder)
    total = sum(size for _, size in files)
    if dry_run:
        print(f"dry run: would create (if needed) the dataset repository {repo_id!r}"
              f"{' (private)' if private else ''} and upload {len(files)} files, {human(total)}"
              f"{f' to branch {revision!r}' if revision else ''}; remote files under data/ that are not listed "
              "would be deleted:")
        for rel, size in files:
            print(f"  {size:>14,d}  {rel}")
        return files
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset", revision=revision,
                      commit_message=commit_message or f"Export {len(files)} files with scripts/export_to_hub.py",
                      ignore_patterns=[".git/*", ".git"], delete_patterns=["data/*"])
    print(f"uploaded {len(files)} files ({human(total)}) to https://huggingface.co/datasets/{repo_id}")
    return files


# --------------------------------------------------------------------------- main


def export(dataset: str, output_dir: Path, configs: Sequence[str] | None = None, everything: bool = False,
           builder_kwargs: dict[str, Any] | None = None, cache_dir: str | None = None,
           max_shard_size: int | str = "500MB", overwrite: bool = False, verify: bool = False
           ) -> list[ConfigExport]:
    """Write ``output_dir`` as a dataset repository; returns what was written per config."""
    builder_kwargs = dict(builder_kwargs or {})
    max_shard_bytes = parse_size(max_shard_size)
    output_dir = Path(output_dir).expanduser().absolute()
    check_output_dir(output_dir, overwrite)
    module = dataset_module(dataset)
    names = resolve_configs(dataset, configs, everything, available_configs(module))
    descriptions = config_descriptions(module)
    template = card_template(module)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.export-", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staged, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        records, originals = [], {}
        for name in names:
            print(f"[{dataset}] preparing and writing {name!r} ...", flush=True)
            record, dd = export_config(module, name, staged, builder_kwargs, cache_dir, max_shard_bytes,
                                       descriptions.get(name, ""))
            records.append(record)
            originals[name] = dd
            for s in record.splits:
                print(f"  {s.name}: {s.num_examples:,} rows in {len(s.files)} file(s), {human(s.file_bytes)}")
        default = next((c for c in DEFAULT_CONFIGS[dataset] if c in names), names[0])
        (staged / "README.md").write_text(render_card(template, dataset, records, builder_kwargs, default),
                                          encoding="utf-8")
        if verify:
            print("verifying the round trip with datasets.load_dataset ...", flush=True)
            verify_folder(staged, originals, cache_dir=cache_dir)
            print("  same rows and features in every config and split")
        check_output_dir(output_dir, overwrite)  # it may have been filled while we worked
        move_into_place(staged, output_dir)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return records


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    records = export(args.dataset, args.output_dir, args.configs, args.all, builder_kwargs_from_args(args),
                     args.cache_dir, args.max_shard_size, args.overwrite, args.verify)
    files = list_files(args.output_dir)
    print(f"wrote {len(records)} configuration(s), {len(files)} files, "
          f"{human(sum(s for _, s in files))} to {args.output_dir}")
    if args.push_to_hub:
        push(args.output_dir, args.push_to_hub, private=args.private, revision=args.revision, token=args.token,
             commit_message=args.commit_message, dry_run=args.dry_run)
    elif args.dry_run:
        print("dry run: nothing to upload without --push_to_hub; files written:")
        for rel, size in files:
            print(f"  {size:>14,d}  {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
