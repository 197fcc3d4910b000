"""Raw-Drone as a Hugging Face dataset: :class:`RawDrone` and :func:`load_dataset`.

Configs (:data:`CONFIG_NAMES`), for each task ``segmentation`` and ``classification``:

- ``"<task>"``: the raw 256x256 tiles at all seven intensity ratios, one row per (tile, ratio),
  the ratio in ``intensity`` (548 x 7 segmentation rows and 930 x 7 classification rows in
  the real sizes).
- ``"<task>-100"``, ``"-075"``, ``"-050"``, ``"-025"``, ``"-010"``, ``"-005"``, ``"-001"``: one
  ratio each (the digits of the real data's ``raw_scaleNNN`` folders).
- ``"<task>-rgb-<variant>"`` for each of the 12 ``raw_isp.ISP_VARIANTS``: RGB views made here by
  ``raw_isp.StaticISP(variant, camera="drone")`` from each tile at intensity 1.0 (the
  ``intensity`` kwarg selects another), stored as 8-bit PNG (``datasets.Image``, ``round(255 *
  rgb)``); see :mod:`raw_microscopy.builder` for the reasons.

Features: ``image`` (``Array2D((256, 256), "uint16")``, bit-exact to the source frame or tile;
a PNG image in rgb configs), ``mask`` (``Array2D((256, 256), "uint8")``, 1 = car, 0 = background;
segmentation) or ``label`` (``ClassLabel`` ``no_car, car``; classification), ``tile_id``
(stable across intensities), ``source_image`` (the full frame the tile was cut from),
``car_fraction`` (float32, share of car pixels in the tile) and ``intensity`` (float32).

Tiles: disjoint 256x256 tiles on a grid from each frame's top-left corner; segmentation keeps
the tiles with at least one car pixel, classification a balanced set of car tiles (car fraction
> 0.01) and no-car tiles (fraction 0). Real full frames are tiled by the simulator's own code
(``DroneSimulator.tile_index`` and ``select``, run over the real car masks), so real and
synthetic data follow one rule.

Splits: ``split_mode="grouped"`` (default): train / validation / test about 70/15/15 of the
source frames (all frames, so the assignment is the same for both tasks and every intensity),
so the tiles of one frame never straddle splits; fixed by ``seed``. ``split_mode="random"``
reproduces the Raw2Logit study's tile-level random split (the intensities of one tile stay
together, but neighbouring tiles of one frame land in different splits: it leaks; use it only to
reproduce the study). Cross-validation: ``fold=k, n_folds=n`` (test = fold k, validation = fold
(k+1) mod n), grouped or random likewise.

Sources (``source=``):

- ``"synthetic"`` (default): :class:`raw_drone.DroneSimulator` (``num_scenes`` frames of
  ``frame_height`` x ``frame_width``, seed ``synthetic_seed``), 548 segmentation or 930
  classification tiles, or ``num_tiles``.
- ``"local"``: a copy of the real data in ``data_dir`` in the Raw2Logit layout, detected
  (``layout="auto"``) in this order: full frames ``images_full/raw_scaleNNN/<stem>.tif`` (or
  ``.tiff``, ``.dng``, ``.DNG``) with masks ``masks_full/<stem>.png`` (any nonzero colour = car;
  an alpha channel is ignored), tiled here; or pre-tiled ``images_tiles_256/raw_scaleNNN/<id>.tif``
  with ``masks_tiles_256/<id>.png``, where ``<id>`` is ``<frame>_<number>`` as the Raw2Logit code
  names tiles (the frame part becomes ``source_image``; other names make each tile its own
  group, with a warning). Pre-tiled classification labels follow the car-fraction rule; tiles
  with a fraction in (0, 0.01] are skipped. Zip archives are accepted as for Raw-Microscopy.
  Frames without a mask are skipped with a warning; a mask whose size differs from its frame,
  or an unreadable image, is an error naming the file.
- ``"zenodo"``: the files of ``zenodo_files.json`` beside this module (or ``files_manifest=`` or
  ``$RAW_DRONE_MANIFEST``), downloaded with the ``datasets`` download manager, size- and
  SHA-256-checked, extracted safely, then read as ``"local"``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np

import datasets
from raw_drone.synthetic import (
    CLASS_NAMES,
    DEFAULT_FRAME_SHAPE,
    INTENSITIES,
    MIN_CAR_FRACTION,
    NUM_CLASSIFICATION_TILES,
    NUM_SCENES,
    NUM_SEGMENTATION_TILES,
    TILE_SIZE,
    DroneSimulator,
    TileInfo,
)
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
    mask_feature,
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

__all__ = ["RawDrone", "RawDroneConfig", "load_dataset", "CONFIG_NAMES", "TASKS", "intensity_tag",
           "read_mask", "MANIFEST_ENV", "DEFAULT_MANIFEST"]

TASKS = ("segmentation", "classification")
SOURCES = ("synthetic", "local", "zenodo")
SPLIT_MODES = ("grouped", "random")
LAYOUTS = ("auto", "full", "tiles")
MANIFEST_ENV = "RAW_DRONE_MANIFEST"
DEFAULT_MANIFEST = Path(__file__).with_name("zenodo_files.json")
TILE_SHAPE = (TILE_SIZE, TILE_SIZE)
_FRAME_SUFFIXES = (".tif", ".tiff", ".dng", ".DNG", ".TIF", ".TIFF")
_MASK_SUFFIXES = (".png", ".PNG")
_TILE_NAME = re.compile(r"^(?P<source>.+)_(?P<number>\d+)$")


def intensity_tag(ratio: float) -> str:
    """``"100"`` for 1.0, ``"075"`` for 0.75, ... ``"001"`` for 0.01 (as in ``raw_scaleNNN``)."""
    return f"{int(round(float(ratio) * 100)):03d}"


_RATIO_OF_TAG = {intensity_tag(r): float(r) for r in INTENSITIES}


@dataclass
class RawDroneConfig(datasets.BuilderConfig):
    """A Raw-Drone configuration. ``task``, ``kind``, ``ratio`` and ``isp_variant`` are fixed per
    config name; the others are the keyword arguments of :func:`load_dataset`."""

    task: str = "segmentation"
    kind: str = "raw"
    ratio: float | None = None
    isp_variant: str | None = None
    source: str = "synthetic"
    num_tiles: int | None = None
    num_scenes: int = NUM_SCENES
    frame_height: int = DEFAULT_FRAME_SHAPE[0]
    frame_width: int = DEFAULT_FRAME_SHAPE[1]
    synthetic_seed: int = 0
    seed: int = 0
    split_mode: str = "grouped"
    fold: int | None = None
    n_folds: int = 5
    intensity: float | None = None
    layout: str = "auto"
    files_manifest: str | None = None
    source_fingerprint: str | None = None


def _configs() -> list[RawDroneConfig]:
    version = datasets.Version("1.0.0")
    target = {"segmentation": "a car mask (uint8 0/1)", "classification": "a car / no-car label"}
    out = []
    for task in TASKS:
        out.append(RawDroneConfig(
            name=task, version=version, task=task,
            description=f"Raw RGGB tiles (uint16, 256x256) with {target[task]}, at all seven intensity ratios; "
                        "one row per (tile, ratio), the ratio in 'intensity'."))
        for r in INTENSITIES:
            out.append(RawDroneConfig(
                name=f"{task}-{intensity_tag(r)}", version=version, task=task, ratio=float(r),
                description=f"Raw RGGB tiles (uint16, 256x256) with {target[task]}, at intensity ratio {r} only."))
        for v in ISP_VARIANTS:
            out.append(RawDroneConfig(
                name=f"{task}-rgb-{v}", version=version, task=task, kind="rgb", isp_variant=v,
                description=f"RGB views (8-bit PNG, 256x256) of the tiles made by raw_isp.StaticISP('{v}', "
                            f"camera='drone'), with {target[task]}, at intensity 1.0 unless 'intensity' says "
                            "otherwise."))
    return out


_CONFIGS = _configs()
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RawDroneConfig)}
CONFIG_NAMES: tuple[str, ...] = tuple(c.name for c in _CONFIGS)


class _Tile(NamedTuple):
    tile_id: str
    source_image: str
    row: int
    col: int
    car_fraction: float


class _Job(NamedTuple):
    """The tiles of one split cut from one source: a synthetic scene, a real full frame, or one
    pre-tiled file. ``files`` maps ratio -> image path (local), ``mask`` is the mask path."""

    source_image: str
    scene: int | None
    files: tuple[tuple[float, str], ...]
    mask: str | None
    tiles: tuple[_Tile, ...]


def _check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a car mask image as uint8 ``(H, W)``, 1 where any colour channel is nonzero.

    Any image Pillow reads (PNG, TIFF, ...): grey, palette, RGB or with alpha (the alpha channel
    is ignored, so a transparent background does not count as car).

    Raises:
        SourceError: missing or unreadable file.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            arr = np.asarray(im)
            bands = im.getbands()
    except FileNotFoundError:
        raise SourceError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise SourceError(f"{path}: cannot read the mask image ({e})") from e
    if arr.ndim == 3:
        keep = [i for i, b in enumerate(bands) if b != "A"] or [0]
        arr = arr[..., keep]
        return (arr != 0).any(axis=-1).astype(np.uint8)
    return (arr != 0).astype(np.uint8)


class _MaskTiler(DroneSimulator):
    """Adapter: the simulator's own tile index and tile selection, run over real car masks.

    ``car_mask(k)`` reads frame ``k``'s mask file instead of rendering a scene; everything else
    (the tile grid, car fractions, the seeded ranking and the balanced classification set) is
    ``DroneSimulator``'s code unchanged.
    """

    def __init__(self, mask_paths: list[str], shape: tuple[int, int], seed: int = 0) -> None:
        super().__init__(seed=seed, num_scenes=len(mask_paths), height=shape[0], width=shape[1], workers=1)
        self._mask_paths = mask_paths

    def car_mask(self, k: int) -> np.ndarray:
        path = self._mask_paths[self._check_scene(k)]
        mask = read_mask(path)
        if mask.shape != (self.height, self.width):
            raise SourceError(f"{path}: mask has shape {mask.shape}, but the other masks have "
                              f"{(self.height, self.width)}; all full frames must have one size")
        return mask


def _find_files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix in suffixes and not p.name.startswith("."):
            out.setdefault(p.stem, p)
    return out


def _find_dirs(roots: list[tuple[Path, str | None]], images: str, masks: str
               ) -> tuple[dict[float, Path], Path | None]:
    folders: dict[float, Path] = {}
    mask_dir = None
    for root, zip_parent in roots:
        for tag, ratio in _RATIO_OF_TAG.items():
            extra = (root / f"raw_scale{tag}",) if zip_parent == images else ()
            for candidate in (root / images / f"raw_scale{tag}",) + extra:
                if ratio not in folders and candidate.is_dir():
                    folders[ratio] = candidate
        if mask_dir is None:
            if (root / masks).is_dir():
                mask_dir = root / masks
            elif zip_parent == masks:
                mask_dir = root
    return folders, mask_dir


# ------------------------------------------------------------------ builder


class RawDrone(datasets.GeneratorBasedBuilder):
    """Raw-Drone builder. See the module docstring for configs, features, splits and sources."""

    BUILDER_CONFIG_CLASS = RawDroneConfig
    BUILDER_CONFIGS = _CONFIGS
    DEFAULT_CONFIG_NAME = "segmentation"
    DEFAULT_WRITER_BATCH_SIZE = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("dataset_name", "raw_drone")
        kwargs.setdefault("hash", builder_code_hash(Path(__file__).parent))
        source = kwargs.get("source") or "synthetic"
        if kwargs.get("source_fingerprint") is None:
            if source == "local" and kwargs.get("data_dir") and Path(kwargs["data_dir"]).exists():
                kwargs["source_fingerprint"] = fingerprint_tree(Path(kwargs["data_dir"]))
            elif source == "zenodo":
                manifest = manifest_path(kwargs.get("files_manifest"), MANIFEST_ENV, DEFAULT_MANIFEST)
                if manifest.is_file():
                    kwargs["source_fingerprint"] = file_sha256(manifest)[:16]
        super().__init__(*args, **kwargs)
        self._check_config()
        self._main_pid = os.getpid()

    # -- configuration
    def _check_config(self) -> None:
        c = self.config
        for name, value, allowed in (("source", c.source, SOURCES), ("split_mode", c.split_mode, SPLIT_MODES),
                                     ("layout", c.layout, LAYOUTS), ("task", c.task, TASKS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        _check_int("num_tiles", c.num_tiles, 1, allow_none=True)
        _check_int("num_scenes", c.num_scenes, 1)
        _check_int("frame_height", c.frame_height, TILE_SIZE)
        _check_int("frame_width", c.frame_width, TILE_SIZE)
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
                    f"'{c.task}-{intensity_tag(c.intensity)}' (raw_drone.load_dataset('{c.task}', intensity=...) "
                    "picks it)"
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

    def _num_tiles(self) -> int:
        c = self.config
        if c.num_tiles is not None:
            return c.num_tiles
        return NUM_SEGMENTATION_TILES if c.task == "segmentation" else NUM_CLASSIFICATION_TILES

    def default_num_proc(self) -> int | None:
        """Processes for generation: 2-4 for a synthetic source of at least four default-size
        frames (one process per scene at a time), else one."""
        c = self.config
        if c.source != "synthetic" or c.num_scenes * c.frame_height * c.frame_width < 4 * 2560 * 3840:
            return None
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(4, cores)) if cores > 1 else None

    def _info(self) -> datasets.DatasetInfo:
        c = self.config
        features: dict[str, Any] = {"image": raw_image_feature(TILE_SHAPE) if c.kind == "raw" else datasets.Image()}
        if c.task == "segmentation":
            features["mask"] = mask_feature(TILE_SHAPE)
        else:
            features["label"] = datasets.ClassLabel(names=list(CLASS_NAMES))
        features.update({
            "tile_id": datasets.Value("string"),
            "source_image": datasets.Value("string"),
            "car_fraction": datasets.Value("float32"),
            "intensity": datasets.Value("float32"),
        })
        return datasets.DatasetInfo(
            description=c.description or "",
            features=datasets.Features(features),
            homepage="https://doi.org/10.5281/zenodo.5235536",
            license="cc-by-4.0",
            citation=STUDY_CITATION,
        )

    # -- sources: every source yields jobs (tiles grouped by source) and the list of all frames
    def _synthetic_jobs(self) -> tuple[list[_Job], list[str]]:
        c = self.config
        sim = DroneSimulator(seed=c.synthetic_seed, num_scenes=c.num_scenes, height=c.frame_height,
                             width=c.frame_width, workers=1)
        n = self._num_tiles()
        chosen = sim.select(n, 0)["segmentation"] if c.task == "segmentation" else sim.select(0, n)["classification"]
        jobs = []
        for k in range(c.num_scenes):
            tiles = tuple(_Tile(t.tile_id, sim.scene_id(k), t.row, t.col, t.car_fraction)
                          for t in chosen if t.scene == k)
            if tiles:
                jobs.append(_Job(sim.scene_id(k), k, (), None, tiles))
        return jobs, [sim.scene_id(k) for k in range(c.num_scenes)]

    def _full_frame_jobs(self, folders: dict[float, Path], mask_dir: Path, where: str
                         ) -> tuple[list[_Job], list[str]]:
        c = self.config
        ratios = self._ratios()
        _check_folders(folders, ratios, "images_full", where)
        frames = {r: _find_files(folders[r], _FRAME_SUFFIXES) for r in ratios}
        masks = _find_files(mask_dir, _MASK_SUFFIXES)
        stems = sorted(set().union(*frames.values()))
        usable = []
        for stem in stems:
            if stem not in masks:
                warnings.warn(f"{mask_dir}: no mask {stem}.png for frame {stem}; skipping the frame",
                              UserWarning, stacklevel=3)
                continue
            absent = [r for r in ratios if stem not in frames[r]]
            if absent:
                warnings.warn(f"{folders[absent[0]]}: no frame {stem} at intensity {absent[0]}; skipping the frame",
                              UserWarning, stacklevel=3)
                continue
            usable.append(stem)
        if not usable:
            raise SourceError(f"{where}: no full frame with a mask in {mask_dir}")
        first = read_mask(masks[usable[0]])
        try:
            tiler = _MaskTiler([str(masks[s]) for s in usable], first.shape)
        except ValueError as e:
            raise SourceError(f"{masks[usable[0]]}: cannot tile frames of shape {first.shape}: {e}") from e
        counts = tiler.tile_index()
        if c.num_tiles is not None:
            n = c.num_tiles
        elif c.task == "segmentation":
            n = sum(t.car_fraction > 0 for t in counts)
        else:
            n = 2 * min(sum(t.car_fraction > MIN_CAR_FRACTION for t in counts),
                        sum(t.car_fraction == 0 for t in counts))
        try:
            picked = tiler.select(n, 0) if c.task == "segmentation" else tiler.select(0, n)
            chosen = picked[c.task]
        except ValueError as e:
            raise SourceError(f"{where}: {e}") from e
        jobs = []
        for k, stem in enumerate(usable):
            tiles = tuple(_Tile(f"{stem}_r{t.row:02d}_c{t.col:02d}", stem, t.row, t.col, t.car_fraction)
                          for t in chosen if t.scene == k)
            if tiles:
                jobs.append(_Job(stem, None, tuple((r, str(frames[r][stem])) for r in ratios), str(masks[stem]), tiles))
        # Split over every frame with a mask and a file at any intensity (not only the ones
        # usable here), so that a frame lands in the same split in every config.
        anywhere = set().union(*(_find_files(f, _FRAME_SUFFIXES) for f in folders.values()))
        return jobs, sorted(anywhere & set(masks))

    def _tile_jobs(self, folders: dict[float, Path], mask_dir: Path, where: str) -> tuple[list[_Job], list[str]]:
        c = self.config
        ratios = self._ratios()
        _check_folders(folders, ratios, "images_tiles_256", where)
        files = {r: _find_files(folders[r], _FRAME_SUFFIXES) for r in ratios}
        masks = _find_files(mask_dir, _MASK_SUFFIXES)
        jobs, unnamed, skipped = [], 0, 0
        for stem in sorted(set().union(*files.values())):
            if stem not in masks or any(stem not in files[r] for r in ratios):
                skipped += 1
                continue
            mask = read_mask(masks[stem])
            if mask.shape != TILE_SHAPE:
                raise SourceError(f"{masks[stem]}: mask has shape {mask.shape}, expected {TILE_SHAPE}")
            fraction = float(mask.mean(dtype=np.float64))
            if c.task == "segmentation" and fraction == 0:
                continue
            if c.task == "classification" and 0 < fraction <= MIN_CAR_FRACTION:
                continue
            m = _TILE_NAME.match(stem)
            unnamed += m is None
            source = m.group("source") if m else stem
            tile = _Tile(stem, source, 0, 0, fraction)
            jobs.append(_Job(source, None, tuple((r, str(files[r][stem])) for r in ratios), str(masks[stem]), (tile,)))
            if c.num_tiles is not None and len(jobs) >= c.num_tiles:
                break
        if skipped:
            warnings.warn(f"{where}: skipped {skipped} tile(s) without a mask or without a file at every "
                          "requested intensity", UserWarning, stacklevel=3)
        if unnamed:
            warnings.warn(f"{where}: {unnamed} tile name(s) are not '<frame>_<number>'; those tiles are their own "
                          "split groups (their source frame is unknown)", UserWarning, stacklevel=3)
        if not jobs:
            raise SourceError(f"{where}: no usable {c.task} tiles in the pre-tiled layout")
        # Split over the frames of every tile with a mask (whatever the task keeps), so that a
        # frame lands in the same split in every config.
        every = set().union(*(_find_files(f, _FRAME_SUFFIXES) for f in folders.values())) & set(masks)
        return jobs, sorted({(m.group("source") if (m := _TILE_NAME.match(t)) else t) for t in every})

    def _jobs(self, dl_manager: Any) -> tuple[list[_Job], list[str]]:
        c = self.config
        if c.source == "synthetic":
            return self._synthetic_jobs()
        extract_root = Path(self._cache_downloaded_dir) / "raw_isp_extracted"
        if c.source == "local":
            data_dir = Path(c.data_dir).expanduser()
            roots = layout_roots(data_dir, extract_root)
            where = str(data_dir)
        else:
            manifest = manifest_path(c.files_manifest, MANIFEST_ENV, DEFAULT_MANIFEST)
            roots = []
            for r in fetch_manifest_files(dl_manager, load_manifest(manifest), self._cache_downloaded_dir):
                roots.extend(layout_roots(r, extract_root))
            where = f"the files of {manifest}"
        if c.layout in ("auto", "full"):
            folders, mask_dir = _find_dirs(roots, "images_full", "masks_full")
            if folders and mask_dir is not None:
                return self._full_frame_jobs(folders, mask_dir, where)
            if c.layout == "full":
                raise SourceError(f"{where}: no full-frame layout (images_full/raw_scaleNNN and masks_full) found")
        folders, mask_dir = _find_dirs(roots, "images_tiles_256", "masks_tiles_256")
        if folders and mask_dir is not None:
            return self._tile_jobs(folders, mask_dir, where)
        raise SourceError(
            f"{where}: no Raw-Drone layout found: expected images_full/raw_scaleNNN/*.tif (or .DNG) with "
            "masks_full/<stem>.png, or images_tiles_256/raw_scaleNNN/*.tif with masks_tiles_256/*.png"
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        c = self.config
        jobs, frames = self._jobs(dl_manager)
        if c.split_mode == "grouped":
            # Assign whole frames (every frame, each counted once), then their tiles follow.
            if c.fold is None:
                names = split_assignment(frames, seed=c.seed)
            else:
                names = kfold_split(frames, fold=c.fold, n_folds=c.n_folds, seed=c.seed)
            split_of_frame = dict(zip(frames, names))
            split_of_tile = {t.tile_id: split_of_frame[j.source_image] for j in jobs for t in j.tiles}
        else:
            tiles = sorted(t.tile_id for j in jobs for t in j.tiles)
            if c.fold is None:
                names = split_assignment(tiles, seed=c.seed)
            else:
                names = kfold_split(tiles, fold=c.fold, n_folds=c.n_folds, seed=c.seed)
            split_of_tile = dict(zip(tiles, names))
        out = []
        for split in SPLIT_NAMES:
            shards = []
            for j in jobs:
                tiles = tuple(t for t in j.tiles if split_of_tile[t.tile_id] == split)
                if tiles:
                    shards.append(j._replace(tiles=tiles))
            if shards:
                out.append(datasets.SplitGenerator(name=split, gen_kwargs={"shards": shards}))
            else:
                warn_empty_split(split, "source frames" if c.split_mode == "grouped" else "tiles")
        return out

    # -- examples
    def _job_examples(self, job: _Job, ratios: tuple[float, ...], sim: DroneSimulator | None
                      ) -> Iterator[dict[str, Any]]:
        """Rows of one job: dicts with image, tile, intensity and (segmentation) the tile mask."""
        c = self.config
        if job.scene is not None:
            wanted = [TileInfo(job.scene, t.row, t.col, t.car_fraction) for t in job.tiles]
            by_id = {w.tile_id: t for w, t in zip(wanted, job.tiles)}
            for ex in sim._examples({c.task: wanted}, ratios):
                yield {"tile": by_id[ex["tile_id"]], "image": ex["image"], "intensity": ex["intensity"],
                       "mask": ex.get("mask")}
            return
        t = TILE_SIZE
        mask = read_mask(job.mask)
        for r, path in job.files:
            raw = read_raw(path)
            if raw.shape != mask.shape:
                raise SourceError(f"{path}: image has shape {raw.shape} but its mask {job.mask} has {mask.shape}")
            for tile in job.tiles:
                sl = (slice(tile.row * t, (tile.row + 1) * t), slice(tile.col * t, (tile.col + 1) * t))
                yield {"tile": tile, "image": raw[sl], "intensity": r, "mask": mask[sl]}

    def _generate_examples(self, shards: list) -> Iterator[tuple[str, dict[str, Any]]]:
        with single_threaded_torch():
            yield from self._examples_of(shards)

    def _examples_of(self, shards: list[_Job]) -> Iterator[tuple[str, dict[str, Any]]]:
        c = self.config
        ratios = self._ratios()
        sim = None
        if c.source == "synthetic":
            # Threads for the per-tile sensor noise: one in a num_proc worker, a few otherwise.
            in_worker = os.getpid() != getattr(self, "_main_pid", os.getpid())
            workers = 1 if in_worker else min(4, os.cpu_count() or 1)
            sim = DroneSimulator(seed=c.synthetic_seed, num_scenes=c.num_scenes, height=c.frame_height,
                                 width=c.frame_width, workers=workers)
        isp = None
        if c.kind == "rgb":
            from raw_isp.isp.static import StaticISP

            isp = StaticISP(c.isp_variant, camera="drone")
        for job in shards:
            rows = list(self._job_examples(job, ratios, sim))
            if isp is not None and rows:
                rgb = png_views(isp, np.stack([row["image"] for row in rows]))
                for row, img in zip(rows, rgb):
                    row["image"] = img
            for row in rows:
                tile = row["tile"]
                ex: dict[str, Any] = {"image": row["image"]}
                if c.task == "segmentation":
                    ex["mask"] = row["mask"]
                else:
                    ex["label"] = int(tile.car_fraction > MIN_CAR_FRACTION)
                ex.update(tile_id=tile.tile_id, source_image=tile.source_image, car_fraction=tile.car_fraction,
                          intensity=row["intensity"])
                yield f"{tile.tile_id}@{intensity_tag(row['intensity'])}", ex


def _check_folders(folders: dict[float, Path], ratios: tuple[float, ...], layout: str, where: str) -> None:
    """Raise if the layout lacks the ``raw_scaleNNN`` folder of one of the wanted intensities."""
    missing = [r for r in ratios if r not in folders]
    if missing:
        raise SourceError(f"{where}: no folder {layout}/raw_scale{intensity_tag(missing[0])} for intensity {missing[0]}")


def load_dataset(
    name: str = "segmentation",
    split: str | None = None,
    *,
    source: str = "synthetic",
    data_dir: str | os.PathLike[str] | None = None,
    num_tiles: int | None = None,
    intensity: float | None = None,
    split_mode: str = "grouped",
    fold: int | None = None,
    n_folds: int = 5,
    seed: int = 0,
    synthetic_seed: int = 0,
    num_scenes: int | None = None,
    frame_height: int | None = None,
    frame_width: int | None = None,
    layout: str = "auto",
    files_manifest: str | os.PathLike[str] | None = None,
    cache_dir: str | None = None,
    download_mode: Any = None,
    num_proc: int | None = None,
    output: str | None = "numpy",
) -> datasets.Dataset | datasets.DatasetDict:
    """Load Raw-Drone in one call, with the conventions of ``datasets.load_dataset``.

    Args:
        name: a config of :data:`CONFIG_NAMES` ("segmentation", "classification", "<task>-NNN",
            "<task>-rgb-<variant>").
        split: None (a ``DatasetDict``) or a split name or expression for one ``Dataset``.
        source: "synthetic" (default), "local" (needs ``data_dir``) or "zenodo".
        data_dir: a local copy of the real data (folder or .zip) for ``source="local"``.
        num_tiles: number of tiles of the task (synthetic default 548 / 930; local: all
            segmentation tiles, a balanced classification set).
        intensity: a ratio of ``raw_drone.INTENSITIES``; with "<task>" it selects "<task>-NNN",
            with "<task>-rgb-*" the ratio the view is made from (default 1.0).
        split_mode: "grouped" (by source frame, default) or "random" (tile-level, leaks; the
            Raw2Logit study's split).
        fold, n_folds: cross-validation round (test = fold, validation = fold+1 mod n_folds).
        seed: seed of the split assignment; synthetic_seed: seed of the simulator.
        num_scenes, frame_height, frame_width: size of the synthetic source (default 12 frames of
            2560x3840).
        layout: "auto", "full" (full frames + masks, tiled here) or "tiles" (pre-tiled) for local data.
        files_manifest: the download manifest for "zenodo".
        cache_dir, download_mode: as in ``datasets.load_dataset``.
        num_proc: processes for generation (default: 2-4 for the synthetic source, else 1).
        output: "numpy" (default), "torch" or None; see ``raw_isp.data.arrow.raw_format``.
    Returns:
        ``datasets.DatasetDict`` or ``datasets.Dataset``.
    """
    if name not in CONFIG_NAMES:
        raise ValueError(f"unknown Raw-Drone config {name!r}; choose one of {list(CONFIG_NAMES)}")
    if name in TASKS and intensity is not None:
        if float(intensity) not in INTENSITIES:
            raise ValueError(f"intensity must be one of {INTENSITIES}, got {intensity!r}")
        name, intensity = f"{name}-{intensity_tag(intensity)}", None
    given: dict[str, Any] = dict(
        source=source, num_tiles=num_tiles, intensity=intensity, split_mode=split_mode, fold=fold, n_folds=n_folds,
        seed=seed, synthetic_seed=synthetic_seed, num_scenes=num_scenes, frame_height=frame_height,
        frame_width=frame_width, layout=layout, data_dir=None if data_dir is None else os.fspath(data_dir),
        files_manifest=None if files_manifest is None else os.fspath(files_manifest))
    kwargs = {k: v for k, v in given.items() if v is not None and v != _DEFAULTS.get(k)}
    return build_and_load(RawDrone, name, split, cache_dir=cache_dir, download_mode=download_mode,
                          num_proc=num_proc, output=output, **kwargs)
