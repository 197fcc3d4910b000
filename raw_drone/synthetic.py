"""Synthetic Raw-Drone: aerial town scenes with cars as raw Bayer frames, and their 256x256 tiles.

The real Raw-Drone set (Zenodo, DOI 10.5281/zenodo.5235536) holds 12 raw frames of 3648x5472
pixels from a DJI Mavic 2 Pro (Hasselblad L1D-20c, Sony IMX183) hovering at 250 m, cut into
disjoint 256x256 tiles: 548 tiles with cars and a hand-drawn car mask (segmentation), 930 tiles
labelled car / no car (classification), each at seven intensity ratios. This module renders data
of the same kind from an explicit physical model:

1. **Layout** (world frame, 6 cm ground sampling distance, so 1 m = 16.7 px). A grid of roads
   (asphalt, sidewalks, dashed centre lines, edge lines, some zebra crossings, some kerb-side
   parking) cuts the ground into blocks; each block is a parking lot (rows of 5 m x 2.5 m stalls
   with painted lines, aisles, tree islands), a residential block (houses with gable, hip or flat
   roofs of several materials, driveways, gardens, pools, hedges, trees), a commercial block
   (large flat roof with rooftop units, skylights or solar panels, and a parking strip) or a park
   (meadow, paths, tree clusters, sports courts). Cars (about 4.5 m x 1.8 m, so about 75x30 px;
   compact, saloon, estate, SUV and van shapes) stand in stalls, driveways, traffic lanes and
   kerb-side bays, aligned with them up to a few degrees, in the colours of the car market
   (white, black, grey, silver, blue, red, ...). The whole layout is rotated by a random angle
   in the image. Everything follows from ``numpy.random.default_rng([seed, scene, 1])``.
2. **Materials and light.** Each surface has an R, G, B reflectance (linear sRGB primaries) with
   multi-scale texture; cars have body, windscreen, rear and side glass, a sloped shape and
   clear-coat reflections of the sky and, where the geometry lines up, of the sun (glints);
   tree crowns are domes of clumped foliage. Illumination is direct sunlight (elevation 35-62
   degrees, any azimuth) times ``cos`` of the incidence angle on the local surface normal, plus
   blue skylight; shadows come from ray marching a height map (buildings, trees, hedges, rooftop
   units, cars) toward the sun, so shadows darken to the skylight level. Beside a car the ground
   gets less skylight, the car's side hiding part of the sky (a wall of the body's height: half
   the sky at its foot, a tenth at 1 m), which darkens a rim around cars, most in shadow. A faint
   bluish haze adds path radiance. Edges finer than the PSF are drawn by area: a pixel on a
   car's outline, a window's edge (side windows are about 2 px wide) or a road marking (lines of
   0.12-0.15 m, 2-2.5 px) holds each surface in proportion to its share of the pixel, so thin
   slanted lines keep their width; the car mask keeps the pixel-centre rule.
3. **Optics.** The radiance is converted to camera RGB with the inverse of the drone camera's
   colour matrix and white balance (``raw_isp.CAMERAS["drone"]``), so that the ISP of this
   project with that preset reproduces the scene colours, and blurred by the Gaussian PSF of
   the datasheet (sigma 2.52 px).
4. **Sensor.** An RGGB Bayer filter keeps one channel per pixel (the sites of ``raw_isp.isp.cfa``;
   the blur is evaluated only at the kept sites, equal to ``raw_isp.isp.cfa.mosaic`` of the blurred
   image, which the tests check); a white
   Lambertian surface in full sun (60 degrees elevation) gets :data:`WHITE_FRACTION` of the
   full well, so bright roofs and white cars come close to but rarely reach saturation (sun
   glints on cars can). ``raw_isp.SENSORS["drone"].expose`` adds shot and read noise and
   digitises (12-bit codes left-justified to 16 bits, 8.448 DN per electron, black level 4096).
   Lower intensities thin the photons of the ratio-1.0 tile with ``scale_intensity``.

Tiling follows the real set: disjoint 256x256 tiles on a grid from the top-left corner (frame
rows and columns that do not fill a tile are unused). Segmentation keeps tiles with at least one
car pixel; classification takes a balanced set of car tiles (car fraction > 0.01) and no-car tiles
(fraction 0); tiles with a fraction in (0, 0.01] are neither. Which tiles are used is decided from
the car masks alone (:meth:`DroneSimulator.tile_index` renders no light), by a seeded ranking of
all tiles, and the examples come out in scene, row, column order.

Default scenes are 2560x3840 (the real 2:3 aspect; 10x15 = 150 tiles each) and the real
3648x5472 frames are available with ``height=3648, width=5472`` (14x21 tiles). Over 12 default
scenes of seed 0 there are 1800 tiles: 915 with a car pixel (807 above 0.01, 108 in (0, 0.01])
and 885 without; over seeds 0-11 the counts run from 874 to 1208 car tiles and 592 to 926
no-car tiles, well above the 548 and 465 the real sets need. (The synthetic town is denser in
cars than the real frames, where 548 of 3528 tiles hold cars.) Car-mask components have a median
length of about 77 px and width of about 31 px (75x30 px is 4.5 x 1.8 m).

Speed (2 shared AMD EPYC cores, numpy + torch CPU): a default scene renders in about 1.3 CPU-s,
its car mask alone in about 0.1 s; a tile's noise at 7 intensities costs about 50 CPU-ms, most of
it the binomial thinning in ``scale_intensity``. ``benchmarks/bench_synthetic.py`` times the full
tile sets. Drawing edges by area and the skylight beside cars added about 15 % to a scene's
render (2.0 against 1.8 CPU-s, medians of 3, interleaved, on a loaded 2-core Intel Xeon) and
7 % to the full tile sets (75.5 against 69.4 and 71.8 CPU-s).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from raw_isp.isp.cfa import pattern_colours
from raw_isp.isp.config import CAMERAS
from raw_isp.isp.filters import gaussian_kernel1d
from raw_isp.sensor import INTENSITY_RATIOS, SENSORS

from raw_drone.tiling import MIN_CAR_FRACTION, TILE_SIZE, TileInfo, select_tiles, tile_grid, tile_index

__all__ = [
    "DroneSimulator",
    "TileInfo",
    "INTENSITIES",
    "GSD_M",
    "PSF_SIGMA_PX",
    "TILE_SIZE",
    "REAL_FRAME_SHAPE",
    "DEFAULT_FRAME_SHAPE",
    "NUM_SCENES",
    "NUM_SEGMENTATION_TILES",
    "NUM_CLASSIFICATION_TILES",
    "MIN_CAR_FRACTION",
    "WHITE_FRACTION",
    "CLASS_NAMES",
]

#: Intensity ratios of the real set.
INTENSITIES: tuple[float, ...] = tuple(INTENSITY_RATIOS)
GSD_M = 0.06  # ground sampling distance, metres per pixel (250 m flying height)
PX_PER_M = 1.0 / GSD_M
PSF_SIGMA_PX = 2.52  # Gaussian PSF sigma of the datasheet, pixels
REAL_FRAME_SHAPE = (3648, 5472)
DEFAULT_FRAME_SHAPE = (2560, 3840)
NUM_SCENES = 12
NUM_SEGMENTATION_TILES = 548
NUM_CLASSIFICATION_TILES = 930
#: Signal of a white Lambertian surface in full sun (60 degrees elevation), fraction of full well.
WHITE_FRACTION = 0.85
CLASS_NAMES = ("no_car", "car")

_SUN_RGB = np.array([1.03, 1.0, 0.93], dtype=np.float32)  # direct sunlight colour (linear sRGB)
_SKY_RGB = np.array([0.78, 1.0, 1.38], dtype=np.float32)  # diffuse skylight colour
_SUN_SHARE = 0.82  # share of the direct sun in the irradiance at 60 degrees elevation
_SKY_SHARE = 0.18
_HAZE_RGB = 0.012 * np.array([0.8, 0.95, 1.25], dtype=np.float32)  # path radiance of 250 m of air
_SHADOW_CELL = 4  # pixels per cell of the height map used for ray marching
_CAR_BODY_M = 0.8  # height of a car's body (bonnet, boot, sides), metres
_CAR_SKY_REACH_M = 2.0  # how far beside a car its sides still hide some sky, metres


def _m(metres: float) -> float:
    """Metres on the ground to pixels."""
    return metres * PX_PER_M


def _derived_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts (ints, floats, strings), stable across runs and platforms."""
    text = "|".join(repr(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


# --------------------------------------------------------------------------- materials

# Ground materials: (colour A, colour B) in linear sRGB reflectance, then the amplitude of the
# large-scale mix between A and B, of mid-scale (~0.4 m) and of fine (~3 px) texture.
_MATERIAL_TABLE: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float, float, float]] = {
    "lawn": ((0.040, 0.085, 0.028), (0.090, 0.110, 0.048), 0.35, 0.18, 0.10),
    "meadow": ((0.060, 0.090, 0.035), (0.140, 0.125, 0.065), 0.45, 0.22, 0.12),
    "road": ((0.080, 0.080, 0.085), (0.125, 0.122, 0.120), 0.25, 0.05, 0.07),
    "lot": ((0.095, 0.095, 0.098), (0.145, 0.140, 0.135), 0.30, 0.07, 0.07),
    "sidewalk": ((0.235, 0.225, 0.210), (0.310, 0.300, 0.280), 0.20, 0.04, 0.04),
    "paint": ((0.520, 0.520, 0.500), (0.680, 0.680, 0.660), 0.30, 0.08, 0.05),
    "concrete": ((0.250, 0.240, 0.225), (0.340, 0.330, 0.310), 0.30, 0.05, 0.05),
    "pavers": ((0.190, 0.150, 0.125), (0.270, 0.230, 0.190), 0.30, 0.06, 0.08),
    "gravel": ((0.230, 0.210, 0.175), (0.320, 0.290, 0.240), 0.30, 0.08, 0.10),
    "soil": ((0.110, 0.080, 0.055), (0.180, 0.140, 0.100), 0.40, 0.12, 0.10),
    "pool": ((0.040, 0.170, 0.220), (0.060, 0.220, 0.260), 0.20, 0.03, 0.02),
    "court": ((0.250, 0.090, 0.070), (0.300, 0.110, 0.080), 0.20, 0.03, 0.03),
}
_MATERIALS = tuple(_MATERIAL_TABLE)
_MAT = {name: k for k, name in enumerate(_MATERIALS)}

# Roofs: (colour, probability). Pitched roofs (tiles, slate, metal) and flat roofs (membranes, gravel).
_PITCHED_ROOFS = (
    ((0.300, 0.110, 0.065), 0.30),  # terracotta tiles
    ((0.190, 0.075, 0.050), 0.15),  # red-brown tiles
    ((0.120, 0.075, 0.050), 0.12),  # brown tiles
    ((0.055, 0.055, 0.060), 0.20),  # anthracite tiles
    ((0.170, 0.170, 0.170), 0.12),  # grey concrete tiles
    ((0.090, 0.100, 0.120), 0.06),  # slate
    ((0.070, 0.130, 0.090), 0.05),  # green metal
)
_FLAT_ROOFS = (
    ((0.620, 0.630, 0.610), 0.25),  # white membrane
    ((0.360, 0.360, 0.350), 0.30),  # light grey
    ((0.150, 0.150, 0.150), 0.15),  # dark grey bitumen
    ((0.220, 0.200, 0.170), 0.20),  # gravel ballast
    ((0.060, 0.100, 0.040), 0.10),  # green roof
)
# Car paints (linear sRGB reflectance) with rough shares of the car market.
_CAR_COLOURS = (
    ((0.720, 0.720, 0.700), 0.25),  # white
    ((0.025, 0.025, 0.028), 0.19),  # black
    ((0.150, 0.155, 0.160), 0.17),  # grey
    ((0.420, 0.430, 0.450), 0.12),  # silver
    ((0.030, 0.060, 0.220), 0.07),  # blue
    ((0.020, 0.030, 0.080), 0.03),  # dark blue
    ((0.420, 0.040, 0.035), 0.08),  # red
    ((0.250, 0.180, 0.110), 0.04),  # beige / brown
    ((0.050, 0.140, 0.070), 0.02),  # green
    ((0.650, 0.400, 0.040), 0.02),  # yellow / orange
    ((0.200, 0.300, 0.450), 0.01),  # light blue
)
# Car shapes: (length m range, width m range, cabin height m, style, probability).
# Styles: 0 saloon (boot), 1 hatchback / estate / SUV (rear window at the back), 2 van.
_CAR_SHAPES = (
    ((3.80, 4.20), (1.68, 1.76), 1.45, 1, 0.28),
    ((4.40, 4.85), (1.78, 1.86), 1.45, 0, 0.25),
    ((4.40, 4.85), (1.78, 1.86), 1.48, 1, 0.17),
    ((4.50, 4.95), (1.84, 1.95), 1.68, 1, 0.23),
    ((4.95, 5.35), (1.90, 2.05), 1.95, 2, 0.07),
)
# Break points along a car, normalised to [-1 (rear), 1 (front)]: end of rear body, end of rear
# glass, end of roof, end of windscreen.
_CAR_SECTIONS = {0: (-0.72, -0.45, 0.10, 0.38), 1: (-0.93, -0.80, 0.10, 0.38), 2: (-0.97, -0.97, 0.56, 0.76)}


def _choice(rng: np.random.Generator, table: Sequence[tuple]) -> tuple:
    p = np.array([row[-1] for row in table], dtype=np.float64)
    return table[int(rng.choice(len(table), p=p / p.sum()))]


# --------------------------------------------------------------------------- layout records


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


# --------------------------------------------------------------------------- layout generation


def _make_axis(rng: np.random.Generator, extent: float, axis: int, roads: list[_Road], traffic: float
               ) -> _Axis:
    """Alternate blocks (45-95 m) and road corridors along one axis, covering [-extent, extent]."""
    pos = -extent - rng.uniform(0, _m(60))
    edges, kinds, index = [pos], [], []
    spans: list[tuple[float, float]] = []
    corridors: list[tuple[float, float]] = []
    while pos < extent:
        size = _m(rng.uniform(45, 95))
        kinds.append(_BLOCK), index.append(len(spans)), spans.append((pos, pos + size))
        pos += size
        edges.append(pos)
        kind = rng.choice(3, p=[0.55, 0.30, 0.15])  # 2 lanes; 2 lanes + parking; 4 lanes
        lane = rng.uniform(3.1, 3.6)
        lanes = 4 if kind == 2 else 2
        bay = rng.uniform(2.1, 2.4) if kind == 1 else 0.0
        traffic_half = _m(lane * lanes / 2)
        half = traffic_half + _m(bay)
        sidewalk = _m(rng.uniform(1.8, 3.2))
        start = pos
        for k, width in ((_SIDEWALK, sidewalk), (_ROADWAY, 2 * half), (_SIDEWALK, sidewalk)):
            kinds.append(k), index.append(len(roads))
            pos += width
            edges.append(pos)
        corridors.append((start, pos))
        roads.append(_Road(axis, start + sidewalk + half, half, traffic_half, lanes, kind == 1,
                           rng.uniform(0, _m(9)), bool(rng.random() < 0.35)))
    size = _m(95)
    kinds.append(_BLOCK), index.append(len(spans)), spans.append((pos, pos + size))
    edges.append(pos + size)

    lo = int(math.floor(-extent)) - 2
    hi = int(math.ceil(extent)) + 2
    centres = np.arange(lo, hi + 1, dtype=np.float64) + 0.5
    which = np.clip(np.searchsorted(np.asarray(edges), centres, side="right") - 1, 0, len(kinds) - 1)
    dist = np.full(centres.shape, np.inf)
    for a, b in corridors:
        dist = np.minimum(dist, np.maximum(np.maximum(a - centres, centres - b), 0.0))
    dist = np.minimum(dist, 1e6)
    return _Axis(lo, np.asarray(kinds, np.uint8)[which], np.asarray(index, np.int16)[which],
                 dist.astype(np.float32), spans, corridors)


class _Builder:
    """Fills a layout with block contents, road traffic and trees (all in world coordinates)."""

    def __init__(self, rng: np.random.Generator, layout: _Layout, traffic: float) -> None:
        self.rng = rng
        self.lay = layout
        self.traffic = traffic

    # -- primitives
    def car(self, u: float, v: float, angle: float, rng: np.random.Generator | None = None) -> None:
        rng = rng or self.rng
        (l0, l1), (w0, w1), cabin, style, _ = _choice(rng, _CAR_SHAPES)
        colour, _ = _choice(rng, _CAR_COLOURS)
        jitter = rng.uniform(0.9, 1.1) * (1 + rng.normal(0, 0.03, 3))
        colour = tuple(float(c) for c in np.clip(np.asarray(colour) * jitter, 0.005, 0.9))
        self.lay.cars.append(_Car(u, v, angle, _m(rng.uniform(l0, l1)), _m(rng.uniform(w0, w1)), colour, style,
                                  cabin * rng.uniform(0.96, 1.04), bool(rng.random() < 0.12)))

    def tree(self, u: float, v: float, radius_m: float | None = None, top_m: float | None = None) -> None:
        rng = self.rng
        conifer = bool(rng.random() < 0.15)
        r = radius_m if radius_m is not None else rng.uniform(1.8, 4.8)
        if conifer:
            r *= 0.7
            colour = np.array([0.030, 0.050, 0.028])
        else:
            colour = np.array([0.045, 0.085, 0.030]) * rng.uniform(0.8, 1.3)
            colour[0] *= rng.uniform(0.85, 1.2)
        top = top_m if top_m is not None else rng.uniform(2.2, 3.2) * r + 2.0
        depth = min(top - 3.2, (2.5 if conifer else 1.2) * r)
        amps = rng.uniform(0.02, 0.07, 3) * (0.6 if conifer else 1.0)
        phases = rng.uniform(0, 2 * math.pi, 3)
        harmonics = (amps[0], phases[0], amps[1], phases[1], amps[2] * (2.0 if conifer else 1.0), phases[2])
        self.lay.trees.append(_Tree(u, v, _m(r), top, depth, tuple(float(c) for c in colour), conifer,
                                    tuple(float(h) for h in harmonics)))

    def ground(self, frame: _Frame, a: float, b: float, angle: float, hl: float, hw: float, material: str,
               period: float = 0.0, duty: float = 1.0) -> None:
        u, v = frame.point(a, b)
        self.lay.ground.append(_Ground(u, v, frame.angle + angle, hl, hw, _MAT[material], period, duty))

    # -- parking rows
    def parking(self, frame: _Frame, a0: float, a1: float, b0: float, b1: float, occupancy: float,
                islands: bool, line_material: str = "paint") -> None:
        """Stall rows along a in [a0, a1] x [b0, b1]: units of (row, 6.5 m aisle, row), stalls 5 m deep."""
        rng = self.rng
        depth, aisle = _m(5.0), _m(rng.uniform(6.0, 7.0))
        pitch = _m(rng.uniform(2.45, 2.7))
        line = _m(0.12)
        unit = 2 * depth + aisle
        n_units = int((b1 - b0) // unit)
        rows: list[tuple[float, int]] = []  # (centre b, direction of the aisle)
        if n_units == 0:
            if b1 - b0 >= depth + aisle:
                rows.append((b0 + depth / 2, +1))
        else:
            start = b0 + ((b1 - b0) - n_units * unit) / 2
            for k in range(n_units):
                base = start + k * unit
                rows.append((base + depth / 2, +1))
                rows.append((base + depth + aisle + depth / 2, -1))
        end_lane = _m(rng.uniform(4.0, 7.0))
        n_stalls = int((a1 - a0 - 2 * end_lane) // pitch)
        if n_stalls < 1 or not rows:
            return
        a_start = (a0 + a1) / 2 - n_stalls * pitch / 2
        island_every = int(rng.integers(8, 16)) if islands else 0
        for b_c, facing in rows:
            # Stall separators as one striped patch; the back line of the row as a thin patch.
            self.ground(frame, (a0 + a1) / 2, b_c, 0.0, n_stalls * pitch / 2 + line / 2, depth / 2, line_material,
                        period=pitch, duty=line / pitch)
            self.ground(frame, (a0 + a1) / 2, b_c - facing * depth / 2, 0.0, n_stalls * pitch / 2, line / 2,
                        line_material)
            for i in range(n_stalls):
                a = a_start + (i + 0.5) * pitch
                if island_every and i % island_every == island_every // 2:
                    self.ground(frame, a, b_c, 0.0, pitch / 2 - line, depth / 2 - line, "lawn")
                    if rng.random() < 0.8:
                        self.tree(*frame.point(a, b_c), radius_m=rng.uniform(2.0, 3.4))
                    continue
                if rng.random() >= occupancy:
                    continue
                along = b_c + facing * _m(rng.uniform(-0.2, 0.35))
                angle = frame.angle + math.pi / 2 + (math.pi if rng.random() < 0.5 else 0.0)
                angle += math.radians(rng.normal(0, 1.5 if rng.random() < 0.9 else 5.0))
                u, v = frame.point(a + _m(rng.normal(0, 0.12)), along)
                self.car(u, v, angle)

    # -- block types
    def parking_block(self, frame: _Frame, ha: float, hb: float) -> None:
        rng = self.rng
        margin = _m(rng.uniform(1.5, 3.5))
        self.ground(frame, 0, 0, 0, ha - margin, hb - margin, "lot")
        self.parking(frame, -ha + margin, ha - margin, -hb + margin, hb - margin,
                     occupancy=rng.uniform(0.35, 0.95), islands=bool(rng.random() < 0.45))
        if rng.random() < 0.6:
            self.edge_trees(frame, ha, hb, inset=margin / 2, spacing=rng.uniform(7, 12))

    def residential_block(self, frame: _Frame, ha: float, hb: float) -> None:
        rng = self.rng
        two_rows = 2 * hb > _m(36)
        sides = (1, -1) if two_rows else (int(rng.choice([1, -1])),)
        depth = hb if two_rows else 2 * hb
        for side in sides:
            a = -ha + _m(rng.uniform(0.5, 4))
            while a < ha - _m(11):
                width = min(_m(rng.uniform(15, 23)), ha - a)
                if width < _m(11):
                    break
                self.plot(frame, a, width, side, hb, depth)
                a += width
        if rng.random() < 0.3:
            self.edge_trees(frame, ha, hb, inset=_m(1.2), spacing=rng.uniform(9, 15))

    def plot(self, frame: _Frame, a0: float, width: float, side: int, hb: float, depth: float) -> None:
        """One house plot: x along the street from a0, y inward from the front edge."""
        rng = self.rng

        def at(x: float, y: float) -> tuple[float, float]:
            return a0 + x, side * (hb - y)

        def put(kind: str, x: float, y: float, lx: float, ly: float, *extra: Any) -> None:
            a, b = at(x, y)
            self.ground(frame, a, b, 0.0, lx / 2, ly / 2, kind, *extra)

        drive_w = _m(3.0)
        drive_side = int(rng.choice([0, 1]))  # 0: drive at x small, 1: at x large
        setback = _m(rng.uniform(4.5, 7.5))
        house_w = min(_m(rng.uniform(8, 13)), width - drive_w - _m(3.0))
        house_d = min(_m(rng.uniform(7.5, 12)), depth - setback - _m(4.0))
        if house_w < _m(6) or house_d < _m(6):
            return
        free = width - drive_w - _m(1.0) - house_w
        hx = (drive_w + _m(1.0) + rng.uniform(0.3, 0.7) * free + house_w / 2) if drive_side == 0 else (
            rng.uniform(0.3, 0.7) * free + house_w / 2)
        hy = setback + house_d / 2
        dx = _m(0.6) + drive_w / 2 if drive_side == 0 else width - _m(0.6) - drive_w / 2
        drive_len = setback + house_d * rng.uniform(0.3, 0.9)
        put(str(rng.choice(["concrete", "pavers", "gravel"], p=[0.45, 0.4, 0.15])), dx, drive_len / 2, drive_w,
            drive_len)
        # Cars in the driveway, nose to the street or to the house.
        n_cars = int(rng.choice(3, p=[0.35, 0.45, 0.20]))
        y = _m(rng.uniform(0.6, 1.5))
        for _ in range(n_cars):
            length = _m(5.0)
            if y + length > drive_len:
                break
            u, v = frame.point(*at(dx + _m(rng.normal(0, 0.1)), y + length / 2))
            angle = frame.angle - side * math.pi / 2 + (math.pi if rng.random() < 0.5 else 0.0)
            self.car(u, v, angle + math.radians(rng.normal(0, 3.0)))
            y += length + _m(rng.uniform(0.6, 1.5))
        # The house.
        a, b = at(hx, hy)
        u, v = frame.point(a, b)
        kind = int(rng.choice(3, p=[0.12, 0.55, 0.33]))
        colour = np.asarray(_choice(rng, _PITCHED_ROOFS if kind else _FLAT_ROOFS)[0]) * rng.uniform(0.85, 1.15)
        along = bool(rng.random() < 0.5)  # ridge along the street or across it
        hl, hw, angle = (house_w / 2, house_d / 2, frame.angle) if along else (house_d / 2, house_w / 2,
                                                                               frame.angle + math.pi / 2)
        angle += math.radians(rng.normal(0, 1.0))
        pitch = math.radians(rng.uniform(25, 42))
        eave = rng.uniform(3.0, 6.5)
        solar = int(rng.choice([1, -1])) if (kind and rng.random() < 0.18) else 0
        self.lay.roofs.append(_Roof(u, v, angle, hl, hw, kind, pitch, eave, tuple(float(c) for c in colour), solar,
                                    False))
        if kind and rng.random() < 0.4:  # chimney near the ridge
            c, s = math.cos(angle), math.sin(angle)
            off = rng.uniform(-0.6, 0.6) * hl
            top = eave + hw / PX_PER_M * math.tan(pitch) + 0.9
            self.lay.solids.append(_Solid(u + off * c, v + off * s, angle, _m(0.35), _m(0.35), top,
                                          (0.22, 0.12, 0.09), 0.0))
        # Garden: patio, pool, trees, hedge.
        back0 = setback + house_d + _m(1.0)
        back = depth - back0 - _m(0.8)
        if back > _m(3) and rng.random() < 0.4:
            put("pavers", hx, back0 + _m(1.4), house_w * 0.7, _m(2.8))
        if back > _m(9) and rng.random() < 0.12:
            px = rng.uniform(0.3, 0.7) * width
            py = back0 + back * rng.uniform(0.45, 0.65)
            pw, pd = _m(rng.uniform(3.5, 5)), _m(rng.uniform(6, 9))
            put("concrete", px, py, pw + _m(1.6), pd + _m(1.6))
            put("pool", px, py, pw, pd)
        for _ in range(int(rng.choice(4, p=[0.25, 0.35, 0.25, 0.15]))):
            if back < _m(4):
                break
            r = rng.uniform(1.8, 4.2)
            tx, ty = rng.uniform(0.1, 0.9) * width, back0 + rng.uniform(0.3, 1.0) * back
            self.tree(*frame.point(*at(tx, ty)), radius_m=r)
        if rng.random() < 0.25:
            self.tree(*frame.point(*at(rng.uniform(0.2, 0.8) * width, setback * 0.45)),
                      radius_m=rng.uniform(1.5, 2.8))
        if rng.random() < 0.3:  # hedge on the plot boundary
            hx0 = 0.0 if rng.random() < 0.5 else width
            a, b = at(hx0, depth / 2 + _m(2))
            u, v = frame.point(a, b)
            self.lay.solids.append(_Solid(u, v, frame.angle + math.pi / 2, depth / 2 - _m(2.5), _m(0.45),
                                          rng.uniform(1.2, 2.0), (0.035, 0.07, 0.03), 0.45))

    def commercial_block(self, frame: _Frame, ha: float, hb: float) -> None:
        rng = self.rng
        strip = _m(16.5) if 2 * hb > _m(55) else _m(11.5)
        if 2 * hb - strip < _m(20):
            self.parking_block(frame, ha, hb)
            return
        side = int(rng.choice([1, -1]))
        # Parking strip along one long side, the building on the rest.
        sb0, sb1 = (hb - strip, hb) if side > 0 else (-hb, -hb + strip)
        self.ground(frame, 0, (sb0 + sb1) / 2, 0, ha - _m(1.0), strip / 2, "lot")
        self.parking(frame, -ha + _m(1), ha - _m(1), sb0, sb1, occupancy=rng.uniform(0.25, 0.9), islands=False)
        inset = _m(rng.uniform(3, 7))
        bb0, bb1 = (-hb + inset, hb - strip - inset) if side > 0 else (-hb + strip + inset, hb - inset)
        bha = ha - inset - _m(rng.uniform(0, 10))
        if bb1 - bb0 < _m(12) or bha < _m(8):
            return
        bc = (bb0 + bb1) / 2
        u, v = frame.point(rng.uniform(-1, 1) * (ha - inset - bha), bc)
        hbw = (bb1 - bb0) / 2
        colour = np.asarray(_choice(rng, _FLAT_ROOFS)[0]) * rng.uniform(0.9, 1.1)
        height = rng.uniform(5, 14)
        solar = 1 if rng.random() < 0.2 else 0
        skylights = bool(rng.random() < 0.25)
        self.lay.roofs.append(_Roof(u, v, frame.angle, bha, hbw, 0, 0.0, height, tuple(float(c) for c in colour),
                                    solar, skylights))
        area = (2 * bha / PX_PER_M) * (2 * hbw / PX_PER_M)
        c, s = math.cos(frame.angle), math.sin(frame.angle)
        for _ in range(int(np.clip(area / 250, 1, 10))):
            ua, ub = rng.uniform(-1, 1) * (bha - _m(4)), rng.uniform(-1, 1) * (hbw - _m(4))
            self.lay.solids.append(_Solid(u + ua * c - ub * s, v + ua * s + ub * c, frame.angle,
                                          _m(rng.uniform(0.8, 2.2)), _m(rng.uniform(0.7, 1.6)),
                                          height + rng.uniform(1.0, 2.5), (0.45, 0.46, 0.47), 0.02))

    def park_block(self, frame: _Frame, ha: float, hb: float) -> None:
        rng = self.rng
        if rng.random() < 0.6:
            self.ground(frame, 0, 0, 0, ha, hb, "meadow")
        for _ in range(int(rng.integers(1, 3))):
            width = _m(rng.uniform(2.0, 3.2))
            mat = str(rng.choice(["gravel", "concrete", "soil"]))
            if rng.random() < 0.5:
                self.ground(frame, 0, rng.uniform(-0.7, 0.7) * hb, 0, ha, width / 2, mat)
            else:
                self.ground(frame, rng.uniform(-0.7, 0.7) * ha, 0, 0, width / 2, hb, mat)
        if rng.random() < 0.2 and ha > _m(20) and hb > _m(12):
            ca, cb = rng.uniform(-0.4, 0.4) * ha, rng.uniform(-0.3, 0.3) * hb
            self.ground(frame, ca, cb, 0, _m(14), _m(7.5), "court")
            for da, db, la, lb in ((0, -7.5, 14, 0.06), (0, 7.5, 14, 0.06), (-14, 0, 0.06, 7.5), (14, 0, 0.06, 7.5),
                                   (0, 0, 0.06, 7.5)):
                self.ground(frame, ca + _m(da), cb + _m(db), 0, _m(la), _m(lb), "paint")
        for _ in range(int(rng.integers(2, 6))):
            ca, cb = rng.uniform(-0.9, 0.9) * ha, rng.uniform(-0.9, 0.9) * hb
            spread = _m(rng.uniform(4, 10))
            for _ in range(int(rng.integers(3, 12))):
                a = float(np.clip(ca + rng.normal(0, spread), -ha, ha))
                b = float(np.clip(cb + rng.normal(0, spread), -hb, hb))
                self.tree(*frame.point(a, b))
        for _ in range(int(rng.integers(0, 6))):
            self.tree(*frame.point(rng.uniform(-ha, ha), rng.uniform(-hb, hb)))

    def edge_trees(self, frame: _Frame, ha: float, hb: float, inset: float, spacing: float) -> None:
        """A row of trees just inside one or two edges of a block."""
        rng = self.rng
        for sign in (1, -1):
            if rng.random() < 0.5:
                continue
            if rng.random() < 0.5:
                for a in np.arange(-ha + _m(spacing / 2), ha, _m(spacing)):
                    self.tree(*frame.point(a + _m(rng.normal(0, 0.5)), sign * (hb - inset)),
                              radius_m=rng.uniform(2.2, 3.8))
            else:
                for b in np.arange(-hb + _m(spacing / 2), hb, _m(spacing)):
                    self.tree(*frame.point(sign * (ha - inset), b + _m(rng.normal(0, 0.5))),
                              radius_m=rng.uniform(2.2, 3.8))

    # -- traffic
    def road_cars(self, road: _Road, other: _Axis) -> None:
        """Cars in the traffic lanes and, where there are bays, parked at the kerb."""
        rng = self.rng
        lo, hi = other.lo, other.lo + len(other.kind)
        angle0 = 0.0 if road.axis == 1 else math.pi / 2

        def clear(pos: float, room: float) -> bool:
            return all(pos < a - room or pos > b + room for a, b in other.corridors)

        def world(along: float, lateral: float) -> tuple[float, float]:
            return (along, road.centre + lateral) if road.axis == 1 else (road.centre + lateral, along)

        lane_w = 2 * road.traffic_half / road.lanes
        for lane in range(road.lanes):
            lateral = -road.traffic_half + (lane + 0.5) * lane_w
            forward = lateral > 0
            density = self.traffic * rng.uniform(0.2, 1.0) * 3.5 / _m(100)  # cars per px of lane
            n = rng.poisson(density * (hi - lo))
            last = -np.inf
            for pos in np.sort(rng.uniform(lo, hi, n)):
                if pos - last < _m(7.0) or not clear(pos, _m(4.0)):
                    continue
                last = pos
                u, v = world(pos, lateral + _m(rng.normal(0, 0.2)))
                self.car(u, v, angle0 + (0.0 if forward else math.pi) + math.radians(rng.normal(0, 1.0)))
        if road.parking:
            bay = road.half - road.traffic_half
            occupancy = rng.uniform(0.3, 0.9)
            for sign in (1, -1):
                lateral = sign * (road.traffic_half + bay / 2)
                for pos in np.arange(lo, hi, _m(6.0)):
                    if rng.random() >= occupancy or not clear(pos, _m(8.0)):
                        continue
                    u, v = world(pos + _m(rng.normal(0, 0.3)), lateral + _m(rng.normal(0, 0.1)))
                    self.car(u, v, angle0 + (0.0 if sign > 0 else math.pi) + math.radians(rng.normal(0, 1.5)))


def _make_layout(seed: int, index: int, height: int, width: int) -> _Layout:
    """The world layout of scene ``index``: deterministic in (seed, index), independent of others."""
    rng = np.random.default_rng([seed, index, 1])
    theta = float(rng.uniform(0, math.pi))
    sun_el = math.radians(rng.uniform(35, 62))
    sun_az = float(rng.uniform(0, 2 * math.pi))
    c, s = abs(math.cos(theta)), abs(math.sin(theta))
    margin = _m(20)
    ue = width / 2 * c + height / 2 * s + margin
    ve = width / 2 * s + height / 2 * c + margin
    traffic = float(rng.uniform(0.3, 1.0))
    weights = rng.dirichlet([3.0, 3.0, 1.6, 1.4])  # parking, residential, commercial, park
    roads: list[_Road] = []
    axis_u = _make_axis(rng, ue, 0, roads, traffic)
    axis_v = _make_axis(rng, ve, 1, roads, traffic)

    palette = np.array([[a, b] for a, b, *_ in _MATERIAL_TABLE.values()], dtype=np.float32)
    palette *= rng.uniform(0.9, 1.1, (len(_MATERIALS), 1, 1)).astype(np.float32)
    palette *= (1 + rng.normal(0, 0.03, (len(_MATERIALS), 1, 3))).astype(np.float32)
    kinds = rng.choice(4, size=(len(axis_u.spans), len(axis_v.spans)), p=weights)
    ground = np.where(kinds == 0, _MAT["lot"], np.where(kinds == 2, _MAT["concrete"], _MAT["lawn"])).astype(np.uint8)
    layout = _Layout(height, width, theta, sun_az, sun_el, (axis_u, axis_v), roads, ground, palette)

    build = _Builder(rng, layout, traffic)
    for i, (u0, u1) in enumerate(axis_u.spans):
        for j, (v0, v1) in enumerate(axis_v.spans):
            hu, hv = (u1 - u0) / 2, (v1 - v0) / 2
            # Local frame with the a-axis along the block's longer side.
            frame = _Frame((u0 + u1) / 2, (v0 + v1) / 2, 0.0 if hu >= hv else math.pi / 2)
            ha, hb = max(hu, hv), min(hu, hv)
            (build.parking_block, build.residential_block, build.commercial_block, build.park_block)[kinds[i, j]](
                frame, ha, hb)
    for road in roads:
        build.road_cars(road, axis_v if road.axis == 0 else axis_u)
    return layout


# --------------------------------------------------------------------------- rasterisation


class _Window(NamedTuple):
    rows: slice
    cols: slice
    s: np.ndarray  # coordinate along the box's length, px (h, w)
    t: np.ndarray  # coordinate across it, px


_STRIP = 256  # rows per strip of full-frame work (keeps temporaries small)


def _strips(n: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + _STRIP)) for i in range(0, n, _STRIP)]


def _window(lay: _Layout, u: float, v: float, angle: float, reach_s: float, reach_t: float) -> _Window | None:
    """Pixels of the image that may lie within ``|s| <= reach_s, |t| <= reach_t`` of a world box.

    The world frame is rotated by ``lay.theta`` about the image centre; pixel (i, j) has its
    centre at x = j + 0.5, y = i + 0.5.
    """
    th = lay.theta
    x = lay.width / 2 + u * math.cos(th) - v * math.sin(th)
    y = lay.height / 2 + u * math.sin(th) + v * math.cos(th)
    a = angle + th
    c, s = math.cos(a), math.sin(a)
    ex = abs(c) * reach_s + abs(s) * reach_t + 1
    ey = abs(s) * reach_s + abs(c) * reach_t + 1
    j0, j1 = max(int(x - ex), 0), min(int(x + ex) + 1, lay.width)
    i0, i1 = max(int(y - ey), 0), min(int(y + ey) + 1, lay.height)
    if j0 >= j1 or i0 >= i1:
        return None
    dx = (np.arange(j0, j1, dtype=np.float32) + np.float32(0.5 - x))[None, :]
    dy = (np.arange(i0, i1, dtype=np.float32) + np.float32(0.5 - y))[:, None]
    c32, s32 = np.float32(c), np.float32(s)
    return _Window(slice(i0, i1), slice(j0, j1), dx * c32 + dy * s32, dy * c32 - dx * s32)


def _car_footprint(win: _Window, car: _Car) -> np.ndarray:
    """Boolean footprint of a car (a superellipse with rounded corners) in its window."""
    sn = win.s * np.float32(2 / car.length)
    tn = win.t * np.float32(2 / car.width)
    sn2, tn2 = sn * sn, tn * tn
    return sn2 * sn2 * sn2 + tn2 * tn2 * tn2 <= 1.0


def _car_edge_distance(win: _Window, car: _Car) -> np.ndarray:
    """Signed distance in px from a car's outline, > 0 inside, < 0 outside (its window's shape).

    For the superellipse ``rho = (sn**6 + tn**6) ** (1/6)`` of :func:`_car_footprint`, the first-order
    distance ``(1 - rho) / |grad rho|``: exact along the sides and ends, up to about 1 px off at the
    tightly rounded corners (it serves the skylight beside the car, which varies over metres).
    """
    ks, kt = np.float32(2 / car.length), np.float32(2 / car.width)
    sn, tn = np.abs(win.s * ks), np.abs(win.t * kt)
    sn2, tn2 = sn * sn, tn * tn
    rho = np.maximum((sn2 * sn2 * sn2 + tn2 * tn2 * tn2) ** np.float32(1 / 6), np.float32(1e-3))
    rho5 = rho**5
    grad = np.sqrt((ks * sn2 * sn2 * sn) ** 2 + (kt * tn2 * tn2 * tn) ** 2) / rho5
    return (1.0 - rho) / np.maximum(grad, min(ks, kt))


def _car_cover(lay: _Layout, win: _Window, car: _Car, n: int = 4) -> np.ndarray:
    """Share of each pixel's area inside a car's outline, float32 (its window's shape).

    Pixels within 2.5 px of the outline (by :func:`_car_edge_distance`, within about 1 px there)
    are tested at ``n x n`` points spread over the pixel (shares in steps of ``1 / n**2``); the
    others are wholly in or out.
    """
    inside = _car_footprint(win, car)
    cover = inside.astype(np.float32)
    near = np.abs(_car_edge_distance(win, car)) < 2.5  # the distance is within ~1 px near corners
    if not near.any():
        return cover
    a = car.angle + lay.theta
    c, s = np.float32(math.cos(a)), np.float32(math.sin(a))
    ws, wt = win.s[near], win.t[near]
    ks, kt = np.float32(2 / car.length), np.float32(2 / car.width)
    hits = np.zeros(ws.shape, np.float32)
    for oy in (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5:
        for ox in (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5:
            sn2 = ((ws + ox * c + oy * s) * ks) ** 2
            tn2 = ((wt + oy * c - ox * s) * kt) ** 2
            hits += sn2 * sn2 * sn2 + tn2 * tn2 * tn2 <= 1.0
    cover[near] = hits / np.float32(n * n)
    return cover


def _ramp(distance: np.ndarray) -> np.ndarray:
    """Share of a pixel on the inside of a straight edge at signed ``distance`` px (> 0 inside)."""
    return np.clip(distance + np.float32(0.5), 0.0, 1.0).astype(np.float32)


def _tree_geometry(win: _Window, tree: _Tree) -> tuple[np.ndarray, np.ndarray]:
    """Crown footprint and normalised radius (0 at the trunk, 1 at the outline) of a tree."""
    r = np.hypot(win.s, win.t)
    phi = np.arctan2(win.t, win.s)
    a3, p3, a5, p5, a7, p7 = tree.harmonics
    outline = np.float32(tree.radius) * (1 + a3 * np.cos(3 * phi + p3) + a5 * np.cos(5 * phi + p5)
                                         + a7 * np.cos(7 * phi + p7))
    rho = r / outline
    return rho <= 1.0, rho


def _car_mask(lay: _Layout) -> np.ndarray:
    """Binary car mask uint8 (H, W): car footprints not hidden under tree crowns."""
    mask = np.zeros((lay.height, lay.width), dtype=np.uint8)
    for car in lay.cars:
        win = _window(lay, car.u, car.v, car.angle, car.length / 2, car.width / 2)
        if win is not None:
            mask[win.rows, win.cols][_car_footprint(win, car)] = 1
    for tree in lay.trees:
        reach = tree.radius * 1.25
        win = _window(lay, tree.u, tree.v, 0.0, reach, reach)
        if win is None or not mask[win.rows, win.cols].any():
            continue
        inside, _ = _tree_geometry(win, tree)
        mask[win.rows, win.cols][inside] = 0
    return mask


def _tilt_cosines(lay: _Layout, angle: float, ts: np.ndarray | float, tt: np.ndarray | float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of the sun's incidence, and of the angle to the sun-glint half vector, on a tilted surface.

    The surface normal is ``(ts * e_s + tt * e_t, 1)`` normalised, where ``e_s, e_t`` are the
    image-plane directions of a box's length and width (world angle ``angle``) and ``ts, tt`` the
    tangents of the tilt toward them.
    """
    a = angle + lay.theta
    ds = math.cos(a - lay.sun_azimuth)  # e_s . (horizontal direction to the sun)
    dt = -math.sin(a - lay.sun_azimuth)
    ce, se = math.cos(lay.sun_elevation), math.sin(lay.sun_elevation)
    slope = ts * ds + tt * dt
    norm = np.sqrt(1 + np.square(ts) + np.square(tt))
    cos_sun = np.maximum((slope * ce + se) / norm, 0.0)
    hz = 1 + se  # half vector between the sun and the camera (nadir), unnormalised
    cos_half = (slope * ce + hz) / (norm * math.hypot(ce, hz))
    return np.asarray(cos_sun, dtype=np.float32), np.asarray(cos_half, dtype=np.float32)


class _Canvas:
    """Full-frame layers of one scene: albedo, height, sun incidence, gloss, glints, car mask."""

    def __init__(self, lay: _Layout, rng: np.random.Generator) -> None:
        self.lay = lay
        h, w = lay.height, lay.width
        self.noise_large = self._noise(rng, 48)
        self.noise_mid = self._noise(rng, 7)
        self.noise_fine = self._noise(rng, 3)
        self.height = np.zeros((h, w), np.float32)  # metres above ground
        self.cos_sun = np.full((h, w), math.sin(lay.sun_elevation), np.float32)
        self.gloss = np.zeros((h, w), np.float32)  # specular reflectance for the sky
        self.glint = np.zeros((h, w), np.float32)  # sun glint radiance (white-in-sun units)
        self.sky = np.ones((h, w), np.float32)  # share of the open sky's light a pixel receives
        self.mask = np.zeros((h, w), np.uint8)
        self.albedo = self._ground()

    def _noise(self, rng: np.random.Generator, cell: int) -> np.ndarray:
        """Zero-mean, roughly unit-std smooth noise with correlation length ``cell`` pixels."""
        h, w = self.lay.height, self.lay.width
        gh, gw = h // cell + 4, w // cell + 4
        grid = rng.standard_normal((gh + 2, gw + 2), dtype=np.float32)
        # A [1, 2, 1] smoothing of the grid hides the diamond pattern of bilinear interpolation.
        grid = (grid[:-2] + 2 * grid[1:-1] + grid[2:]) / 4
        grid = (grid[:, :-2] + 2 * grid[:, 1:-1] + grid[:, 2:]) / 4
        up = F.interpolate(torch.from_numpy(np.ascontiguousarray(grid))[None, None], size=(gh * cell, gw * cell),
                           mode="bilinear", align_corners=False)[0, 0]
        oy, ox = int(rng.integers(0, cell)), int(rng.integers(0, cell))
        field = up[cell + oy: cell + oy + h, cell + ox: cell + ox + w].numpy()
        scale = float(field[:: max(1, h // 256), :: max(1, w // 256)].std())
        return np.ascontiguousarray(field * np.float32(1.0 / max(scale, 1e-6)))

    # -- ground
    def _ground(self) -> np.ndarray:
        """Ground material of every pixel (uint8 index into ``_MATERIALS``), then the albedo."""
        lay = self.lay
        h, w = lay.height, lay.width
        c, s = np.float32(math.cos(lay.theta)), np.float32(math.sin(lay.theta))
        dx = (np.arange(w, dtype=np.float32) + np.float32(0.5 - w / 2))[None, :]
        ax_u, ax_v = lay.axes
        block_u = np.where(ax_u.kind == _BLOCK, ax_u.index, 0).astype(np.intp)
        block_v = np.where(ax_v.kind == _BLOCK, ax_v.index, 0).astype(np.intp)
        mat = np.empty((h, w), np.uint8)
        # Road paint is drawn as each pixel's area share over the material beneath: the lines are
        # 0.12-0.15 m, 2-2.5 px, wide, and whole-pixel lines would alternate 2 and 3 px in width.
        paint = np.zeros((h, w), np.float32)
        for i0, i1 in _strips(h):
            dy = (np.arange(i0, i1, dtype=np.float32) + np.float32(0.5 - h / 2))[:, None]
            u = dx * c + dy * s
            v = dy * c - dx * s
            iu = (u - np.float32(ax_u.lo)).astype(np.intp)
            iv = (v - np.float32(ax_v.lo)).astype(np.intp)
            np.clip(iu, 0, len(ax_u.kind) - 1, out=iu)
            np.clip(iv, 0, len(ax_v.kind) - 1, out=iv)
            ku, kv = ax_u.kind[iu], ax_v.kind[iv]
            m = lay.block_ground[block_u[iu], block_v[iv]]
            m[(ku == _SIDEWALK) | (kv == _SIDEWALK)] = _MAT["sidewalk"]
            m[(ku == _ROADWAY) | (kv == _ROADWAY)] = _MAT["road"]
            self._markings(paint[i0:i1], v, u, kv, ku, ax_v, iv, ax_u)  # roads running along u
            self._markings(paint[i0:i1], u, v, ku, kv, ax_u, iu, ax_v)  # roads running along v
            mat[i0:i1] = m
        for g in lay.ground:
            win = _window(lay, g.u, g.v, g.angle, g.hl, g.hw)
            if win is None:
                continue
            if g.material == _MAT["paint"]:
                share = _ramp(np.float32(g.hl) - np.abs(win.s)) * _ramp(np.float32(g.hw) - np.abs(win.t))
                if g.period:
                    x = np.mod(win.s + np.float32(g.hl), np.float32(g.period))
                    on = np.float32(g.duty * g.period)
                    share *= _ramp(np.maximum(np.minimum(x, on - x), x - np.float32(g.period)))
                np.maximum(paint[win.rows, win.cols], share, out=paint[win.rows, win.cols])
                continue
            inside = (np.abs(win.s) <= g.hl) & (np.abs(win.t) <= g.hw)
            if g.period:
                inside &= np.mod(win.s + np.float32(g.hl), np.float32(g.period)) < np.float32(g.duty * g.period)
            mat[win.rows, win.cols][inside] = g.material
            paint[win.rows, win.cols][inside] = 0.0
        self.paint_share = paint
        return self._albedo(mat, paint)

    def _markings(self, paint: np.ndarray, lateral: np.ndarray, along: np.ndarray, k_lat: np.ndarray,
                  k_other: np.ndarray, ax_lat: _Axis, i_lat: np.ndarray, ax_other: _Axis) -> None:
        """Lane lines and zebra crossings on the roads whose lateral coordinate is ``lateral``.

        Raises ``paint`` (float32, the strip's shape) to each pixel's area share of paint: 1-px
        ramps across the line edges and the dash and stripe ends.
        """
        sel = np.flatnonzero((k_lat == _ROADWAY) & (k_other != _ROADWAY))
        if sel.size == 0:
            return
        roads = self.lay.roads
        idx = ax_lat.index[i_lat.ravel()[sel]]
        centre = np.array([r.centre for r in roads], np.float32)[idx]
        th = np.array([r.traffic_half for r in roads], np.float32)[idx]
        four = np.array([r.lanes == 4 for r in roads])[idx]
        phase = np.array([r.dash_phase for r in roads], np.float32)[idx]
        zebra = np.array([r.zebra for r in roads])[idx]
        parking = np.array([r.parking for r in roads])[idx]
        d = lateral.ravel()[sel] - centre
        a = along.ravel()[sel]
        ad = np.abs(d)
        half_line = np.float32(_m(0.075))

        def periodic(x: np.ndarray, on: float, period: float) -> np.ndarray:
            """Share of paint of a pattern that is on for ``on`` px of every ``period`` px of ``x``."""
            x = np.mod(x, np.float32(period))
            return _ramp(np.maximum(np.minimum(x, np.float32(on) - x), x - np.float32(period)))

        dashed = periodic(a + phase, _m(3.0), _m(9.0))
        edge = np.where(parking, th, th - np.float32(_m(0.35)))
        share = _ramp(half_line - np.abs(ad - edge))
        share = np.maximum(share, np.where(four, 0.0, _ramp(half_line - ad) * dashed))
        share = np.maximum(share, np.where(four, _ramp(np.float32(_m(0.06)) - np.abs(ad - np.float32(_m(0.2)))), 0.0))
        share = np.maximum(share, np.where(four, _ramp(half_line - np.abs(ad - th / 2)) * dashed, 0.0))
        ia = np.clip((a - np.float32(ax_other.lo)).astype(np.intp), 0, len(ax_other.dist) - 1)
        dist = ax_other.dist[ia]
        crossing = zebra & (dist > _m(0.8)) & (dist < _m(4.3)) & (ad < th)
        share = np.maximum(share, np.where(crossing, periodic(d + np.float32(_m(100.25)), _m(0.5), _m(1.0)), 0.0))
        flat = paint.reshape(-1)  # a view: the strip is contiguous
        flat[sel] = np.maximum(flat[sel], share)

    def _albedo(self, mat: np.ndarray, paint: np.ndarray) -> np.ndarray:
        """Textured reflectance (3, H, W) of the ground materials, with ``paint`` (area share) over them."""
        pal = self.lay.palette
        amps = np.array([row[2:] for row in _MATERIAL_TABLE.values()], np.float32)  # (M, 3)
        luts = [pal[:, 0, ch] for ch in range(3)] + [pal[:, 1, ch] - pal[:, 0, ch] for ch in range(3)]
        albedo = np.empty((3,) + mat.shape, np.float32)
        for i0, i1 in _strips(mat.shape[0]):
            m = mat[i0:i1]
            mix = amps[:, 0][m]
            mix *= self.noise_large[i0:i1]
            mix += np.float32(0.5)
            np.clip(mix, 0.0, 1.0, out=mix)
            tex = amps[:, 1][m]
            tex *= self.noise_mid[i0:i1]
            fine = amps[:, 2][m]
            fine *= self.noise_fine[i0:i1]
            tex += fine
            tex += np.float32(1.0)
            np.maximum(tex, 0.0, out=tex)
            for ch in range(3):
                out = albedo[ch, i0:i1]
                np.multiply(luts[3 + ch][m], mix, out=out)
                out += luts[ch][m]
                out *= tex
            ys, xs = np.nonzero(paint[i0:i1])
            if ys.size:  # the paint's own textured reflectance, mixed in by its share
                k = _MAT["paint"]
                share = paint[i0:i1][ys, xs]
                p_mix = np.clip(amps[k, 0] * self.noise_large[i0:i1][ys, xs] + np.float32(0.5), 0.0, 1.0)
                p_tex = np.maximum(np.float32(1.0) + amps[k, 1] * self.noise_mid[i0:i1][ys, xs]
                                   + amps[k, 2] * self.noise_fine[i0:i1][ys, xs], 0.0)
                for ch in range(3):
                    out = albedo[ch, i0:i1]
                    over = (luts[ch][k] + luts[3 + ch][k] * p_mix) * p_tex
                    out[ys, xs] += share * (over - out[ys, xs])
        return albedo

    # -- objects
    def _put(self, win: _Window, inside: np.ndarray, colour: Sequence[np.ndarray], height: np.ndarray | float,
             cos_sun: np.ndarray | float, gloss: np.ndarray | float = 0.0, glint: np.ndarray | float = 0.0) -> None:
        """Write an object's layers where ``inside`` (all arrays are window-shaped or scalars)."""
        r, c = win.rows, win.cols

        def val(x: np.ndarray | float) -> np.ndarray | float:
            return x[inside] if isinstance(x, np.ndarray) and x.ndim else x

        for ch in range(3):
            self.albedo[ch, r, c][inside] = val(colour[ch])
        self.height[r, c][inside] = val(height)
        self.cos_sun[r, c][inside] = val(cos_sun)
        self.gloss[r, c][inside] = val(gloss)
        self.glint[r, c][inside] = val(glint)
        self.sky[r, c][inside] = 1.0  # an object's top sees the open sky

    def paint_roof(self, rf: _Roof) -> None:
        lay = self.lay
        win = _window(lay, rf.u, rf.v, rf.angle, rf.hl, rf.hw)
        if win is None:
            return
        s, t = win.s, win.t
        ds, dt = rf.hl - np.abs(s), rf.hw - np.abs(t)  # distance to the ends and to the sides
        inside = (ds >= 0) & (dt >= 0)
        if not inside.any():
            return
        tan_p = math.tan(rf.pitch)
        shade = 1 + 0.10 * self.noise_mid[win.rows, win.cols] + 0.06 * self.noise_large[win.rows, win.cols]
        colour = np.asarray(rf.colour, np.float32)
        gloss: np.ndarray | float = 0.0
        if rf.kind == 0:
            rise = np.zeros_like(s)
            ts = tt = np.float32(0.0)
            edge = np.minimum(ds, dt) < _m(0.4)  # parapet
            rise = np.where(edge, np.float32(0.6), rise)
            shade = np.where(edge, shade * np.float32(0.8), shade)
            panels = np.zeros_like(inside)
            if rf.solar:
                panels = (np.mod(t, np.float32(_m(2.6))) < _m(1.7)) & (ds > _m(2.5)) & (dt > _m(2.5))
            if rf.skylights:
                sky = ((np.mod(s, np.float32(_m(6.0))) < _m(1.5)) & (np.mod(t, np.float32(_m(8.0))) < _m(3.0))
                       & (ds > _m(3)) & (dt > _m(3)))
                panels |= sky
        else:
            end = (ds < dt) if rf.kind == 2 else np.zeros_like(inside)
            rise = np.minimum(ds, dt) if rf.kind == 2 else dt
            rise = rise * np.float32(tan_p / PX_PER_M)
            ts = np.where(end, np.sign(s) * np.float32(tan_p), np.float32(0.0))
            tt = np.where(end, np.float32(0.0), np.sign(t) * np.float32(tan_p))
            ridge_line = (np.abs(t) < _m(0.15)) & ~end  # ridge caps catch a little more light
            if rf.kind == 2:
                ridge_line |= np.abs(ds - dt) < _m(0.12)  # hip lines
            shade = np.where(ridge_line, shade * np.float32(1.12), shade)
            panels = np.zeros_like(inside)
            if rf.solar:
                panels = (np.sign(t) == rf.solar) & ~end & (dt > rf.hw * 0.15) & (dt < rf.hw * 0.85) & (ds > _m(0.9))
        cos_sun, _ = _tilt_cosines(lay, rf.angle, ts, tt)
        cos_sun = np.broadcast_to(cos_sun, s.shape)
        col = [colour[k] * shade for k in range(3)]
        if panels.any():
            panel_colour = (0.030, 0.040, 0.075)
            col = [np.where(panels, np.float32(panel_colour[k]) * (1 + 0.05 * shade), col[k]) for k in range(3)]
            gloss = np.where(panels, np.float32(0.05), np.float32(0.0))
        self._put(win, inside, col, rf.eave + rise, cos_sun, gloss)

    def paint_solid(self, so: _Solid) -> None:
        win = _window(self.lay, so.u, so.v, so.angle, so.hl, so.hw)
        if win is None:
            return
        inside = (np.abs(win.s) <= so.hl) & (np.abs(win.t) <= so.hw)
        if not inside.any():
            return
        shade = 1 + np.float32(so.texture) * self.noise_mid[win.rows, win.cols]
        np.maximum(shade, 0.1, out=shade)
        col = [np.float32(so.colour[k]) * shade for k in range(3)]
        # Leafy hedges scatter light into their own shade.
        cos_sun = math.sin(self.lay.sun_elevation) * (shade if so.texture > 0.1 else 1.0)
        self._put(win, inside, col, so.top, cos_sun)

    def paint_car(self, car: _Car) -> None:
        lay = self.lay
        win = _window(lay, car.u, car.v, car.angle, car.length / 2, car.width / 2)
        if win is None:
            return
        inside = _car_footprint(win, car)
        if not inside.any():
            return
        # Share of each pixel's area that the car covers, so that the outline is not a staircase
        # of whole pixels; the mask keeps the pixel-centre rule.
        cover = _car_cover(lay, win, car)
        sn = win.s * np.float32(2 / car.length)
        tn = win.t * np.float32(2 / car.width)
        at = np.abs(tn)
        hl, hw = np.float32(car.length / 2), np.float32(car.width / 2)  # px per unit of sn, tn
        rear_body, rear_glass, roof_end, screen_end = _CAR_SECTIONS[car.style]
        cabin_s = (sn > rear_body) & (sn < screen_end)
        roof = (sn > rear_glass) & (sn <= roof_end) & (at < 0.70)

        def band(x: np.ndarray, lo: float, hi: float, scale: np.float32) -> np.ndarray:
            """Share of a pixel between ``lo`` and ``hi`` (``scale`` px per unit of ``x``)."""
            return _ramp((x - np.float32(lo)) * scale) * _ramp((np.float32(hi) - x) * scale)

        # Glass panes as area shares too: windscreen, rear window, the 2-px side windows.
        rear_win = band(sn, rear_body, rear_glass, hl) * _ramp((np.float32(0.80) - at) * hw)
        screen = band(sn, roof_end, screen_end, hl) * _ramp((np.float32(0.80) - at) * hw)
        side_glass = band(sn, rear_glass, roof_end, hl) * band(at, 0.70, 0.85, hw)
        glass = np.maximum(np.maximum(rear_win, screen), side_glass)
        if car.sunroof:
            centre = (rear_glass + roof_end) / 2
            glass = np.maximum(glass, band(sn, centre - 0.12, centre + 0.12, hl) * _ramp((np.float32(0.45) - at) * hw))
        # Surface tilt (tangent) toward +s and +t: rounded shoulders and nose, raked glass.
        shoulder = np.clip((at - 0.55) / 0.45, 0, 1)
        tt_body = np.sign(tn) * np.tan(np.radians(70.0) * shoulder * shoulder)
        tt_body = np.where(roof & (glass < 0.5), np.sign(tn) * np.float32(0.15) * at, tt_body)
        nose = np.clip((np.abs(sn) - 0.82) / 0.18, 0, 1)
        ts_body = np.sign(sn) * np.tan(np.radians(60.0) * nose * nose) + np.where(sn > screen_end, 0.12, 0.0)
        rake_rear = 0.45 if car.style == 0 else 1.7
        ts_glass = np.where(sn > roof_end, 0.62, np.where(sn <= rear_glass, -rake_rear, ts_body))
        tt_glass = np.where(side_glass > 0, np.sign(tn) * 1.4, 0.0)
        cos_body, half_body = _tilt_cosines(lay, car.angle, ts_body.astype(np.float32), tt_body.astype(np.float32))
        cos_glass, half_glass = _tilt_cosines(lay, car.angle, ts_glass.astype(np.float32),
                                              tt_glass.astype(np.float32))

        def lobe(cos_half: np.ndarray) -> np.ndarray:
            """Sun glint: a narrow lobe (about 3 degrees) around the mirror direction."""
            ang2 = 2.0 * (1.0 - np.minimum(cos_half, 1.0))
            return np.exp(-ang2 / (2 * math.radians(3.0) ** 2)).astype(np.float32)

        glint = lobe(half_body) + glass * (np.float32(1.4) * lobe(half_glass) - lobe(half_body))
        cos_sun = cos_body + glass * (cos_glass - cos_body)
        mid = self.noise_mid[win.rows, win.cols]
        glass_col = (0.016, 0.018, 0.022)
        col = [np.float32(car.colour[k]) * (1 + 0.03 * mid) * (1 - glass) + np.float32(glass_col[k]) * glass
               for k in range(3)]
        gloss = np.float32(0.045) + np.float32(0.045) * glass
        height = np.where(cabin_s & (at < 0.85), np.float32(car.cabin), np.float32(_CAR_BODY_M))
        # Along the outline a pixel is partly car and partly what lies beside it.
        r, c = win.rows, win.cols
        col = [self.albedo[k, r, c] + cover * (col[k] - self.albedo[k, r, c]) for k in range(3)]
        cos_sun = self.cos_sun[r, c] + cover * (cos_sun - self.cos_sun[r, c])
        gloss = self.gloss[r, c] + cover * (gloss - self.gloss[r, c])
        glint = self.glint[r, c] + cover * (glint - self.glint[r, c])
        height = np.where(inside, height, self.height[r, c])
        self._put(win, cover > 0, col, height, cos_sun, gloss, glint)
        self.mask[r, c][inside] = 1
        self.car_sky(car)

    def car_sky(self, car: _Car) -> None:
        """Darken the skylight on the ground beside a car, whose sides hide part of the sky.

        The sides are taken as a wall of the body's height ``h`` (:data:`_CAR_BODY_M`): ground at
        distance ``d`` from it loses ``(1 - d / sqrt(d**2 + h**2)) / 2`` of an isotropic sky's
        light (half of it at the car's foot, 9 % at 1 m), tapered to nothing over the last half
        metre of :data:`_CAR_SKY_REACH_M`. Along the ends and corners a real car hides less.
        """
        reach = _m(_CAR_SKY_REACH_M)
        win = _window(self.lay, car.u, car.v, car.angle, car.length / 2 + reach, car.width / 2 + reach)
        if win is None:
            return
        d = np.maximum(-_car_edge_distance(win, car), 0.0) * np.float32(GSD_M)  # metres from the side
        h = np.float32(_CAR_BODY_M)
        blocked = 0.5 * (1.0 - d / np.sqrt(d * d + h * h))
        blocked *= np.clip((np.float32(_CAR_SKY_REACH_M) - d) / np.float32(0.5), 0.0, 1.0)
        r, c = win.rows, win.cols
        ground = (d > 0) & (self.height[r, c] < np.float32(0.3))  # not on roofs, cars or walls
        np.minimum(self.sky[r, c], np.where(ground, 1.0 - blocked, np.float32(1.0)), out=self.sky[r, c])

    def paint_tree(self, tree: _Tree) -> None:
        lay = self.lay
        reach = tree.radius * 1.25
        win = _window(lay, tree.u, tree.v, 0.0, reach, reach)
        if win is None:
            return
        inside, rho = _tree_geometry(win, tree)
        if not inside.any():
            return
        rho = np.minimum(rho, 1.0)
        if tree.conifer:
            crown = 1 - rho
            slope = np.float32(tree.depth * PX_PER_M / tree.radius)
            tilt = np.full_like(rho, slope)
        else:
            crown = np.sqrt(np.maximum(1 - rho * rho, 0.0))
            tilt = 0.8 * rho / np.maximum(crown, 0.25)  # flattened dome
        height = np.float32(tree.top - tree.depth) + np.float32(tree.depth) * crown
        above = inside & (height > self.height[win.rows, win.cols])
        if not above.any():
            return
        r = np.maximum(np.hypot(win.s, win.t), 1e-3)
        ts, tt = tilt * win.s / r, tilt * win.t / r  # radial tilt; the tree's frame is world-aligned
        cos_sun, _ = _tilt_cosines(lay, 0.0, ts, tt)
        # Clumped foliage: bright sunlit clumps, dark gaps between them.
        clump = np.clip(0.55 + 0.35 * self.noise_mid[win.rows, win.cols] + 0.15 * self.noise_fine[win.rows, win.cols],
                        0.08, 1.2)
        col = [np.float32(tree.colour[k]) * (0.6 + 0.5 * clump) for k in range(3)]
        self._put(win, above, col, height, cos_sun * clump)
        self.mask[win.rows, win.cols][above] = 0

    # -- light
    def sunlit(self) -> np.ndarray:
        """Fraction of the direct sun reaching each pixel, float32 (H, W) in [0, 1].

        A ray from each cell of a coarse height map (cells of ``_SHADOW_CELL`` px) climbs toward
        the sun; the highest obstacle above the ray, upsampled, is compared with the pixel's own
        height, so roofs stay lit while the ground behind them is shaded.
        """
        lay = self.lay
        h, w = lay.height, lay.width
        k = _SHADOW_CELL
        ph, pw = -(-h // k) * k, -(-w // k) * k
        hm = np.pad(self.height, ((0, ph - h), (0, pw - w)), mode="edge")
        coarse = hm.reshape(ph // k, k, pw // k, k).mean(axis=(1, 3), dtype=np.float32)
        drop = k * GSD_M * math.tan(lay.sun_elevation)  # metres the ray rises per cell
        peak = float(coarse.max())
        if peak <= 0:
            return np.ones((h, w), np.float32)
        steps = int(math.ceil(peak / drop))
        cx, cy = math.cos(lay.sun_azimuth), math.sin(lay.sun_azimuth)
        ch, cw = coarse.shape
        big = np.pad(coarse, steps + 1)
        reach = np.full_like(coarse, -1e9)  # highest obstacle minus the ray's rise, metres
        tmp = np.empty_like(coarse)
        for n in range(1, steps + 1):
            oy, ox = steps + 1 + int(round(n * cy)), steps + 1 + int(round(n * cx))
            np.subtract(big[oy: oy + ch, ox: ox + cw], np.float32(n * drop), out=tmp)
            np.maximum(reach, tmp, out=reach)
        fine = F.interpolate(torch.from_numpy(reach)[None, None], scale_factor=k, mode="bilinear",
                             align_corners=False)[0, 0, :h, :w].numpy()
        lit = np.empty((h, w), np.float32)
        for i0, i1 in _strips(h):
            o = lit[i0:i1]
            np.subtract(self.height[i0:i1], fine[i0:i1], out=o)
            o *= np.float32(2.0)  # half a metre from fully lit to fully shaded
            o += np.float32(1.0)
            np.clip(o, 0.0, 1.0, out=o)
        return lit

    def light(self, camera: np.ndarray, keep_radiance: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Camera RGB (3, H, W) = ``camera @ radiance``, and the radiance if asked for.

        Radiance is linear sRGB, about 1 for a white Lambertian surface in full sun at 60 degrees
        elevation: ``albedo * (sun * cos_i * sunlit + sky * sky_view) + gloss * sky + glint * sun * sunlit
        + haze``, where ``sky_view`` is the share of the sky's light that a pixel receives (below 1 on
        the ground beside cars, whose sides hide part of the sky).
        """
        lit = self.sunlit()
        h, w = self.lay.height, self.lay.width
        cam = np.empty((3, h, w), np.float32)
        radiance = np.empty((3, h, w), np.float32) if keep_radiance else None
        k_sun = np.float32(_SUN_SHARE / math.sin(math.radians(60)))
        for i0, i1 in _strips(h):
            direct = self.cos_sun[i0:i1] * lit[i0:i1]
            direct *= k_sun
            glint = self.glint[i0:i1] * lit[i0:i1]
            gloss = self.gloss[i0:i1]
            sky_view = self.sky[i0:i1]
            rad = np.empty((3, i1 - i0, w), np.float32)
            for ch in range(3):
                o = rad[ch]
                np.multiply(direct, _SUN_RGB[ch], out=o)
                o += sky_view * np.float32(_SKY_SHARE * _SKY_RGB[ch])
                o *= self.albedo[ch, i0:i1]
                o += gloss * np.float32(_SKY_SHARE * _SKY_RGB[ch])
                o += glint * _SUN_RGB[ch]
                o += _HAZE_RGB[ch]
            for ch in range(3):
                o = cam[ch, i0:i1]
                np.multiply(rad[0], camera[ch, 0], out=o)
                o += rad[1] * camera[ch, 1]
                o += rad[2] * camera[ch, 2]
            if radiance is not None:
                radiance[:, i0:i1] = rad
        return cam, radiance


def _render(lay: _Layout, seed: int, index: int, keep_radiance: bool = True
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Camera RGB (3, H, W), radiance (3, H, W) or None, and car mask (H, W) uint8 of a layout."""
    canvas = _Canvas(lay, np.random.default_rng([seed, index, 2]))
    for rf in lay.roofs:
        canvas.paint_roof(rf)
    for so in lay.solids:
        canvas.paint_solid(so)
    for car in lay.cars:
        canvas.paint_car(car)
    for tree in sorted(lay.trees, key=lambda t: t.top):
        canvas.paint_tree(tree)
    cam, radiance = canvas.light(_camera_from_scene(), keep_radiance)
    return cam, radiance, canvas.mask


# --------------------------------------------------------------------------- optics and camera


def _camera_from_scene() -> np.ndarray:
    """3x3 matrix from linear sRGB radiance to camera RGB of the drone preset.

    The ISP computes ``colour_matrix @ (white_balance * camera_rgb)``, so the inverse of both
    makes the preset reproduce the scene; the matrix is non-negative (the preset's matrix rows
    sum to 1, so white stays white), and a white surface gives camera RGB ``1 / white_balance``.
    """
    cam = CAMERAS["drone"]
    matrix = np.asarray(cam.colour_matrix, np.float64).reshape(3, 3)
    inv = np.linalg.inv(matrix) / np.asarray(cam.white_balance, np.float64)[:, None]
    return np.clip(inv, 0.0, None).astype(np.float32)


def _gaussian_taps(sigma: float) -> np.ndarray:
    """The PSF's taps, float32, truncated at 3 sigma (rounded up)."""
    return gaussian_kernel1d(sigma, radius=max(1, math.ceil(3 * sigma))).numpy()


# Sites of the RGGB tile: (row parity, column parity, colour channel), from raw_isp's definition.
_RGGB_SITES = tuple((k // 2, k % 2, c) for k, c in enumerate(pattern_colours("RGGB")))


def _psf_mosaic(cam: np.ndarray, sigma: float = PSF_SIGMA_PX) -> np.ndarray:
    """Blur camera RGB (3, H, W) by a Gaussian PSF and sample it through an RGGB filter: (H, W).

    The separable blur (reflecting at the frame edges) is evaluated only where the mosaic keeps
    a sample, which halves the work; the result equals ``raw_isp.isp.cfa.mosaic`` of the fully blurred
    image (checked in the tests).
    """
    taps = _gaussian_taps(sigma)
    r = len(taps) // 2
    _, h, w = cam.shape
    if r >= min(h, w):
        raise ValueError(f"frame {h}x{w} is too small for a PSF of sigma {sigma} px")
    out = np.empty((h, w), np.float32)
    for i0, i1 in _strips(h):
        lo, hi = i0 - r, i1 + r
        rows = np.abs(np.arange(lo, hi))
        rows = np.where(rows > h - 1, 2 * (h - 1) - rows, rows)
        n = (i1 - i0) // 2
        for ch in range(3):
            block = cam[ch, lo:hi] if lo >= 0 and hi <= h else cam[ch][rows]
            for dy, dx, site_ch in _RGGB_SITES:
                if site_ch != ch:
                    continue
                # Vertical pass on the rows of this parity only, then horizontal on its columns.
                v = block[dy: dy + 2 * n: 2] * taps[0]
                tmp = np.empty_like(v)
                for j in range(1, len(taps)):
                    np.multiply(block[dy + j: dy + j + 2 * n: 2], taps[j], out=tmp)
                    v += tmp
                vp = np.pad(v, ((0, 0), (r, r)), mode="reflect")
                acc = vp[:, dx: dx + w: 2] * taps[0]
                tmp = np.empty_like(acc)
                for j in range(1, len(taps)):
                    np.multiply(vp[:, dx + j: dx + j + w: 2], taps[j], out=tmp)
                    acc += tmp
                out[i0 + dy: i1: 2, dx::2] = acc
    return out


def _blur_reference(image: torch.Tensor, sigma: float = PSF_SIGMA_PX) -> torch.Tensor:
    """Plain separable Gaussian blur of ``(C, H, W)`` (reflecting edges); the tests' reference."""
    taps = torch.from_numpy(_gaussian_taps(sigma)).to(image.dtype)
    r = len(taps) // 2
    c = image.shape[0]
    x = F.pad(image[None], (r, r, r, r), mode="reflect")
    x = F.conv2d(x, taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(x, taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x[0]


def _mean_electrons(cam: np.ndarray, full_well: float, white_fraction: float) -> np.ndarray:
    """Expected photo-electrons of the RGGB mosaic, float32 (H, W), from camera RGB (3, H, W)."""
    electrons = _psf_mosaic(cam)
    electrons *= np.float32(full_well * white_fraction)
    np.maximum(electrons, 0.0, out=electrons)
    return electrons


# --------------------------------------------------------------------------- simulator


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
        seed = _derived_seed(self.seed if noise_seed is None else ("noise", noise_seed), k, row, col, "expose")
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
            raw, r, seed=_derived_seed(self.seed, tile_id, r))) for r in ratios}

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
