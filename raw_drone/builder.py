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
> 0.01) and no-car tiles (fraction 0). Real full frames and synthetic scenes are tiled by the
same code (:mod:`raw_drone.tiling`: the grid, the car fractions and the seeded selection, run
over the real car masks or the rendered ones), so real and synthetic data follow one rule.

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
  classification tiles, or ``num_examples`` (``load_dataset``; the config field is ``num_tiles``).
- ``"local"``: a copy of the real data in ``data_dir`` (a folder or a ``.zip``) in the Raw2Logit
  layout, found at any depth and inside zip archives (zips of zips too; ``images_full.zip``,
  ``masks_full.zip`` and ``raw_scaleNNN.zip`` stand for those folders), detected
  (``layout="auto"``) in this order: full frames ``images_full/raw_scaleNNN/<stem>.tif`` (or
  ``.tiff``, ``.dng``, ``.DNG``) with masks ``masks_full/<stem>.png`` (any nonzero colour = car;
  an alpha channel is ignored), tiled here; or pre-tiled ``images_tiles_256/raw_scaleNNN/<id>.tif``
  with ``masks_tiles_256/<id>.png``, where ``<id>`` is ``<frame>_<number>`` as the Raw2Logit code
  names tiles (the frame part becomes ``source_image``; other names make each tile its own
  group, with a warning). Pre-tiled classification labels follow the car-fraction rule; tiles
  with a fraction in (0, 0.01] are skipped. Frames without a mask, frames missing at a requested
  intensity and masks without a frame are skipped, each kind counted in one warning; a mask
  whose size differs from its frame, or an unreadable image, is an error naming the file. The
  split is assigned over every mask's frame, so a frame lands in the same split in every config.
- ``"zenodo"``: the files of the Zenodo record (``record=``, default 5235536) that this
  configuration needs, chosen from the record's listing through the Zenodo API
  (:mod:`raw_isp.data.zenodo`), or those pinned by ``files_manifest=`` / ``$RAW_DRONE_MANIFEST``
  (the shipped ``zenodo_files.json`` pins nothing); downloaded with the ``datasets`` download
  manager, size- and checksum-verified, extracted safely, then read as ``"local"``.
"""

from __future__ import annotations

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
    NUM_CLASSIFICATION_TILES,
    NUM_SCENES,
    NUM_SEGMENTATION_TILES,
    DroneSimulator,
)
from raw_drone.tiling import MIN_CAR_FRACTION, TILE_SIZE, TileInfo, select_tiles, tile_index
from raw_isp.data.archive import SourceError
from raw_isp.data.arrow import mask_feature
from raw_isp.data.builder import (
    RawBuilderConfig,
    RawDatasetBuilder,
    check_int,
    intensity_configs,
    intensity_tag,
)
from raw_isp.data.layout import LayoutTree, ratio_folders
from raw_isp.data.splits import SPLIT_NAMES
from raw_isp.io import read_raw

__all__ = ["RawDrone", "RawDroneConfig", "load_dataset", "CONFIG_NAMES", "TASKS", "intensity_tag",
           "read_mask", "MANIFEST_ENV", "DEFAULT_MANIFEST"]

TASKS = ("segmentation", "classification")
SPLIT_MODES = ("grouped", "random")
LAYOUTS = ("auto", "full", "tiles")
TILE_SHAPE = (TILE_SIZE, TILE_SIZE)
_FRAME_SUFFIXES = (".tif", ".tiff", ".dng", ".DNG", ".TIF", ".TIFF")
_MASK_SUFFIXES = (".png", ".PNG")
_TILE_NAME = re.compile(r"^(?P<source>.+)_(?P<number>\d+)$")


@dataclass
class RawDroneConfig(RawBuilderConfig):
    """A Raw-Drone configuration: the shared fields, ``task`` (fixed per config name) and the
    drone's own keyword arguments of :func:`load_dataset`."""

    task: str = "segmentation"
    num_tiles: int | None = None
    num_scenes: int = NUM_SCENES
    frame_height: int = DEFAULT_FRAME_SHAPE[0]
    frame_width: int = DEFAULT_FRAME_SHAPE[1]
    split_mode: str = "grouped"
    layout: str = "auto"


_TARGET = {"segmentation": "a car mask (uint8 0/1)", "classification": "a car / no-car label"}


def _configs() -> list[RawDroneConfig]:
    out = []
    for task in TASKS:
        def describe(kind: str, ratio: float | None, variant: str | None, task: str = task) -> str:
            if kind == "rgb":
                return (f"RGB views (8-bit PNG, 256x256) of the tiles made by raw_isp.StaticISP('{variant}', "
                        f"camera='drone'), with {_TARGET[task]}, at intensity 1.0 unless 'intensity' says otherwise.")
            if ratio is None:
                return (f"Raw RGGB tiles (uint16, 256x256) with {_TARGET[task]}, at all seven intensity ratios; "
                        "one row per (tile, ratio), the ratio in 'intensity'.")
            return f"Raw RGGB tiles (uint16, 256x256) with {_TARGET[task]}, at intensity ratio {ratio} only."

        out.extend(intensity_configs(RawDroneConfig, task, f"{task}-rgb-", INTENSITIES, describe, task=task))
    return out


_CONFIGS = _configs()
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
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise SourceError(f"{path}: cannot read the mask image ({e})") from e
    if arr.ndim == 3:
        keep = [i for i, b in enumerate(bands) if b != "A"] or [0]
        arr = arr[..., keep]
        return (arr != 0).any(axis=-1).astype(np.uint8)
    return (arr != 0).astype(np.uint8)


def _by_stem(tree: LayoutTree, folder: tuple[str, ...], suffixes: tuple[str, ...]) -> dict[str, Path]:
    """``{stem: path}`` of the files of a folder with one of ``suffixes`` (the first by name wins)."""
    out: dict[str, Path] = {}
    for name, path in tree.listdir(folder).items():
        stem, suffix = os.path.splitext(name)
        if suffix in suffixes:
            out.setdefault(stem, path)
    return out


def _warn_count(items: list[str], what: str) -> None:
    if items:
        warnings.warn(f"{len(items)} {what}, e.g. {items[0]}", UserWarning, stacklevel=3)


def _layout_dirs(tree: LayoutTree, images: str, masks: str, ratios: tuple[float, ...], where: str
                 ) -> tuple[dict[float, tuple[str, ...]], tuple[str, ...]] | None:
    """The ``raw_scaleNNN`` folders of ``ratios`` below ``images`` and the ``masks`` folder nearest
    to them, or None when the tree has no such pair of folders."""
    mask_dirs = [d for d in tree.find_dirs(lambda n: n.lower() == masks) if tree.listdir(d, _MASK_SUFFIXES)]
    if not mask_dirs or not tree.find_dirs(lambda n: n.lower() == images):
        return None
    tags = {intensity_tag(r): r for r in ratios}
    folders = ratio_folders(tree, tags, _FRAME_SUFFIXES, within=images, within_required=True, where=where)
    missing = [r for r in ratios if r not in folders]
    if missing:
        tag = intensity_tag(missing[0])
        raise SourceError(f"{where}: no folder {images}/raw_scale{tag} (or {images}/raw_scale{tag}.zip) with frames "
                          f"for intensity {missing[0]}; found at the top: {tree.describe_top()}")
    anchor = next(iter(folders.values()))

    def distance(d: tuple[str, ...]) -> tuple[int, int]:
        common = next((k for k, (x, y) in enumerate(zip(d, anchor)) if x != y), min(len(d), len(anchor)))
        return -common, len(d)

    mask_dirs.sort(key=distance)
    if len(mask_dirs) > 1 and distance(mask_dirs[0]) == distance(mask_dirs[1]):
        listed = ", ".join(str(tree.real(d)) for d in mask_dirs)
        raise SourceError(f"{where}: several {masks} folders: {listed}; point data_dir at one copy")
    return folders, mask_dirs[0]


# ------------------------------------------------------------------ builder


class RawDrone(RawDatasetBuilder):
    """Raw-Drone builder. See the module docstring for configs, features, splits and sources."""

    BUILDER_CONFIG_CLASS = RawDroneConfig
    BUILDER_CONFIGS = _CONFIGS
    DEFAULT_CONFIG_NAME = "segmentation"
    IMAGE_SHAPE = TILE_SHAPE
    CAMERA = "drone"
    # Record file names that say drone, and archive members only the drone layout has (the
    # record also holds Raw-Microscopy).
    ZENODO_NAMES = (r"drone", r"(^|[^a-z])dji", r"aerial", r"(^|[^a-z])cars?([^a-z]|$)")
    LAYOUT_MARKS = (r"(^|/)(images|masks)_(full|tiles_\d+)(/|\.zip$|$)", r"(^|/)dji_")
    RECORD_SIBLINGS = ("raw_microscopy.builder",)

    # -- configuration
    def _check_options(self) -> None:
        c = self.config
        for name, value, allowed in (("split_mode", c.split_mode, SPLIT_MODES), ("layout", c.layout, LAYOUTS),
                                     ("task", c.task, TASKS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        check_int("num_tiles", c.num_tiles, 1, allow_none=True)
        check_int("num_scenes", c.num_scenes, 1)
        check_int("frame_height", c.frame_height, TILE_SIZE)
        check_int("frame_width", c.frame_width, TILE_SIZE)

    def _num_tiles(self) -> int:
        c = self.config
        if c.num_tiles is not None:
            return c.num_tiles
        return NUM_SEGMENTATION_TILES if c.task == "segmentation" else NUM_CLASSIFICATION_TILES

    def _large_synthetic(self) -> bool:
        # One process per scene at a time: worth it from four default-size frames.
        c = self.config
        return c.num_scenes * c.frame_height * c.frame_width >= 4 * 2560 * 3840

    def _split_unit(self) -> str:
        return "source frames" if self.config.split_mode == "grouped" else "tiles"

    def _features(self, image: Any) -> dict[str, Any]:
        features: dict[str, Any] = {"image": image}
        if self.config.task == "segmentation":
            features["mask"] = mask_feature(TILE_SHAPE)
        else:
            features["label"] = datasets.ClassLabel(names=list(CLASS_NAMES))
        features.update({
            "tile_id": datasets.Value("string"),
            "source_image": datasets.Value("string"),
            "car_fraction": datasets.Value("float32"),
            "intensity": datasets.Value("float32"),
        })
        return features

    # -- sources: every source yields jobs (tiles grouped by source) and the list of all frames
    def _simulator(self, workers: int) -> DroneSimulator:
        c = self.config
        return DroneSimulator(seed=c.synthetic_seed, num_scenes=c.num_scenes, height=c.frame_height,
                              width=c.frame_width, workers=workers)

    def _synthetic_jobs(self) -> tuple[list[_Job], list[str]]:
        c = self.config
        sim = self._simulator(workers=1)
        n = self._num_tiles()
        chosen = sim.select(n, 0)["segmentation"] if c.task == "segmentation" else sim.select(0, n)["classification"]
        jobs = []
        for k in range(c.num_scenes):
            tiles = tuple(_Tile(t.tile_id, sim.scene_id(k), t.row, t.col, t.car_fraction)
                          for t in chosen if t.scene == k)
            if tiles:
                jobs.append(_Job(sim.scene_id(k), k, (), None, tiles))
        return jobs, [sim.scene_id(k) for k in range(c.num_scenes)]

    def _full_frame_jobs(self, tree: LayoutTree, folders: dict[float, tuple[str, ...]], mask_dir: tuple[str, ...],
                         where: str) -> tuple[list[_Job], list[str]]:
        c = self.config
        ratios = self._ratios()
        frames = {r: _by_stem(tree, folders[r], _FRAME_SUFFIXES) for r in ratios}
        masks = _by_stem(tree, mask_dir, _MASK_SUFFIXES)
        stems = sorted(set().union(*frames.values()))
        no_mask = [s for s in stems if s not in masks]
        incomplete = [f"{s} (no frame at intensity {next(r for r in ratios if s not in frames[r])})"
                      for s in stems if s in masks and any(s not in frames[r] for r in ratios)]
        usable = [s for s in stems if s in masks and all(s in frames[r] for r in ratios)]
        _warn_count([f"{s} (expected {tree.real(mask_dir) / (s + '.png')})" for s in no_mask],
                    "full frame(s) without a mask skipped")
        _warn_count(incomplete, "full frame(s) missing at a requested intensity skipped")
        _warn_count([str(masks[m]) for m in sorted(masks) if m not in set(stems)],
                    f"mask(s) without a frame in {', '.join(str(tree.real(folders[r])) for r in ratios)} ignored")
        if not usable:
            raise SourceError(f"{where}: no full frame with a mask in {tree.real(mask_dir)}")
        shape = read_mask(masks[usable[0]]).shape
        if shape[0] < TILE_SIZE or shape[1] < TILE_SIZE:
            raise SourceError(f"{masks[usable[0]]}: frames of shape {shape} are smaller than one "
                              f"{TILE_SIZE}x{TILE_SIZE} tile")

        def car_mask(k: int) -> np.ndarray:
            mask = read_mask(masks[usable[k]])
            if mask.shape != shape:
                raise SourceError(f"{masks[usable[k]]}: mask has shape {mask.shape}, but the other masks have "
                                  f"{shape}; all full frames must have one size")
            return mask

        counts = tile_index(car_mask, len(usable), shape)
        if c.num_tiles is not None:
            n = c.num_tiles
        elif c.task == "segmentation":
            n = sum(t.car_fraction > 0 for t in counts)
        else:
            n = 2 * min(sum(t.car_fraction > MIN_CAR_FRACTION for t in counts),
                        sum(t.car_fraction == 0 for t in counts))
        try:
            sizes = (n, 0) if c.task == "segmentation" else (0, n)
            chosen = select_tiles(counts, 0, *sizes, source=f"{len(usable)} frames of {shape[0]}x{shape[1]}")[c.task]
        except ValueError as e:
            raise SourceError(f"{where}: {e}") from e
        jobs = []
        for k, stem in enumerate(usable):
            tiles = tuple(_Tile(f"{stem}_r{t.row:02d}_c{t.col:02d}", stem, t.row, t.col, t.car_fraction)
                          for t in chosen if t.scene == k)
            if tiles:
                jobs.append(_Job(stem, None, tuple((r, str(frames[r][stem])) for r in ratios), str(masks[stem]), tiles))
        # Split over the frame of every mask (not only the ones usable here), so that a frame
        # lands in the same split in every config.
        return jobs, sorted(masks)

    def _tile_jobs(self, tree: LayoutTree, folders: dict[float, tuple[str, ...]], mask_dir: tuple[str, ...],
                   where: str) -> tuple[list[_Job], list[str]]:
        c = self.config
        ratios = self._ratios()
        files = {r: _by_stem(tree, folders[r], _FRAME_SUFFIXES) for r in ratios}
        masks = _by_stem(tree, mask_dir, _MASK_SUFFIXES)
        every = set().union(*files.values())
        jobs, unnamed, skipped = [], 0, 0
        for stem in sorted(every):
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
        _warn_count([str(masks[m]) for m in sorted(masks) if m not in every], "tile mask(s) without a tile ignored")
        if unnamed:
            warnings.warn(f"{where}: {unnamed} tile name(s) are not '<frame>_<number>'; those tiles are their own "
                          "split groups (their source frame is unknown)", UserWarning, stacklevel=3)
        if not jobs:
            raise SourceError(f"{where}: no usable {c.task} tiles in the pre-tiled layout")
        # Split over the frames of every tile mask (whatever the task keeps), so that a frame
        # lands in the same split in every config.
        return jobs, sorted({(m.group("source") if (m := _TILE_NAME.match(t)) else t) for t in masks})

    def _jobs(self, dl_manager: Any) -> tuple[list[_Job], list[str]]:
        c = self.config
        if c.source == "synthetic":
            return self._synthetic_jobs()
        tree, where = self._data_tree(dl_manager)
        ratios = self._ratios()
        if c.layout in ("auto", "full"):
            found = _layout_dirs(tree, "images_full", "masks_full", ratios, where)
            if found is not None:
                return self._full_frame_jobs(tree, *found, where)
            if c.layout == "full":
                raise SourceError(f"{where}: no full-frame layout (images_full/raw_scaleNNN and masks_full) found; "
                                  f"found at the top: {tree.describe_top()}")
        found = _layout_dirs(tree, "images_tiles_256", "masks_tiles_256", ratios, where)
        if found is not None:
            return self._tile_jobs(tree, *found, where)
        raise SourceError(
            f"{where}: no Raw-Drone layout found: expected images_full/raw_scaleNNN/*.tif (or .DNG) with "
            "masks_full/<stem>.png, or images_tiles_256/raw_scaleNNN/*.tif with masks_tiles_256/*.png, at any "
            f"depth (folders, or zip archives named for them); found at the top: {tree.describe_top()}"
        )

    def _split_shards(self, dl_manager: Any) -> dict[str, list[_Job]]:
        c = self.config
        jobs, frames = self._jobs(dl_manager)
        if c.split_mode == "grouped":
            # Assign whole frames (every frame, each counted once), then their tiles follow.
            split_of_frame = self._assign_splits(frames)
            split_of_tile = {t.tile_id: split_of_frame[j.source_image] for j in jobs for t in j.tiles}
        else:
            split_of_tile = self._assign_splits(sorted(t.tile_id for j in jobs for t in j.tiles))
        out: dict[str, list[_Job]] = {}
        for split in SPLIT_NAMES:
            out[split] = []
            for j in jobs:
                tiles = tuple(t for t in j.tiles if split_of_tile[t.tile_id] == split)
                if tiles:
                    out[split].append(j._replace(tiles=tiles))
        return out

    # -- examples
    def _generation_state(self) -> DroneSimulator | None:
        if self.config.source != "synthetic":
            return None
        # Threads for the per-tile sensor noise: one in a num_proc worker, a few otherwise.
        in_worker = os.getpid() != getattr(self, "_main_pid", os.getpid())
        return self._simulator(workers=1 if in_worker else min(4, os.cpu_count() or 1))

    def _job_tiles(self, job: _Job, ratios: tuple[float, ...], sim: DroneSimulator | None
                   ) -> Iterator[tuple[_Tile, np.ndarray, float, np.ndarray | None]]:
        """``(tile, raw image, intensity, mask)`` for each tile of a job and each ratio."""
        c = self.config
        if job.scene is not None:
            wanted = [TileInfo(job.scene, t.row, t.col, t.car_fraction) for t in job.tiles]
            by_id = {w.tile_id: t for w, t in zip(wanted, job.tiles)}
            for ex in sim._examples({c.task: wanted}, ratios):
                yield by_id[ex["tile_id"]], ex["image"], ex["intensity"], ex.get("mask")
            return
        t = TILE_SIZE
        mask = read_mask(job.mask)
        for r, path in job.files:
            raw = read_raw(path)
            if raw.shape != mask.shape:
                raise SourceError(f"{path}: image has shape {raw.shape} but its mask {job.mask} has {mask.shape}")
            for tile in job.tiles:
                sl = (slice(tile.row * t, (tile.row + 1) * t), slice(tile.col * t, (tile.col + 1) * t))
                yield tile, raw[sl], r, mask[sl]

    def _shard_rows(self, job: _Job, sim: DroneSimulator | None) -> Iterator[tuple[str, dict[str, Any]]]:
        c = self.config
        for tile, image, r, mask in self._job_tiles(job, self._ratios(), sim):
            ex: dict[str, Any] = {"image": image}
            if c.task == "segmentation":
                ex["mask"] = mask
            else:
                ex["label"] = int(tile.car_fraction > MIN_CAR_FRACTION)
            ex.update(tile_id=tile.tile_id, source_image=tile.source_image, car_fraction=tile.car_fraction,
                      intensity=r)
            yield f"{tile.tile_id}@{intensity_tag(r)}", ex


MANIFEST_ENV = RawDrone.MANIFEST_ENV
DEFAULT_MANIFEST = RawDrone.DEFAULT_MANIFEST


def load_dataset(name: str = "segmentation", split: str | None = None, *, num_examples: int | None = None,
                 split_mode: str = "grouped", layout: str = "auto", num_scenes: int | None = None,
                 frame_height: int | None = None, frame_width: int | None = None, num_tiles: int | None = None,
                 **kwargs: Any) -> datasets.Dataset | datasets.DatasetDict:
    """Load Raw-Drone in one call, with the conventions of ``datasets.load_dataset``.

    Args:
        name: a config of :data:`CONFIG_NAMES` ("segmentation", "classification", "<task>-NNN",
            "<task>-rgb-<variant>").
        split: None (a ``DatasetDict``) or a split name or expression for one ``Dataset``.
        num_examples: number of tiles of the task (synthetic default 548 / 930; local: all
            segmentation tiles, a balanced classification set); the same keyword as
            ``raw_microscopy.load_dataset``'s.
        num_tiles: deprecated alias of ``num_examples`` (a ``FutureWarning``); it is stored as the
            configuration field ``num_tiles``, so caches made with either name are the same.
        split_mode: "grouped" (by source frame, default) or "random" (tile-level, leaks; the
            Raw2Logit study's split).
        layout: "auto", "full" (full frames + masks, tiled here) or "tiles" (pre-tiled) for
            local data.
        num_scenes, frame_height, frame_width: size of the synthetic source (default 12 frames of
            2560x3840).
        **kwargs: ``source`` ("synthetic", "local" with ``data_dir``, "zenodo"), ``intensity``
            (with "<task>" it selects "<task>-NNN"), ``fold``, ``n_folds``, ``seed``,
            ``synthetic_seed``, ``record``, ``files_manifest`` (or ``$RAW_DRONE_MANIFEST``),
            ``cache_dir``, ``download_mode``, ``num_proc``, ``output``, ``download_timeout``,
            ``extract_limits``, ``streaming``: see :meth:`raw_isp.data.builder.RawDatasetBuilder.load`.
    Returns:
        ``datasets.DatasetDict`` or ``datasets.Dataset`` (with ``streaming=True``:
        ``IterableDatasetDict`` or ``IterableDataset``).
    """
    if num_tiles is not None:
        if num_examples is not None and num_examples != num_tiles:
            raise ValueError(f"raw_drone.load_dataset(): num_examples={num_examples!r} and its deprecated alias "
                             f"num_tiles={num_tiles!r} disagree; pass num_examples only")
        warnings.warn("raw_drone.load_dataset(): num_tiles= is deprecated; pass num_examples= (the same size keyword "
                      "as raw_microscopy.load_dataset)", FutureWarning, stacklevel=2)
        num_examples = num_tiles
    return RawDrone.load(name, split, num_tiles=num_examples, split_mode=split_mode, layout=layout,
                         num_scenes=num_scenes, frame_height=frame_height, frame_width=frame_width, **kwargs)
