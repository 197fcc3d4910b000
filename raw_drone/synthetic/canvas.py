"""The full-frame layers of one scene (albedo, height, sun, gloss, glints, sky, mask) and their lighting."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .constants import (
    _CAR_BODY_M,
    _CAR_SKY_REACH_M,
    _HAZE_RGB,
    _SHADOW_CELL,
    _SKY_RGB,
    _SKY_SHARE,
    _SUN_RGB,
    _SUN_SHARE,
    GSD_M,
    PX_PER_M,
    _m,
)
from .geometry import (
    _car_cover,
    _car_edge_distance,
    _car_footprint,
    _ramp,
    _strips,
    _tilt_cosines,
    _tree_geometry,
    _window,
    _Window,
)
from .materials import _CAR_SECTIONS, _MAT, _MATERIAL_TABLE
from .optics import _camera_from_scene
from .records import _BLOCK, _ROADWAY, _SIDEWALK, _Axis, _Car, _Layout, _Roof, _Solid, _Tree


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
