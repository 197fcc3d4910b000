"""Check that two source trees make bit-identical synthetic data (a refactoring's proof).

Each tree is imported in its own subprocess (``PYTHONPATH`` set to the tree), which renders a
sample of both simulators: every intensity ratio, every microscopy class (two cells each, two
frame sizes), drone segmentation and classification tiles with masks, labels and metadata, a
full-size drone scene, other noise seeds and seeds. Every array is hashed (sha256 of its bytes,
with dtype and shape), every other value is kept as its ``repr``; any difference fails.

    python benchmarks/check_synthetic_identity.py --base /tmp/sim_base       # base tree vs this one
    python benchmarks/check_synthetic_identity.py --base A --tree B
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve()


def digest(value) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return f"array {hashlib.sha256(data.tobytes()).hexdigest()} {data.dtype} {data.shape}"
    return repr(value)


def sample(tree: Path) -> dict[str, str]:
    """Hashes of a sample of both simulators' output, imported from ``tree`` (the subprocess
    :func:`run` starts has the tree on its ``PYTHONPATH``)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import raw_drone.synthetic as drone
    import raw_microscopy.synthetic as micro

    for module in (drone, micro):  # the tree asked for, not an installed copy
        assert Path(module.__file__).resolve().is_relative_to(tree), module.__file__
    out: dict[str, str] = {}

    def put(key: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{key}.{k}", v)
        elif isinstance(value, (list, tuple)) and any(isinstance(v, (np.ndarray, dict)) for v in value):
            for k, v in enumerate(value):
                put(f"{key}[{k}]", v)
        else:
            out[key] = digest(value)

    # Microscopy: two cells of every class at every intensity, the views behind them, and a small frame.
    for size, seed in ((256, 0), (64, 2)):
        sim = micro.MicroscopySimulator(seed=seed, num_examples=200, size=size)
        labels = sim.labels()
        put(f"micro{size}.labels", labels)
        picks = [int(i) for c in range(len(micro.CLASS_NAMES)) for i in np.flatnonzero(labels == c)[:2]]
        for i in picks:
            key = f"micro{size}.{i}"
            put(key, sim.example(i))
            put(key + ".meta", {"slide": sim.slide(i), "origin": sim.crop_origin(i), "granules": sim.granule_count(i)})
            put(key + ".transmission", sim.transmission(i))
            put(key + ".pattern", sim.sensor_pattern(i))
        put(f"micro{size}.noise_seed", sim.raws(picks[0], noise_seed=5))
    put("micro.label_assignment", micro.label_assignment(2000, seed=3))
    # Drone: both tile sets of small scenes, every intensity, masks and labels; other noise; a full-size scene.
    sim = drone.DroneSimulator(seed=0, num_scenes=3, height=512, width=768)
    put("drone.tile_index", [tuple(t) for t in sim.tile_index()])
    put("drone.select", {k: [tuple(t) for t in v] for k, v in sim.select(6, 8).items()})
    for n, ex in enumerate(sim.tile_sets(6, 8)):
        put(f"drone.tile{n}", ex)
    put("drone.scene1", sim.scene(1))
    put("drone.scene1.noise_seed", sim.scene(1, noise_seed=3)["raw"])
    put("drone.seed5.mask", drone.DroneSimulator(seed=5, num_scenes=1, height=512, width=768).car_mask(0))
    big = drone.DroneSimulator(seed=0, num_scenes=1)
    put("drone.default.render", big.render(0))
    return out


def run(tree: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, str(HERE), "--dump", str(tree)], capture_output=True, text=True,
                          cwd=tree, env=env)
    if proc.returncode:
        raise SystemExit(f"{tree}: the sample failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="the tree to compare against")
    parser.add_argument("--tree", type=Path, default=HERE.parents[1], help="the tree to check (default: this one)")
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)  # child: print one tree's hashes
    args = parser.parse_args(argv)
    if args.dump:
        print(json.dumps(sample(args.dump.resolve())))
        return 0
    if args.base is None:
        parser.error("--base is required")
    base, tree = run(args.base.resolve()), run(args.tree.resolve())
    differ = sorted(k for k in base.keys() & tree.keys() if base[k] != tree[k])
    missing = sorted(base.keys() ^ tree.keys())
    arrays = sum(v.startswith("array ") for v in base.values())
    print(f"{len(base)} values ({arrays} arrays) from {args.base}, {len(tree)} from {args.tree}")
    for k in differ[:20]:
        print(f"DIFFERS {k}: {base[k][:80]} | {tree[k][:80]}")
    for k in missing[:20]:
        print(f"ONLY IN ONE TREE {k}")
    if differ or missing:
        print(f"FAIL: {len(differ)} values differ, {len(missing)} in one tree only")
        return 1
    print("OK: bit-identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
