"""Training throughput with the ISP in the loop, and where a step's time goes.

For each training script's default model (ViT-Tiny/32 on synthetic Raw-Microscopy,
SegFormer-B0 on synthetic Raw-Drone segmentation tiles), a training step of the model that
``raw_isp.training`` builds is timed step by step:

* **data**: time spent waiting for the next raw batch from the loader (Arrow gather, int16 view,
  the copy to the device); the loader is the one training uses (``make_loader``: on CUDA pinned
  batches, non-blocking copies and 2 workers keeping 2 batches ready, unless ``--workers``);
* **augment**: the drift augmentation's draws and light thinning (``--train_intensities``,
  ``--train_isp_variants``, ``--corruption_augment``, as in training; synchronised on CUDA; the
  corruption itself runs inside the forward);
* **ISP**: the model's ISP module's forward (timed with forward hooks; synchronised on CUDA; a
  drawn ISP variant is not counted here);
* **step**: the whole optimiser step (data + augmentation + forward + backward + update).

Side by side, the same model is trained on **ready-made tensors**: the developed, normalised
views of the same batches computed once beforehand and kept in memory, so nothing but the model
runs. The ratio of images/s (ISP in the loop / ready-made) is printed: it is the cost of
developing raw data on the fly. With augmentation options the same model is also timed without
them, in the same process, and the ratio of step times printed (the cost of the augmentation).
Medians over the timed steps after warm-up steps.

    python benchmarks/bench_training.py                  # both tasks, defaults
    python benchmarks/bench_training.py --only classification --steps 20
    python benchmarks/bench_training.py --device cuda --model_name_or_path vit-base-16 --image_size 224
    python benchmarks/bench_training.py --only classification --train_intensities 1.0,0.5,0.1,0.05
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
from raw_isp.training.augment import DriftAugmentation
from raw_isp.training.data import label_names, load_splits, make_loader


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def augmentation_argv(opts: argparse.Namespace) -> list[str]:
    """The training options of the drift augmentation the benchmark was given."""
    argv = []
    for name in ("train_intensities", "train_isp_variants", "corruption_augment"):
        if getattr(opts, name):
            argv += [f"--{name}", getattr(opts, name)]
    return argv


def bench_task(task: str, opts: argparse.Namespace, augmented: bool = True) -> dict:
    argv = ["--output_dir", "/tmp/bench_training", "--num_examples", str(opts.num_examples)] if opts.num_examples else ["--output_dir", "/tmp/bench_training"]
    if opts.model_name_or_path:
        argv += ["--model_name_or_path", opts.model_name_or_path]
    if opts.batch_size:
        argv += ["--per_device_train_batch_size", str(opts.batch_size)]
    argv += ["--isp", opts.isp, "--image_size", str(opts.image_size), "--exposure", opts.exposure]
    if augmented:
        argv += augmentation_argv(opts)
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
    if opts.loader == "plain":  # the loader before issue 12: no workers, pageable memory
        loader = make_loader(splits["train"], args.label_column, bs, True, 0, num_workers=0, intensity=args.intensity)
    else:
        loader = make_loader(splits["train"], args.label_column, bs, True, 0, num_workers=opts.workers,
                             intensity=args.intensity, device=device)
    aug = DriftAugmentation.from_args(args)
    aug = aug if aug.active else None
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
    steps, waits, augs, isps, batches = [], [], [], [], []
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
        intensity = batch["intensity"].to(device, non_blocking=True)
        t1 = time.perf_counter()
        isp, view = None, None
        if aug is not None:
            raw, intensity, isp, view, _ = aug(raw, intensity, step=i)
            sync(device)
        t_aug = time.perf_counter()
        isp_times.clear()
        with amp:
            out = model(raw, labels=labels, intensity=intensity, augment=view, isp=isp)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        t2 = time.perf_counter()
        if i >= opts.warmup:
            steps.append(t2 - t0)
            waits.append(t1 - t0)
            augs.append(t_aug - t1)
            isps.append(sum(isp_times))
            if len(batches) < 8:
                batches.append((raw, labels, intensity))
    h1.remove()
    h2.remove()

    # Reference: the same model on ready-made pixel values (developed once, kept on the device).
    with torch.no_grad():
        ready = [(model.pixel_values(r, intensity), y) for r, y, intensity in batches]
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

    step, wait, aug_s, isp, ref_step = (statistics.median(x) for x in (steps, waits, augs, isps, ref))
    result = {
        "task": task, "model": args.model_name_or_path, "isp": args.isp, "exposure": args.exposure, "batch": bs,
        "device": str(device), "bf16": opts.bf16, "steps_timed": opts.steps, "workers": loader.num_workers,
        "pinned": loader.pin_memory, "loader": opts.loader, "augmentation": augmentation_argv(opts) if augmented else [],
        "images_per_s": bs / step, "ready_made_images_per_s": bs / ref_step, "ratio": ref_step / step,
        "data_share": wait / step, "augment_share": aug_s / step, "isp_share": isp / step,
        "median_step_s": step, "median_data_s": wait, "median_augment_s": aug_s, "median_isp_s": isp,
        "median_ready_step_s": ref_step,
    }
    label = " ".join(result["augmentation"]) or "no augmentation"
    print(f"{task:14s} {args.model_name_or_path:13s} {args.isp:16s} batch {bs:3d} ({label}): "
          f"{result['images_per_s']:8.1f} img/s with the ISP in the loop, {result['ready_made_images_per_s']:8.1f} "
          f"img/s on ready-made tensors, ratio {result['ratio']:.3f}; data loading {100 * result['data_share']:.1f} %, "
          f"augmentation {100 * result['augment_share']:.1f} %, ISP {100 * result['isp_share']:.1f} % of the step "
          f"(median step {step:.3f} s)", flush=True)
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
    p.add_argument("--exposure", default="none", choices=("none", "metadata", "auto"))
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: as training, 0 on CPU, 2 on CUDA)")
    p.add_argument("--loader", choices=("training", "plain"), default="training",
                   help="training: the training loader (pinned + workers on CUDA); plain: no workers, no pinning")
    p.add_argument("--train_intensities", default=None, help="light augmentation, as the training option")
    p.add_argument("--train_isp_variants", default=None, help="ISP-variant augmentation, as the training option")
    p.add_argument("--corruption_augment", default=None, help="corruption augmentation ('all' or names)")
    p.add_argument("--num_examples", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="small synthetic sources (smoke run)")
    p.add_argument("--json", default=None)
    opts = p.parse_args(argv)
    print(json.dumps(machine_info(opts.device)))
    tasks = [opts.only] if opts.only else ["classification", "segmentation"]
    results = []
    for task in tasks:
        if augmentation_argv(opts):  # side by side: the same model without the augmentation first
            plain = bench_task(task, opts, augmented=False)
            results.append(plain)
            results.append(bench_task(task, opts))
            ratio = results[-1]["median_step_s"] / plain["median_step_s"]
            extra = results[-1]["median_step_s"] - plain["median_step_s"]
            print(f"{task}: a step with {' '.join(augmentation_argv(opts))} takes {ratio:.3f}x the time of one "
                  f"without ({extra * 1000:+.1f} ms per batch of {plain['batch']})", flush=True)
        else:
            results.append(bench_task(task, opts))
    if opts.json:
        Path(opts.json).write_text(json.dumps({"machine": machine_info(opts.device), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
