"""Raw-Microscopy as a Hugging Face dataset: :class:`RawMicroscopy` and :func:`load_dataset`.

Configs (:data:`CONFIG_NAMES`):

- ``"raw"``: the raw RGGB mosaics at all seven intensity ratios, one row per (cell, ratio),
  the ratio in the ``intensity`` column (940 x 7 = 6,580 rows in the real size).
- ``"raw-100"``, ``"raw-075"``, ``"raw-050"``, ``"raw-025"``, ``"raw-010"``, ``"raw-005"``,
  ``"raw-001"``: one ratio each (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01; the digits are those of
  the real data's ``raw_scaleNNN`` folders), one row per cell.
- ``"rgb-<variant>"`` for each of the 12 ``raw_isp.ISP_VARIANTS`` (e.g. ``"rgb-ma_s_me"``): the
  processed RGB view of each cell, made here by ``raw_isp.StaticISP(variant,
  camera="microscopy")`` from the raw mosaic at full intensity (1.0; the ``intensity`` kwarg
  selects another ratio). Stored as 8-bit PNG (``datasets.Image``): ``round(255 * rgb)``,
  lossless for those 8 bits, viewable on the Hub and accepted by every image processor.
  Exact float views are better computed on the fly from a raw config with ``StaticISP`` on the
  device (4x smaller on disk than float32 RGB, and the point of this project).

Features: ``image`` (``Array2D((256, 256), "uint16")``: the raw mosaic, bit-exact to the source
file; in rgb configs a PNG image), ``label`` (``ClassLabel`` ``BAS, EOS, KSC, LYA, LYT, MON, NGB,
NGS, UNC``), ``image_id`` (the file stem, or ``synthetic-<seed>-<index>``; the same for one cell
at every intensity), ``intensity`` (float32 ratio).

Splits: ``train`` / ``validation`` / ``test`` about 70/15/15, stratified by class and grouped by
``image_id`` (one cell never appears in two splits, at any intensity, in any config), fixed by
``seed`` (default 0; see :mod:`raw_isp.data.splits`). Cross-validation: ``fold=k, n_folds=n`` makes
test = fold k, validation = fold (k+1) mod n, train = the other folds.

Sources (``source=``):

- ``"synthetic"`` (default): :class:`raw_microscopy.MicroscopySimulator` (seed
  ``synthetic_seed``), 940 cells with the real class counts, or ``num_examples``.
- ``"local"``: a copy of the real data in ``data_dir`` (a folder or a ``.zip``) in the layout of
  the public Raw2Logit code, found at any depth and inside zip archives (zips of zips too):
  a label file ``*annotations*.dat`` (the real one is ``labels/Ma190c_annotations.dat``; lines
  ``<file stem> <CLASS>``, UTF-8 with or without BOM, LF or CRLF) and folders
  ``raw_scaleNNN/<stem>.tiff`` (preferably under ``images/``), or zips named for them. Skipped
  with a warning: the known-broken ``Ma190c_lame3_zone13_composite_Mcropped_2.tiff``, labels
  with class codes not among the nine (reported with their counts), missing image files, and
  image files without a label (counted in one warning). An unreadable image, one that is not
  256x256 uint16, a malformed label line or one whose stem is a path (``../x``, ``/x``) is an
  error naming the file and line.
- ``"zenodo"``: the files of the Zenodo record (``record=``, default 5235536) that this
  configuration needs, chosen from the record's listing through the Zenodo API
  (:mod:`raw_isp.data.zenodo`), or those pinned by ``files_manifest=`` /
  ``$RAW_MICROSCOPY_MANIFEST`` (the shipped ``zenodo_files.json`` pins nothing); downloaded with
  the ``datasets`` download manager, size- and checksum-verified, extracted safely, then read as
  ``"local"``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import datasets
from raw_isp.data.archive import SourceError
from raw_isp.data.builder import (
    RawBuilderConfig,
    RawDatasetBuilder,
    check_int,
    intensity_configs,
    intensity_tag,
)
from raw_isp.data.layout import MAX_ZIP_DEPTH, LayoutTree, ratio_folders
from raw_isp.data.splits import SPLIT_NAMES
from raw_isp.io import read_raw
from raw_microscopy.synthetic import CLASS_NAMES, INTENSITIES, MicroscopySimulator, label_assignment

__all__ = ["RawMicroscopy", "RawMicroscopyConfig", "load_dataset", "CONFIG_NAMES", "intensity_tag",
           "LABEL_FILE", "BROKEN_FILES", "MANIFEST_ENV", "DEFAULT_MANIFEST", "read_label_file"]

LABEL_FILE = "labels/Ma190c_annotations.dat"
#: Known-broken files of the real set, skipped with a warning.
BROKEN_FILES = ("Ma190c_lame3_zone13_composite_Mcropped_2.tiff",)
IMAGE_SHAPE = (256, 256)
_SHARD_SIZE = 32  # examples per shard: the unit of work of num_proc and of batched ISP
_IMAGE_SUFFIXES = (".tiff", ".tif")  # in order of preference when a stem has both
_LABELS = re.compile(r"annotations.*\.dat$", re.I)


@dataclass
class RawMicroscopyConfig(RawBuilderConfig):
    """A Raw-Microscopy configuration: the shared fields and ``num_examples``."""

    num_examples: int | None = None


def _describe(kind: str, ratio: float | None, variant: str | None) -> str:
    if kind == "rgb":
        return (f"RGB views (8-bit PNG, 256x256) made from the raw mosaics by raw_isp.StaticISP('{variant}', "
                "camera='microscopy'), at intensity 1.0 unless the 'intensity' kwarg says otherwise.")
    if ratio is None:
        return ("Raw RGGB mosaics (uint16, 256x256) of every cell at all seven intensity ratios; "
                "one row per (cell, ratio), the ratio in 'intensity'.")
    return f"Raw RGGB mosaics (uint16, 256x256) at intensity ratio {ratio} only; one row per cell."


_CONFIGS = intensity_configs(RawMicroscopyConfig, "raw", "rgb-", INTENSITIES, _describe)
CONFIG_NAMES: tuple[str, ...] = tuple(c.name for c in _CONFIGS)


class _Item(NamedTuple):
    """One cell: its id, class index, and either a simulator index or its files per ratio."""

    image_id: str
    label: int
    index: int | None
    files: tuple[tuple[float, str], ...] = ()


# ------------------------------------------------------------------ local layout


def read_label_file(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``[(stem, class_code), ...]`` from an annotations file; a trailing .tif/.tiff is dropped.

    UTF-8 with or without a byte-order mark; LF or CRLF line ends; blank lines ignored.

    Raises:
        SourceError: unreadable, a line that is not ``<file stem> <CLASS>``, or a stem that is
            a path (a folder part, ``..`` or an absolute path), naming the line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: cannot read the label file ({e})") from e
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SourceError(f"{path}: line {n} must be '<file stem> <CLASS>', got {line.strip()!r}")
        stem, code = fields
        if "/" in stem or "\\" in stem or stem in (".", "..") or re.match(r"^[A-Za-z]:", stem):
            raise SourceError(f"{path}: line {n}: {stem!r} is not a file stem (it names a folder or an absolute "
                              "path, which could read files outside the image folders); refusing the label file")
        for suffix in _IMAGE_SUFFIXES:
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        out.append((stem, code))
    return out


def _find_layout(tree: LayoutTree, ratios: tuple[float, ...], where: str
                 ) -> tuple[Path, dict[float, tuple[str, ...]]]:
    """The label file and the image folder of each of ``ratios`` in the tree."""
    found = tree.find_files(lambda name: bool(_LABELS.search(name)))
    if not found:
        raise SourceError(
            f"{where}: no label file {LABEL_FILE} found (nor any other *annotations*.dat, at any depth of the "
            f"folders and up to {MAX_ZIP_DEPTH} zip levels deep). Expected the Raw2Logit layout: {LABEL_FILE} and "
            f"images/raw_scaleNNN/<stem>.tiff (or raw_scaleNNN.zip). Found at the top: {tree.describe_top()}")
    # The real file's place first, then its name; two copies that match equally well are an error
    # whatever their depth (as the README says), never a silent choice of the shallower.
    def rank(p):
        return (p[-2:] != tuple(LABEL_FILE.split("/")), p[-1] != LABEL_FILE.split("/")[1])

    found.sort(key=lambda p: (rank(p), len(p)))
    best = [p for p in found if rank(p) == rank(found[0])]
    if len(best) > 1:
        listed = ", ".join(str(tree.files[p]) for p in best)
        raise SourceError(f"{where}: several label files could be the one: {listed}; point data_dir at one copy")
    label = found[0]
    tags = {intensity_tag(r): r for r in ratios}
    folders = ratio_folders(tree, tags, _IMAGE_SUFFIXES, within="images", anchor=label[:-2], where=where)
    missing = [r for r in ratios if r not in folders]
    if missing:
        raise SourceError(
            f"{where}: no image folder raw_scale{intensity_tag(missing[0])} (or raw_scale{intensity_tag(missing[0])}"
            f".zip) with .tiff files for intensity ratio(s) {missing}, beside {tree.files[label]}. Found at the top: "
            f"{tree.describe_top()}")
    return tree.files[label], folders


def _images_by_stem(tree: LayoutTree, folder: tuple[str, ...]) -> dict[str, Path]:
    """``{stem: path}`` of the TIFF files of a folder (``.tiff`` before ``.tif``, any case)."""
    out: dict[str, tuple[int, Path]] = {}
    for name, path in tree.listdir(folder, _IMAGE_SUFFIXES).items():
        rank = next(k for k, s in enumerate(_IMAGE_SUFFIXES) if name.lower().endswith(s))
        stem = name[: -len(_IMAGE_SUFFIXES[rank])]
        if stem not in out or rank < out[stem][0]:
            out[stem] = (rank, path)
    return {stem: path for stem, (_, path) in out.items()}


def _local_items(tree: LayoutTree, label_file: Path, folders: dict[float, tuple[str, ...]],
                 ratios: tuple[float, ...], num_examples: int | None) -> tuple[list[_Item], list[tuple[str, int]]]:
    """The usable cells (with their files at ``ratios``) and every labelled cell considered.

    The split is assigned over the labelled cells, not over those whose files exist at these
    ratios, so a cell lands in the same split in every config even if a file is missing.
    ``num_examples`` counts labelled cells (of the nine classes, broken file excluded).
    """
    broken = {Path(b).stem for b in BROKEN_FILES}
    images = {r: _images_by_stem(tree, folders[r]) for r in ratios}
    lines = read_label_file(label_file)
    unknown: Counter[str] = Counter()
    seen: set[str] = set()
    items: list[_Item] = []
    labelled: list[tuple[str, int]] = []
    missing: list[str] = []
    for stem, code in lines:
        if stem in broken:
            warnings.warn(f"{label_file}: skipping the known-broken image {stem}.tiff", UserWarning, stacklevel=3)
            continue
        if code not in CLASS_NAMES:
            unknown[code] += 1
            continue
        if stem in seen:
            warnings.warn(f"{label_file}: {stem} is labelled twice; keeping the first label", UserWarning, stacklevel=3)
            continue
        if num_examples is not None and len(labelled) >= num_examples:
            break
        seen.add(stem)
        labelled.append((stem, CLASS_NAMES.index(code)))
        files = []
        for r in ratios:
            if stem in images[r]:
                files.append((r, str(images[r][stem])))
            else:
                missing.append(str(tree.real(folders[r]) / f"{stem}.tiff"))
        if files:
            items.append(_Item(stem, CLASS_NAMES.index(code), None, tuple(files)))
    if unknown:
        listed = ", ".join(f"{c} ({k})" for c, k in sorted(unknown.items()))
        warnings.warn(
            f"{label_file}: skipped {sum(unknown.values())} labels with class codes not among the nine "
            f"{', '.join(CLASS_NAMES)}: {listed}",
            UserWarning, stacklevel=3,
        )
    if missing:
        warnings.warn(f"skipped {len(missing)} missing image file(s), e.g. {missing[0]}", UserWarning, stacklevel=3)
    named = {stem for stem, _ in lines}
    unlabelled = sorted({(r, s) for r in ratios for s in images[r] if s not in named})
    if unlabelled:
        r, stem = unlabelled[0]
        warnings.warn(f"{len(unlabelled)} image file(s) have no line in {label_file} and are left out, e.g. "
                      f"{images[r][stem]}", UserWarning, stacklevel=3)
    if not items:
        raise SourceError(f"{label_file}: no usable images (every label skipped or every image missing)")
    return items, labelled


# ------------------------------------------------------------------ builder


class RawMicroscopy(RawDatasetBuilder):
    """Raw-Microscopy builder. See the module docstring for configs, features, splits and sources."""

    BUILDER_CONFIG_CLASS = RawMicroscopyConfig
    BUILDER_CONFIGS = _CONFIGS
    DEFAULT_CONFIG_NAME = "raw"
    CAMERA = "microscopy"
    # The record's files: names that say microscopy, members only this layout has; Raw-Drone
    # shares the record.
    ZENODO_NAMES = (r"microscop", r"ma190c", r"leu[ck]ocyte", r"blood", r"white[ _-]?cell", r"(^|[^a-z])wbc")
    LAYOUT_MARKS = (r"annotations[^/]*\.dat$", r"(^|/)ma190c")
    RECORD_SIBLINGS = ("raw_drone.builder",)

    def _check_options(self) -> None:
        check_int("num_examples", self.config.num_examples, 1, allow_none=True)

    def _num_cells(self) -> int:
        return self.config.num_examples if self.config.num_examples is not None else 940

    def _large_synthetic(self) -> bool:
        return self._num_cells() >= 4 * _SHARD_SIZE

    def _split_unit(self) -> str:
        return "cells"

    def _features(self, image: Any) -> dict[str, Any]:
        return {
            "image": image,
            "label": datasets.ClassLabel(names=list(CLASS_NAMES)),
            "image_id": datasets.Value("string"),
            "intensity": datasets.Value("float32"),
        }

    def _items(self, dl_manager: Any) -> tuple[list[_Item], list[tuple[str, int]]]:
        """The cells to generate, and every cell the split is assigned over (``(image_id, label)``)."""
        c = self.config
        if c.source == "synthetic":
            n = self._num_cells()
            labels = label_assignment(n, c.synthetic_seed)
            items = [_Item(f"synthetic-{c.synthetic_seed}-{i:05d}", int(labels[i]), i) for i in range(n)]
            return items, [(it.image_id, it.label) for it in items]
        tree, where = self._data_tree(dl_manager)
        label_file, folders = _find_layout(tree, self._ratios(), where)
        return _local_items(tree, label_file, folders, self._ratios(), c.num_examples)

    def _split_shards(self, dl_manager: Any) -> dict[str, list[list[_Item]]]:
        items, labelled = self._items(dl_manager)
        split_of = self._assign_splits([g for g, _ in labelled], [label for _, label in labelled])
        out = {}
        for split in SPLIT_NAMES:
            chosen = [it for it in items if split_of[it.image_id] == split]
            out[split] = [chosen[k:k + _SHARD_SIZE] for k in range(0, len(chosen), _SHARD_SIZE)]
        return out

    def _generation_state(self) -> MicroscopySimulator | None:
        c = self.config
        return MicroscopySimulator(seed=c.synthetic_seed, num_examples=self._num_cells()) \
            if c.source == "synthetic" else None

    def _shard_rows(self, shard: list[_Item], sim: MicroscopySimulator | None
                    ) -> Iterator[tuple[str, dict[str, Any]]]:
        ratios = self._ratios()
        for item in shard:
            if item.index is not None:
                frames = sim.raws(item.index, ratios)
            else:
                frames = {}
                for r, path in item.files:
                    raw = read_raw(path)
                    if raw.shape != IMAGE_SHAPE:
                        raise SourceError(f"{path}: image has shape {raw.shape}, expected {IMAGE_SHAPE} (HxW)")
                    frames[r] = raw
            for r, frame in frames.items():
                yield f"{item.image_id}@{intensity_tag(r)}", {
                    "image": frame, "label": item.label, "image_id": item.image_id, "intensity": r}


MANIFEST_ENV = RawMicroscopy.MANIFEST_ENV
DEFAULT_MANIFEST = RawMicroscopy.DEFAULT_MANIFEST


def load_dataset(name: str = "raw", split: str | None = None, *, num_examples: int | None = None,
                 **kwargs: Any) -> datasets.Dataset | datasets.DatasetDict:
    """Load Raw-Microscopy in one call, with the conventions of ``datasets.load_dataset``.

    Args:
        name: a config of :data:`CONFIG_NAMES` ("raw", "raw-100" ... "raw-001", "rgb-<variant>").
        split: None (a ``DatasetDict`` with train, validation, test) or a split name or
            expression ("train", "test[:10]", ...) for one ``Dataset``.
        num_examples: number of cells (synthetic: the first ``num_examples``; local/zenodo: the
            first usable ones of the label file). Default: all (940 synthetic).
        **kwargs: ``source`` ("synthetic", "local" with ``data_dir``, "zenodo"), ``intensity``
            (with "raw" it selects "raw-NNN"), ``fold``, ``n_folds``, ``seed``,
            ``synthetic_seed``, ``record``, ``files_manifest`` (or ``$RAW_MICROSCOPY_MANIFEST``),
            ``cache_dir``, ``download_mode``, ``num_proc``, ``output`` ("numpy", "torch" or
            None), ``download_timeout``, ``extract_limits``, ``streaming``: see
            :meth:`raw_isp.data.builder.RawDatasetBuilder.load`.
    Returns:
        ``datasets.DatasetDict`` or ``datasets.Dataset`` (with ``streaming=True``:
        ``IterableDatasetDict`` or ``IterableDataset``).
    """
    return RawMicroscopy.load(name, split, num_examples=num_examples, **kwargs)
