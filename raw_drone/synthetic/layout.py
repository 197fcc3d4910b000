"""Layout generation: the road grid, the blocks and what stands in them, deterministic in (seed, scene)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .constants import PX_PER_M, _m
from .materials import _CAR_COLOURS, _CAR_SHAPES, _FLAT_ROOFS, _MAT, _MATERIAL_TABLE, _MATERIALS, _PITCHED_ROOFS, _choice
from .records import (
    _BLOCK,
    _ROADWAY,
    _SIDEWALK,
    _Axis,
    _Car,
    _Frame,
    _Ground,
    _Layout,
    _Road,
    _Roof,
    _Solid,
    _Tree,
)


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
