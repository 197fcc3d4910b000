"""Raw-Drone tiling: the 256x256 tile grid of a frame and the seeded choice of the tile sets.

One rule for synthetic and real frames (the simulator renders car masks, the builder reads them
from ``masks_full``; both hand the masks to the functions here):

- **Grid.** Disjoint :data:`TILE_SIZE` x :data:`TILE_SIZE` tiles from each frame's top-left
  corner; frame rows and columns that do not fill a tile are unused (:func:`tile_grid`).
- **Car fraction.** The share of car pixels (mask != 0) in a tile, float64 in [0, 1]
  (:func:`tile_index`).
- **Selection** (:func:`select_tiles`). All tiles are ranked by one permutation drawn from
  ``numpy.random.default_rng([seed, 0x711E])``; segmentation takes the first tiles with a car
  pixel; classification the first half (rounded up) with car fraction > :data:`MIN_CAR_FRACTION`
  and the first remaining half with no car pixel. Tiles with a fraction in
  (0, :data:`MIN_CAR_FRACTION`] are neither car nor no-car. The chosen tiles come back in
  scene, row, column order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["TILE_SIZE", "MIN_CAR_FRACTION", "TileInfo", "tile_grid", "tile_index", "select_tiles"]

TILE_SIZE = 256
#: A tile whose car fraction lies in (0, MIN_CAR_FRACTION] is neither car nor no-car.
MIN_CAR_FRACTION = 0.01


class TileInfo(NamedTuple):
    """A 256x256 tile of a scene: grid position and the fraction of its pixels that are car."""

    scene: int
    row: int
    col: int
    car_fraction: float

    @property
    def tile_id(self) -> str:
        return f"s{self.scene:02d}_r{self.row:02d}_c{self.col:02d}"


def tile_grid(height: int, width: int) -> tuple[int, int]:
    """Number of whole tile rows and columns in a ``height`` x ``width`` frame."""
    return height // TILE_SIZE, width // TILE_SIZE


def tile_index(car_mask: Callable[[int], np.ndarray], num_scenes: int, shape: tuple[int, int]) -> list[TileInfo]:
    """Every whole tile of every scene with its car fraction.

    Args:
        car_mask: ``car_mask(k)`` -> the car mask of scene ``k``, ``(H, W)`` of any integer or
            bool type, nonzero = car. Called once per scene, in order.
        num_scenes: number of scenes (frames).
        shape: ``(H, W)`` of every frame.
    Returns:
        ``TileInfo`` for each scene, row, column (in that order).
    """
    rows, cols = tile_grid(*shape)
    t = TILE_SIZE
    index: list[TileInfo] = []
    for k in range(num_scenes):
        mask = np.asarray(car_mask(k))[: rows * t, : cols * t] != 0
        frac = mask.reshape(rows, t, cols, t).mean(axis=(1, 3), dtype=np.float64)
        index.extend(TileInfo(k, r, c, float(frac[r, c])) for r in range(rows) for c in range(cols))
    return index


def _count(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def select_tiles(index: list[TileInfo], seed: int, num_segmentation: int, num_classification: int,
                 source: str = "the scenes") -> dict[str, list[TileInfo]]:
    """The segmentation and classification tile sets (see the module docstring for the rule).

    Args:
        index: from :func:`tile_index`.
        seed: seed of the ranking.
        num_segmentation, num_classification: how many tiles each set gets (0: none).
        source: what the tiles come from, for the error message (e.g. "12 scenes of 2560x3840").
    Returns:
        ``{"segmentation": [...], "classification": [...]}``, each in scene, row, column order.
    Raises:
        ValueError: a negative or non-integer count, or fewer suitable tiles than asked for.
    """
    num_segmentation = _count("num_segmentation", num_segmentation)
    num_classification = _count("num_classification", num_classification)
    order = np.random.default_rng([seed, 0x711E]).permutation(len(index))
    ranked = [index[i] for i in order]
    want_car = (num_classification + 1) // 2
    want_empty = num_classification - want_car
    seg = [t for t in ranked if t.car_fraction > 0][:num_segmentation]
    car = [t for t in ranked if t.car_fraction > MIN_CAR_FRACTION][:want_car]
    empty = [t for t in ranked if t.car_fraction == 0][:want_empty]
    for name, got, want in (("segmentation tiles (with a car pixel)", seg, num_segmentation),
                            ("classification car tiles (car fraction > 0.01)", car, want_car),
                            ("classification no-car tiles", empty, want_empty)):
        if len(got) < want:
            raise ValueError(
                f"asked for {want} {name} but {source} hold only {len(got)}; use more or larger scenes, "
                "or fewer tiles")
    return {"segmentation": sorted(seg), "classification": sorted(car + empty)}
