"""Training-step cost of the segmentation presets, side by side: one optimiser step (forward,
loss, backward, AdamW) on a batch of random 256x256 views and masks, for each preset, the
presets interleaved so that a change in the machine's load hits each alike; medians of
``--repeats`` steps after one warm-up step, and each preset's time as a multiple of the first.

The figures chose the width of the UperNet-ResNet-18 decoder the study script trains on 2 cores
(``upernet-resnet18-h128``: docs/results.md, Raw-Drone).

    python benchmarks/bench_seg_step.py --threads 1
    python benchmarks/bench_seg_step.py --presets segformer-b0,upernet-resnet18 --batch_size 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from machine import machine_info  # benchmarks/machine.py, beside this script
from raw_isp.models.modeling import build_task_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="segformer-b0,upernet-resnet18-h128,upernet-resnet18",
                   help="comma-separated segmentation presets; the first is the reference of the ratios")
    p.add_argument("--batch_size", type=int, default=8, help="views per step (the training default: 8)")
    p.add_argument("--image_size", type=int, default=256, help="side of the square views, pixels")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per preset (after one warm-up step)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print and return the median seconds per training step of each preset."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if not presets:
        raise SystemExit("--presets: name at least one segmentation preset")
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 3, args.image_size, args.image_size)
    y = torch.randint(0, 2, (args.batch_size, args.image_size, args.image_size))
    models, optims, times = {}, {}, {p: [] for p in presets}
    for name in presets:
        models[name] = build_task_model("segmentation", name, ["background", "car"], args.image_size).train()
        optims[name] = torch.optim.AdamW(models[name].parameters(), lr=1e-4)

    def step(name: str) -> float:
        start = time.perf_counter()
        loss = models[name](pixel_values=x, labels=y).loss
        loss.backward()
        optims[name].step()
        optims[name].zero_grad(set_to_none=True)
        return time.perf_counter() - start

    for name in presets:
        step(name)
    for _ in range(args.repeats):
        for name in presets:
            times[name].append(step(name))
    info = machine_info("cpu")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"batch {args.batch_size}, {args.image_size}x{args.image_size}, {torch.get_num_threads()} thread(s), "
          f"median of {args.repeats} steps")
    medians = {name: statistics.median(t) for name, t in times.items()}
    ref = medians[presets[0]]
    print(f"{'preset':<24} {'parameters':>11} {'s/step':>8} {'x ' + presets[0]:>18}")
    for name in presets:
        n = sum(p.numel() for p in models[name].parameters())
        print(f"{name:<24} {n / 1e6:>9.1f} M {medians[name]:>8.2f} {medians[name] / ref:>18.2f}")
    return medians


if __name__ == "__main__":
    main()
