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
- ``"local"``: a copy of the real data in ``data_dir`` in the layout of the public Raw2Logit
  code: ``labels/Ma190c_annotations.dat`` (lines ``<file stem> <CLASS>``) and
  ``images/raw_scaleNNN/<stem>.tiff``. The layout may sit one or two folders deeper, and zip
  archives of its folders (up to two folders deep, or ``data_dir`` itself a ``.zip``) are
  extracted safely into the cache. Skipped with a warning: the known-broken
  ``Ma190c_lame3_zone13_composite_Mcropped_2.tiff``, labels with class codes not among the nine
  (reported with their counts), and missing image files. An unreadable image, one that is not
  256x256 uint16, or a malformed label line is an error naming the file.
- ``"zenodo"``: the files listed in ``zenodo_files.json`` beside this module (or the manifest
  given by ``files_manifest=`` or the environment variable ``RAW_MICROSCOPY_MANIFEST``),
  downloaded with the ``datasets`` download manager, size- and SHA-256-checked, extracted
  safely, then read as ``"local"``.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np

import datasets
from raw_isp.data.archive import (
    SourceError,
    fetch_manifest_files,
    file_sha256,
    fingerprint_tree,
    layout_roots,
    load_manifest,
    manifest_path,
)
from raw_isp.data.arrow import (
    build_and_load,
    png_views,
    raw_image_feature,
    single_threaded_torch,
    builder_code_hash,
    warn_empty_split,
)
from raw_isp.citation import STUDY_CITATION
from raw_isp.isp.config import ISP_VARIANTS
from raw_isp.io import read_raw
from raw_isp.data.splits import SPLIT_NAMES, kfold_split, split_assignment
from raw_microscopy.synthetic import CLASS_NAMES, INTENSITIES, MicroscopySimulator, label_assignment

__all__ = ["RawMicroscopy", "RawMicroscopyConfig", "load_dataset", "CONFIG_NAMES", "intensity_tag",
           "LABEL_FILE", "BROKEN_FILES", "MANIFEST_ENV", "DEFAULT_MANIFEST"]

LABEL_FILE = "labels/Ma190c_annotations.dat"
#: Known-broken files of the real set, skipped with a warning.
BROKEN_FILES = ("Ma190c_lame3_zone13_composite_Mcropped_2.tiff",)
MANIFEST_ENV = "RAW_MICROSCOPY_MANIFEST"
DEFAULT_MANIFEST = Path(__file__).with_name("zenodo_files.json")
IMAGE_SHAPE = (256, 256)
SOURCES = ("synthetic", "local", "zenodo")
_SHARD_SIZE = 32  # examples per shard: the unit of work of num_proc and of batched ISP
_IMAGE_SUFFIXES = (".tiff", ".tif", ".TIFF", ".TIF")


def intensity_tag(ratio: float) -> str:
    """``"100"`` for 1.0, ``"075"`` for 0.75, ... ``"001"`` for 0.01 (as in ``raw_scaleNNN``)."""
    return f"{int(round(float(ratio) * 100)):03d}"


_RATIO_OF_TAG = {intensity_tag(r): float(r) for r in INTENSITIES}


@dataclass
class RawMicroscopyConfig(datasets.BuilderConfig):
    """A Raw-Microscopy configuration. The first three fields are fixed per config name; the
    others are the keyword arguments of :func:`load_dataset` (documented there)."""

    kind: str = "raw"
    ratio: float | None = None
    isp_variant: str | None = None
    source: str = "synthetic"
    num_examples: int | None = None
    synthetic_seed: int = 0
    seed: int = 0
    fold: int | None = None
    n_folds: int = 5
    intensity: float | None = None
    files_manifest: str | None = None
    source_fingerprint: str | None = None


def _configs() -> list[RawMicroscopyConfig]:
    version = datasets.Version("1.0.0")
    out = [RawMicroscopyConfig(
        name="raw", version=version, kind="raw",
        description="Raw RGGB mosaics (uint16, 256x256) of every cell at all seven intensity ratios; "
                    "one row per (cell, ratio), the ratio in 'intensity'.")]
    for r in INTENSITIES:
        out.append(RawMicroscopyConfig(
            name=f"raw-{intensity_tag(r)}", version=version, kind="raw", ratio=float(r),
            description=f"Raw RGGB mosaics (uint16, 256x256) at intensity ratio {r} only; one row per cell."))
    for v in ISP_VARIANTS:
        out.append(RawMicroscopyConfig(
            name=f"rgb-{v}", version=version, kind="rgb", isp_variant=v,
            description=f"RGB views (8-bit PNG, 256x256) made from the raw mosaics by raw_isp.StaticISP('{v}', "
                        "camera='microscopy'), at intensity 1.0 unless the 'intensity' kwarg says otherwise."))
    return out


_CONFIGS = _configs()
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RawMicroscopyConfig)}
CONFIG_NAMES: tuple[str, ...] = tuple(c.name for c in _CONFIGS)


class _Item(NamedTuple):
    """One cell: its id, class index, and either a simulator index or its files per ratio."""

    image_id: str
    label: int
    index: int | None
    files: tuple[tuple[float, str], ...] = ()


def _check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# ------------------------------------------------------------------ local layout


def _find_layout(roots: list[tuple[Path, str | None]], where: str) -> tuple[Path, dict[float, Path]]:
    """The label file and the image folder of each ratio found among ``roots``."""
    label_file = next((r / LABEL_FILE for r, _ in roots if (r / LABEL_FILE).is_file()), None)
    if label_file is None:
        raise SourceError(
            f"{where}: no label file {LABEL_FILE} found (expected the Raw2Logit layout: {LABEL_FILE} and "
            "images/raw_scaleNNN/<stem>.tiff, possibly one or two folders deeper or inside zip archives)"
        )
    folders: dict[float, Path] = {}
    for root, zip_parent in roots:
        for tag, ratio in _RATIO_OF_TAG.items():
            # An archive found in an "images" folder holds that folder's content (as Raw2Logit's did).
            extra = (root / f"raw_scale{tag}",) if zip_parent == "images" else ()
            for candidate in (root / "images" / f"raw_scale{tag}",) + extra:
                if ratio not in folders and candidate.is_dir():
                    folders[ratio] = candidate
    if not folders:
        raise SourceError(f"{where}: no image folder images/raw_scaleNNN found beside {label_file}")
    return label_file, folders


def read_label_file(path: Path) -> list[tuple[str, str]]:
    """``[(stem, class_code), ...]`` from an annotations file; a trailing .tif/.tiff is dropped."""
    try:
        text = path.read_text(encoding="utf-8")
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
        for suffix in (".tiff", ".tif"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        out.append((stem, code))
    return out


def _local_items(label_file: Path, folders: dict[float, Path], ratios: tuple[float, ...],
                 num_examples: int | None) -> tuple[list[_Item], list[tuple[str, int]]]:
    """The usable cells (with their files at ``ratios``) and every labelled cell considered.

    The split is assigned over the labelled cells, not over those whose files exist at these
    ratios, so a cell lands in the same split in every config even if a file is missing.
    ``num_examples`` counts labelled cells (of the nine classes, broken file excluded).
    """
    broken = {Path(b).stem for b in BROKEN_FILES}
    unknown: Counter[str] = Counter()
    seen: set[str] = set()
    items: list[_Item] = []
    labelled: list[tuple[str, int]] = []
    missing_folders = [r for r in ratios if r not in folders]
    if missing_folders:
        raise SourceError(
            f"{label_file.parent.parent}: no image folder for intensity ratio(s) {missing_folders} "
            f"(expected images/raw_scale{intensity_tag(missing_folders[0])})"
        )
    missing: list[str] = []
    for stem, code in read_label_file(label_file):
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
            path = next((folders[r] / (stem + s) for s in _IMAGE_SUFFIXES if (folders[r] / (stem + s)).is_file()), None)
            if path is None:
                missing.append(str(folders[r] / (stem + ".tiff")))
            else:
                files.append((r, str(path)))
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
        warnings.warn(
            f"skipped {len(missing)} missing image file(s), e.g. {missing[0]}", UserWarning, stacklevel=3
        )
    if not items:
        raise SourceError(f"{label_file}: no usable images (every label skipped or every image missing)")
    return items, labelled


# ------------------------------------------------------------------ builder


class RawMicroscopy(datasets.GeneratorBasedBuilder):
    """Raw-Microscopy builder. See the module docstring for configs, features, splits and sources."""

    BUILDER_CONFIG_CLASS = RawMicroscopyConfig
    BUILDER_CONFIGS = _CONFIGS
    DEFAULT_CONFIG_NAME = "raw"
    DEFAULT_WRITER_BATCH_SIZE = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("dataset_name", "raw_microscopy")
        kwargs.setdefault("hash", builder_code_hash(Path(__file__).parent))
        source = kwargs.get("source") or "synthetic"
        if kwargs.get("source_fingerprint") is None:
            if source == "local" and kwargs.get("data_dir"):
                if Path(kwargs["data_dir"]).exists():
                    kwargs["source_fingerprint"] = fingerprint_tree(Path(kwargs["data_dir"]))
            elif source == "zenodo":
                manifest = manifest_path(kwargs.get("files_manifest"), MANIFEST_ENV, DEFAULT_MANIFEST)
                if manifest.is_file():
                    kwargs["source_fingerprint"] = file_sha256(manifest)[:16]
        super().__init__(*args, **kwargs)
        self._check_config()

    # -- configuration
    def _check_config(self) -> None:
        c = self.config
        if c.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {c.source!r}")
        _check_int("num_examples", c.num_examples, 1, allow_none=True)
        _check_int("synthetic_seed", c.synthetic_seed, 0)
        _check_int("seed", c.seed, 0)
        if c.fold is not None:
            _check_int("n_folds", c.n_folds, 3)
            if isinstance(c.fold, bool) or not isinstance(c.fold, (int, np.integer)) or not 0 <= c.fold < c.n_folds:
                raise ValueError(f"fold must be an integer in 0..{c.n_folds - 1} (n_folds={c.n_folds}), got {c.fold!r}")
        if c.intensity is not None:
            if float(c.intensity) not in INTENSITIES:
                raise ValueError(f"intensity must be one of {INTENSITIES}, got {c.intensity!r}")
            if c.kind == "raw" and (c.ratio is None or float(c.intensity) != c.ratio):
                fixed = "all intensities" if c.ratio is None else f"intensity {c.ratio}"
                raise ValueError(
                    f"config {c.name!r} holds {fixed}; for intensity {c.intensity} use the config "
                    f"'raw-{intensity_tag(c.intensity)}' (raw_microscopy.load_dataset('raw', intensity=...) picks it)"
                )
        if c.source == "local" and not c.data_dir:
            raise ValueError("source='local' needs data_dir= (a folder or .zip with the real data's layout)")
        if c.source != "local" and c.data_dir:
            raise ValueError(f"data_dir is only used with source='local' (got source={c.source!r})")

    def _ratios(self) -> tuple[float, ...]:
        c = self.config
        if c.kind == "rgb":
            return (float(c.intensity) if c.intensity is not None else 1.0,)
        return (c.ratio,) if c.ratio is not None else tuple(float(r) for r in INTENSITIES)

    def default_num_proc(self) -> int | None:
        """Processes for generation: 2-4 for the synthetic source at full size, else one."""
        c = self.config
        n = c.num_examples or 940
        if c.source != "synthetic" or n < 4 * _SHARD_SIZE:
            return None
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(4, cores)) if cores > 1 else None

    def _info(self) -> datasets.DatasetInfo:
        c = self.config
        image = raw_image_feature(IMAGE_SHAPE) if c.kind == "raw" else datasets.Image()
        features = datasets.Features({
            "image": image,
            "label": datasets.ClassLabel(names=list(CLASS_NAMES)),
            "image_id": datasets.Value("string"),
            "intensity": datasets.Value("float32"),
        })
        return datasets.DatasetInfo(
            description=c.description or "",
            features=features,
            homepage="https://doi.org/10.5281/zenodo.5235536",
            license="cc-by-4.0",
            citation=STUDY_CITATION,
        )

    # -- sources
    def _items(self, dl_manager: Any) -> tuple[list[_Item], list[tuple[str, int]]]:
        """The cells to generate, and every cell the split is assigned over (``(image_id, label)``)."""
        c = self.config
        if c.source == "synthetic":
            n = c.num_examples if c.num_examples is not None else 940
            labels = label_assignment(n, c.synthetic_seed)
            items = [_Item(f"synthetic-{c.synthetic_seed}-{i:05d}", int(labels[i]), i) for i in range(n)]
            return items, [(it.image_id, it.label) for it in items]
        extract_root = Path(self._cache_downloaded_dir) / "raw_isp_extracted"
        if c.source == "local":
            data_dir = Path(c.data_dir).expanduser()
            roots = layout_roots(data_dir, extract_root)
            where = str(data_dir)
        else:
            manifest = manifest_path(c.files_manifest, MANIFEST_ENV, DEFAULT_MANIFEST)
            entries = load_manifest(manifest)
            base_roots = fetch_manifest_files(dl_manager, entries, self._cache_downloaded_dir)
            roots = []
            for r in base_roots:
                roots.extend(layout_roots(r, extract_root))
            where = f"the files of {manifest}"
        label_file, folders = _find_layout(roots, where)
        return _local_items(label_file, folders, self._ratios(), c.num_examples)

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        c = self.config
        items, labelled = self._items(dl_manager)
        groups = [g for g, _ in labelled]
        strata = [label for _, label in labelled]
        if c.fold is None:
            names = split_assignment(groups, strata, seed=c.seed)
        else:
            names = kfold_split(groups, strata, fold=c.fold, n_folds=c.n_folds, seed=c.seed)
        split_of = dict(zip(groups, names))
        out = []
        for split in SPLIT_NAMES:
            chosen = [it for it in items if split_of[it.image_id] == split]
            shards = [chosen[k:k + _SHARD_SIZE] for k in range(0, len(chosen), _SHARD_SIZE)]
            if shards:
                out.append(datasets.SplitGenerator(name=split, gen_kwargs={"shards": shards}))
            else:
                warn_empty_split(split, "cells")
        return out

    # -- examples
    def _frames(self, item: _Item, ratios: tuple[float, ...], sim: MicroscopySimulator | None
                ) -> dict[float, np.ndarray]:
        if item.index is not None:
            return sim.raws(item.index, ratios)
        frames = {}
        for r, path in item.files:
            raw = read_raw(path)
            if raw.shape != IMAGE_SHAPE:
                raise SourceError(f"{path}: image has shape {raw.shape}, expected {IMAGE_SHAPE} (HxW)")
            frames[r] = raw
        return frames

    def _generate_examples(self, shards: list) -> Iterator[tuple[str, dict[str, Any]]]:
        with single_threaded_torch():
            yield from self._examples_of(shards)

    def _examples_of(self, shards: list[list[_Item]]) -> Iterator[tuple[str, dict[str, Any]]]:
        c = self.config
        ratios = self._ratios()
        sim = None
        if c.source == "synthetic":
            n = c.num_examples if c.num_examples is not None else 940
            sim = MicroscopySimulator(seed=c.synthetic_seed, num_examples=n)
        isp = None
        if c.kind == "rgb":
            from raw_isp.isp.static import StaticISP

            isp = StaticISP(c.isp_variant, camera="microscopy")
        for shard in shards:
            rows = []
            for item in shard:
                for r, frame in self._frames(item, ratios, sim).items():
                    rows.append((item, r, frame))
            if isp is not None and rows:
                rgb = png_views(isp, np.stack([f for _, _, f in rows]))
                rows = [(item, r, img) for (item, r, _), img in zip(rows, rgb)]
            for item, r, image in rows:
                yield f"{item.image_id}@{intensity_tag(r)}", {
                    "image": image,
                    "label": item.label,
                    "image_id": item.image_id,
                    "intensity": r,
                }


def load_dataset(
    name: str = "raw",
    split: str | None = None,
    *,
    source: str = "synthetic",
    data_dir: str | os.PathLike[str] | None = None,
    num_examples: int | None = None,
    intensity: float | None = None,
    fold: int | None = None,
    n_folds: int = 5,
    seed: int = 0,
    synthetic_seed: int = 0,
    files_manifest: str | os.PathLike[str] | None = None,
    cache_dir: str | None = None,
    download_mode: Any = None,
    num_proc: int | None = None,
    output: str | None = "numpy",
) -> datasets.Dataset | datasets.DatasetDict:
    """Load Raw-Microscopy in one call, with the conventions of ``datasets.load_dataset``.

    Args:
        name: a config of :data:`CONFIG_NAMES` ("raw", "raw-100" ... "raw-001", "rgb-<variant>").
        split: None (a ``DatasetDict`` with train, validation, test) or a split name or
            expression ("train", "test[:10]", ...) for one ``Dataset``.
        source: "synthetic" (default), "local" (needs ``data_dir``) or "zenodo".
        data_dir: a local copy of the real data (folder or .zip) for ``source="local"``.
        num_examples: number of cells (synthetic: the first ``num_examples``; local/zenodo: the
            first usable ones of the label file). Default: all (940 synthetic).
        intensity: a ratio of ``raw_microscopy.INTENSITIES``. With "raw" it selects the
            single-intensity config ("raw-NNN"); with "rgb-*" the ratio the view is made from
            (default 1.0).
        fold, n_folds: cross-validation round (test = fold, validation = fold+1 mod n_folds).
        seed: seed of the split assignment; synthetic_seed: seed of the simulator.
        files_manifest: the download manifest for "zenodo" (default: ``$RAW_MICROSCOPY_MANIFEST``
            or ``zenodo_files.json`` beside this module).
        cache_dir, download_mode: as in ``datasets.load_dataset``.
        num_proc: processes for generation (default: 2-4 for the full synthetic set, else 1).
        output: "numpy" (default: ``image`` as ``np.uint16`` arrays), "torch" (``torch.uint16``
            tensors), or None (the plain ``datasets`` formatting); see ``raw_isp.data.arrow.raw_format``.
    Returns:
        ``datasets.DatasetDict`` or ``datasets.Dataset``.
    """
    if name not in CONFIG_NAMES:
        raise ValueError(f"unknown Raw-Microscopy config {name!r}; choose one of {list(CONFIG_NAMES)}")
    if name == "raw" and intensity is not None:
        if float(intensity) not in INTENSITIES:
            raise ValueError(f"intensity must be one of {INTENSITIES}, got {intensity!r}")
        name, intensity = f"raw-{intensity_tag(intensity)}", None
    given: dict[str, Any] = dict(source=source, num_examples=num_examples, intensity=intensity, fold=fold,
                                 n_folds=n_folds, seed=seed, synthetic_seed=synthetic_seed,
                                 data_dir=None if data_dir is None else os.fspath(data_dir),
                                 files_manifest=None if files_manifest is None else os.fspath(files_manifest))
    # Only what differs from the config defaults, so that the cache folder of a default load is
    # the same whether it comes through here or from the builder directly.
    kwargs = {k: v for k, v in given.items() if v is not None and v != _DEFAULTS.get(k)}
    return build_and_load(RawMicroscopy, name, split, cache_dir=cache_dir, download_mode=download_mode,
                          num_proc=num_proc, output=output, **kwargs)
