"""Rasterisation helpers: windows of world boxes in the image, car and tree outlines, tilted-surface cosines."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .records import _Car, _Layout, _Tree


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
