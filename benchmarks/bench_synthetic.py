"""Time the synthetic simulators: examples per second for the full data sets at all intensities.

- Raw-Microscopy: 940 examples x 7 intensities = 6,580 raw frames (target: under 60 s).
- Raw-Drone: 548 segmentation + 930 classification tiles x 7 intensities = 10,346 raw tiles
  (target: under 60 s), from 12 rendered scenes in one pass (``DroneSimulator.tile_sets``: each
  scene rendered once, each tile exposed and intensity-scaled once even when both sets use it).

An "example" is one raw frame at one intensity. Wall time and the CPU time of the process are
both reported: on a shared machine the wall time depends on what else runs, the CPU time much
less. The machine is named in the output (CPU model, cores, torch threads, load average).

    python benchmarks/bench_synthetic.py                   # both, full size
    python benchmarks/bench_synthetic.py --only drone      # one simulator
    python benchmarks/bench_synthetic.py --quick           # a tenth of the work, for a smoke run

Earlier measurements (moved here from the simulators' docstrings):

- Raw-Drone (2 shared AMD EPYC cores, numpy + torch CPU): a default scene renders in about
  1.3 CPU-s, its car mask alone in about 0.1 s; a tile's noise at 7 intensities costs about
  50 CPU-ms, most of it the binomial thinning in ``scale_intensity``. Drawing edges by area and
  the skylight beside cars added about 15 % to a scene's render (2.0 against 1.8 CPU-s, medians
  of 3, interleaved, on a loaded 2-core Intel Xeon) and 7 % to the full tile sets (75.5 against
  69.4 and 71.8 CPU-s).
- Raw-Microscopy (a shared 2-core Intel Xeon, single-threaded; "before" is commit 243afda,
  without the fine structure, slides, lateral colour and fixed pattern): a scene (the noise-free
  signal) takes about 11 ms of CPU, the 940 scenes 8.4 CPU-s against 7.6 before (x1.11,
  interleaved); a full example (scene, one exposure, six ``scale_intensity`` thinnings) about
  50 ms, most of it the sensor readouts; 940 examples x 7 intensities in 51 s wall, 48 CPU-s
  (before: 47 s, 47 CPU-s).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from raw_isp import INTENSITY_RATIOS

from machine import machine_info  # benchmarks/machine.py, beside this script

TARGET_S = 60.0


def machine() -> dict:
    return machine_info()


def timed(run) -> tuple[int, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    count = run()
    return count, time.perf_counter() - wall, time.process_time() - cpu


def bench_microscopy(quick: bool) -> dict:
    from raw_microscopy.synthetic import MicroscopySimulator

    n = 94 if quick else 940
    sim = MicroscopySimulator(seed=0, num_examples=n)

    def run() -> int:
        frames = 0
        for i in range(n):
            frames += len(sim.example(i, INTENSITY_RATIOS)["raws"])
        return frames

    frames, wall, cpu = timed(run)
    return {"name": "Raw-Microscopy", "examples": frames, "wall_s": wall, "cpu_s": cpu,
            "detail": f"{n} examples x {len(INTENSITY_RATIOS)} intensities", "full": not quick}


def bench_drone(quick: bool) -> dict:
    from raw_drone.synthetic import DroneSimulator

    if quick:  # 2 scenes, a tenth of the tiles
        sim, n_seg, n_cls = DroneSimulator(seed=0, num_scenes=2), 55, 94
    else:
        sim, n_seg, n_cls = DroneSimulator(seed=0), 548, 930
    counts = {"segmentation": 0, "classification": 0}

    def run() -> int:
        for ex in sim.tile_sets(n_seg, n_cls, INTENSITY_RATIOS):
            counts[ex["task"]] += 1
        return sum(counts.values())

    frames, wall, cpu = timed(run)
    chosen = sim.select(n_seg, n_cls)
    unique = len(set(chosen["segmentation"]) | set(chosen["classification"]))
    return {"name": "Raw-Drone", "examples": frames, "wall_s": wall, "cpu_s": cpu,
            "detail": (f"{sim.num_scenes} scenes of {sim.height}x{sim.width}, {n_seg} segmentation + {n_cls} "
                       f"classification tiles ({unique} distinct) x {len(INTENSITY_RATIOS)} intensities; "
                       f"{counts['segmentation']} + {counts['classification']} examples"),
            "full": not quick}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("microscopy", "drone"), help="time one simulator only")
    parser.add_argument("--quick", action="store_true", help="a tenth of the work (no target check)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    info = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    results = []
    if args.only in (None, "microscopy"):
        results.append(bench_microscopy(args.quick))
    if args.only in (None, "drone"):
        results.append(bench_drone(args.quick))

    print(f"{'simulator':<16}{'examples':>10}{'wall s':>10}{'cpu s':>10}{'examples/s':>12}  target")
    for r in results:
        r["examples_per_s"] = r["examples"] / r["wall_s"]
        verdict = ("met" if r["wall_s"] < TARGET_S else "MISSED") if r["full"] else "n/a (quick)"
        r["target"] = verdict
        print(f"{r['name']:<16}{r['examples']:>10d}{r['wall_s']:>10.1f}{r['cpu_s']:>10.1f}"
              f"{r['examples_per_s']:>12.1f}  < {TARGET_S:.0f} s: {verdict}")
        print(f"{'':<16}{r['detail']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
