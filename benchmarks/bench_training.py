"""Training throughput with the ISP in the loop, and where a step's time goes.

For each training script's default model (ViT-Tiny/32 on synthetic Raw-Microscopy,
SegFormer-B0 on synthetic Raw-Drone segmentation tiles), a training step of the model that
``raw_isp.training`` builds is timed step by step:

* **data**: time spent waiting for the next raw batch from the loader (Arrow gather, int16 view);
* **ISP**: the ISP module's forward inside the model (timed with forward hooks; synchronised on CUDA);
* **step**: the whole optimiser step (data + forward + backward + update).

Side by side, the same model is trained on **ready-made tensors**: the developed, normalised
views of the same batches computed once beforehand and kept in memory, so nothing but the model
runs. The ratio of images/s (ISP in the loop / ready-made) is printed: it is the cost of
developing raw data on the fly. Medians over the timed steps after warm-up steps.

    python benchmarks/bench_training.py                  # both tasks, defaults
    python benchmarks/bench_training.py --only classification --steps 20
    python benchmarks/bench_training.py --device cuda --model_name_or_path vit-base-16 --image_size 224
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

from raw_isp.training import build_model, parse_training_args
from raw_isp.training.data import label_names, load_splits, make_loader


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_task(task: str, opts: argparse.Namespace) -> dict:
    argv = ["--output_dir", "/tmp/bench_training", "--num_examples", str(opts.num_examples)] if opts.num_examples else ["--output_dir", "/tmp/bench_training"]
    if opts.model_name_or_path:
        argv += ["--model_name_or_path", opts.model_name_or_path]
    if opts.batch_size:
        argv += ["--per_device_train_batch_size", str(opts.batch_size)]
    argv += ["--isp", opts.isp, "--image_size", str(opts.image_size)]
    if task == "segmentation" and opts.quick:
        argv += ["--num_scenes", "10", "--frame_size", "512", "512"]
    args = parse_training_args(task, argv)
    device = torch.device(opts.device)
    splits = load_splits(args)
    names = label_names(splits["train"], args.label_column)
    torch.manual_seed(0)
    model = build_model(args, names).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    bs = args.per_device_train_batch_size
    loader = make_loader(splits["train"], args.label_column, bs, True, 0)
    amp = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=opts.bf16)

    isp_times: list[float] = []
    t_isp = [0.0]

    def pre(_m, _i):
        sync(device)
        t_isp[0] = time.perf_counter()

    def post(_m, _i, _o):
        sync(device)
        isp_times.append(time.perf_counter() - t_isp[0])

    h1 = model.isp.register_forward_pre_hook(pre)
    h2 = model.isp.register_forward_hook(post)
    n_steps = opts.warmup + opts.steps
    steps, waits, isps, batches = [], [], [], []
    it = iter(loader)
    epoch = 0
    for i in range(n_steps):
        sync(device)
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            epoch += 1
            loader.batch_sampler.use_epoch(epoch)
            it = iter(loader)
            batch = next(it)
        raw, labels = batch["raw"].to(device, non_blocking=True), batch["labels"].to(device, non_blocking=True)
        t1 = time.perf_counter()
        isp_times.clear()
        with amp:
            out = model(raw, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        t2 = time.perf_counter()
        if i >= opts.warmup:
            steps.append(t2 - t0)
            waits.append(t1 - t0)
            isps.append(sum(isp_times))
            if len(batches) < 8:
                batches.append((raw, labels))
    h1.remove()
    h2.remove()

    # Reference: the same model on ready-made pixel values (developed once, kept on the device).
    with torch.no_grad():
        ready = [(model.pixel_values(r), y) for r, y in batches]
    ref = []
    for i in range(opts.warmup + opts.steps):
        pv, y = ready[i % len(ready)]
        sync(device)
        t0 = time.perf_counter()
        with amp:
            out = model.model(pixel_values=pv, labels=y)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if i >= opts.warmup:
            ref.append(time.perf_counter() - t0)

    step, wait, isp, ref_step = (statistics.median(x) for x in (steps, waits, isps, ref))
    result = {
        "task": task, "model": args.model_name_or_path, "isp": args.isp, "batch": bs, "device": str(device),
        "bf16": opts.bf16, "steps_timed": opts.steps,
        "images_per_s": bs / step, "ready_made_images_per_s": bs / ref_step, "ratio": ref_step / step,
        "data_share": wait / step, "isp_share": isp / step,
        "median_step_s": step, "median_data_s": wait, "median_isp_s": isp, "median_ready_step_s": ref_step,
    }
    print(f"{task:14s} {args.model_name_or_path:13s} {args.isp:16s} batch {bs:3d}: "
          f"{result['images_per_s']:8.1f} img/s with the ISP in the loop, {result['ready_made_images_per_s']:8.1f} "
          f"img/s on ready-made tensors, ratio {result['ratio']:.3f}; data loading {100 * result['data_share']:.1f} %, "
          f"ISP {100 * result['isp_share']:.1f} % of the step", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=("classification", "segmentation"), default=None)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bf16", action="store_true", help="model under bf16 autocast (the ISP stays float32)")
    p.add_argument("--model_name_or_path", default=None, help="default: each script's default")
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--isp", default="static:bi_s_ga")
    p.add_argument("--num_examples", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="small synthetic sources (smoke run)")
    p.add_argument("--json", default=None)
    opts = p.parse_args(argv)
    print(json.dumps(machine_info(opts.device)))
    tasks = [opts.only] if opts.only else ["classification", "segmentation"]
    results = [bench_task(t, opts) for t in tasks]
    if opts.json:
        Path(opts.json).write_text(json.dumps({"machine": machine_info(opts.device), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
