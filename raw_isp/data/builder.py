"""The builder base class both raw datasets share, and the helpers of their builders.

:class:`RawDatasetBuilder` is a ``datasets.GeneratorBasedBuilder`` configured by class
attributes (the pattern of ``datasets``' ``packaged_modules/folder_based_builder``): a dataset
package sets its name, intensities, camera, Zenodo hints and download manifest, and writes only
what is its own: its features, how it finds its layout in a :class:`~raw_isp.data.layout.LayoutTree`,
how it cuts the data into shards per split, and the rows of a shard. The base class holds
everything the two datasets have in common:

- configurations ``<base>``, ``<base>-NNN`` (one intensity) and ``<prefix><variant>`` (RGB views
  of the 12 ISP variants): :func:`intensity_configs`, :class:`RawBuilderConfig`;
- the cache identity: the builder's code hash (all of ``raw_isp`` and the dataset package,
  :func:`builder_code_hash`) and a fingerprint of the source (a local copy's file names, sizes
  and mtimes; the Zenodo API, record and manifest);
- argument checks (source, seeds, folds, intensity, data_dir, record), the intensity ratios of a
  configuration, the ``DatasetInfo``;
- the sources: ``"local"`` (a folder or zip, opened into a layout tree) and ``"zenodo"``
  (:mod:`raw_isp.data.zenodo`: the record through the API, or a pinned manifest; every file
  verified; archives extracted safely once);
- train / validation / test assignment (grouped, stratified, k-fold) and shards per split;
- generation with one torch thread, with the ``rgb-*`` views made by ``raw_isp.StaticISP`` as
  8-bit PNG (:func:`png_views`);
- :meth:`RawDatasetBuilder.load`, the body of each package's ``load_dataset``
  (:func:`build_and_load`: the conventions of ``datasets.load_dataset``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import datasets

from ..citation import STUDY_CITATION
from ..io import RawFileError
from ..sensor import INTENSITY_RATIOS
from .archive import ArchiveError, ExtractLimits, SourceError, fingerprint_tree
from .arrow import raw_format, raw_image_feature
from .download import download_timeout as _check_timeout
from .download import discard_download, fetch_verified, file_sha256, load_manifest, manifest_record
from .layout import LayoutTree
from .splits import SPLIT_NAMES, kfold_split, split_assignment
from .zenodo import (RecordHints, choose_files, fetch_record, forget_record, peek_members, record_entries,
                     record_id, resolve_entries, zenodo_api)

__all__ = [
    "RawBuilderConfig",
    "RawDatasetBuilder",
    "intensity_configs",
    "intensity_tag",
    "check_int",
    "build_and_load",
    "source_code_hash",
    "builder_code_hash",
    "single_threaded_torch",
    "png_views",
    "warn_empty_split",
]

ZENODO_RECORD = "5235536"


def intensity_tag(ratio: float) -> str:
    """``"100"`` for 1.0, ``"075"`` for 0.75, ... ``"001"`` for 0.01 (as in ``raw_scaleNNN``)."""
    return f"{int(round(float(ratio) * 100)):03d}"


def check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer >= ``minimum`` (or None if allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# ------------------------------------------------------------------ helpers


def source_code_hash(*modules: Any, extra: Sequence[str] = ()) -> str:
    """A short hash of the source files of ``modules`` (module objects or file paths) and ``extra``.

    Builders pass it as the ``hash`` of their cache folder, so a prepared dataset is rebuilt
    when the code that generates it changes.
    """
    h = hashlib.sha256()
    for m in modules:
        path = Path(m) if isinstance(m, (str, bytes)) or hasattr(m, "__fspath__") else Path(inspect.getfile(m))
        h.update(path.name.encode())
        h.update(path.read_bytes())
    for text in extra:
        h.update(text.encode())
    return h.hexdigest()[:16]


def builder_code_hash(package_dir: str | os.PathLike[str]) -> str:
    """:func:`source_code_hash` of every Python file of ``raw_isp`` and of a dataset package.

    The whole ISP is included (demosaicing, filters, sensor, ...), so a prepared dataset, its
    ``rgb-*`` views included, is rebuilt whenever any code that made it changes.
    """
    roots = (Path(__file__).resolve().parents[1], Path(package_dir).resolve())
    files = sorted(p for root in roots for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return source_code_hash(*files)


def build_and_load(
    builder_cls: type,
    name: str,
    split: str | None = None,
    *,
    cache_dir: str | None = None,
    download_mode: Any = None,
    verification_mode: Any = None,
    num_proc: int | None = None,
    output: str | None = "numpy",
    streaming: bool = False,
    **builder_kwargs: Any,
) -> datasets.Dataset | datasets.DatasetDict | datasets.IterableDataset | datasets.IterableDatasetDict:
    """Instantiate a builder, prepare it (generate or reuse the cache) and return the split(s).

    The conventions of ``datasets.load_dataset``: ``split=None`` returns a ``DatasetDict``, a
    split name (or a split expression such as ``"train[:10%]"``) a ``Dataset``; ``cache_dir``
    and ``download_mode`` as there. ``output`` ("numpy", "torch" or None) is passed to
    :func:`raw_isp.data.arrow.raw_format`; None leaves the standard (Python) formatting.

    Errors of the data source raised while generating examples reach the caller as themselves
    (``SourceError``, ``RawFileError``) rather than wrapped in ``DatasetGenerationError``.

    ``streaming=True``: nothing is prepared or cached; the builder's ``as_streaming_dataset``
    returns an ``IterableDataset`` (``IterableDatasetDict`` for ``split=None``) whose rows are
    generated as they are read, in the prepared dataset's order, with the same values: frames as
    ``np.uint16`` arrays, numbers and strings as Python values (``output`` "numpy" or None;
    "torch" is refused: convert each frame with ``torch.from_numpy``).
    """
    from datasets.exceptions import DatasetGenerationError

    builder = builder_cls(config_name=name, cache_dir=cache_dir, **builder_kwargs)
    if streaming:
        if output not in ("numpy", None):
            raise ValueError(f"output={output!r} with streaming=True: streamed rows hold np.uint16 frames (output "
                             "'numpy' or None); convert a frame with torch.from_numpy, or load without streaming")
        return builder.as_streaming_dataset(split=split)
    if num_proc is None:
        num_proc = builder.default_num_proc() if hasattr(builder, "default_num_proc") else None
    try:
        builder.download_and_prepare(download_mode=download_mode, verification_mode=verification_mode,
                                     num_proc=num_proc)
    except DatasetGenerationError as e:
        cause = e.__cause__
        while isinstance(cause, DatasetGenerationError):
            cause = cause.__cause__
        if isinstance(cause, (SourceError, RawFileError)):
            raise cause from e
        raise
    ds = builder.as_dataset(split=split)
    return raw_format(ds, output=output) if output is not None else ds


class single_threaded_torch:
    """Context manager: torch intra-op threads set to 1 inside, restored on exit.

    Dataset generation works on one 256x256 frame or a small batch at a time, where torch's
    thread pool brings little and, on a busy machine, OpenMP threads waiting for a core can
    slow a small kernel a hundredfold; parallelism comes from ``num_proc`` processes instead.
    """

    def __enter__(self) -> "single_threaded_torch":
        import torch

        self._previous = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.set_num_threads(self._previous)


def png_views(isp: Any, raws: np.ndarray, compress_level: int = 1) -> list[dict[str, Any]]:
    """RGB views of raw mosaics for a ``datasets.Image`` column, as encoded 8-bit PNGs.

    Args:
        isp: a ``raw_isp.StaticISP`` (or any callable ``(B, H, W)`` uint16 -> ``(B, 3, H, W)``
            float in [0, 1]).
        raws: uint16 ``(B, H, W)`` mosaics.
        compress_level: zlib level of the PNG (1: about 6x faster than Pillow's default 6 on
            these noisy images, for about 15% more bytes; PNG is lossless at every level).
    Returns:
        ``[{"bytes": png, "path": None}, ...]``, one per frame; the pixels are
        ``round(255 * clip(isp(raw), 0, 1))`` as uint8 ``(H, W, 3)``.
    """
    import torch
    from PIL import Image

    with torch.no_grad():
        rgb = isp(torch.from_numpy(np.ascontiguousarray(raws)))
        pixels = rgb.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    out = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=compress_level)
        out.append({"bytes": buffer.getvalue(), "path": None})
    return out


def warn_empty_split(split: str, unit: str) -> None:
    """Warn that ``split`` got no examples: ``datasets`` cannot store an empty split, and a tiny
    subset may leave one without any (``unit`` names what was too few, e.g. "cells")."""
    warnings.warn(f"the {split} split got no examples (too few {unit} for a 70/15/15 split); it is left out",
                  UserWarning, stacklevel=3)


# ------------------------------------------------------------------ configurations


@dataclass
class RawBuilderConfig(datasets.BuilderConfig):
    """The configuration fields both datasets share. ``kind`` ("raw" or "rgb"), ``ratio`` (one
    intensity, or None for all) and ``isp_variant`` are fixed per config name; the others are
    keyword arguments of ``load_dataset`` (documented there)."""

    kind: str = "raw"
    ratio: float | None = None
    isp_variant: str | None = None
    source: str = "synthetic"
    synthetic_seed: int = 0
    seed: int = 0
    fold: int | None = None
    n_folds: int = 5
    intensity: float | None = None
    files_manifest: str | None = None
    record: str | None = None
    source_fingerprint: str | None = None


def intensity_configs(config_cls: type, base: str, rgb_prefix: str, intensities: Sequence[float],
                      describe: Callable[..., str], **fixed: Any) -> list:
    """The configurations of one family: ``base`` (every intensity), ``base-NNN`` (one each) and
    ``rgb_prefix + variant`` for the 12 ISP variants.

    ``describe(kind, ratio, variant)`` gives each description; ``fixed`` fields go into all.
    """
    from ..isp.config import ISP_VARIANTS

    version = datasets.Version("1.0.0")
    out = [config_cls(name=base, version=version, description=describe("raw", None, None), **fixed)]
    for r in intensities:
        out.append(config_cls(name=f"{base}-{intensity_tag(r)}", version=version, ratio=float(r),
                              description=describe("raw", float(r), None), **fixed))
    for v in ISP_VARIANTS:
        out.append(config_cls(name=f"{rgb_prefix}{v}", version=version, kind="rgb", isp_variant=v,
                              description=describe("rgb", None, v), **fixed))
    return out


# ------------------------------------------------------------------ the builder


class RawDatasetBuilder(datasets.GeneratorBasedBuilder):
    """Base builder of a raw-image dataset; see the module docstring.

    Class attributes a dataset sets: the ``datasets`` ones (``BUILDER_CONFIGS``,
    ``BUILDER_CONFIG_CLASS``, ``DEFAULT_CONFIG_NAME``), ``CAMERA`` (``raw_isp.CAMERAS`` key of
    the ``rgb-*`` views), ``IMAGE_SHAPE`` (default 256x256), ``INTENSITIES`` (default the
    study's seven ratios), and for the Zenodo record ``ZENODO_NAMES`` (patterns of record file
    names that name the dataset), ``LAYOUT_MARKS`` (patterns of archive members only its layout
    has) and ``RECORD_SIBLINGS`` (modules of the other datasets of the record, whose patterns
    tell their files apart). Derived from the package by convention unless set:
    ``DATASET_NAME`` (the package, e.g. ``raw_drone``: the cache folder name), ``TITLE``
    (``Raw-Drone``), ``PACKAGE_DIR`` (hashed with ``raw_isp`` for the cache), ``MANIFEST_ENV``
    (``RAW_DRONE_MANIFEST``) and ``DEFAULT_MANIFEST`` (``zenodo_files.json`` beside the builder).

    What a dataset implements: :meth:`_features`, :meth:`_split_shards`,
    :meth:`_generation_state` and :meth:`_shard_rows`; optionally :meth:`_check_options`,
    :meth:`_large_synthetic` and :meth:`_split_unit`.

    Runtime options (not part of the configuration, so they do not change the cache):
    ``download_timeout`` (seconds without data before a download fails, default
    ``$RAW_ISP_DOWNLOAD_TIMEOUT`` or 60) and ``extract_limits``
    (:class:`raw_isp.data.archive.ExtractLimits`).
    """

    BUILDER_CONFIG_CLASS = RawBuilderConfig
    DEFAULT_WRITER_BATCH_SIZE = 64
    DATASET_NAME: str = "raw"
    TITLE: str = "raw dataset"
    PACKAGE_DIR: Path = Path(__file__).parent
    INTENSITIES: tuple[float, ...] = tuple(float(r) for r in INTENSITY_RATIOS)
    IMAGE_SHAPE: tuple[int, int] = (256, 256)
    CAMERA: str = "neutral"
    SOURCES: tuple[str, ...] = ("synthetic", "local", "zenodo")
    MANIFEST_ENV: str = ""
    DEFAULT_MANIFEST: Path | None = None
    ZENODO_RECORD: str = ZENODO_RECORD
    ZENODO_NAMES: tuple[str, ...] = ()
    LAYOUT_MARKS: tuple[str, ...] = ()
    RECORD_SIBLINGS: tuple[str, ...] = ()
    HOMEPAGE = f"https://doi.org/10.5281/zenodo.{ZENODO_RECORD}"
    LICENSE = "cc-by-4.0"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        package = cls.__module__.split(".")[0]
        here = Path(inspect.getfile(cls))
        derived = {"DATASET_NAME": package, "TITLE": package.replace("_", "-").title(), "PACKAGE_DIR": here.parent,
                   "MANIFEST_ENV": f"{package.upper()}_MANIFEST",
                   "DEFAULT_MANIFEST": here.with_name("zenodo_files.json")}
        for name, value in derived.items():
            if name not in cls.__dict__:
                setattr(cls, name, value)

    @classmethod
    def record_hints(cls) -> RecordHints:
        """How this dataset's files are told apart from those of the other datasets of its record
        (the builders of ``RECORD_SIBLINGS``, imported here)."""
        for module in cls.RECORD_SIBLINGS:
            importlib.import_module(module)
        found, todo = [], list(RawDatasetBuilder.__subclasses__())
        while todo:
            sub = todo.pop()
            todo.extend(sub.__subclasses__())
            if sub.ZENODO_RECORD == cls.ZENODO_RECORD and sub.DATASET_NAME != cls.DATASET_NAME and sub.ZENODO_NAMES:
                found.append(sub)
        return RecordHints(cls.TITLE, cls.ZENODO_NAMES, tuple(p for s in found for p in s.ZENODO_NAMES),
                           cls.LAYOUT_MARKS, tuple(p for s in found for p in s.LAYOUT_MARKS))

    def __init__(self, *args: Any, download_timeout: float | None = None,
                 extract_limits: ExtractLimits | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("dataset_name", self.DATASET_NAME)
        kwargs.setdefault("hash", builder_code_hash(self.PACKAGE_DIR))
        if kwargs.get("record") is not None:
            kwargs["record"] = record_id(kwargs["record"])
            if kwargs["record"] == self.ZENODO_RECORD:
                del kwargs["record"]  # the default: the same cache as a load that does not name it
        if kwargs.get("source_fingerprint") is None:
            fingerprint = self._source_fingerprint(kwargs)
            if fingerprint is not None:
                kwargs["source_fingerprint"] = fingerprint
        if download_timeout is not None:
            _check_timeout(download_timeout)
        if extract_limits is not None and not isinstance(extract_limits, ExtractLimits):
            raise TypeError(f"extract_limits must be a raw_isp.data.archive.ExtractLimits, got "
                            f"{type(extract_limits).__name__}")
        self.download_timeout = download_timeout
        self.extract_limits = extract_limits
        super().__init__(*args, **kwargs)
        self._check_config()
        self._main_pid = os.getpid()

    # -- identity and configuration
    def _source_fingerprint(self, kwargs: dict[str, Any]) -> str | None:
        source = kwargs.get("source") or "synthetic"
        if source == "local" and kwargs.get("data_dir") and Path(kwargs["data_dir"]).exists():
            return fingerprint_tree(Path(kwargs["data_dir"]))
        if source != "zenodo":
            return None
        h = hashlib.sha256(f"{zenodo_api()}|{kwargs.get('record') or self.ZENODO_RECORD}".encode())
        manifest = self._manifest_path(kwargs.get("files_manifest"))
        if manifest is not None and manifest.is_file():
            h.update(manifest.read_bytes())
        return h.hexdigest()[:16]

    def _explicit_manifest(self, files_manifest: Any = None) -> str | None:
        """The manifest the user named: ``files_manifest=``, else ``$MANIFEST_ENV``, else None."""
        return files_manifest or (os.environ.get(self.MANIFEST_ENV) if self.MANIFEST_ENV else None) or None

    def _manifest_path(self, files_manifest: Any = None) -> Path | None:
        """The manifest that applies: the user's, else the shipped pin."""
        explicit = self._explicit_manifest(files_manifest)
        return Path(explicit).expanduser() if explicit else self.DEFAULT_MANIFEST

    def _check_config(self) -> None:
        c = self.config
        if c.source not in self.SOURCES:
            raise ValueError(f"source must be one of {self.SOURCES}, got {c.source!r}")
        self._check_options()
        check_int("synthetic_seed", c.synthetic_seed, 0)
        check_int("seed", c.seed, 0)
        if c.fold is not None:
            check_int("n_folds", c.n_folds, 3)
            if isinstance(c.fold, bool) or not isinstance(c.fold, (int, np.integer)) or not 0 <= c.fold < c.n_folds:
                raise ValueError(f"fold must be an integer in 0..{c.n_folds - 1} (n_folds={c.n_folds}), got {c.fold!r}")
        if c.intensity is not None:
            if float(c.intensity) not in self.INTENSITIES:
                raise ValueError(f"intensity must be one of {self.INTENSITIES}, got {c.intensity!r}")
            if c.kind == "raw" and (c.ratio is None or float(c.intensity) != c.ratio):
                fixed = "all intensities" if c.ratio is None else f"intensity {c.ratio}"
                base = c.name if c.ratio is None else c.name.rsplit("-", 1)[0]
                raise ValueError(
                    f"config {c.name!r} holds {fixed}; for intensity {c.intensity} use the config "
                    f"'{base}-{intensity_tag(c.intensity)}' ({type(self).__module__.split('.')[0]}.load_dataset("
                    f"'{base}', intensity=...) picks it)"
                )
        if c.source == "local" and not c.data_dir:
            raise ValueError("source='local' needs data_dir= (a folder or .zip with the real data's layout)")
        if c.source != "local" and c.data_dir:
            raise ValueError(f"data_dir is only used with source='local' (got source={c.source!r})")
        for name in ("record", "files_manifest"):
            if c.source != "zenodo" and getattr(c, name) is not None:
                raise ValueError(f"{name} is only used with source='zenodo' (got source={c.source!r})")

    def _check_options(self) -> None:
        """Checks of the dataset's own configuration fields (raise ``ValueError``)."""

    def _ratios(self) -> tuple[float, ...]:
        """The intensity ratios this configuration holds."""
        c = self.config
        if c.kind == "rgb":
            return (float(c.intensity) if c.intensity is not None else 1.0,)
        return (c.ratio,) if c.ratio is not None else tuple(float(r) for r in self.INTENSITIES)

    def _large_synthetic(self) -> bool:
        """Whether the synthetic source is big enough to be worth several processes."""
        return False

    def default_num_proc(self) -> int | None:
        """Processes for generation: 2-4 for a large synthetic source (see :meth:`_large_synthetic`),
        else one."""
        if self.config.source != "synthetic" or not self._large_synthetic():
            return None
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(4, cores)) if cores > 1 else None

    def _features(self, image: Any) -> dict[str, Any]:
        """The dataset's features, given its ``image`` feature (raw ``Array2D`` or RGB ``Image``)."""
        raise NotImplementedError

    def _info(self) -> datasets.DatasetInfo:
        c = self.config
        image = raw_image_feature(self.IMAGE_SHAPE) if c.kind == "raw" else datasets.Image()
        return datasets.DatasetInfo(
            description=c.description or "",
            features=datasets.Features(self._features(image)),
            homepage=self.HOMEPAGE,
            license=self.LICENSE,
            citation=STUDY_CITATION,
        )

    # -- sources
    def _want_archive(self, folder: tuple[str, ...]) -> bool:
        """Open an archive found in the data unless it is the ``raw_scaleNNN.zip`` of an
        intensity this configuration does not use."""
        found = re.fullmatch(r"raw_scale(\d{3})", folder[-1], re.I) if folder else None
        return found is None or found.group(1) in {intensity_tag(r) for r in self._ratios()}

    def _data_tree(self, dl_manager: Any) -> tuple[LayoutTree, str]:
        """The local copy or the Zenodo files as a :class:`LayoutTree`, and how to name it in messages."""
        c = self.config
        extract_root = Path(self._cache_downloaded_dir) / "raw_isp_extracted"
        if c.source == "local":
            data_dir = Path(c.data_dir).expanduser()
            return LayoutTree.from_path(data_dir, extract_root, self.extract_limits, self._want_archive), str(data_dir)
        return self._zenodo_tree(dl_manager, extract_root)

    def _zenodo_tree(self, dl_manager: Any, extract_root: Path) -> tuple[LayoutTree, str]:
        c = self.config
        record = c.record or self.ZENODO_RECORD
        explicit = self._explicit_manifest(c.files_manifest) is not None
        pin = self._manifest_path(c.files_manifest)
        entries = load_manifest(pin, allow_empty=not explicit) if pin is not None and (explicit or pin.is_file()) \
            else []
        if entries and not explicit and manifest_record(pin) not in (None, record):
            entries = []  # the shipped pin is for another record
        if entries:
            if any(e.url is None for e in entries):
                found = fetch_record(dl_manager, record, timeout=self.download_timeout)
                try:
                    entries = resolve_entries(entries, found)
                except SourceError:
                    forget_record(dl_manager, found)  # a listing that led to an error is not kept
                    raise
            where = f"the files of {pin}"
        else:
            found = fetch_record(dl_manager, record, timeout=self.download_timeout)
            tags = {intensity_tag(r) for r in self._ratios()}
            try:
                files = choose_files(found, self.record_hints(), tags,
                                     lambda f: peek_members(dl_manager, found, f, self.download_timeout))
            except SourceError:
                forget_record(dl_manager, found)  # a listing that led to an error is not kept
                raise
            entries = record_entries(files, found.id)
            where = f"Zenodo record {found.id} ({zenodo_api()}; files {', '.join(f.key for f in files)})"
        tree = LayoutTree(extract_root, self.extract_limits, self._want_archive)
        for entry in entries:
            local = fetch_verified(dl_manager, entry, self.download_timeout)
            key = entry.key if entry.verified else f"{Path(entry.name).stem}-{file_sha256(local)[:16]}"
            try:
                tree.add_named(entry.path or entry.name, local, key, archive=entry.extract)
            except ArchiveError as e:
                discard_download(local, self._cache_downloaded_dir)
                raise SourceError(f"{entry.name} (from {entry.url}): {e}") from e
        return tree, where

    # -- splits
    def _assign_splits(self, groups: Sequence[str], strata: Sequence[Any] | None = None) -> dict[str, str]:
        """``{group: split}``: 70/15/15 grouped (and stratified) by ``seed``, or the k-fold round."""
        c = self.config
        if c.fold is None:
            names = split_assignment(groups, strata, seed=c.seed)
        else:
            names = kfold_split(groups, strata, fold=c.fold, n_folds=c.n_folds, seed=c.seed)
        return dict(zip(groups, names))

    def _split_shards(self, dl_manager: Any) -> dict[str, list[Any]]:
        """``{split: [shard, ...]}``: the units of work (each turned into rows by :meth:`_shard_rows`)."""
        raise NotImplementedError

    def _split_unit(self) -> str:
        """What a split is made of, for the empty-split warning (e.g. "cells")."""
        return "examples"

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        shards = self._split_shards(dl_manager)
        out = []
        for split in SPLIT_NAMES:
            if shards.get(split):
                out.append(datasets.SplitGenerator(name=split, gen_kwargs={"shards": shards[split]}))
            else:
                warn_empty_split(split, self._split_unit())
        return out

    # -- examples
    def _generation_state(self) -> Any:
        """Whatever :meth:`_shard_rows` needs once per generation (e.g. the simulator)."""
        return None

    def _shard_rows(self, shard: Any, state: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(key, example)`` pairs of one shard, ``example["image"]`` a raw uint16 frame."""
        raise NotImplementedError

    def _generate_examples(self, shards: list) -> Iterator[tuple[str, dict[str, Any]]]:
        c = self.config
        with single_threaded_torch():
            state = self._generation_state()
            isp = None
            if c.kind == "rgb":
                from ..isp.static import StaticISP

                isp = StaticISP(c.isp_variant, camera=self.CAMERA)
            for shard in shards:
                rows = list(self._shard_rows(shard, state))
                if isp is not None and rows:
                    for (_, example), view in zip(rows, png_views(isp, np.stack([ex["image"] for _, ex in rows]))):
                        example["image"] = view
                yield from rows

    # -- loading
    @classmethod
    def load(cls, name: str, split: str | None = None, *, cache_dir: str | None = None, download_mode: Any = None,
             num_proc: int | None = None, output: str | None = "numpy", download_timeout: float | None = None,
             extract_limits: ExtractLimits | None = None, streaming: bool = False,
             **options: Any) -> datasets.Dataset | datasets.DatasetDict:
        """Prepare and load configuration ``name``: the body of the packages' ``load_dataset``, with
        the conventions of ``datasets.load_dataset``.

        Args:
            name: a configuration of ``BUILDER_CONFIGS``.
            split: None (a ``DatasetDict`` with train, validation, test) or a split name or
                expression ("train", "test[:10]", ...) for one ``Dataset``.
            cache_dir, download_mode: as in ``datasets.load_dataset``.
            num_proc: processes for generation (default: 2-4 for a large synthetic source, else 1).
            output: "numpy" (default: frames as ``np.uint16`` arrays), "torch" (``torch.uint16``
                tensors), or None (the plain ``datasets`` formatting); see
                ``raw_isp.data.arrow.raw_format``.
            download_timeout: seconds without data before a download fails (default
                ``$RAW_ISP_DOWNLOAD_TIMEOUT`` or 60).
            extract_limits: :class:`raw_isp.data.archive.ExtractLimits` for the zip archives.
            streaming: True returns an ``IterableDataset`` (``IterableDatasetDict``) generated
                as it is read, nothing cached; the rows equal the prepared ones, frames uint16
                (see :func:`build_and_load`).
            **options: configuration fields. Every raw dataset takes ``source`` ("synthetic",
                the default; "local", which needs ``data_dir``, a folder or .zip of the real
                data; or "zenodo"), ``intensity`` (a ratio of ``INTENSITIES``: with an
                all-intensity raw configuration it selects the one-intensity configuration
                "<name>-NNN", with an "rgb" one the ratio the view is made from, default 1.0),
                ``fold`` / ``n_folds`` (cross-validation round: test = fold, validation =
                fold + 1 mod n_folds), ``seed`` (of the split), ``synthetic_seed`` (of the
                simulator), ``record`` (the Zenodo record for "zenodo", id or DOI, default
                5235536; the API is ``$RAW_ISP_ZENODO_API``, default https://zenodo.org/api)
                and ``files_manifest`` (a manifest that pins the files for "zenodo"; default
                ``$<PACKAGE>_MANIFEST``, else the record's listing decides); each dataset adds
                its own.
        Returns:
            ``datasets.DatasetDict`` or ``datasets.Dataset``.
        Raises:
            TypeError: an option the dataset does not take.
            ValueError: an unknown configuration or a bad option value.

        Options equal to the configuration defaults are left out, so the cache folder of a
        default load is the same through here or through the builder directly.
        """
        fixed = {"name", "version", "data_files", "description", "kind", "ratio", "isp_variant",
                 "source_fingerprint"}
        allowed = {f.name for f in dataclasses.fields(cls.BUILDER_CONFIG_CLASS)} - fixed
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise TypeError(f"{cls.__module__.split('.')[0]}.load_dataset() got unexpected keyword argument(s) "
                            f"{unknown}; it takes {sorted(allowed)} and cache_dir, download_mode, num_proc, output, "
                            "download_timeout, extract_limits, streaming")
        configs = {c.name: c for c in cls.BUILDER_CONFIGS}
        if name not in configs:
            raise ValueError(f"unknown {cls.TITLE} config {name!r}; choose one of {list(configs)}")
        intensity = options.get("intensity")
        if intensity is not None and configs[name].kind == "raw" and configs[name].ratio is None:
            if float(intensity) not in cls.INTENSITIES:
                raise ValueError(f"intensity must be one of {cls.INTENSITIES}, got {intensity!r}")
            name, options["intensity"] = f"{name}-{intensity_tag(intensity)}", None
        for key in ("data_dir", "files_manifest"):
            if options.get(key) is not None:
                options[key] = os.fspath(options[key])
        defaults = {f.name: f.default for f in dataclasses.fields(cls.BUILDER_CONFIG_CLASS)}
        kwargs = {k: v for k, v in options.items() if v is not None and v != defaults.get(k)}
        if download_timeout is not None:
            kwargs["download_timeout"] = download_timeout
        if extract_limits is not None:
            kwargs["extract_limits"] = extract_limits
        return build_and_load(cls, name, split, cache_dir=cache_dir, download_mode=download_mode,
                              num_proc=num_proc, output=output, streaming=bool(streaming), **kwargs)
