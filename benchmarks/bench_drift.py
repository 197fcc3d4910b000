"""Time the drift-synthesis grid: a classifier on synthetic Raw-Microscopy test data developed by
the 12 static ISP variants at the 7 intensities (12 x 7 x 143 = 12,012 evaluated views).

* **project**: ``raw_isp.drift.synthesis.evaluate_grid``: each batch is read once and developed by the 12
  ``StaticISP`` modules on the device, straight into the model;
* **reference**: the straightforward transformers way, per (variant, intensity): a
  ``RawISPImageProcessor`` configured for that variant prepares each batch (``processor(raws)``),
  then the model runs on its ``pixel_values``. Timed on a subset (``--ref_fraction``) and scaled.

Seconds and evaluated images/s of each and the ratio are printed, with the machine. The model is
the default classifier of ``outputs/classification`` if it exists (``--model``), otherwise an
untrained model of the same architecture (speed does not depend on the weights). The dataset
build (the all-intensity config, cached after its first use) is timed apart.

``--intervals`` times instead what the statistics cost: the synthesis grid as ``synthesize`` runs
it (variants x intensities, the own view at every intensity, the corruptions at 1.0) and its
report, three ways, interleaved, ``--repeats`` times each (median): **plain** (the grid without
per-image outputs, as before intervals existed), **per-image** (the grid keeping each image's
confusion matrix, report without resampling, ``n_boot=0``) and **intervals** (the same with
``--n_boot`` resamples: every cell's interval and paired difference, the drops and their ratio).

``--breakdown`` times the synthesis grid as ``synthesize`` runs it (variants x intensities, the own
view at every intensity, every corruption x severity at intensity 1) once, with a clock around
each stage inside that same run: raw decoding, ISP views (the variants and the model's own),
corruptions, and the model's forward pass on each finished view tensor. It prints the grid's
images/s beside the model's own images/s on those ready-made tensors (their ratio is the share
of the run the model takes), each stage's share, and a corrupted view's cost against an ISP view's.

    python benchmarks/bench_drift.py
    python benchmarks/bench_drift.py --breakdown --max_eval_samples 32 --intensities 1.0,0.05
    python benchmarks/bench_drift.py --mixed_precision bf16
    python benchmarks/bench_drift.py --device cuda --model_name_or_path vit-base-16 --image_size 224
    python benchmarks/bench_drift.py --intervals --max_eval_samples 48 --variants bi_s_ga,ma_u_me,me_s_me
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from machine import machine_info  # benchmarks/machine.py, beside this script

import raw_isp
from raw_isp.isp.corruptions import CORRUPTIONS
from raw_isp.drift.synthesis import evaluate_grid, load_by_intensity
from raw_isp.drift.synthesis_report import build_report
from raw_isp.models.modeling import load_raw_model
from raw_isp.training import build_model, parse_training_args
from raw_isp.training.data import label_names

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "outputs" / "classification"))
    p.add_argument("--model_name_or_path", default=None, help="time an untrained preset instead (e.g. vit-base-16)")
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mixed_precision", choices=("no", "bf16"), default="no")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--ref_fraction", type=float, default=0.25, help="share of the grid the reference is timed on")
    p.add_argument("--intervals", action="store_true", help="time the grid with and without bootstrap intervals")
    p.add_argument("--n_boot", type=int, default=1000, help="resamples of --intervals")
    p.add_argument("--repeats", type=int, default=3, help="timings per way of --intervals (median)")
    p.add_argument("--max_eval_samples", type=int, default=None, help="test images per intensity (default: all)")
    p.add_argument("--variants", default=",".join(raw_isp.ISP_VARIANTS), help="comma-separated test variants")
    p.add_argument("--intensities", default=None, help="comma-separated intensities (default: all 7)")
    p.add_argument("--breakdown", action="store_true",
                   help="time the synthesis grid's stages inside one run (data, ISP, corruptions, model)")
    p.add_argument("--json", default=None)
    opts = p.parse_args(argv)
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=opts.device == "cpu", mixed_precision=opts.mixed_precision)
    args = parse_training_args("classification", ["--output_dir", "/tmp/bench_drift"] + (
        ["--model_name_or_path", opts.model_name_or_path, "--image_size", str(opts.image_size)]
        if opts.model_name_or_path else []) + (
        ["--max_eval_samples", str(opts.max_eval_samples)] if opts.max_eval_samples else []))
    t0 = time.perf_counter()
    intensities = ([float(v) for v in opts.intensities.split(",")] if opts.intensities
                   else list(raw_isp.INTENSITY_RATIOS))
    if opts.breakdown and 1.0 not in intensities:
        p.error("--breakdown: --intensities must include 1.0 (the corruptions' intensity)")
    data = load_by_intensity(args, "test", intensities)
    t_data = time.perf_counter() - t0
    names = label_names(next(iter(data.values())), args.label_column)
    if opts.model_name_or_path is None and (Path(opts.model) / "isp_config.json").is_file():
        model, _ = load_raw_model(opts.model, device=accelerator.device)
        model_name = opts.model
    else:
        torch.manual_seed(0)
        model = build_model(args, names).to(accelerator.device).eval()
        model_name = f"{args.model_name_or_path} (untrained)"
    camera = model.processor.camera
    variants = [v.strip() for v in opts.variants.split(",")]
    print(json.dumps(machine_info(accelerator.device)))
    if opts.breakdown:
        return _time_breakdown(opts, model, model_name, data, accelerator, names, variants, camera, args)
    if opts.intervals:
        return _time_intervals(opts, model, model_name, data, accelerator, names, variants, camera, args)

    t0 = time.perf_counter()
    rows = evaluate_grid(model, data, accelerator, "classification", names, variants, camera, opts.batch_size,
                         train_intensity=-1.0, label_column=args.label_column, own=False)
    t_grid = time.perf_counter() - t0
    n_views = sum(len(d) for d in data.values()) * len(variants)
    assert len([r for r in rows if r["metric"] == "accuracy"]) == len(variants) * len(data)

    # Reference: one processor per variant, per batch, as a transformers user would write it.
    processors = {v: raw_isp.RawISPImageProcessor(**{**model.processor.to_dict(), "isp": v}) for v in variants}
    # Every k-th variant, so that all three demosaicing methods (the ISP's main cost) are in it.
    step = max(1, round(1 / opts.ref_fraction))
    ref_variants = variants[::step]
    t0 = time.perf_counter()
    n_ref = 0
    with torch.no_grad():
        for ds in data.values():
            frames = ds.with_format("numpy")["image"]
            for v in ref_variants:
                for i in range(0, len(frames), opts.batch_size):
                    batch = processors[v](frames[i:i + opts.batch_size], return_tensors="pt", device=accelerator.device)
                    with accelerator.autocast():
                        model.model(pixel_values=batch["pixel_values"]).logits.argmax(-1).cpu()
                    n_ref += len(frames[i:i + opts.batch_size])
    t_ref = (time.perf_counter() - t0) * n_views / n_ref

    result = {"model": model_name, "device": str(accelerator.device), "mixed_precision": opts.mixed_precision,
              "views": n_views, "seconds": t_grid, "images_per_s": n_views / t_grid,
              "reference_seconds_scaled": t_ref, "reference_images_per_s": n_views / t_ref, "ratio": t_ref / t_grid,
              "dataset_seconds": t_data, "reference_timed_views": n_ref}
    print(f"drift grid {len(variants)} x {len(data)} ({n_views:,} views, {model_name}, {opts.mixed_precision}): {t_grid:.1f} s, "
          f"{n_views / t_grid:.0f} images/s; reference (a processor per variant): {t_ref:.1f} s "
          f"({n_views / t_ref:.0f} images/s, timed on {n_ref:,} views); ratio {t_ref / t_grid:.2f}x; "
          f"dataset load {t_data:.1f} s")
    _write_json(opts, accelerator, result)
    return 0


def _write_json(opts, accelerator, result: dict) -> None:
    if opts.json:
        Path(opts.json).write_text(json.dumps({"machine": machine_info(accelerator.device), **result}, indent=1))


def _time_intervals(opts, model, model_name, data, accelerator, names, variants, camera, args) -> int:
    """Median seconds of the grid and its report: plain, with per-image outputs, with intervals."""
    metrics = (*args.headline_metrics, "loss")
    n_images = len(next(iter(data.values())))
    meta = {"variants": variants, "intensities": list(data), "test_images_per_intensity": n_images, "seconds": 0.0,
            "evaluated_views": 0}

    def run(way: str) -> float:
        t0 = time.perf_counter()
        samples = None if way == "plain" else {}
        rows = evaluate_grid(model, data, accelerator, "classification", names, variants, camera, opts.batch_size,
                             CORRUPTIONS, (1, 2, 3, 4, 5), 0, 1.0, "model", args.label_column, metrics, samples=samples)
        if samples is not None:
            rows = [{"model": "model", "seed": 0, **r, "ci_low": None, "ci_high": None} for r in rows]
            samples = {("model", 0, *k): v for k, v in samples.items()}
            build_report(rows, samples, meta, task="classification", label_names=names,
                         headline=args.headline_metrics, train_intensities={"model": 1.0},
                         n_boot=opts.n_boot if way == "intervals" else 0)
        return time.perf_counter() - t0

    ways = ("plain", "per-image", "intervals")
    times: dict[str, list[float]] = {w: [] for w in ways}
    for _ in range(opts.repeats):
        for way in ways:  # interleaved, so that a change in the machine's load hits every way alike
            times[way].append(run(way))
    med = {w: statistics.median(t) for w, t in times.items()}
    cells = (len(variants) + 1) * len(data) + len(CORRUPTIONS) * 5
    result = {"model": model_name, "device": str(accelerator.device), "images_per_intensity": n_images,
              "cells": cells, "n_boot": opts.n_boot, "repeats": opts.repeats, "seconds": times, "median": med,
              "per_image_ratio": med["per-image"] / med["plain"], "intervals_ratio": med["intervals"] / med["plain"]}
    print(f"synthesis grid {len(variants)} variants x {len(data)} intensities + own view + {len(CORRUPTIONS)} x 5 "
          f"corruptions ({cells} cells x {n_images} images, {model_name}), median of {opts.repeats}: plain "
          f"{med['plain']:.2f} s, per-image outputs {med['per-image']:.2f} s ({result['per_image_ratio']:.3f}x), "
          f"with {opts.n_boot}-resample intervals {med['intervals']:.2f} s ({result['intervals_ratio']:.3f}x); "
          f"all: {json.dumps(times)}")
    _write_json(opts, accelerator, result)
    return 0


class _Clock:
    """Seconds spent inside wrapped callables, per stage (nested stages are not double-counted:
    time in an inner stage is taken off the outer one)."""

    def __init__(self, sync) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.sync, self._stack = sync, []

    def wrap(self, stage: str, fn):
        def timed(*a, **k):
            self.sync()
            t0 = time.perf_counter()
            self._stack.append(0.0)
            try:
                return fn(*a, **k)
            finally:
                self.sync()
                spent = time.perf_counter() - t0
                inner = self._stack.pop()
                self.seconds[stage] = self.seconds.get(stage, 0.0) + spent - inner
                self.calls[stage] = self.calls.get(stage, 0) + 1
                if self._stack:
                    self._stack[-1] += spent
        return timed


def _time_breakdown(opts, model, model_name, data, accelerator, names, variants, camera, args) -> int:
    """The synthesis grid once, with each stage clocked inside the run (see the module docstring)."""
    import raw_isp.drift.synthesis as synthesis

    device = accelerator.device
    clock = _Clock((lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None))

    class TimedISP(synthesis.StaticISP):
        def forward(self, *a, **k):
            return clock.wrap("isp", super().forward)(*a, **k)

    patched = {"decode_raw": clock.wrap("data", synthesis.decode_raw), "corrupt": clock.wrap("corruptions", synthesis.corrupt),
               "StaticISP": TimedISP}
    saved = {k: getattr(synthesis, k) for k in patched}
    net = model
    views, forward = net.views, net.model.forward
    try:
        for k, v in patched.items():
            setattr(synthesis, k, v)
        net.views = clock.wrap("isp", views)
        net.model.forward = clock.wrap("model", forward)
        metrics = (*args.headline_metrics, "loss")
        t0 = time.perf_counter()
        rows = evaluate_grid(model, data, accelerator, "classification", names, variants, camera, opts.batch_size,
                             CORRUPTIONS, (1, 2, 3, 4, 5), 0, 1.0, "model", args.label_column, metrics, samples={})
        total = time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            setattr(synthesis, k, v)
        del net.views, net.model.forward  # the class's methods again
    n_images = len(next(iter(data.values())))
    isp_views = n_images * (len(variants) + 1) * len(data)
    corrupt_views = n_images * len(CORRUPTIONS) * 5
    n_views = isp_views + corrupt_views
    assert len({(r["test_variant"], r["intensity"], r["corruption"], r["severity"]) for r in rows}) == \
        (len(variants) + 1) * len(data) + len(CORRUPTIONS) * 5
    sec = clock.seconds
    other = total - sum(sec.values())
    model_s = sec.get("model", 0.0)
    per_view_model = model_s / n_views
    isp_view = per_view_model + sec.get("isp", 0.0) / isp_views
    corrupt_view = per_view_model + sec.get("corruptions", 0.0) / corrupt_views
    result = {"model": model_name, "device": str(device), "mixed_precision": opts.mixed_precision,
              "views": n_views, "isp_views": isp_views, "corruption_views": corrupt_views, "seconds": total,
              "images_per_s": n_views / total, "model_images_per_s": n_views / model_s,
              "grid_over_model": model_s / total,
              "shares": {**{k: v / total for k, v in sec.items()}, "other": other / total},
              "stage_seconds": sec, "stage_calls": clock.calls,
              "seconds_per_isp_view": isp_view, "seconds_per_corruption_view": corrupt_view,
              "corruption_over_isp_view": corrupt_view / isp_view}
    print(f"synthesis grid, {len(variants)} variants x {len(data)} intensities + own view + {len(CORRUPTIONS)} x 5 "
          f"corruptions at 1.0, {n_images} images ({n_views:,} views, {model_name}, {opts.mixed_precision}): "
          f"{total:.1f} s, {n_views / total:.1f} images/s; the model alone on the same ready-made view tensors "
          f"{n_views / model_s:.1f} images/s; grid / model {model_s / total:.3f}")
    print("shares of the run: " + ", ".join(f"{k} {v:.1%}" for k, v in result["shares"].items()))
    print(f"per view (model included): ISP view {isp_view * 1000:.1f} ms, corrupted view {corrupt_view * 1000:.1f} ms "
          f"({corrupt_view / isp_view:.2f}x)")
    _write_json(opts, accelerator, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
