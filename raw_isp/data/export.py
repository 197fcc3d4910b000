"""Raw-Microscopy or Raw-Drone configurations as a Hugging Face dataset repository folder.

:func:`export` writes a folder that current ``datasets`` (4.x, 5.x: no loading scripts) reads
with no project code installed::

    README.md                                   dataset card; YAML lists configs and features
    data/<config>/<split>-00000-of-0000N.parquet

``datasets.load_dataset(<folder or repo id>, <config>)`` then returns the same rows, in the same
order, with the same features as ``<dataset>.load_dataset(<config>)``. The features survive twice
over: in each Parquet file's schema metadata (key ``huggingface``, written by ``datasets``) and in
the card's ``dataset_info`` section, so ``Array2D`` dtypes and shapes and ``ClassLabel`` names come
back exactly. The card (:func:`render_card`, from the package's template card) lists exactly the
files written in ``configs:`` (not a glob, so stale shards of an earlier export can never be
picked up), and its row-count table and source statement are rewritten from what was exported.

The export is written into a hidden temporary folder beside the target and renamed into place
at the end, so an interrupted run leaves nothing half-written; a non-empty target is refused
unless ``overwrite`` (a ``.git`` folder in it is kept). :func:`push` uploads a folder with
``huggingface_hub``. Which datasets exist, their builder class, the keyword that sets a
subset's size and their default configurations come from the registry
(:mod:`raw_isp.registry`, read on use). ``scripts/export_to_hub.py`` is the command line.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ExportError",
    "SplitExport",
    "ConfigExport",
    "parse_size",
    "dataset_names",
    "default_configs",
    "available_configs",
    "merge_cards",
    "resolve_configs",
    "write_split",
    "export_config",
    "size_category",
    "splits_table",
    "source_statement",
    "card_template",
    "render_card",
    "check_output_dir",
    "move_into_place",
    "list_files",
    "human",
    "verify_folder",
    "push",
    "export",
]

logger = logging.getLogger(__name__)

_SOURCE_BLOCK = re.compile(r"(<!-- export:source:start -->\n).*?(<!-- export:source:end -->)", re.S)
_SPLITS_BLOCK = re.compile(r"(<!-- export:splits:start -->\n).*?(<!-- export:splits:end -->)", re.S)
#: The card's loading example with plain datasets: ``datasets.load_dataset("path/or/hub-id", "<config>")``.
_EXPORT_EXAMPLE = re.compile(r'(datasets\.load_dataset\("path/or/hub-id", )"[^"]*"\)')
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


class ExportError(ValueError):
    """An export that cannot be done as asked (unknown configuration, occupied folder, ...)."""


# --------------------------------------------------------------------------- the dataset packages


def _registry():
    from .. import registry

    return registry


def dataset_names() -> tuple[str, ...]:
    """The dataset packages that can be exported (the registry's)."""
    return tuple(_registry().DATASETS)


def _entry(dataset: str):
    if dataset not in dataset_names():
        raise ExportError(f"dataset must be one of {dataset_names()}, got {dataset!r}")
    return _registry().get_dataset(dataset)


def default_configs(dataset: str) -> tuple[str, ...]:
    """The configurations exported when none are named: the all-intensity raw configuration of
    each of the dataset's tasks (the per-intensity ones are filters of these and the RGB ones are
    recomputed from them by the project's ISP, so they would only multiply the upload size)."""
    return tuple(dict.fromkeys(task.config for task in _entry(dataset).tasks.values()))


def available_configs(dataset: str) -> dict[str, str]:
    """Every configuration the dataset's builder defines, in its own order, with its description."""
    return {cfg.name: (cfg.description or "") for cfg in _entry(dataset).builder_class().BUILDER_CONFIGS}


def resolve_configs(dataset: str, requested: Sequence[str] | None, everything: bool,
                    available: Sequence[str]) -> list[str]:
    """The configurations to export: all of ``available``, the ``requested`` ones (checked,
    repeats dropped) or, with neither, :func:`default_configs`."""
    if everything:
        return list(available)
    names = list(requested) if requested else [c for c in default_configs(dataset) if c in available]
    unknown = [c for c in names if c not in available]
    if unknown:
        raise ExportError(f"--configs: {dataset} has no configuration {', '.join(map(repr, unknown))}; "
                          f"it has: {', '.join(available)}")
    if not names:
        raise ExportError(f"none of the default configurations {default_configs(dataset)} exist in {dataset}; "
                          "name some with --configs")
    return list(dict.fromkeys(names))


def parse_size(text: str | int) -> int:
    """Bytes from ``"500MB"``, ``"2GiB"``, ``"1e9"`` or an int; decimal (MB) and binary (MiB) units.
    Raises ValueError for anything else or a size that is not positive."""
    if isinstance(text, int):
        size = text
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([KMGT]i?B|B)?\s*", str(text), re.I)
        if not m:
            raise ValueError(f"--max_shard_size: cannot read {text!r} (examples: 500MB, 2GiB, 100000)")
        size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "B").upper()])
    if size <= 0:
        raise ValueError(f"--max_shard_size must be positive, got {text!r}")
    return size


# --------------------------------------------------------------------------- writing


@dataclass
class SplitExport:
    """One exported split: its Parquet files (posix paths relative to the repository root), rows,
    Arrow size of the rows and bytes on disk."""

    name: str
    files: list[str]
    num_examples: int
    num_bytes: int
    file_bytes: int


@dataclass
class ConfigExport:
    """One exported configuration: its description, ``datasets.Features`` and splits."""

    name: str
    description: str
    features: Any
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
    datasets.disable_progress_bars()  # one bar per shard is noise; the caller logs a line per split
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


def export_config(dataset: str, config: str, root: Path, builder_kwargs: dict[str, Any], cache_dir: str | None,
                  max_shard_bytes: int, description: str = "") -> tuple[ConfigExport, Any]:
    """Prepare ``config`` with the package's ``load_dataset`` and write all its splits under ``root``.

    Returns the export record and the ``DatasetDict`` that was written (for verification).
    """
    module = _entry(dataset).module()
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
            logger.warning("  warning: config %r split %r has no rows; not exported", config, split)
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
    """A Markdown table of the rows per configuration and split, and the configurations' descriptions."""
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


def _source(builder_kwargs: dict[str, Any]) -> str:
    return builder_kwargs.get("source") or ("local" if builder_kwargs.get("data_dir") else "synthetic")


def source_statement(dataset: str, builder_kwargs: dict[str, Any], version: str | None) -> str:
    """The card's sentence on where the exported rows came from, when, and with which arguments."""
    from .builder import ZENODO_RECORD
    from .zenodo import record_id

    source = _source(builder_kwargs)
    shown = {k: ("<local path>" if k == "data_dir" else v) for k, v in sorted(builder_kwargs.items())}
    args = ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "defaults"
    what = {
        "synthetic": "**synthetic** rows generated by this project's simulator, not the real recordings",
        "local": "a local copy of the **real** data (the Zenodo files)",
        "zenodo": "the **real** data downloaded from Zenodo "
                  f"(DOI 10.5281/zenodo.{record_id(builder_kwargs.get('record') or ZENODO_RECORD)})",
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


def card_template(dataset: str) -> str:
    """The dataset package's own card (``<package>/README.md``), the template :func:`render_card` fills."""
    path = Path(_entry(dataset).module().__file__).resolve().parent / "README.md"
    if not path.is_file():
        raise FileNotFoundError(f"dataset card template not found: {path}")
    return path.read_text(encoding="utf-8")


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
    tags = [t for t in (data.get("tags") or []) if t != "synthetic"]
    if _source(builder_kwargs) == "synthetic":
        tags.append("synthetic")
    data["tags"] = tags
    text = card.content
    text, n_src = _SOURCE_BLOCK.subn(
        lambda m: m.group(1) + source_statement(dataset, builder_kwargs, _project_version()) + "\n" + m.group(2),
        text)
    text, n_tab = _SPLITS_BLOCK.subn(
        lambda m: m.group(1) + "Row counts of the configurations in this repository:\n\n" + splits_table(configs)
        + "\n" + m.group(2), text)
    # The plain-datasets loading example names a configuration this repository holds.
    if default_config is not None:
        text = _EXPORT_EXAMPLE.sub(lambda m: f'{m.group(1)}"{default_config}")', text)
    if n_src != 1 or n_tab != 1:
        raise RuntimeError(f"the {dataset} card template must hold one export:source and one export:splits block "
                           f"(found {n_src} and {n_tab})")
    return text


# --------------------------------------------------------------------------- the output folder


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Raise :class:`ExportError` if ``path`` is a file, or a folder holding more than ``.git``
    and ``overwrite`` is not given."""
    if path.exists() and not path.is_dir():
        raise ExportError(f"--output_dir {path} exists and is not a folder")
    if path.is_dir() and any(p.name != ".git" for p in path.iterdir()) and not overwrite:
        raise ExportError(f"--output_dir {path} is not empty; pass --overwrite to replace its contents")


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
    for p in sorted(Path(root).rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(".git/") and rel != ".git":
            out.append((rel, p.stat().st_size))
    return out


def human(n: float) -> str:
    """``n`` bytes as "512 B", "3.2 kB", "1.5 MB", "2.0 GB"."""
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
            expected_rows = ds.flatten_indices() if ds._indices is not None else ds
            if not got.data.table.equals(expected_rows.data.table):
                raise RuntimeError(f"verify {config!r}/{split}: rows differ after the round trip")


# --------------------------------------------------------------------------- upload


def _config_name(entry: Any) -> str | None:
    return entry.get("config_name", "default") if isinstance(entry, dict) else None


def merge_cards(local: str, remote: str) -> str:
    """The local card with the ``configs`` and ``dataset_info`` entries of ``remote``'s other
    configurations added (those the local export does not hold), so that pushing an export of some
    configurations keeps the others loadable. One ``default`` config: the local one if it has one."""
    from huggingface_hub import DatasetCard

    card, theirs = DatasetCard(local), DatasetCard(remote)
    mine = {_config_name(e) for e in (card.data.get("configs") or [])}
    kept = [dict(e) for e in (theirs.data.get("configs") or []) if _config_name(e) not in mine]
    if not kept:
        return local
    has_default = any(isinstance(e, dict) and e.get("default") for e in (card.data.get("configs") or []))
    for entry in kept:
        if has_default:
            entry.pop("default", None)
    card.data["configs"] = [*(card.data.get("configs") or []), *kept]
    info = lambda data: [data] if isinstance(data, dict) else list(data or [])  # noqa: E731
    kept_names = {_config_name(e) for e in kept}
    card.data["dataset_info"] = [*info(card.data.get("dataset_info")),
                                 *(e for e in info(theirs.data.get("dataset_info")) if _config_name(e) in kept_names)]
    return str(card)


def _remote_card(api: Any, repo_id: str, revision: str | None) -> str | None:
    """The README.md of the remote dataset repository, or None when there is none yet."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return None
    return Path(path).read_text(encoding="utf-8")


def push(folder: Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         token: str | None = None, commit_message: str | None = None,
         replace: bool = False) -> list[tuple[str, int]]:
    """Upload ``folder`` to the dataset repository ``repo_id`` (created if needed), in one commit.

    By default the upload adds configurations: remote files of the configurations in ``folder``
    that it does not hold (stale shards of an earlier export) are deleted, the other
    configurations' files are kept, and the card's ``configs`` / ``dataset_info`` keep their
    entries (:func:`merge_cards`). ``replace=True`` (``--replace``) makes the repository hold
    exactly this export: every remote file under ``data/`` that the folder does not hold is
    deleted and the card is the folder's. Returns the files sent (:func:`list_files`).
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    folder = Path(folder)
    files = list_files(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    ours = {rel for rel, _ in files}
    configs = {rel.split("/")[1] for rel in ours if rel.startswith("data/") and rel.count("/") >= 2}
    remote = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    stale = [rel for rel in remote if rel.startswith("data/") and rel not in ours
             and (replace or (rel.count("/") >= 2 and rel.split("/")[1] in configs))]
    card = (folder / "README.md").read_text(encoding="utf-8") if "README.md" in ours else None
    if card is not None and not replace and "README.md" in remote:
        theirs = _remote_card(api, repo_id, revision)
        if theirs is not None:
            card = merge_cards(card, theirs)
    operations: list[Any] = [CommitOperationDelete(path_in_repo=rel) for rel in stale]
    for rel in sorted(ours):
        if rel == "README.md":
            operations.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=card.encode("utf-8")))
        else:
            operations.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel)))
    api.create_commit(repo_id, operations, repo_type="dataset", revision=revision,
                      commit_message=commit_message or f"Export {len(files)} files with scripts/export_to_hub.py")
    return files


# --------------------------------------------------------------------------- the whole export


def export(dataset: str, output_dir: Path, configs: Sequence[str] | None = None, everything: bool = False,
           builder_kwargs: dict[str, Any] | None = None, cache_dir: str | None = None,
           max_shard_size: int | str = "500MB", overwrite: bool = False, verify: bool = False
           ) -> list[ConfigExport]:
    """Write ``output_dir`` as a dataset repository of ``dataset``; returns what was written per config.

    Args:
        dataset: a dataset package of the registry ("raw_microscopy", "raw_drone").
        configs: configurations to export (default :func:`default_configs`); ``everything``: all.
        builder_kwargs: keyword arguments of the package's ``load_dataset`` (source, data_dir,
            record, the subset size, ...).
        max_shard_size: largest Parquet shard, as the Arrow size of its rows (:func:`parse_size`).
        overwrite: replace a folder that is not empty (its ``.git`` is kept).
        verify: load every config back with plain ``datasets`` and compare rows and features.
    Raises:
        ExportError: an unknown dataset or configuration, or an occupied ``output_dir``; checked
            before any data is prepared. Nothing is left behind by a failed or interrupted export.
    """
    builder_kwargs = dict(builder_kwargs or {})
    max_shard_bytes = parse_size(max_shard_size)
    output_dir = Path(output_dir).expanduser().absolute()
    check_output_dir(output_dir, overwrite)
    descriptions = available_configs(dataset)
    names = resolve_configs(dataset, configs, everything, list(descriptions))
    template = card_template(dataset)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.export-", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staged, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        records, originals = [], {}
        for name in names:
            logger.info("[%s] preparing and writing %r ...", dataset, name)
            record, dd = export_config(dataset, name, staged, builder_kwargs, cache_dir, max_shard_bytes,
                                       descriptions.get(name, ""))
            records.append(record)
            originals[name] = dd
            for s in record.splits:
                logger.info("  %s: %s rows in %d file(s), %s", s.name, f"{s.num_examples:,}", len(s.files),
                            human(s.file_bytes))
        default = next((c for c in default_configs(dataset) if c in names), names[0])
        (staged / "README.md").write_text(render_card(template, dataset, records, builder_kwargs, default),
                                          encoding="utf-8")
        if verify:
            logger.info("verifying the round trip with datasets.load_dataset ...")
            verify_folder(staged, originals, cache_dir=cache_dir)
            logger.info("  same rows and features in every config and split")
        check_output_dir(output_dir, overwrite)  # it may have been filled while we worked
        move_into_place(staged, output_dir)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return records
