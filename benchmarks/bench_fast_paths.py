"""CPU fast paths of the task model, measured side by side: fp32 eager, bf16 autocast,
``torch.compile`` (inductor), both, and ``channels_last`` for convolutional models.

For one model (default: the main job's classifier, a trained folder with ``--model``, else the
preset ``--model_name_or_path`` untrained), on real views (the test split of the model's dataset
developed by its ISP; the views are made once and kept, so only the model is timed):

* **inference**: images/s of the forward pass per path, medians of ``--repeats`` passes over the
  views, the paths interleaved so that a change in the machine's load hits every path alike;
* **agreement**: against fp32 eager on the same views, the largest absolute logit difference, the
  share of images whose predicted class differs, and the accuracy of each path (a trained
  model's accuracy difference is what a drift grid would see);
* **training**: images/s of an optimiser step (forward, backward, AdamW) per path on a copy of the
  model, from the same weights and batches, and the loss after ``--train_steps`` steps beside
  fp32 eager's.

A compiled path's first call (the compilation) is timed apart. Paths that the machine cannot run
(no bf16 support, no C++ compiler for inductor) are reported as skipped, with the reason.

    python benchmarks/bench_fast_paths.py --model outputs/study/raw_microscopy/optimization_sp_i1/runs/static-bi_s_ga_i1_s0
    python benchmarks/bench_fast_paths.py --model_name_or_path resnet-18 --image_size 128
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from machine import load_average, machine_info, write_json  # benchmarks/machine.py, beside this script

from raw_isp.models.modeling import load_raw_model
from raw_isp.training import build_model, parse_training_args
from raw_isp.training.data import label_names, load_splits, make_loader

PATHS = ("fp32", "bf16", "compiled", "compiled+bf16", "channels_last")


def bf16_supported() -> tuple[bool, str]:
    """Whether this CPU runs bf16 matrix products natively (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return True, ""
    return False, "the CPU reports neither avx512_bf16 nor amx_bf16"


def compile_supported() -> tuple[bool, str]:
    import shutil

    if not hasattr(torch, "compile"):
        return False, "this torch has no torch.compile"
    if shutil.which("g++") is None and shutil.which("c++") is None:
        return False, "no C++ compiler on PATH (inductor's CPU backend needs one)"
    return True, ""


def make_runner(net: torch.nn.Module, path: str):
    """``(callable(pixel_values) -> logits, prepare(x) -> x)`` for one path; ``net`` in eval mode."""
    bf16 = "bf16" in path
    model = net
    prepare = (lambda x: x.contiguous(memory_format=torch.channels_last)) if path == "channels_last" else (lambda x: x)
    if path == "channels_last":
        model = copy.deepcopy(net).to(memory_format=torch.channels_last)
    if path.startswith("compiled"):
        model = torch.compile(net)

    def run(x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(pixel_values=x).logits.float()

    return run, prepare


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="a trained model folder (default: an untrained preset)")
    p.add_argument("--model_name_or_path", default="vit-tiny-32")
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--images", type=int, default=128, help="test views timed and compared (default 128)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train_steps", type=int, default=6, help="timed optimiser steps per path (after 2 warm-up)")
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, from {', '.join(PATHS)}")
    p.add_argument("--json", type=Path, default=None)
    opts = p.parse_args(argv)
    paths = [s.strip() for s in opts.paths.split(",") if s.strip()]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown or "fp32" not in paths:
        p.error(f"--paths: unknown {unknown} (choose from {', '.join(PATHS)}; fp32, the baseline, is required)")

    if opts.model:
        model, info = load_raw_model(opts.model)
        argv = ["--output_dir", "/tmp/bench_fast_paths", "--isp", info["isp"]]
        name = opts.model
    else:
        argv = ["--output_dir", "/tmp/bench_fast_paths", "--model_name_or_path", opts.model_name_or_path,
                "--image_size", str(opts.image_size)]
        name = f"{opts.model_name_or_path} (untrained)"
    args = parse_training_args("classification", argv + ["--max_eval_samples", str(opts.images)])
    splits = load_splits(args)
    names = label_names(splits["test"], args.label_column)
    if not opts.model:
        torch.manual_seed(0)
        model = build_model(args, names)
    model.eval()
    net = model.model
    conv = any(isinstance(m, torch.nn.Conv2d) and m.kernel_size != m.stride for m in net.modules())
    skipped: dict[str, str] = {}
    ok_bf16, why_bf16 = bf16_supported()
    ok_compile, why_compile = compile_supported()
    for path in paths:
        if "bf16" in path and not ok_bf16:
            skipped[path] = why_bf16
        elif path.startswith("compiled") and not ok_compile:
            skipped[path] = why_compile
        elif path == "channels_last" and not conv:
            skipped[path] = "the model has no spatial convolutions beyond its patch embedding"
    paths = [q for q in paths if q not in skipped]

    views, labels = [], []
    with torch.no_grad():
        for batch in make_loader(splits["test"], args.label_column, opts.batch_size, False, 0):
            views.append(model.pixel_values(batch["raw"], batch.get("intensity")))
            labels.append(batch["labels"])
    n = sum(len(v) for v in views)
    info = machine_info("cpu")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"model: {name}; {n} test views of {tuple(views[0].shape[1:])}, batches of {opts.batch_size}")
    for path, why in skipped.items():
        print(f"skipped {path}: {why}")

    # Inference, interleaved.
    runners, compile_s, outputs = {}, {}, {}
    with torch.no_grad():
        for path in paths:
            run, prepare = make_runner(net, path)
            t0 = time.perf_counter()
            outputs[path] = torch.cat([run(prepare(v)) for v in views])  # warm-up (and compilation)
            compile_s[path] = time.perf_counter() - t0
            runners[path] = (run, prepare)
        times = {path: [] for path in paths}
        for _ in range(opts.repeats):
            for path in paths:
                run, prepare = runners[path]
                xs = [prepare(v) for v in views]
                t0 = time.perf_counter()
                for x in xs:
                    run(x)
                times[path].append(time.perf_counter() - t0)
    y = torch.cat(labels)
    base = outputs["fp32"]
    rows = []
    for path in paths:
        med = statistics.median(times[path])
        out = outputs[path]
        rows.append({"path": path, "inference_images_per_s": n / med, "first_call_s": compile_s[path],
                     "max_abs_logit_diff": float((out - base).abs().max()),
                     "prediction_changed": float((out.argmax(-1) != base.argmax(-1)).float().mean()),
                     "accuracy": float((out.argmax(-1) == y).float().mean())})

    # Training steps from the same weights and batches.
    batches = [(v, lab) for v, lab in zip(views, labels)]
    for row in rows:
        path = row["path"]
        train_net = copy.deepcopy(net).train()
        if path == "channels_last":
            train_net = train_net.to(memory_format=torch.channels_last)
        step_model = torch.compile(train_net) if path.startswith("compiled") else train_net
        opt = torch.optim.AdamW(train_net.parameters(), lr=1e-4)
        step_times, losses = [], []
        for i in range(2 + opts.train_steps):
            x, lab = batches[i % len(batches)]
            x = x.contiguous(memory_format=torch.channels_last) if path == "channels_last" else x
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in path):
                loss = torch.nn.functional.cross_entropy(step_model(pixel_values=x).logits.float(), lab)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 2:
                step_times.append((time.perf_counter() - t0) / len(x))
            losses.append(float(loss.detach()))
        row["train_images_per_s"] = 1 / statistics.median(step_times)
        row["train_losses"] = losses
    base_row = rows[0]
    print(f"{'path':<14} {'infer img/s':>11} {'ratio':>6} {'train img/s':>11} {'ratio':>6} {'first call s':>12} "
          f"{'max|dlogit|':>11} {'pred changed':>12} {'accuracy':>8} {'last loss':>9}")
    for row in rows:
        row["inference_ratio"] = row["inference_images_per_s"] / base_row["inference_images_per_s"]
        row["train_ratio"] = row["train_images_per_s"] / base_row["train_images_per_s"]
        print(f"{row['path']:<14} {row['inference_images_per_s']:>11.1f} {row['inference_ratio']:>5.2f}x "
              f"{row['train_images_per_s']:>11.1f} {row['train_ratio']:>5.2f}x {row['first_call_s']:>12.1f} "
              f"{row['max_abs_logit_diff']:>11.2e} {row['prediction_changed']:>12.1%} {row['accuracy']:>8.3f} "
              f"{row['train_losses'][-1]:>9.4f}")
    print(f"load average at the end: {load_average()}")
    write_json(opts.json, {"machine": info, "model": name, "views": n, "skipped": skipped, "results": rows,
                           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
