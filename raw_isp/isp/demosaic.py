"""Bayer demosaicing: bilinear, Malvar-He-Cutler (2004) and Menon-Andriani-Calvagno (2007).

All three work on the four CFA sites as quarter-resolution planes ``(B, 4, H/2, W/2)``
(see :func:`raw_isp.isp.cfa.split_planes`) and assemble the full image once with
``pixel_shuffle``, so no work is spent on samples that are thrown away.

- ``bilinear``: each missing colour is the mean of its nearest same-colour neighbours.
- ``malvar2004``: H. S. Malvar, L.-W. He, R. Cutler, "High-quality linear interpolation for
  demosaicing of Bayer-patterned color images", ICASSP 2004. Bilinear interpolation corrected
  by the Laplacian of the known colour (fixed 5x5 kernels).
- ``menon2007``: D. Menon, S. Andriani, G. Calvagno, "Demosaicing with directional filtering
  and a posteriori decision", IEEE Trans. Image Processing 16(1), 2007, including its
  refining step. Green is interpolated horizontally and vertically, the direction with the
  smaller colour-difference gradients is kept, then red/blue follow the colour differences.

The results equal ``colour_demosaicing``'s ``demosaicing_CFA_Bayer_*`` functions on the
interior of the frame; borders are handled by CFA-preserving reflection of the mosaic (the
reference pads each sub-step on its own, so the outermost pixels may differ: 1 px for
bilinear, 2 for Malvar, up to 12 for Menon).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .cfa import check_pattern, check_raw, pad_mosaic, pattern_colours, split_planes

__all__ = [
    "DEMOSAIC_METHODS",
    "SUPPORT",
    "demosaic",
    "demosaic_sites",
    "demosaic_site_planes",
    "demosaic_rggb_planes",
    "rggb_canvas",
    "rggb_site_order",
    "linear_demosaic_kernels",
]

DEMOSAIC_METHODS = ("bilinear", "malvar2004", "menon2007")
#: Support radius (full-resolution pixels) each method reads around an output pixel.
SUPPORT = {"bilinear": 1, "malvar2004": 2, "menon2007": 12}

# Colour of each positional site of the RGGB tile: (0,0) R, (0,1) G, (1,0) G, (1,1) B.
_RGGB = (0, 1, 1, 2)
_SITES = ((0, 0), (0, 1), (1, 0), (1, 1))


def _rggb_colour(y: int, x: int) -> int:
    return _RGGB[(y % 2) * 2 + (x % 2)]


def linear_demosaic_kernels(method: str) -> torch.Tensor:
    """Full-resolution correlation kernels ``(3, 4, k, k)`` of a linear method on RGGB.

    ``kernels[c, s]`` gives output colour ``c`` at site ``s`` as a weighted sum of the mosaic
    around that pixel (float64).
    """
    if method == "bilinear":
        h_g = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=torch.float64) / 4
        h_rb = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float64) / 4
        out = torch.zeros(3, 4, 3, 3, dtype=torch.float64)
        for s, (a, b) in enumerate(_SITES):
            for c, h in ((0, h_rb), (1, h_g), (2, h_rb)):
                for dy in range(-1, 2):
                    for dx in range(-1, 2):
                        if _rggb_colour(a + dy, b + dx) == c:
                            out[c, s, dy + 1, dx + 1] = h[dy + 1, dx + 1]
        return out
    if method == "malvar2004":
        t = functools.partial(torch.tensor, dtype=torch.float64)
        g_at_rb = t([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]]) / 8
        # Colour at a green site whose same-row neighbours have that colour.
        row_nb = t([[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]]) / 8
        col_nb = row_nb.T
        # Red at blue sites and blue at red sites.
        diag = t([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]]) / 8
        ident = torch.zeros(5, 5, dtype=torch.float64)
        ident[2, 2] = 1
        out = torch.zeros(3, 4, 5, 5, dtype=torch.float64)
        # site order: R, G in red row, G in blue row, B
        out[0] = torch.stack([ident, row_nb, col_nb, diag])
        out[1] = torch.stack([g_at_rb, ident, ident, g_at_rb])
        out[2] = torch.stack([diag, col_nb, row_nb, ident])
        return out
    raise ValueError(f"{method!r} is not a linear demosaicing method")


@functools.lru_cache(maxsize=8)
def _linear_taps(method: str) -> tuple:
    """Non-zero taps ``(dy, dx, weight)`` of a linear method, indexed ``[colour][site]``."""
    k = linear_demosaic_kernels(method)
    r = k.shape[-1] // 2
    n = k.shape[-1]
    return tuple(
        tuple(
            tuple((dy - r, dx - r, float(k[c, s, dy, dx])) for dy in range(n) for dx in range(n) if k[c, s, dy, dx] != 0)
            for s in range(4)
        )
        for c in range(3)
    )


def demosaic_site_planes(planes: torch.Tensor, method: str) -> list[list[torch.Tensor]]:
    """Demosaic RGGB site planes ``(B, 4, h, w)``; returns ``out[c][s]``, colour ``c`` at site ``s``.

    Each entry is a ``(B, h, w)`` tensor (the known colour of a site is a view of the input).
    Borders are extended by replicating the planes, so the outermost ``SUPPORT[method]``
    pixels are approximate; callers pad the mosaic first (see :func:`demosaic`).
    """
    if method == "menon2007":
        return _menon_planes(planes)
    if method not in ("bilinear", "malvar2004"):
        raise ValueError(f"unknown demosaicing method {method!r}; expected one of {DEMOSAIC_METHODS}")
    raw = _Sites({s: planes[:, s] for s in range(4)})
    inplace = not (torch.is_grad_enabled() and planes.requires_grad)
    out = []
    for per_site in _linear_taps(method):
        row = []
        for s, taps in enumerate(per_site):
            if taps == ((0, 0, 1.0),):
                row.append(raw[s])
                continue
            acc = None
            for dy, dx, wt in taps:
                view = raw.nb(s, dy, dx)
                if acc is None:
                    acc = view * wt
                elif inplace:
                    acc.add_(view, alpha=wt)
                else:
                    acc = acc + view * wt
            row.append(acc)
        out.append(row)
    return out


def demosaic_sites(planes: torch.Tensor, method: str) -> torch.Tensor:
    """Demosaic RGGB site planes ``(B, 4, h, w)`` into colour per site ``(B, 3, 4, h, w)``.

    ``pixel_shuffle(out.flatten(1, 2), 2)`` is the full image (see :func:`demosaic_site_planes`).
    """
    return torch.stack([torch.stack(row, dim=1) for row in demosaic_site_planes(planes, method)], dim=1)


def demosaic_rggb_planes(planes: torch.Tensor, method: str) -> torch.Tensor:
    """Demosaic RGGB site planes ``(B, 4, h, w)`` into ``(B, 3, 2h, 2w)`` (see :func:`demosaic_sites`)."""
    return F.pixel_shuffle(demosaic_sites(planes, method).flatten(1, 2), 2)


def demosaic(raw: torch.Tensor, method: str = "bilinear", pattern: str = "RGGB") -> torch.Tensor:
    """Demosaic a Bayer mosaic ``(B, H, W)`` (or ``(H, W)``) into RGB ``(B, 3, H, W)``.

    ``method``: "bilinear", "malvar2004" or "menon2007"; ``pattern``: "RGGB", "BGGR",
    "GRBG" or "GBRG". Any float dtype and device; differentiable in ``raw``.
    """
    if method not in DEMOSAIC_METHODS:
        raise ValueError(f"unknown demosaicing method {method!r}; expected one of {DEMOSAIC_METHODS}")
    raw = check_raw(raw)
    if not raw.is_floating_point():
        raise TypeError(f"raw must be a floating-point tensor (normalised units), got {raw.dtype}")
    colours = pattern_colours(check_pattern(pattern))
    canvas, (oy, ox) = rggb_canvas(raw, colours, 2 * ((SUPPORT[method] + 1) // 2) + 2)
    rgb = demosaic_rggb_planes(split_planes(canvas), method)
    h, w = raw.shape[-2:]
    return rgb[..., oy : oy + h, ox : ox + w]


def rggb_site_order(pattern: str) -> list[int]:
    """For each site of the RGGB canvas made by :func:`rggb_canvas`, the input site it came from.

    Per-site values given for the input pattern (such as a black level) are reordered with
    ``[values[i] for i in rggb_site_order(pattern)]``.
    """
    dy, dx = _SITES[pattern_colours(pattern).index(0)]
    return [((a + dy) % 2) * 2 + (b + dx) % 2 for a, b in _SITES]


def rggb_canvas(raw: torch.Tensor, colours: tuple[int, ...], pad: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Extend a mosaic ``(B, H, W)`` so that it is RGGB with at least ``pad`` pixels around it.

    Reflection (``x[-k] = x[k]``) keeps the CFA phase; an extra one-pixel shift moves the red
    site of a BGGR/GRBG/GBRG mosaic to (0, 0). Returns the canvas and the offset ``(oy, ox)``
    of the original frame inside it. ``pad`` is rounded up to even and capped for tiny frames.
    """
    h, w = raw.shape[-2:]
    pad = pad + pad % 2
    pad = min(pad, (min(h, w) - 1) // 2 * 2)  # reflection cannot reach further than the frame
    canvas = pad_mosaic(raw, pad)
    dy, dx = _SITES[colours.index(0)]
    if dy or dx:
        canvas = F.pad(canvas.unsqueeze(1), (dx, dx, dy, dy), mode="replicate").squeeze(1)
    return canvas, (pad + dy, pad + dx)


# --------------------------------------------------------------------------- Menon 2007


class _Sites:
    """Quarter-resolution planes of one quantity at the four RGGB sites, with neighbour access.

    ``nb(s, dy, dx)`` returns, for every pixel of site ``s``, the value at the full-resolution
    offset ``(dy, dx)`` (|dy|, |dx| <= 2) as a ``(B, h, w)`` view, borders replicated.
    """

    def __init__(self, planes: dict[int, torch.Tensor]):
        self.planes = planes
        self._padded: dict[int, torch.Tensor] = {}

    def __getitem__(self, s: int) -> torch.Tensor:
        return self.planes[s]

    def nb(self, s: int, dy: int, dx: int) -> torch.Tensor:
        a, b = _SITES[s]
        yy, xx = a + dy, b + dx
        t = (yy % 2) * 2 + (xx % 2)
        oy, ox = yy // 2, xx // 2
        if oy == 0 and ox == 0:
            return self.planes[t]
        if t not in self._padded:
            self._padded[t] = F.pad(self.planes[t].unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
        p = self._padded[t]
        h, w = p.shape[-2] - 2, p.shape[-1] - 2
        return p[:, 1 + oy : 1 + oy + h, 1 + ox : 1 + ox + w]


R_SITE, GR_SITE, GB_SITE, B_SITE = 0, 1, 2, 3  # GR: green in a red row, GB: green in a blue row


def _avg_h(f: _Sites, s: int) -> torch.Tensor:
    return 0.5 * (f.nb(s, 0, -1) + f.nb(s, 0, 1))


def _avg_v(f: _Sites, s: int) -> torch.Tensor:
    return 0.5 * (f.nb(s, -1, 0) + f.nb(s, 1, 0))


def _select(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a`` where ``mask`` (a 0/1 float tensor) is 1, else ``b``.

    Written as ``b + mask * (a - b)``: several times faster than ``torch.where`` on CPU; where
    the mask is 1 the result may differ from ``a`` by one rounding step.
    """
    return torch.addcmul(b, mask, a - b)


def _fir3(f: _Sites, s: int, horizontal: torch.Tensor) -> torch.Tensor:
    """Mean over x-1..x+1 where ``horizontal`` (0/1 float) else over y-1..y+1 (site ``s``)."""
    h = f[s] + f.nb(s, 0, -1) + f.nb(s, 0, 1)
    v = f[s] + f.nb(s, -1, 0) + f.nb(s, 1, 0)
    return _select(horizontal, h, v) / 3


# d = sum of k * D over this window (offsets relative to the pixel, kernel k of the paper
# as used by colour-demosaicing, flipped by its convolution).
_WINDOW_H = ((2, 0, 1.0), (2, -2, 1.0), (1, -1, 1.0), (0, 0, 3.0), (0, -2, 3.0), (-1, -1, 1.0), (-2, 0, 1.0), (-2, -2, 1.0))
_WINDOW_V = tuple((dx, dy, wt) for dy, dx, wt in _WINDOW_H)


def _menon_planes(planes: torch.Tensor) -> list[list[torch.Tensor]]:
    """Menon (2007) with refining step on RGGB planes; returns ``out[colour][site]``."""
    raw = _Sites({s: planes[:, s] for s in range(4)})
    chroma = (R_SITE, B_SITE)

    # 1. Directional green estimates at red and blue sites: neighbour mean + Laplacian correction.
    g_h, g_v = {}, {}
    for s in chroma:
        g_h[s] = _avg_h(raw, s) + 0.5 * raw[s] - 0.25 * (raw.nb(s, 0, -2) + raw.nb(s, 0, 2))
        g_v[s] = _avg_v(raw, s) + 0.5 * raw[s] - 0.25 * (raw.nb(s, -2, 0) + raw.nb(s, 2, 0))

    # 2-4. Colour differences, their gradients two pixels apart, summed over a causal window.
    zero = torch.zeros_like(raw[R_SITE])
    ch = _Sites({R_SITE: raw[R_SITE] - g_h[R_SITE], B_SITE: raw[B_SITE] - g_h[B_SITE]})
    cv = _Sites({R_SITE: raw[R_SITE] - g_v[R_SITE], B_SITE: raw[B_SITE] - g_v[B_SITE]})
    dh = _Sites({**{s: (ch[s] - ch.nb(s, 0, 2)).abs() for s in chroma}, GR_SITE: zero, GB_SITE: zero})
    dv = _Sites({**{s: (cv[s] - cv.nb(s, 2, 0)).abs() for s in chroma}, GR_SITE: zero, GB_SITE: zero})
    horizontal = {}
    green = {GR_SITE: raw[GR_SITE], GB_SITE: raw[GB_SITE]}
    for s in chroma:
        d_h = sum(wt * dh.nb(s, dy, dx) for dy, dx, wt in _WINDOW_H)
        d_v = sum(wt * dv.nb(s, dy, dx) for dy, dx, wt in _WINDOW_V)
        horizontal[s] = (d_v >= d_h).to(planes.dtype)
        green[s] = _select(horizontal[s], g_h[s], g_v[s])
    G = _Sites(green)

    # 5. Red and blue at green sites from the colour differences along the row or column.
    red = {R_SITE: raw[R_SITE]}
    blue = {B_SITE: raw[B_SITE]}
    red[GR_SITE] = G[GR_SITE] + _avg_h(raw, GR_SITE) - _avg_h(G, GR_SITE)
    red[GB_SITE] = G[GB_SITE] + _avg_v(raw, GB_SITE) - _avg_v(G, GB_SITE)
    blue[GB_SITE] = G[GB_SITE] + _avg_h(raw, GB_SITE) - _avg_h(G, GB_SITE)
    blue[GR_SITE] = G[GR_SITE] + _avg_v(raw, GR_SITE) - _avg_v(G, GR_SITE)
    # 6. Red at blue sites and blue at red sites, along the chosen direction.
    Rs, Bs = _Sites(dict(red)), _Sites(dict(blue))
    hb, hr = horizontal[B_SITE], horizontal[R_SITE]
    red[B_SITE] = raw[B_SITE] + _select(hb, _avg_h(Rs, B_SITE) - _avg_h(Bs, B_SITE), _avg_v(Rs, B_SITE) - _avg_v(Bs, B_SITE))
    blue[R_SITE] = raw[R_SITE] + _select(hr, _avg_h(Bs, R_SITE) - _avg_h(Rs, R_SITE), _avg_v(Bs, R_SITE) - _avg_v(Rs, R_SITE))

    # Refining step. (a) green at red/blue sites from smoothed colour differences.
    r_g = _Sites({s: red[s] - green[s] for s in range(4)})
    b_g = _Sites({s: blue[s] - green[s] for s in range(4)})
    green[R_SITE] = red[R_SITE] - _fir3(r_g, R_SITE, hr)
    green[B_SITE] = blue[B_SITE] - _fir3(b_g, B_SITE, hb)
    # (b) red and blue at green sites from the refined differences.
    r_g = _Sites({s: red[s] - green[s] for s in chroma})
    b_g = _Sites({s: blue[s] - green[s] for s in chroma})
    red[GB_SITE] = green[GB_SITE] + _avg_v(r_g, GB_SITE)
    red[GR_SITE] = green[GR_SITE] + _avg_h(r_g, GR_SITE)
    blue[GR_SITE] = green[GR_SITE] + _avg_v(b_g, GR_SITE)
    blue[GB_SITE] = green[GB_SITE] + _avg_h(b_g, GB_SITE)
    # (c) red at blue sites and blue at red sites from the smoothed red-blue difference.
    r_b = _Sites({s: red[s] - blue[s] for s in range(4)})
    red[B_SITE] = blue[B_SITE] + _fir3(r_b, B_SITE, hb)
    blue[R_SITE] = red[R_SITE] - _fir3(r_b, R_SITE, hr)

    return [[c[s] for s in range(4)] for c in (red, green, blue)]
