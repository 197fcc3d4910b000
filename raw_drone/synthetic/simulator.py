"""DroneSimulator: scenes, car masks, raw frames and the two tile sets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from raw_isp.sensor import SENSORS

from raw_drone.tiling import MIN_CAR_FRACTION, TILE_SIZE, TileInfo, select_tiles, tile_grid, tile_index

from .canvas import _render
from .constants import (
    DEFAULT_FRAME_SHAPE,
    INTENSITIES,
    NUM_CLASSIFICATION_TILES,
    NUM_SCENES,
    NUM_SEGMENTATION_TILES,
    WHITE_FRACTION,
)
from .geometry import _car_mask
from .layout import _make_layout
from .optics import _mean_electrons
from .records import _Layout
from .seeds import _blake2b_seed


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_ratios(intensities: Sequence[float]) -> tuple[float, ...]:
    ratios = tuple(float(r) for r in intensities)
    if not ratios:
        raise ValueError("intensities must name at least one ratio")
    for r in ratios:
        if not 0 < r <= 1:
            raise ValueError(f"intensities must lie in (0, 1], got {r}")
    return ratios


class DroneSimulator:
    """Deterministic synthetic Raw-Drone: scenes, car masks, raw frames and tile sets.

    Args:
        seed: non-negative integer. Scene ``k`` of a seed is always the same layout, light and
            noise, and is generated alone (no other scene is needed to make it).
        num_scenes: number of source frames (12 in the real set).
        height, width: frame size in pixels, even and at least 256 (default 2560x3840; the real
            frames are 3648x5472).
        white_fraction: signal of a white surface in full sun as a fraction of the full well.
        workers: threads for the per-tile sensor noise (default: torch's intra-op thread count).
    """

    def __init__(self, seed: int = 0, num_scenes: int = NUM_SCENES, height: int = DEFAULT_FRAME_SHAPE[0],
                 width: int = DEFAULT_FRAME_SHAPE[1], white_fraction: float = WHITE_FRACTION,
                 workers: int | None = None) -> None:
        self.seed = _check_int("seed", seed, 0)
        self.num_scenes = _check_int("num_scenes", num_scenes, 1)
        self.height = _check_int("height", height, TILE_SIZE)
        self.width = _check_int("width", width, TILE_SIZE)
        if self.height % 2 or self.width % 2:
            raise ValueError(f"height and width must be even (a Bayer frame), got {self.height}x{self.width}")
        if not 0 < white_fraction <= 1:
            raise ValueError(f"white_fraction must be in (0, 1], got {white_fraction!r}")
        self.white_fraction = float(white_fraction)
        self.workers = max(1, int(workers if workers is not None else torch.get_num_threads()))
        self.sensor = SENSORS["drone"]
        self._index: list[TileInfo] | None = None
        self._layouts: dict[int, _Layout] = {}  # geometry only (a few MB for all scenes)

    @property
    def grid(self) -> tuple[int, int]:
        """Number of whole tile rows and columns in a frame."""
        return tile_grid(self.height, self.width)

    def _check_scene(self, k: int) -> int:
        k = _check_int("scene index", k, 0)
        if k >= self.num_scenes:
            raise IndexError(f"scene index {k} out of range for num_scenes={self.num_scenes}")
        return k

    def scene_id(self, k: int) -> str:
        return f"s{self._check_scene(k):02d}"

    def _layout(self, k: int) -> _Layout:
        k = self._check_scene(k)
        if k not in self._layouts:
            self._layouts[k] = _make_layout(self.seed, k, self.height, self.width)
        return self._layouts[k]

    def car_mask(self, k: int) -> np.ndarray:
        """Binary car mask of scene ``k``, uint8 (H, W), 1 = car; from the geometry alone (fast)."""
        return _car_mask(self._layout(k))

    def render(self, k: int) -> dict[str, Any]:
        """Noise-free scene ``k``: ``radiance`` float32 (3, H, W) (linear sRGB, about 1 for a white
        surface in full sun), ``mask`` uint8 (H, W) and ``mean_electrons`` float32 (H, W) (the
        expected photo-electrons of the RGGB mosaic after the PSF)."""
        return self._render(k, keep_radiance=True)

    def _render(self, k: int, keep_radiance: bool) -> dict[str, Any]:
        k = self._check_scene(k)
        cam, radiance, mask = _render(self._layout(k), self.seed, k, keep_radiance)
        electrons = _mean_electrons(cam, self.sensor.full_well, self.white_fraction)
        out = {"scene_id": self.scene_id(k), "mask": mask, "mean_electrons": electrons}
        if keep_radiance:
            out["radiance"] = radiance
        return out

    def _expose_block(self, electrons: np.ndarray, k: int, row: int, col: int, noise_seed: int | None) -> np.ndarray:
        """Raw block (row, col) of the 256-pixel grid, exposed with its own seed."""
        seed = _blake2b_seed(self.seed if noise_seed is None else ("noise", noise_seed), k, row, col, "expose")
        return np.asarray(self.sensor.expose(electrons, seed=seed))

    def scene(self, k: int, noise_seed: int | None = None) -> dict[str, Any]:
        """Scene ``k`` with its raw frame: :meth:`render` plus ``raw`` uint16 (H, W).

        The frame is exposed block by block on the 256-pixel tile grid, each block with a seed
        derived from (seed, k, row, col), so a tile cut from ``raw`` equals the ratio-1.0 image of
        that tile in the tile sets. ``noise_seed`` draws another noise realisation of the same scene.
        """
        k = self._check_scene(k)
        out = self.render(k)
        electrons = out["mean_electrons"]
        raw = np.empty(electrons.shape, np.uint16)
        t = TILE_SIZE
        for row in range(-(-self.height // t)):
            for col in range(-(-self.width // t)):
                sl = (slice(row * t, (row + 1) * t), slice(col * t, (col + 1) * t))
                raw[sl] = self._expose_block(electrons[sl], k, row, col, noise_seed)
        out["raw"] = raw
        return out

    def intensity_series(self, raw: np.ndarray, tile_id: str, intensities: Sequence[float] = INTENSITIES
                         ) -> dict[float, np.ndarray]:
        """``{ratio: uint16 frame}``: the ratio-1.0 frame ``raw`` thinned to each ratio.

        Uses ``SENSORS["drone"].scale_intensity`` with a seed derived from (seed, tile_id, ratio),
        exactly as the tile sets do, so ``intensity_series(scene(k)["raw"][tile], tile_id)``
        reproduces a tile's examples.
        """
        ratios = _check_ratios(intensities)
        return {r: raw if r == 1.0 else np.asarray(self.sensor.scale_intensity(
            raw, r, seed=_blake2b_seed(self.seed, tile_id, r))) for r in ratios}

    # -- tiles
    def tile_index(self) -> list[TileInfo]:
        """Every whole 256x256 tile of every scene with its car fraction (geometry only, no light)."""
        if self._index is None:
            self._index = tile_index(self.car_mask, self.num_scenes, (self.height, self.width))
        return list(self._index)

    def select(self, num_segmentation: int = NUM_SEGMENTATION_TILES,
               num_classification: int = NUM_CLASSIFICATION_TILES) -> dict[str, list[TileInfo]]:
        """The tiles of each set, in scene, row, column order (:func:`raw_drone.tiling.select_tiles`
        over :meth:`tile_index`, ranked with this simulator's seed). Raises ``ValueError`` if the
        scenes have too few."""
        return select_tiles(self.tile_index(), self.seed, num_segmentation, num_classification,
                            source=f"{self.num_scenes} scenes of {self.height}x{self.width}")

    def segmentation_tiles(self, num: int = NUM_SEGMENTATION_TILES, intensities: Sequence[float] = INTENSITIES
                           ) -> Iterator[dict[str, Any]]:
        """Segmentation examples: one dict per (tile, intensity) with ``image`` uint16 (256, 256),
        ``mask`` uint8 (256, 256) 0/1, ``tile_id``, ``source_image``, ``intensity``, ``car_fraction``."""
        chosen = self.select(num, 0)
        for ex in self._examples({"segmentation": chosen["segmentation"]}, _check_ratios(intensities)):
            ex.pop("task")
            yield ex

    def classification_tiles(self, num: int = NUM_CLASSIFICATION_TILES, intensities: Sequence[float] = INTENSITIES
                             ) -> Iterator[dict[str, Any]]:
        """Classification examples: one dict per (tile, intensity) with ``image``, ``label``
        (0 = no_car, 1 = car), ``tile_id``, ``source_image``, ``intensity``, ``car_fraction``."""
        chosen = self.select(0, num)
        for ex in self._examples({"classification": chosen["classification"]}, _check_ratios(intensities)):
            ex.pop("task")
            yield ex

    def tile_sets(self, num_segmentation: int = NUM_SEGMENTATION_TILES,
                  num_classification: int = NUM_CLASSIFICATION_TILES, intensities: Sequence[float] = INTENSITIES
                  ) -> Iterator[dict[str, Any]]:
        """Both sets in one pass (each scene rendered once, each tile exposed and scaled once).

        Yields the dicts of :meth:`segmentation_tiles` and :meth:`classification_tiles` with an
        extra key ``task`` ("segmentation" or "classification"), scene by scene; a tile in both
        sets is yielded for each (the same image arrays).
        """
        ratios = _check_ratios(intensities)
        yield from self._examples(self.select(num_segmentation, num_classification), ratios)

    def _examples(self, chosen: dict[str, list[TileInfo]], ratios: tuple[float, ...]) -> Iterator[dict[str, Any]]:
        tasks_of: dict[TileInfo, list[str]] = {}
        for task, tiles in chosen.items():
            for tile in tiles:
                tasks_of.setdefault(tile, []).append(task)
        tiles = sorted(tasks_of)
        scenes = sorted({tile.scene for tile in tiles})
        t = TILE_SIZE
        # The next scene renders in the background while this one's tiles get their noise.
        with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(1) as renderer:
            pending = renderer.submit(self._render, scenes[0], False) if scenes else None
            for n, k in enumerate(scenes):
                rendered = pending.result()
                if n + 1 < len(scenes):
                    pending = renderer.submit(self._render, scenes[n + 1], False)
                electrons, mask = rendered["mean_electrons"], rendered["mask"]
                del rendered
                scene_tiles = [tile for tile in tiles if tile.scene == k]

                def noisy(tile: TileInfo, electrons: np.ndarray = electrons, k: int = k) -> dict[float, np.ndarray]:
                    sl = (slice(tile.row * t, (tile.row + 1) * t), slice(tile.col * t, (tile.col + 1) * t))
                    full = self._expose_block(electrons[sl], k, tile.row, tile.col, None)
                    return self.intensity_series(full, tile.tile_id, ratios)

                for tile, raws in zip(scene_tiles, pool.map(noisy, scene_tiles)):
                    tile_mask = mask[tile.row * t:(tile.row + 1) * t, tile.col * t:(tile.col + 1) * t]
                    for task in tasks_of[tile]:
                        for r in ratios:
                            ex: dict[str, Any] = {"task": task, "image": raws[r], "tile_id": tile.tile_id,
                                                  "source_image": self.scene_id(k), "intensity": r,
                                                  "car_fraction": tile.car_fraction}
                            if task == "segmentation":
                                ex["mask"] = tile_mask.copy()
                            else:
                                ex["label"] = int(tile.car_fraction > MIN_CAR_FRACTION)
                            yield ex
