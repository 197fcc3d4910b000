"""Physical check of the ISP's exposure stage: how close a low-light view comes to the full-light one.

Synthetic Raw-Microscopy frames (``raw_microscopy.synthetic.MicroscopySimulator``) are exposed at
ratio 1.0 and thinned to each lower ratio with the microscopy sensor model
(``raw_isp.SENSORS["microscopy"].scale_intensity``: photon-exact shot noise, read noise, 16-bit
quantisation). Each frame is developed by ``StaticISP(variant, camera="microscopy", exposure=...)``
and compared, per image, with the same scene's ratio-1.0 frame developed the same way:

- ``None``       the study's pipeline, no exposure stage (reference: the None view at 1.0)
- ``metadata``   gain 1 / ratio (reference: the None view at 1.0, identical to metadata at 1.0)
- ``meta+clip``  the alternative design: gain 1 / ratio, then clip to the sensor's range
                 (what a sensor at full exposure could record), then the same chain
- ``auto``       auto-exposure (trimmed mean against mid grey); reference: the auto view at 1.0
- ``auto/study`` the auto view against the study's (None) full-light view

PSNR = 10 log10(1 / MSE) per image over the whole developed frame (values in [0, 1]), then the
mean over images. The sensor's SNR per ratio is measured on the raw mosaic as
``10 log10(sum S^2 / sum (e - S)^2)`` with ``S`` the expected photo-electrons at that ratio
(``ratio * sim.mean_electrons``) and ``e`` the electrons read back from the frame, next to the
photon-transfer prediction ``sum S^2 / sum (S + read_noise^2 + adc_step^2 / (12 gain^2))``.
``auto gain x ratio`` is the auto gain at that ratio times the ratio, over the gain at 1.0
(1.000 when auto-exposure tracks the light exactly); ``clipped %`` the share of raw values that
``meta+clip`` clips. What the stage costs in time: ``benchmarks/bench_exposure_speed.py``.

    python benchmarks/bench_exposure.py                     # 32 frames of 256x256, bi_s_ga, CPU
    python benchmarks/bench_exposure.py --num 64 --variant me_s_me --json out.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import raw_isp
from machine import machine_info, write_json  # benchmarks/machine.py, beside this script
from raw_isp.isp.exposure import AUTO_EXPOSURE_TARGET
from raw_microscopy.synthetic import MicroscopySimulator

RATIOS = (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)
COLUMNS = ("none", "metadata", "meta+clip", "auto", "auto/study")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=32, help="synthetic frames (default 32)")
    parser.add_argument("--size", type=int, default=256, help="frame height and width (default 256)")
    parser.add_argument("--variant", default="bi_s_ga", choices=raw_isp.ISP_VARIANTS)
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (scenes and noise)")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error("--num must be at least 1")
    return args


def frames(args: argparse.Namespace) -> tuple[dict[float, np.ndarray], np.ndarray]:
    """uint16 frames ``{ratio: (N, H, W)}`` and the expected electrons at ratio 1.0, ``(N, H, W)``."""
    sim = MicroscopySimulator(seed=args.seed, num_examples=args.num, size=args.size)
    sensor = raw_isp.SENSORS["microscopy"]
    out: dict[float, list[np.ndarray]] = {r: [] for r in RATIOS}
    expected = []
    for i in range(args.num):
        full = sim.raw(i, 1.0)
        expected.append(sim.mean_electrons(i))
        for k, r in enumerate(RATIOS):
            out[r].append(full if r == 1.0 else sensor.scale_intensity(full, r, seed=[args.seed, i, k]))
    return {r: np.stack(v) for r, v in out.items()}, np.stack(expected).astype(np.float64)


def sensor_snr(raw: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """Measured and predicted SNR (dB) of raw frames whose expected electrons are ``expected``."""
    sensor = raw_isp.SENSORS["microscopy"]
    noise = sensor.electrons(raw) - expected
    variance = expected + sensor.read_noise**2 + sensor.adc_step**2 / (12 * sensor.gain**2)
    power = np.sum(expected**2)
    return 10 * np.log10(power / np.sum(noise**2)), 10 * np.log10(power / np.sum(variance))


def psnr(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    mse = (x.double() - y.double()).square().flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse)).numpy()


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(0)
    info = machine_info("cpu")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    start = time.perf_counter()
    raws, expected = frames(args)
    print(f"frames: {args.num} synthetic Raw-Microscopy scenes, {args.size}x{args.size}, seed {args.seed}, "
          f"ratios {RATIOS} via SENSORS['microscopy'].scale_intensity ({time.perf_counter() - start:.1f} s)")
    print(f"ISP: StaticISP({args.variant!r}, camera='microscopy', exposure=...), float32")

    cam = raw_isp.CAMERAS["microscopy"]
    isps = {mode: raw_isp.StaticISP(args.variant, camera="microscopy", exposure=mode)
            for mode in (None, "metadata", "auto")}
    black = torch.tensor(cam.black_level, dtype=torch.float32).view(2, 2).repeat(args.size // 2, args.size // 2)

    def develop(mode: str, raw16: np.ndarray, ratio: float) -> torch.Tensor:
        x = torch.from_numpy(raw16.astype(np.float32) / 65535)
        with torch.inference_mode():
            if mode == "meta+clip":
                return isps[None]((black + (x - black) / ratio).clamp_(0.0, 1.0))
            return isps[{"none": None, "metadata": "metadata", "auto": "auto"}[mode]](x, intensity=ratio)

    full = {mode: develop(mode, raws[1.0], 1.0) for mode in ("none", "auto")}
    with torch.inference_mode():
        gain_full = isps["auto"].exposure_gain(raws[1.0]).double().numpy()
    rows = []
    header = (f"{'ratio':>6} {'SNR dB':>7} {'(model)':>7} | " + " ".join(f"{c:>10}" for c in COLUMNS)
              + f" | {'clipped %':>9} | {'auto gain x ratio':>17}")
    print("PSNR (dB) of the developed view against the full-light view, mean over frames")
    print(header)
    print("-" * len(header))
    for r in RATIOS:
        measured, predicted = sensor_snr(raws[r], r * expected)
        views = {mode: develop(mode, raws[r], r) for mode in ("none", "metadata", "meta+clip", "auto")}
        scores = {
            "none": psnr(views["none"], full["none"]),
            "metadata": psnr(views["metadata"], full["none"]),
            "meta+clip": psnr(views["meta+clip"], full["none"]),
            "auto": psnr(views["auto"], full["auto"]),
            "auto/study": psnr(views["auto"], full["none"]),
        }
        with torch.inference_mode():
            tracking = isps["auto"].exposure_gain(raws[r]).double().numpy() * r / gain_full
        exposed = black.double() + (torch.from_numpy(raws[r].astype(np.float64) / 65535) - black.double()) / r
        clipped = 100 * float(((exposed < 0) | (exposed > 1)).double().mean())
        row = {"ratio": r, "sensor_snr_db": measured, "sensor_snr_model_db": predicted, "clipped_percent": clipped,
               "auto_gain_times_ratio_over_full": {"mean": float(tracking.mean()), "std": float(tracking.std())}}
        # Identical views (ratio 1.0) have infinite PSNR: stored as null ("exact").
        row.update({f"psnr_{k}": None if np.isinf(v).all() else
                    {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min())}
                    for k, v in scores.items()})
        rows.append(row)
        cells = " ".join(f"{'exact':>10}" if np.isinf(v).all() else f"{v.mean():>10.2f}" for v in scores.values())
        print(f"{r:>6} {measured:>7.2f} {predicted:>7.2f} | {cells} | {clipped:>9.4f} | "
              f"{tracking.mean():>8.4f} +- {tracking.std():.4f}", flush=True)
    print(f"auto gain at ratio 1.0: mean {gain_full.mean():.3f} (min {gain_full.min():.3f}, max {gain_full.max():.3f}); "
          f"metering statistic {AUTO_EXPOSURE_TARGET / gain_full.mean():.4f} against the "
          f"target {AUTO_EXPOSURE_TARGET}")

    result = {"machine": info, "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "auto_gain_full": {"mean": float(gain_full.mean()), "min": float(gain_full.min()),
                                 "max": float(gain_full.max())},
              "rows": rows}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
