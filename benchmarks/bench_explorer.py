"""Interaction latency of the Raw-to-logit explorer (raw_isp.explorer), without the browser.

Times the work behind each interaction of the page on a 256x256 frame, with its render cache
emptied before every run (so each figure is a full computation, except the one marked cached):

* pick an example: load it, develop the 12 views, predict on each;
* move the intensity slider: scale the photons, develop the 12 views, predict;
* the same after the drift table has run (its batch leaves every intensity's views cached);
* the drift table: 12 variants x 7 intensities = 84 views and predictions;
* move a ParametrizedISP slider: build the module with the settings, develop one view, predict;
* upload a 256x256 raw TIFF: read it, develop the 12 views, predict.

Without ``--model`` it trains the default classification model of the training script
(``vit-tiny-32``) for 5 steps on the synthetic data into a temporary folder (the weights do not
matter for speed). Each interaction is run once to warm up, then ``--repeats`` times; the table
reports medians. Gradio's own overhead (image encoding, the websocket) is not included; the
browser test prints what a browser sees.

    python benchmarks/bench_explorer.py
    python benchmarks/bench_explorer.py --model outputs/classification --threads 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import machine_info  # benchmarks/machine.py, beside this script

import raw_isp
import raw_isp.explorer as E
from raw_isp.training.cli import main as train_main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder (default: train vit-tiny-32 for 5 steps)")
    p.add_argument("--dataset", choices=list(E.DATASET_NAMES), default=None,
                   help="dataset of the frames (default: the model's task: drone for segmentation)")
    p.add_argument("--cache_dir", default=None, help="datasets cache (default: a temporary folder)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per interaction (default 7)")
    p.add_argument("--threads", type=int, nargs="+", default=[1], help="torch thread counts to time (default 1)")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    return p.parse_args(argv)


def median_time(fn, repeats: int, before=None) -> float:
    if before:
        before()
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_default_model(out: str, cache: str) -> None:
    argv = ["--output_dir", out, "--cache_dir", cache, "--num_examples", "60", "--max_train_steps", "5",
            "--per_device_train_batch_size", "8", "--max_eval_samples", "8"]
    if train_main("classification", argv) != 0:
        raise SystemExit("error: training the default model failed")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="bench_explorer_")
    cache = args.cache_dir or str(Path(tmp.name) / "hf_cache")
    model_dir = args.model
    if model_dir is None:
        model_dir = str(Path(tmp.name) / "model")
        train_default_model(model_dir, cache)
    ex = E.Explorer(E.ExampleSource(cache_dir=cache))
    predictor = ex.load_model(model_dir)
    dataset = args.dataset or ("raw_drone" if predictor.dense else "raw_microscopy")
    frame = ex.example(dataset, "test", 0)
    upload = Path(tmp.name) / "frame.tiff"
    raw_isp.write_raw(upload, frame.raw)
    n_params = sum(p.numel() for p in predictor.model.model.parameters())

    info = machine_info("cpu")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"model: {model_dir} ({predictor.task}, {n_params / 1e6:.2f} M parameters, ISP {predictor.isp_spec}); "
          f"frame: {dataset} test #0, {frame.raw.shape[0]}x{frame.raw.shape[1]}; medians of {args.repeats} runs")

    interactions = {
        "pick an example -> 12 views + predictions": (
            lambda: ex.render(ex.example(dataset, "test", 1), 0, predictor), ex.clear_cache),
        "intensity slider -> 12 views + predictions": (lambda: ex.render(frame, 3, predictor), ex.clear_cache),
        "intensity slider after the drift table (cached)": (
            lambda: ex.render(frame, 5, predictor), lambda: (ex.clear_cache(), ex.drift_table(frame, predictor))),
        "drift table: 84 views + predictions": (lambda: ex.drift_table(frame, predictor), ex.clear_cache),
        "ParametrizedISP slider -> 1 view + prediction": (
            lambda: ex.parametrized_view(frame, 0, predictor, "bi_s_ga", 1.3, 0.9, 2.0, 1.5, 0.8), None),
        "upload a 256x256 TIFF -> 12 views + predictions": (
            lambda: ex.render(ex.upload(upload, dataset), 0, predictor), ex.clear_cache),
    }
    results = {"machine": info, "model": model_dir, "task": predictor.task, "repeats": args.repeats, "timings_s": {}}
    width = max(len(k) for k in interactions)
    header = f"{'interaction':<{width}} " + " ".join(f"{f'{t} thread(s)':>12}" for t in args.threads)
    print(header)
    print("-" * len(header))
    before_threads = torch.get_num_threads()
    rows = {name: [] for name in interactions}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, (fn, before) in interactions.items():
            seconds = median_time(fn, args.repeats, before)
            rows[name].append(seconds)
            results["timings_s"].setdefault(name, {})[threads] = round(seconds, 4)
    torch.set_num_threads(before_threads)
    for name, values in rows.items():
        print(f"{name:<{width}} " + " ".join(f"{v:>10.3f} s" for v in values))
    print("bar: an interaction answers in under 1 s (the drift table is a follow-up the page fills in after the views)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
