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

    python benchmarks/bench_drift.py
    python benchmarks/bench_drift.py --mixed_precision bf16
    python benchmarks/bench_drift.py --device cuda --model_name_or_path vit-base-16 --image_size 224
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from machine import machine_info  # benchmarks/machine.py, beside this script

import raw_isp
from raw_isp.drift.synthesis import evaluate_grid, load_by_intensity
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
    p.add_argument("--json", default=None)
    opts = p.parse_args(argv)
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=opts.device == "cpu", mixed_precision=opts.mixed_precision)
    args = parse_training_args("classification", ["--output_dir", "/tmp/bench_drift"] + (
        ["--model_name_or_path", opts.model_name_or_path, "--image_size", str(opts.image_size)]
        if opts.model_name_or_path else []))
    t0 = time.perf_counter()
    data = load_by_intensity(args, "test", list(raw_isp.INTENSITY_RATIOS))
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
    variants = list(raw_isp.ISP_VARIANTS)
    print(json.dumps(machine_info(accelerator.device)))

    t0 = time.perf_counter()
    rows = evaluate_grid(model, data, accelerator, "classification", names, variants, camera, opts.batch_size,
                         train_intensity=-1.0, label_column=args.label_column)
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
    print(f"drift grid 12 x 7 ({n_views:,} views, {model_name}, {opts.mixed_precision}): {t_grid:.1f} s, "
          f"{n_views / t_grid:.0f} images/s; reference (a processor per variant): {t_ref:.1f} s "
          f"({n_views / t_ref:.0f} images/s, timed on {n_ref:,} views); ratio {t_ref / t_grid:.2f}x; "
          f"dataset load {t_data:.1f} s")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"machine": machine_info(accelerator.device), **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
