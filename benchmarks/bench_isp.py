"""Time the batched ``raw_isp.StaticISP`` against the per-image reference, variant by variant.

Both run on the same synthetic raw frames (float32 in [0, 1]). StaticISP processes the whole
batch in one call; the reference (``raw_isp/testing/reference_isp.py``: numpy, scipy, scikit-image and
colour-demosaicing, one image at a time) loops over images. Each is warmed up once, then timed
``--repeats`` / ``--ref-repeats`` times; the table reports medians in images per second and their
ratio. On CUDA the input already sits on the device and the clock is read after a synchronise.

    python benchmarks/bench_isp.py                      # 12 variants, drone camera, CPU
    python benchmarks/bench_isp.py --variants bi_s_ga me_u_me --device cuda --json out.json
    python benchmarks/bench_isp.py --under-load 2       # beside 2 busy-loop processes

--under-load N starts N busy-loop processes (one core each) for the whole run, so both sides are
timed under the same contention; the load average before and after is printed beside the table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import raw_isp
from machine import cpu_load, load_average, machine_info, timing_device, write_json  # benchmarks/machine.py, beside this script
from raw_isp.testing.reference_isp import reference_batch, synthetic_raws


def median_seconds(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(raw_isp.ISP_VARIANTS),
                        help="variant names (default: all 12)")
    parser.add_argument("--camera", default="drone", choices=sorted(raw_isp.CAMERAS))
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--batch", type=int, default=64, help="frames per StaticISP call (default 64)")
    parser.add_argument("--size", type=int, default=256, help="frame height and width (default 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed StaticISP runs (default 5)")
    parser.add_argument("--ref-repeats", type=int, default=3, help="timed reference runs (default 3)")
    parser.add_argument("--ref-frames", type=int, default=16,
                        help="frames the reference is timed on, the first of the batch; its per-image "
                             "rate is scaled to the batch (default 16; use --batch to time all)")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--under-load", type=int, default=0, metavar="N",
                        help="time beside N busy-loop processes, one core each (default 0: no added load)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(raw_isp.ISP_VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(raw_isp.ISP_VARIANTS)}")
    if args.size % 2 or args.size < 16:
        parser.error(f"--size must be even and at least 16, got {args.size}")
    if args.under_load < 0:
        parser.error(f"--under-load must be 0 or more, got {args.under_load}")
    for name in ("batch", "repeats", "ref_repeats", "ref_frames"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.ref_frames = min(args.ref_frames, args.batch)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device, sync = timing_device(args.device)
    load_before = load_average()
    with cpu_load(args.under_load):
        result = _run(args, device, sync)
    result["load"] = {"added_busy_processes": args.under_load, "load_average_1min_before": load_before,
                      "load_average_1min_after": load_average()}
    print(f"load: {args.under_load} added busy-loop processes; 1-minute load average {load_before} before, "
          f"{result['load']['load_average_1min_after']} at the end")
    write_json(args.json, result)
    return result


def _run(args: argparse.Namespace, device: torch.device, sync) -> dict:

    raws = synthetic_raws(args.batch, args.size, args.size, args.camera, seed=args.seed,
                          level=0.8 if args.camera == "microscopy" else 0.5).astype(np.float32)
    raws_dev = torch.from_numpy(raws).to(device)
    ref_raws = raws[: args.ref_frames]

    info = machine_info(device)
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"frames: {args.batch} x {args.size}x{args.size} float32, camera={args.camera}; "
          f"StaticISP: whole batch per call, median of {args.repeats}; reference: per image, "
          f"median of {args.ref_repeats}")
    if args.ref_frames < args.batch:
        print(f"note: the reference is timed on the first {args.ref_frames} of the {args.batch} frames "
              f"and its rate is given per image (it loops over images, so it scales linearly)")

    rows = []
    header = f"{'variant':<9} {'reference img/s':>16} {'StaticISP img/s':>16} {'ratio':>8} {'max|diff|':>10}"
    print(header)
    print("-" * len(header))
    for variant in args.variants:
        isp = raw_isp.StaticISP(variant, camera=args.camera, device=device, dtype=torch.float32)
        out_box = {}

        def run_isp():
            out_box["out"] = isp(raws_dev)

        def run_ref():
            out_box["ref"] = reference_batch(ref_raws, variant, args.camera)

        with torch.inference_mode():
            t_isp = median_seconds(run_isp, args.repeats, sync)
        t_ref = median_seconds(run_ref, args.ref_repeats, lambda: None)

        m = isp.margin
        ours = out_box["out"][: args.ref_frames].permute(0, 2, 3, 1).double().cpu().numpy()
        ref = out_box["ref"]
        diff = float(np.abs(ours - ref)[:, m:-m or None, m:-m or None].max())
        row = {
            "variant": variant,
            "reference_images_per_s": args.ref_frames / t_ref,
            "static_isp_images_per_s": args.batch / t_isp,
            "max_abs_diff_interior": diff,
            "margin": m,
        }
        row["ratio"] = row["static_isp_images_per_s"] / row["reference_images_per_s"]
        rows.append(row)
        print(f"{variant:<9} {row['reference_images_per_s']:>16.1f} {row['static_isp_images_per_s']:>16.1f} "
              f"{row['ratio']:>7.1f}x {diff:>10.2e}", flush=True)

    ratios = [r["ratio"] for r in rows]
    print(f"median ratio over {len(rows)} variants: {statistics.median(ratios):.1f}x "
          f"(max|diff| is float32 StaticISP vs float64 reference, interior of each frame)")
    return {"machine": info, "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "results": rows}


if __name__ == "__main__":
    main()
