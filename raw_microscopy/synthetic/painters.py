"""The white cell of each class, painted on a scene: one painter function per class, in a table.

:func:`paint` draws the red cells and platelets around the white cell, then calls the class's
painter from :data:`PAINTERS` with the cell's centre and radius (pixels of this frame).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .constants import _STAIN_INDEX
from .helpers import _inside, _smooth_noise
from .scene import _Scene

#: Radius range of each class's white cell, pixels of a 256-pixel frame.
_CELL_RADIUS: dict[str, tuple[int, int]] = {
    "LYT": (34, 52), "LYA": (42, 66), "MON": (50, 76), "NGS": (48, 64), "NGB": (48, 64),
    "EOS": (50, 68), "BAS": (42, 58), "KSC": (36, 78), "UNC": (40, 70),
}


def paint(sc: _Scene, label: str) -> None:
    """Render one example of class ``label``: red cells, platelets, then the white cell."""
    rng, s, n = sc.rng, sc.s, sc.c.size
    cx = n / 2 + rng.normal(0, 7) * s
    cy = n / 2 + rng.normal(0, 7) * s
    r = rng.uniform(*_CELL_RADIUS[label]) * s
    sc.red_cells(cx, cy, r if label != "KSC" else 0.8 * r)
    sc.platelets()
    PAINTERS[label](sc, cx, cy, r)


def _lyt(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng = sc.rng
    sc.body(cx, cy, r, "cyto_blue", rng.uniform(0.6, 1.2), mix=("cyto_grey", rng.uniform(0.0, 0.6)))
    k = rng.uniform(0.7, 0.9)
    off, ang = rng.uniform(0, 0.12) * r, rng.uniform(0, 2 * math.pi)
    e = rng.uniform(0, 0.08)
    out = sc.c.blob(cx + off * math.cos(ang), cy + off * math.sin(ang), k * r * (1 + e), k * r * (1 - e),
                    rng.uniform(0, math.pi), sc.harmonics(0.05), sc.s)
    out = _inside(out)
    # Dense, coarsely clumped ("soccer ball") chromatin with a marked rim.
    contrast = rng.uniform(0.45, 0.65)
    sc.chromatin(sc.c.full_mask(out[0], out[1]), rng.uniform(0.85, 1.3) / (1 - contrast / 2), "clumped",
                 rng.uniform(0.16, 0.24), contrast, rng.uniform(0.3, 0.6))


def _lya(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng, s = sc.rng, sc.s
    cell, _ = sc.body(cx, cy, r, "cyto_blue", rng.uniform(0.6, 1.4), irregular=0.12,
                      rim_darkening=rng.uniform(0.1, 0.6), mix=("cyto_grey", rng.uniform(0.0, 0.7)))
    k = rng.uniform(0.5, 0.75)
    off, ang = rng.uniform(0.05, 0.25) * r, rng.uniform(0, 2 * math.pi)
    nx, ny = cx + off * math.cos(ang), cy + off * math.sin(ang)
    e = rng.uniform(0, 0.15)
    out = sc.c.blob(nx, ny, k * r * (1 + e), k * r * (1 - e), rng.uniform(0, math.pi), sc.harmonics(0.1), s)
    out = _inside(out)
    nuc = sc.c.full_mask(out[0], out[1])
    # Looser (less condensed) chromatin; sometimes pale nucleoli.
    for _ in range(int(rng.choice([0, 0, 1, 2]))):
        a, rr = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.5) * k * r
        nr = sc.um(rng.uniform(0.4, 0.8))
        spot = sc.c.blob(nx + rr * math.cos(a), ny + rr * math.sin(a), nr, nr * rng.uniform(0.8, 1.0), 0.0, (), s)
        if spot is not None:
            nuc[spot[0]] *= 1.0 - 0.35 * spot[1]
    contrast = rng.uniform(0.2, 0.35)
    sc.chromatin(nuc, rng.uniform(0.7, 1.05) / (1 - contrast / 2), "clumped", rng.uniform(0.13, 0.2),
                 contrast, rng.uniform(0.15, 0.35))
    if rng.random() < 0.3:  # large granular lymphocyte: a few azurophilic granules
        sc.azurophilic(cell * (1.0 - np.minimum(nuc * 2, 1.0)), int(rng.integers(3, 16)), (0.3, 0.5))


def _mon(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng, s = sc.rng, sc.s
    cell, _ = sc.body(cx, cy, r, "cyto_grey", rng.uniform(0.6, 1.2), irregular=0.08,
                      mix=("cyto_blue", rng.uniform(0.0, 0.7)))
    ang = rng.uniform(0, 2 * math.pi)
    off = rng.uniform(0.05, 0.2) * r
    nx, ny = cx + off * math.cos(ang), cy + off * math.sin(ang)
    k = rng.uniform(0.52, 0.64)
    out = sc.c.blob(nx, ny, k * r * rng.uniform(1.0, 1.2), k * r * rng.uniform(0.8, 1.0), ang + math.pi / 2,
                    sc.harmonics(0.1), s)
    out = _inside(out)
    nuc = sc.c.full_mask(out[0], out[1])
    if rng.random() < 0.65:  # kidney: a notch bitten out of the nucleus on the cell-centre side
        nr = k * r * rng.uniform(0.35, 0.55)
        d = k * r * rng.uniform(0.75, 1.0)
        notch = sc.c.blob(nx - d * math.cos(ang), ny - d * math.sin(ang), nr, nr * 1.2, ang, (), 1.5 * s)
        if notch is not None:
            nuc[notch[0]] *= 1.0 - notch[1]
    # Lacy, delicate chromatin.
    density = rng.uniform(0.6, 0.95)
    sc.chromatin(nuc, density, "lacy", rng.uniform(0.12, 0.18), rng.uniform(0.35, 0.55), rng.uniform(0.1, 0.3))
    # Folds ("brain-like convolutions"): the envelope seen edge-on, thin dark lines.
    for _ in range(int(rng.integers(1, 4))):
        th = rng.uniform(0, math.pi)
        L = k * r * rng.uniform(0.5, 1.0)
        bend = rng.normal(0, 0.25) * L
        px, py = nx + rng.normal(0, 0.25) * k * r, ny + rng.normal(0, 0.25) * k * r
        pts = np.array([[px - L * math.cos(th), py - L * math.sin(th)],
                        [px - bend * math.sin(th), py + bend * math.cos(th)],
                        [px + L * math.cos(th), py + L * math.sin(th)]])
        fold = sc.c.tube(pts, [rng.uniform(0.5, 1.0) * s] * 3, 0.7 * s)
        if fold is not None:
            sc.c.add("nucleus", fold[0], fold[1] * nuc[fold[0]] * np.float32(density * rng.uniform(0.4, 0.8)))
    # Ground-glass cytoplasm: fine azurophilic dust below the resolution.
    cyto = cell * (1.0 - np.minimum(nuc * 2, 1.0))
    sc.granule_count += sc.c.granules("nucleus", cyto, rng.uniform(0.1, 0.2), 0.3, rng.uniform(0.3, 0.8),
                                      (0.25, 0.5))
    # Vacuoles: small clear holes in the cytoplasm.
    for _ in range(int(rng.integers(0, 9))):
        a, rr = rng.uniform(0, 2 * math.pi), r * math.sqrt(rng.uniform(0.2, 0.8))
        vr = rng.uniform(2.5, 6.0) * s
        out = sc.c.blob(cx + rr * math.cos(a), cy + rr * math.sin(a), vr, vr, 0.0, (), s)
        if out is not None:
            win, m, _ = out
            # 1 over the nucleus; "nucleus" here clears the azurophilic dust of the cytoplasm.
            keep = 1.0 - 0.8 * m * cell[win] * (1.0 - np.minimum(nuc[win] * 2, 1.0))
            for stain in ("cyto_grey", "cyto_blue", "nucleus"):
                sc.c.density[_STAIN_INDEX[stain]][win] *= keep


def _neutrophil_body(sc: _Scene, cx: float, cy: float, r: float) -> np.ndarray:
    """Pale lilac cytoplasm packed with fine neutral granules, 0.2-0.3 um, barely resolved."""
    rng = sc.rng
    cell, _ = sc.body(cx, cy, r, "cyto_lilac", rng.uniform(0.5, 0.9))
    sc.granule_count += sc.c.granules("cyto_lilac", cell, rng.uniform(0.2, 0.3), 0.25,
                                      rng.uniform(1.5, 3.0), (0.5, 1.0))
    return cell


def _segmented_chromatin(sc: _Scene, nuc: np.ndarray) -> float:
    """Coarsely clumped, condensed neutrophil chromatin; returns its mean density."""
    rng = sc.rng
    contrast = rng.uniform(0.4, 0.6)
    density = rng.uniform(0.95, 1.2)
    sc.chromatin(nuc, density / (1 - contrast / 2), "clumped", rng.uniform(0.16, 0.24),
                 contrast, rng.uniform(0.2, 0.4))
    return density


def _ngs(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng = sc.rng
    _neutrophil_body(sc, cx, cy, r)
    n_lobes = int(rng.choice([2, 3, 3, 3, 4, 4, 4, 5]))
    arc = rng.uniform(0.36, 0.48) * r
    start = rng.uniform(0, 2 * math.pi)
    steps = np.radians(rng.uniform(62, 92, n_lobes - 1)) * rng.choice([-1, 1])
    angles = start + np.concatenate([[0.0], np.cumsum(steps)])
    angles -= (angles[-1] - angles[0]) / 2  # centre the chain on the cell
    radial = arc * rng.uniform(0.8, 1.2, n_lobes)
    centres = np.stack([cx + radial * np.cos(angles), cy + radial * np.sin(angles)], axis=1)
    sizes = np.stack([rng.uniform(0.2, 0.27, n_lobes) * r, rng.uniform(0.14, 0.19, n_lobes) * r], axis=1)
    # Lobes joined by filaments 1.6-3.2 px (0.15-0.3 um) wide, near the resolution limit.
    nuc, strands = sc.lobe_chain(centres, sizes, angles + rng.normal(0, 0.3, n_lobes),
                                 rng.uniform(0.8, 1.6) * sc.s)
    sc.filaments(strands, _segmented_chromatin(sc, nuc))


def _ngb(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng = sc.rng
    _neutrophil_body(sc, cx, cy, r)
    t = np.linspace(-1.0, 1.0, 15)
    rad = rng.uniform(0.35, 0.5) * r
    if rng.random() < 0.7:  # C-shape: an arc of 150-260 degrees
        half = np.radians(rng.uniform(150, 260)) / 2
        local = np.stack([rad * np.cos(half * t), rad * np.sin(half * t)], axis=1)
    else:  # S-shape: one period of a sine along a straight axis
        local = np.stack([rad * 1.1 * t, rad * rng.uniform(0.35, 0.6) * np.sin(math.pi * t)], axis=1)
    rot = rng.uniform(0, 2 * math.pi)
    c, sn = math.cos(rot), math.sin(rot)
    pts = local @ np.array([[c, sn], [-sn, c]])
    pts += np.array([cx, cy]) - pts.mean(0)
    # A band: no narrowing to a filament anywhere (the width varies by < 1/3).
    width = rng.uniform(0.12, 0.17) * r
    hw = width * (1.0 - 0.3 * (2 * np.linspace(-0.5, 0.5, len(pts))) ** 4) * rng.uniform(0.9, 1.1, len(pts))
    out = sc.c.tube(pts, hw, sc.s)
    out = _inside(out)
    _segmented_chromatin(sc, sc.c.full_mask(*out))


def _eos(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng, s = sc.rng, sc.s
    cell, _ = sc.body(cx, cy, r, "cyto_lilac", rng.uniform(0.3, 0.6))
    axis = rng.uniform(0, math.pi)
    sep = rng.uniform(0.28, 0.4) * r
    bend = rng.normal(0, 0.12) * r
    ox, oy = math.cos(axis), math.sin(axis)
    centres = np.array([[cx - sep * ox - bend * oy, cy - sep * oy + bend * ox],
                        [cx + sep * ox - bend * oy, cy + sep * oy + bend * ox]])
    sizes = np.stack([rng.uniform(0.26, 0.33, 2) * r, rng.uniform(0.19, 0.25, 2) * r], axis=1)
    nuc, strands = sc.lobe_chain(centres, sizes, np.array([axis + math.pi / 2] * 2) + rng.normal(0, 0.3, 2),
                                 rng.uniform(0.8, 1.6) * s)
    contrast = rng.uniform(0.3, 0.5)
    density = rng.uniform(0.8, 1.0)
    sc.chromatin(nuc, density / (1 - contrast / 2), "clumped", rng.uniform(0.16, 0.24), contrast,
                 rng.uniform(0.2, 0.4))
    sc.filaments(strands, density)
    # Large, uniform, closely packed granules; they lie mostly beside the nucleus.
    sc.granule_count += sc.c.granules("eos_granule", cell, rng.uniform(0.55, 0.8), 0.15,
                                      rng.uniform(0.6, 0.85), (0.6, 1.1), weight=1.0 - 0.6 * nuc,
                                      packed=True)


def _bas(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng, s = sc.rng, sc.s
    cell, _ = sc.body(cx, cy, r, "cyto_lilac", rng.uniform(0.4, 0.8))
    out = sc.c.blob(cx + rng.normal(0, 0.08) * r, cy + rng.normal(0, 0.08) * r, 0.6 * r, 0.5 * r,
                    rng.uniform(0, math.pi), sc.harmonics(0.2), 2 * s)
    out = _inside(out)
    sc.chromatin(sc.c.full_mask(out[0], out[1]), rng.uniform(0.45, 0.7), "clumped", 0.3, 0.2, 0.1)
    # Coarse granules of very mixed size, over the nucleus as much as beside it.
    sc.granule_count += sc.c.granules("bas_granule", cell, rng.uniform(0.45, 0.6), 0.5,
                                      rng.uniform(0.25, 0.9), (0.6, 1.3))


def _ksc(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng, s, n = sc.rng, sc.s, sc.c.size
    e = rng.uniform(0.0, 0.35)
    theta = rng.uniform(0, math.pi)
    out = sc.c.blob(cx, cy, r * (1 + e), r * (1 - e), theta, sc.harmonics(0.35, (2, 3, 4, 5, 7)),
                    rng.uniform(5, 12) * s)
    out = _inside(out)
    env = sc.c.full_mask(out[0], out[1])
    streaks = _smooth_noise(rng, (n, n), rng.uniform(6, 12) * s, rng.uniform(2.0, 3.5) * s,
                            theta + rng.normal(0, 0.4))
    blotches = _smooth_noise(rng, (n, n), rng.uniform(3, 8) * s)
    mix = rng.uniform(0.2, 0.8)
    fibres = np.clip(0.6 + 0.45 * (mix * streaks + (1 - mix) * blotches), 0, None)
    if rng.random() < 0.5:  # basket cell: a net of thin chromatin strands
        net = _smooth_noise(rng, (n, n), rng.uniform(2.0, 3.5) * s, rng.uniform(1.2, 2.0) * s,
                            theta + rng.normal(0, 0.6))
        fibres += np.float32(rng.uniform(0.4, 0.9)) * np.exp(-0.5 * (net / np.float32(0.3)) ** 2)
    sc.c.density[_STAIN_INDEX["nucleus"]] += env * fibres * np.float32(rng.uniform(0.3, 0.7))
    if rng.random() < 0.35:  # a denser remnant core
        out = sc.c.blob(cx + rng.normal(0, 0.2) * r, cy + rng.normal(0, 0.2) * r, 0.3 * r, 0.22 * r,
                        rng.uniform(0, math.pi), sc.harmonics(0.2), 3 * s)
        if out is not None:
            sc.chromatin(sc.c.full_mask(out[0], out[1]), rng.uniform(0.4, 0.8), "clumped", 0.3, 0.4, 0.0)
    if rng.random() < 0.25:  # traces of cytoplasm
        sc.c.density[_STAIN_INDEX["cyto_lilac"]] += env * np.float32(rng.uniform(0.3, 0.7))


def _unc(sc: _Scene, cx: float, cy: float, r: float) -> None:
    rng, s = sc.rng, sc.s
    base = str(rng.choice(["LYT", "LYA", "MON", "NGS", "EOS", "KSC"]))
    r_base = float(np.clip(r, 36 * s, 76 * s))
    PAINTERS[base](sc, cx, cy, r_base)
    mode = rng.integers(0, 4)
    if mode == 0 or rng.random() < 0.3:  # out of focus
        sc.extra_blur = rng.uniform(2.5, 6.0) * s
    if mode == 1:  # faded, poorly stained
        sc.c.density[:] *= np.float32(rng.uniform(0.4, 0.7))
    elif mode == 2:  # pyknotic / fragmented nucleus: a few small dark round pieces
        for _ in range(int(rng.integers(2, 6))):
            a, rr = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.5) * r_base
            fr = rng.uniform(0.1, 0.2) * r_base
            out = sc.c.blob(cx + rr * math.cos(a), cy + rr * math.sin(a), fr, fr, 0.0, (), s)
            if out is not None:
                sc.c.add("nucleus", out[0], out[1] * np.float32(rng.uniform(0.8, 1.3)))
    elif mode == 3:  # a second, overlapping nucleus from a neighbouring cell
        a = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0.6, 1.0) * r_base
        out = sc.c.blob(cx + d * math.cos(a), cy + d * math.sin(a), 0.5 * r_base, 0.4 * r_base,
                        rng.uniform(0, math.pi), sc.harmonics(0.1), s)
        if out is not None:
            sc.chromatin(sc.c.full_mask(out[0], out[1]), rng.uniform(0.6, 1.0), "clumped", 0.25, 0.4, 0.3)


#: The painter of each class: ``painter(scene, cx, cy, r)`` draws the white cell.
PAINTERS: dict[str, Callable[[_Scene, float, float, float], None]] = {
    "BAS": _bas, "EOS": _eos, "KSC": _ksc, "LYA": _lya, "LYT": _lyt, "MON": _mon, "NGB": _ngb, "NGS": _ngs,
    "UNC": _unc,
}
