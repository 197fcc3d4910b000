"""The layout's records: roads, ground patches, roofs, solids, trees, cars, the axes and the layout."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class _Road(NamedTuple):
    axis: int  # 0: the road's lateral coordinate is u (it runs along v); 1: lateral is v
    centre: float  # px, world
    half: float  # half width of the carriageway, px
    traffic_half: float  # half width of the traffic lanes (inside kerb-side parking), px
    lanes: int  # 2 or 4
    parking: bool  # kerb-side parking bays on both sides
    dash_phase: float
    zebra: bool


class _Ground(NamedTuple):  # flat patch of a ground material; optional stripes along its length
    u: float
    v: float
    angle: float
    hl: float
    hw: float
    material: int
    period: float = 0.0
    duty: float = 1.0


class _Roof(NamedTuple):
    u: float
    v: float
    angle: float
    hl: float
    hw: float
    kind: int  # 0 flat, 1 gable (ridge along the length), 2 hip
    pitch: float  # radians
    eave: float  # metres
    colour: tuple[float, float, float]
    solar: int  # 0 none, +1 / -1 solar panels on that face (pitched) or panel rows (flat)
    skylights: bool


class _Solid(NamedTuple):  # flat-topped box: rooftop unit, chimney, hedge, shed
    u: float
    v: float
    angle: float
    hl: float
    hw: float
    top: float  # metres
    colour: tuple[float, float, float]
    texture: float  # amplitude of mid-scale texture (hedges are leafy)


class _Tree(NamedTuple):
    u: float
    v: float
    radius: float  # px
    top: float  # metres
    depth: float  # crown depth, metres
    colour: tuple[float, float, float]
    conifer: bool
    harmonics: tuple[float, ...]  # (a3, p3, a5, p5, a7, p7) of the crown outline


class _Car(NamedTuple):
    u: float
    v: float
    angle: float  # world angle of the car's forward axis
    length: float  # px
    width: float  # px
    colour: tuple[float, float, float]
    style: int
    cabin: float  # cabin height, metres
    sunroof: bool


@dataclass
class _Axis:
    """Intervals along one world axis: blocks, sidewalks and roads, as per-pixel lookup tables."""

    lo: int  # world coordinate of table entry 0
    kind: np.ndarray  # uint8: 0 block, 1 sidewalk, 2 road
    index: np.ndarray  # int16: block span index (blocks) or road index (roads, sidewalks)
    dist: np.ndarray  # float32: distance to the nearest road corridor (0 inside one), px
    spans: list[tuple[float, float]]  # block spans
    corridors: list[tuple[float, float]]  # road corridors including sidewalks


_BLOCK, _SIDEWALK, _ROADWAY = 0, 1, 2


@dataclass
class _Layout:
    height: int
    width: int
    theta: float  # rotation of the world frame in the image
    sun_azimuth: float  # image-plane direction toward the sun (radians, x right, y down)
    sun_elevation: float
    axes: tuple[_Axis, _Axis]
    roads: list[_Road]
    block_ground: np.ndarray  # uint8 (num u spans, num v spans): ground material of each block
    palette: np.ndarray  # float32 (M, 2, 3): material colours after the per-scene variation
    ground: list[_Ground] = field(default_factory=list)
    roofs: list[_Roof] = field(default_factory=list)
    solids: list[_Solid] = field(default_factory=list)
    trees: list[_Tree] = field(default_factory=list)
    cars: list[_Car] = field(default_factory=list)


@dataclass(frozen=True)
class _Frame:
    """A local frame of a block: origin (u, v) and direction of its a-axis, in world coordinates."""

    u: float
    v: float
    angle: float

    def point(self, a: float, b: float) -> tuple[float, float]:
        c, s = math.cos(self.angle), math.sin(self.angle)
        return self.u + a * c - b * s, self.v + a * s + b * c
