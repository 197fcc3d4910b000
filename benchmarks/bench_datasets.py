"""Time the dataset builders: preparing each default config, and feeding raw batches to torch.

1. **Prepare.** Each default configuration is built from the synthetic source at the real sizes
   with ``<dataset>.load_dataset(name, cache_dir=<fresh temporary folder>)``, so every run
   generates and writes the Arrow cache from scratch. Targets on 2 CPU cores: Raw-Microscopy at one
   intensity (940 frames) under 15 s, at all seven intensities (6,580 frames) under 90 s. The drone
   configurations are timed too.
2. **Iterate.** The training split of ``raw_microscopy`` "raw" (4,606 frames) and of ``raw_drone``
   "segmentation" (2,632), columns ``image`` and its target (``label`` or ``mask``), go through a
   shuffled torch ``DataLoader`` with 2 worker processes and batches of 64: formatted with the
   project's ``raw_isp.data.arrow.raw_format`` (uint16 tensors read straight from the Arrow buffers),
   once as usual (rows fetched with ``__getitems__`` and stacked by the default collate) and once
   with a batched fetch (``sampler=BatchSampler(...)``, ``batch_size=None``: one formatted batch
   per call, nothing re-stacked); and with plain ``with_format("torch")``. Frames per second of
   each and the ratio to the plain format are printed (target: at least 5,000 raw frames/s), with
   the same loader without workers as a reference. Every batch of one epoch is checked:
   ``raw_format`` batches must be ``torch.uint16`` and bit-exact to the stored values (compared,
   by id and intensity, with an independent read of the Arrow column as Python lists); the dtype
   that ``with_format("torch")`` returns is reported.

The machine (CPU model, cores, torch threads) and the 1-minute load average before and after each
measurement are printed: on a shared machine the wall times depend on what else runs.

    python benchmarks/bench_datasets.py                       # everything at the real sizes
    python benchmarks/bench_datasets.py --quick               # small subsets, for a smoke run
    python benchmarks/bench_datasets.py --only iterate        # one part (prepare | iterate),
    python benchmarks/bench_datasets.py --only microscopy     # one dataset (microscopy | drone),
    python benchmarks/bench_datasets.py --only raw-100        # or one config by name
    python benchmarks/bench_datasets.py --json results.json   # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from machine import load_average, machine_info  # benchmarks/machine.py, beside this script

#: (dataset package, config, target seconds or None): the configurations timed in "prepare".
PREPARE: tuple[tuple[str, str, float | None], ...] = (
    ("raw_microscopy", "raw-100", 15.0),
    ("raw_microscopy", "raw", 90.0),
    ("raw_microscopy", "rgb-ma_s_me", None),
    ("raw_drone", "segmentation-100", None),
    ("raw_drone", "segmentation", None),
    ("raw_drone", "classification-100", None),
    ("raw_drone", "classification", None),
    ("raw_drone", "segmentation-rgb-ma_s_me", None),
)
#: Builder keywords of the small subsets used with --quick.
QUICK_KWARGS: dict[str, dict[str, Any]] = {
    "raw_microscopy": {"num_examples": 94},
    "raw_drone": {"num_tiles": 24, "num_scenes": 6, "frame_height": 768, "frame_width": 1024},
}
ITERATE_TARGET_FPS = 5000.0
SHORT = {"raw_microscopy": "microscopy", "raw_drone": "drone"}


# --------------------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    import datasets

    return machine_info(datasets=datasets.__version__, numpy=np.__version__)


# --------------------------------------------------------------------------- prepare


def _module(name: str):
    import importlib

    return importlib.import_module(name)


def bench_prepare(dataset: str, config: str, target: float | None, quick: bool) -> dict[str, Any]:
    """Build ``config`` from the synthetic source in a fresh cache; wall and CPU seconds."""
    module = _module(dataset)
    kwargs: dict[str, Any] = {"source": "synthetic"}
    if quick:
        kwargs.update(QUICK_KWARGS[dataset])
    cache = Path(tempfile.mkdtemp(prefix="bench-datasets-cache-"))
    load_before = load_average()
    try:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, cpu = time.perf_counter(), time.process_time()
        dd = module.load_dataset(name=config, split=None, cache_dir=str(cache), output=None, **kwargs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        rows = {split: len(ds) for split, ds in dd.items()}
        del dd
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    total = sum(rows.values())
    result = {
        "dataset": dataset, "config": config, "quick": quick, "rows": rows, "total_rows": total,
        "wall_s": round(wall, 2), "cpu_s_main_process": round(cpu, 2),
        "cpu_s_worker_processes": round(child_cpu, 2),
        "rows_per_s": round(total / wall, 1) if wall > 0 else None,
        "target_s": None if quick else target,
        "load_before": load_before, "load_after": load_average(),
    }
    if target is not None and not quick:
        result["meets_target"] = wall < target
    return result


# --------------------------------------------------------------------------- iterate


@dataclass
class LoaderRun:
    frames: int
    seconds: float  # the whole epoch, worker start included
    first_batch_s: float  # worker start and the first batch
    first_batch_frames: int
    dtype: str

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def steady_fps(self) -> float:
        """Frames/s after the first batch (what persistent workers deliver epoch after epoch)."""
        rest = self.seconds - self.first_batch_s
        return (self.frames - self.first_batch_frames) / rest if rest > 0 else float("nan")


def _loader(ds, batch_size: int, workers: int, seed: int, batched: bool = False) -> torch.utils.data.DataLoader:
    """A shuffled DataLoader. ``batched``: the project's ``raw_dataloader`` (a ``BatchSampler``
    hands each worker an index list and the batch is gathered in one copy, so rows are never split
    and re-stacked); otherwise the ordinary per-row DataLoader."""
    if batched:
        from raw_isp.data.arrow import raw_dataloader

        return raw_dataloader(ds, batch_size=batch_size, shuffle=True, seed=seed, num_workers=workers)
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       generator=g, persistent_workers=False)


def _epoch(ds, batch_size: int, workers: int, seed: int, column: str, check=None, batched: bool = False
           ) -> LoaderRun:
    """One shuffled epoch, timed from creating the iterator (worker start included) to the end."""
    frames, dtype, first, first_frames = 0, "", None, 0
    start = time.perf_counter()
    for batch in _loader(ds, batch_size, workers, seed, batched):
        images = batch[column]
        frames += images.shape[0]
        if first is None:
            first, first_frames = time.perf_counter() - start, images.shape[0]
        dtype = str(images.dtype)
        if check is not None:
            check(batch)
    return LoaderRun(frames, time.perf_counter() - start, first or 0.0, first_frames, dtype)


def bench_iterate(dataset: str, config: str, split: str, quick: bool, batch_size: int, workers: int,
                  repeats: int, cache_dir: str) -> dict[str, Any]:
    """Frames/s of a prepared split through a DataLoader: ``raw_format`` vs ``with_format("torch")``."""
    from raw_isp.data.arrow import raw_format

    module = _module(dataset)
    kwargs: dict[str, Any] = {"source": "synthetic"}
    if quick:
        kwargs.update(QUICK_KWARGS[dataset])
    ds = module.load_dataset(name=config, split=split, cache_dir=cache_dir, output=None, **kwargs)
    column = "image"
    ids = "image_id" if "image_id" in ds.column_names else "tile_id"
    key = [ids, "intensity"] if "intensity" in ds.column_names else [ids]
    # Bit-exactness: every batch of one raw_format epoch against an independent read of the column.
    ref_ds = ds.select_columns([column, *key])
    stored = {}
    table = ref_ds.data.table
    dtype = np.dtype(ds.features[column].dtype)
    for row in zip(*(table.column(k).to_pylist() for k in key), table.column(column).to_pylist()):
        stored[tuple(row[:-1])] = np.array(row[-1], dtype=dtype)
    checked = {"rows": 0, "mismatches": 0, "dtypes": set()}

    def check(batch) -> None:
        images = batch[column]
        checked["dtypes"].add(str(images.dtype))
        keys = zip(*(batch[k] if not torch.is_tensor(batch[k]) else batch[k].tolist() for k in key))
        for k, img in zip(keys, images):
            want = stored[tuple(float(v) if isinstance(v, float) else v for v in k)]
            checked["rows"] += 1
            if img.dtype != torch.uint16 or not np.array_equal(img.numpy(), want):
                checked["mismatches"] += 1

    # Timed: the columns a training loop reads, the frame and its target (label or mask).
    target = next(c for c in ("label", "mask") if c in ds.column_names)
    timed_columns = [column, target]
    fast = raw_format(ds.select_columns(timed_columns), output="torch")
    plain = ds.select_columns(timed_columns).with_format("torch")
    load_before = load_average()
    _epoch(raw_format(ref_ds, output="torch"), batch_size, workers, 0, column, check)  # warm-up + correctness
    fast_runs = [_epoch(fast, batch_size, workers, r + 1, column) for r in range(repeats)]
    batched_runs = [_epoch(fast, batch_size, workers, r + 1, column, batched=True) for r in range(repeats)]
    plain_runs = [_epoch(plain, batch_size, workers, r + 1, column) for r in range(repeats)]
    # Reference: the same loader without worker processes (no inter-process transfer), with one
    # torch thread as a DataLoader worker has; shows what the worker path costs on this machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        inproc_runs = [_epoch(fast, batch_size, 0, r + 1, column) for r in range(repeats)]
    finally:
        torch.set_num_threads(threads)
    load_after = load_average()

    def summary(runs: list[LoaderRun]) -> dict[str, Any]:
        fps = [r.fps for r in runs]
        steady = [r.steady_fps for r in runs]
        return {"frames_per_epoch": runs[0].frames, "dtype": runs[0].dtype,
                "frames_per_s_median": round(statistics.median(fps), 1), "frames_per_s_best": round(max(fps), 1),
                "steady_frames_per_s_median": round(statistics.median(steady), 1),
                "first_batch_s_median": round(statistics.median(r.first_batch_s for r in runs), 3)}

    f, p, z, bf = summary(fast_runs), summary(plain_runs), summary(inproc_runs), summary(batched_runs)
    return {
        "dataset": dataset, "config": config, "split": split, "rows": len(ds), "batch_size": batch_size,
        "workers": workers, "repeats": repeats, "columns": timed_columns, "raw_format": f, "with_format_torch": p,
        "raw_format_no_workers": z, "raw_format_batched_fetch": bf,
        "speedup_median": round(f["frames_per_s_median"] / p["frames_per_s_median"], 2),
        "steady_speedup_median": round(f["steady_frames_per_s_median"] / p["steady_frames_per_s_median"], 2),
        "uint16_and_bit_exact": checked["rows"] == len(ds) and checked["mismatches"] == 0
        and checked["dtypes"] == {"torch.uint16"}
        and all(r.dtype == "torch.uint16" for r in fast_runs + inproc_runs + batched_runs),
        "checked_rows": checked["rows"], "mismatches": checked["mismatches"],
        "target_fps": None if quick else ITERATE_TARGET_FPS,
        # Judged on whole epochs, worker start included (the stricter of the two figures).
        "meets_target": None if quick else f["frames_per_s_median"] >= ITERATE_TARGET_FPS,
        "meets_target_batched_fetch": None if quick else bf["frames_per_s_median"] >= ITERATE_TARGET_FPS,
        "load_before": load_before, "load_after": load_after,
    }


# --------------------------------------------------------------------------- main


def selected(only: list[str], part: str, dataset: str, config: str) -> bool:
    """True if every name in ``only`` is one of the item's tags (part, dataset, short name, config)."""
    return all(o in {part, dataset, SHORT[dataset], config} for o in only)


_ALL_TAGS = {"prepare", "iterate", *SHORT, *SHORT.values(), *(c for _, c, _ in PREPARE)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small synthetic subsets and one repeat (a smoke run)")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME",
                   help="run only items matching every name given among: prepare, iterate, microscopy, drone, "
                        "or a config name")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=None, help="timed epochs per loader (default 3, quick 1)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    unknown = [o for o in args.only if o not in _ALL_TAGS]
    if unknown:
        p.error(f"--only: unknown name(s) {unknown}; choose from {sorted(_ALL_TAGS)}")
    repeats = args.repeats or (1 if args.quick else 3)

    info = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    results: dict[str, Any] = {"machine": info, "prepare": [], "iterate": []}

    for dataset, config, target in PREPARE:
        if not selected(args.only, "prepare", dataset, config):
            continue
        r = bench_prepare(dataset, config, target, args.quick)
        results["prepare"].append(r)
        verdict = "" if r.get("meets_target") is None else (" (target < %gs: %s)" % (
            target, "met" if r["meets_target"] else "MISSED"))
        print(f"prepare {dataset}/{config}: {r['total_rows']:,} rows {r['rows']} in {r['wall_s']:.1f} s wall, "
              f"CPU {r['cpu_s_main_process']:.1f} s main + {r['cpu_s_worker_processes']:.1f} s worker processes{verdict}; "
              f"load {r['load_before']} -> {r['load_after']}", flush=True)

    iterate_items = [("raw_microscopy", "raw", "train"), ("raw_drone", "segmentation", "train")]
    for dataset, config, split in iterate_items:
        if not selected(args.only, "iterate", dataset, config):
            continue
        cache = tempfile.mkdtemp(prefix="bench-datasets-iter-")
        try:
            r = bench_iterate(dataset, config, split, args.quick, args.batch_size, args.workers, repeats, cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        results["iterate"].append(r)
        f, pl, z, bf = (r["raw_format"], r["with_format_torch"], r["raw_format_no_workers"],
                        r["raw_format_batched_fetch"])
        verdict = "" if r["meets_target"] is None else (" (target >= %g frames/s: %s)" % (
            ITERATE_TARGET_FPS, "met" if r["meets_target"] else "MISSED"))
        print(f"iterate {dataset}/{config}[{split}] ({r['rows']:,} frames, columns {r['columns']}, shuffled, "
              f"batch {r['batch_size']}, "
              f"{r['workers']} workers, {repeats} epochs; frames/s per whole epoch incl. worker start, "
              f"and after the first batch):\n"
              f"  raw_format          : {f['frames_per_s_median']:>9,.0f} frames/s median "
              f"(best {f['frames_per_s_best']:,.0f}; after first batch {f['steady_frames_per_s_median']:,.0f}), "
              f"dtype {f['dtype']}{verdict}\n"
              f"  with_format('torch'): {pl['frames_per_s_median']:>9,.0f} frames/s median "
              f"(best {pl['frames_per_s_best']:,.0f}; after first batch {pl['steady_frames_per_s_median']:,.0f}), "
              f"dtype {pl['dtype']}\n"
              f"  raw_dataloader (one gather per batch): {bf['frames_per_s_median']:,.0f} "
              f"frames/s median (after first batch {bf['steady_frames_per_s_median']:,.0f})"
              + ("" if r["meets_target_batched_fetch"] is None else
                 f" (target: {'met' if r['meets_target_batched_fetch'] else 'MISSED'})") + "\n"
              f"  raw_format, 0 workers (reference, 1 torch thread): {z['frames_per_s_median']:,.0f} frames/s median\n"
              f"  ratio {r['speedup_median']:.2f}x (after first batch {r['steady_speedup_median']:.2f}x); "
              f"uint16 and bit-exact: {r['uint16_and_bit_exact']} ({r['checked_rows']:,} rows checked); "
              f"load {r['load_before']} -> {r['load_after']}", flush=True)

    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    failed = [r for r in results["iterate"] if not r["uint16_and_bit_exact"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
