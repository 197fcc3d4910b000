"""Reflectance tables of ground, roofs and cars, and the weighted draw from them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np



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
