"""What the exposure stage costs: ``StaticISP`` with exposure None / "metadata" / "auto" / 2.0.

The same batch of raw frames goes through the same variant in each mode, one call per mode per
round, rounds interleaved so that load from other work falls on all modes alike; the table gives
the median images/s and the ratio to ``exposure=None``. On CUDA the clock is read after a
synchronise, and each mode's output is also compared with the same ISP on the CPU (max |diff|).
Needs only torch and raw_isp (no dataset packages).

    python benchmarks/bench_exposure_speed.py                         # CPU, batch 64 of 256x256
    python benchmarks/bench_exposure_speed.py --device cuda --batch 1024 --json out.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import raw_isp
from machine import machine_info, timing_device, write_json  # benchmarks/machine.py, beside this script

MODES = (None, "metadata", "auto", 2.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variant", default="bi_s_ga", choices=raw_isp.ISP_VARIANTS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1 or args.size < 16 or args.size % 2:
        parser.error("--batch and --repeats must be >= 1, --size even and >= 16")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device, sync = timing_device(args.device)
    g = torch.Generator().manual_seed(0)
    # A dim frame (ratio 0.05) of a textured scene: levels 0.2-0.6 of full scale, scaled down.
    scene = 0.2 + 0.4 * torch.rand(args.batch, args.size // 8, args.size // 8, generator=g)
    scene = torch.nn.functional.interpolate(scene[:, None], scale_factor=8, mode="bilinear")[:, 0]
    ratio = 0.05
    raw_cpu = (ratio * scene + 0.01 * ratio**0.5 * torch.randn(scene.shape, generator=g)).clamp_(0, 1)
    raw = raw_cpu.to(device)
    intensity = torch.full((args.batch,), ratio, device=device)
    isps = {str(m): raw_isp.StaticISP(args.variant, camera="drone", exposure=m, device=device) for m in MODES}

    info = machine_info(device)
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"{args.batch} frames of {args.size}x{args.size} float32, {args.variant}, drone camera, device {device}; "
          f"medians of {args.repeats} interleaved rounds")
    times: dict[str, list[float]] = {m: [] for m in isps}
    with torch.inference_mode():
        for isp in isps.values():
            isp(raw, intensity=intensity)
        sync()
        for _ in range(args.repeats):
            for m, isp in isps.items():
                sync()
                start = time.perf_counter()
                isp(raw, intensity=intensity)
                sync()
                times[m].append(time.perf_counter() - start)
        diffs = {}
        if device.type == "cuda":
            for mode in MODES:
                cpu = raw_isp.StaticISP(args.variant, camera="drone", exposure=mode)
                out = isps[str(mode)](raw, intensity=intensity).cpu()
                diffs[str(mode)] = float((out - cpu(raw_cpu, intensity=ratio)).abs().max())
    base = statistics.median(times["None"])
    rows = []
    print(f"{'exposure':<10} {'images/s':>10} {'ratio to None':>14}" + (f" {'max|cuda-cpu|':>14}" if diffs else ""))
    for m, t in times.items():
        med = statistics.median(t)
        row = {"exposure": m, "images_per_s": args.batch / med, "time_ratio_to_none": med / base}
        if diffs:
            row["max_abs_diff_cuda_cpu"] = diffs[m]
        rows.append(row)
        print(f"{m:<10} {row['images_per_s']:>10.0f} {med / base:>13.2f}x"
              + (f" {diffs[m]:>14.2e}" if diffs else ""))
    result = {"machine": info, "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "rows": rows}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
