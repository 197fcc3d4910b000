"""Write a PNG of the synthetic datasets as a model would see them through a chosen ISP.

    python scripts/show_synthetic.py --dataset microscopy --variant ma_s_ga --output synthetic.png

``--dataset microscopy`` draws examples per class (one column per class, ``--rows`` rows) and one
cell at every intensity ratio; ``--dataset drone`` draws a drone scene with its car mask overlaid
(see :func:`drone_panel`); ``--dataset both`` stacks the two. Each dataset has a panel function,
listed in :data:`PANELS`, that draws into a matplotlib (sub)figure.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from raw_isp import CAMERAS, ISP_VARIANTS, StaticISP  # noqa: E402
from raw_isp.io import raw_to_unit  # noqa: E402

DEFAULT_CAMERA = {"microscopy": "microscopy", "drone": "drone"}


def _isp_view(isp: StaticISP, raw: np.ndarray, ratio: float = 1.0, compensate: bool = False) -> np.ndarray:
    """ISP output ``(H, W, 3)`` in [0, 1] of a uint16 raw frame (optionally scaled back up by 1/ratio)."""
    x = raw_to_unit(raw)
    if compensate and ratio != 1.0:
        black = float(np.mean(isp.camera.black_level))
        x = np.clip((x - black) / ratio + black, 0.0, 1.0)
    with torch.no_grad():
        return isp(torch.from_numpy(x)).permute(1, 2, 0).cpu().numpy()


def microscopy_panel(fig, args: argparse.Namespace) -> None:
    """Examples per class (columns) and one cell across the intensity ratios (last row)."""
    from raw_microscopy.synthetic import CLASS_NAMES, INTENSITIES, MicroscopySimulator

    isp = StaticISP(args.variant, camera=args.camera or DEFAULT_CAMERA["microscopy"])
    # Several blocks of 940 so that even the rarest class (NGB, 8 per block) has enough rows.
    sim = MicroscopySimulator(seed=args.seed, num_examples=940 * (1 + args.rows // 8))
    labels = sim.labels()
    cols = max(len(CLASS_NAMES), len(INTENSITIES))
    axes = fig.subplots(args.rows + 1, cols, squeeze=False)
    for c, name in enumerate(CLASS_NAMES):
        for r, i in enumerate(np.flatnonzero(labels == c)[: args.rows]):
            axes[r, c].imshow(_isp_view(isp, sim.raw(int(i))))
            if r == 0:
                axes[r, c].set_title(name, fontsize=9)
    cell = int(np.flatnonzero(labels == CLASS_NAMES.index("NGS"))[args.rows])  # one not shown above
    for k, (ratio, raw) in enumerate(sim.raws(cell, INTENSITIES).items()):
        axes[args.rows, k].imshow(_isp_view(isp, raw, ratio, args.compensate))
        axes[args.rows, k].set_title(f"ratio {ratio:g}", fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(f"synthetic Raw-Microscopy, ISP {args.variant}"
                 f"{', exposure compensated' if args.compensate else ''}", fontsize=10)


def drone_panel(fig, args: argparse.Namespace) -> None:
    """A crop of drone scene 0 with its car mask overlaid, and one tile at every intensity ratio."""
    from raw_drone.synthetic import INTENSITIES, TILE_SIZE, DroneSimulator

    isp = StaticISP(args.variant, camera=args.camera or DEFAULT_CAMERA["drone"])
    sim = DroneSimulator(seed=args.seed, num_scenes=1)
    scene = sim.scene(0)
    t, (rows, cols) = TILE_SIZE, (3, 4)
    # The 3x4-tile window with the most car pixels; within it, the tile with the most.
    cars = scene["mask"][: sim.grid[0] * t, : sim.grid[1] * t].reshape(sim.grid[0], t, sim.grid[1], t).sum(axis=(1, 3))
    r0, c0 = max(((r, c) for r in range(sim.grid[0] - rows + 1) for c in range(sim.grid[1] - cols + 1)),
                 key=lambda rc: cars[rc[0]:rc[0] + rows, rc[1]:rc[1] + cols].sum())
    win = (slice(r0 * t, (r0 + rows) * t), slice(c0 * t, (c0 + cols) * t))
    view = _isp_view(isp, scene["raw"][win])
    mask = scene["mask"][win].astype(bool)
    overlay = view.copy()
    overlay[mask] = 0.45 * overlay[mask] + 0.55 * np.array([1.0, 0.0, 1.0])
    tr, tc = np.unravel_index(np.argmax(cars[r0:r0 + rows, c0:c0 + cols]), (rows, cols))
    tr, tc = int(tr) + r0, int(tc) + c0
    tile = (slice(tr * t, (tr + 1) * t), slice(tc * t, (tc + 1) * t))
    tile_id = f"s00_r{tr:02d}_c{tc:02d}"
    series = sim.intensity_series(scene["raw"][tile], tile_id, INTENSITIES)
    names = [f"r{k}" for k in range(len(INTENSITIES))]
    axes = fig.subplot_mosaic([["scene"] * 3 + names[:4], ["scene"] * 3 + names[4:] + ["mask"]])
    axes["scene"].imshow(np.clip(overlay, 0, 1))
    axes["scene"].add_patch(plt.Rectangle(((tc - c0) * t, (tr - r0) * t), t, t, fill=False, ec="yellow", lw=1))
    axes["scene"].set_title(f"scene s00 crop ({rows * t}x{cols * t} px at 6 cm), car mask in magenta", fontsize=9)
    for name, (ratio, raw) in zip(names, series.items()):
        axes[name].imshow(_isp_view(isp, raw, ratio, args.compensate))
        axes[name].set_title(f"{tile_id} ratio {ratio:g}", fontsize=8)
    axes["mask"].imshow(scene["mask"][tile], cmap="gray", vmin=0, vmax=1)
    axes["mask"].set_title("mask", fontsize=8)
    for ax in axes.values():
        ax.set_axis_off()
    fig.suptitle(f"synthetic Raw-Drone, ISP {args.variant}{', exposure compensated' if args.compensate else ''}",
                 fontsize=10)


PANELS: dict[str, Callable[[object, argparse.Namespace], None]] = {
    "microscopy": microscopy_panel,
    "drone": drone_panel,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=[*PANELS, "both"], default="microscopy")
    p.add_argument("--variant", default="ma_s_ga", help="ISP variant, one of the 12 names {bi,ma,me}_{s,u}_{ga,me}")
    p.add_argument("--camera", default=None, choices=sorted(CAMERAS),
                   help="camera preset (default: the dataset's own)")
    p.add_argument("--rows", type=int, default=3, help="examples per class (microscopy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compensate", action="store_true",
                   help="scale lower-intensity raws back up by 1/ratio before the ISP, to judge noise by eye")
    p.add_argument("--dpi", type=int, default=60)
    p.add_argument("--max-kb", type=float, default=480.0,
                   help="largest PNG in KB: the dpi is lowered, then colours reduced, to fit (README pictures)")
    p.add_argument("--output", type=Path, default=Path("synthetic.png"))
    args = p.parse_args(argv)
    if args.variant not in ISP_VARIANTS:
        p.error(f"--variant {args.variant!r} is not one of {sorted(ISP_VARIANTS)}")
    if args.rows < 1:
        p.error(f"--rows must be >= 1, got {args.rows}")
    if args.seed < 0:
        p.error(f"--seed must be >= 0, got {args.seed}")
    if args.output.suffix.lower() != ".png":
        p.error(f"--output must name a .png file, got {str(args.output)!r}")
    return args


def _png_bytes(fig, dpi: int, max_kb: float) -> bytes:
    """The figure as PNG of at most ``max_kb``: lower the dpi step by step (down to 2/3 of it), then
    fall back to a 256-colour palette."""
    from PIL import Image  # a dependency of matplotlib

    buf = io.BytesIO()
    for scale in (1.0, 0.9, 0.8, 0.72, 0.67):
        buf = io.BytesIO()
        fig.savefig(buf, dpi=max(1, round(dpi * scale)), format="png")
        if buf.tell() <= max_kb * 1024:
            return buf.getvalue()
    buf.seek(0)
    image = Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    names = list(PANELS) if args.dataset == "both" else [args.dataset]
    fig = plt.figure(figsize=(13, 1.45 * (args.rows + 1) * len(names) + 0.4), layout="constrained")
    subfigs = fig.subfigures(len(names), 1, squeeze=False)[:, 0]
    for name, sub in zip(names, subfigs):
        PANELS[name](sub, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".part")
    try:  # write then rename, so a failure leaves no half-written picture
        tmp.write_bytes(_png_bytes(fig, args.dpi, args.max_kb))
        tmp.replace(args.output)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KB)")
    return args.output


if __name__ == "__main__":
    main(sys.argv[1:])
