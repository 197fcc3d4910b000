"""Where the class evidence of synthetic Raw-Microscopy lives: colour statistics or fine structure.

Linear probes on the developed views of the same cells, for the simulator as it is now and as it
was at an earlier commit (default 243afda, before the cells had fine structure), so the two can be
compared side by side:

(a) **colour only**: a logistic regression (standardised features, 5-fold stratified CV) on
    per-channel mean, std and 5/25/50/75/95th percentiles of the central 160x160 pixels of each
    cell's view through ``StaticISP("bi_s_ga", camera="microscopy")``;
(b) **fine structure**: the same probe on band-pass energies of the view at 1, 1-2 and 2-4 px
    (differences of Gaussian blurs, per channel and on luma: mean square and 90th percentile of the
    local energy) and the local 3x3 standard deviation of luma (mean and 90th percentile), alone and
    together with the colour features;
(c) **what the ISP does to a fixed 1-3 px structure**: for the same noise-free raw frames (the
    expected signal of each pixel, so that only the cells' structure is there) developed by
    ``bi_s_ga``, ``ma_u_me`` and ``me_s_me``, the energy of luma's 1-3 px band (luma minus its
    Gaussian blur of sigma 1.5 px, over the central 160x160 pixels) relative to ``bi_s_ga``'s,
    and the energy of the difference of the two bands relative to ``bi_s_ga``'s band (0: the
    variants agree on the fine structure, 1: they differ by as much as there is); and each probe
    trained on ``bi_s_ga`` features and scored on another variant's (the probe's own drift under
    an ISP change).

With ``--drone``, the same question for synthetic Raw-Drone: noise-free frames of a few scenes
developed by the three variants, the energy of luma's 1-3 px band along the car outlines (the
mask's boundary grown by 4 px) and over the whole frame, relative to ``bi_s_ga`` and as the
difference between variants, before and now.

Nothing here is tuned: the simulators are run as they are, at full light (ratio 1.0), all 940
cells of seed 0 by default. It prints the figures and, with ``--json``, writes them.

    python benchmarks/probe_synthetic.py                    # before (243afda) and now, 940 cells
    python benchmarks/probe_synthetic.py --num 300 --skip-before
    python benchmarks/probe_synthetic.py --drone            # 2 scenes of 1024x1536, before and now
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from raw_isp import StaticISP
from raw_isp.isp.filters import gaussian_blur

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("bi_s_ga", "ma_u_me", "me_s_me")
SIMULATOR = "raw_microscopy/synthetic"
DRONE_SIMULATOR = "raw_drone/synthetic"


def load_simulator(revision: str | None, source: str = SIMULATOR) -> ModuleType:
    """The simulator as it is in the working tree (None) or at a git ``revision``.

    ``source`` names the simulator without a suffix: a package ``source/`` (now) or a single file
    ``source.py`` (before the simulators became packages, e.g. 243afda). Loaded under a private
    name, so that two versions can live side by side and the dataset package's ``__init__``
    (builders, ``datasets``) is not imported for it.
    """
    name = f"_probe_{Path(source).parent.name}_{revision or 'now'}"
    if revision is None:
        path = REPO / source
    else:
        path = Path(tempfile.mkdtemp(prefix="probe_synthetic_")) / "synthetic"
        files = _git(revision, "ls-tree", "-r", "--name-only", revision, "--", f"{source}/").split()
        if not files:
            files = [f"{source}.py"]
        for file in files:
            target = path.parent / Path(file).relative_to(Path(source).parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_git(revision, "show", f"{revision}:{file}"))
    package = path.is_dir()
    spec = importlib.util.spec_from_file_location(
        name, path / "__init__.py" if package else path.with_suffix(".py"),
        submodule_search_locations=[str(path)] if package else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _git(revision: str, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as err:
        raise SystemExit(f"--before {revision!r}: git {args[0]} failed: {err.stderr.strip()}")


def centre(x: torch.Tensor, margin: int) -> torch.Tensor:
    return x[..., margin:x.shape[-2] - margin, margin:x.shape[-1] - margin]


def luma(rgb: torch.Tensor) -> torch.Tensor:
    return 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]


def percentiles(x: torch.Tensor, q: list[float]) -> np.ndarray:
    """Percentiles ``q`` (0-100) over the last axis: ``(..., len(q))`` (numpy's partition is fast)."""
    return np.moveaxis(np.percentile(x.numpy(), q, axis=-1), 0, -1)


def colour_features(view: torch.Tensor) -> np.ndarray:
    """Per-channel mean, std and 5/25/50/75/95th percentiles of ``(B, 3, h, w)``: ``(B, 21)``."""
    flat = view.flatten(2)
    q = percentiles(flat, [5, 25, 50, 75, 95]).reshape(len(view), -1)
    return np.concatenate([flat.mean(-1).numpy(), flat.std(-1).numpy(), q], axis=1)


def bands(image: torch.Tensor) -> list[torch.Tensor]:
    """Band-pass images of ``(B, H, W)`` at about 1, 1-2 and 2-4 px (differences of Gaussian blurs)."""
    levels = [image] + [gaussian_blur(image, s) for s in (1.0, 2.0, 4.0)]
    return [levels[k] - levels[k + 1] for k in range(3)]


def fine_features(view: torch.Tensor, margin: int) -> np.ndarray:
    """Band energies per channel and on luma, and local 3x3 std of luma, over the centre: ``(B, 26)``."""
    keep = 24  # pixels around the centre that the blurs (up to sigma 4, 4 sigma wide) still read
    view = centre(view, max(0, margin - keep))
    margin = min(margin, keep)
    feats = []
    planes = [view[:, c] for c in range(3)] + [luma(view)]
    for plane in planes:
        for band in bands(plane):
            energy = centre(gaussian_blur(band * band, 2.0), margin).flatten(1)
            feats += [energy.mean(-1).numpy(), percentiles(energy, [90])[:, 0]]
    y = planes[-1]
    mean = torch.nn.functional.avg_pool2d(y[:, None], 3, 1)[:, 0]
    var = torch.nn.functional.avg_pool2d(y[:, None] ** 2, 3, 1)[:, 0] - mean * mean
    local = centre(var.clamp_min(0).sqrt(), margin - 1).flatten(1)
    feats += [local.mean(-1).numpy(), percentiles(local, [90])[:, 0]]
    return np.stack(feats, axis=1)


def fine_band(view: torch.Tensor) -> torch.Tensor:
    """Luma minus its Gaussian blur of sigma 1.5 px: the 1-3 px structure, ``(B, H, W)``."""
    y = luma(view)
    return y - gaussian_blur(y, 1.5)


def noise_free(sim, i: int) -> np.ndarray:
    """The expected raw frame of example ``i`` at ratio 1.0 in [0, 1] of the 16-bit scale, float32."""
    sensor = sim.sensor
    dn = sensor.black_level + sensor.gain * sim.mean_electrons(i).astype(np.float64)
    return (np.clip(dn, 0, sensor.white_level) / 65535.0).astype(np.float32)


def develop(module: ModuleType, num: int, seed: int, size: int, batch: int = 32) -> dict:
    """Render ``num`` cells, develop each through the three variants, and collect features."""
    sim = module.MicroscopySimulator(seed=seed, num_examples=num, size=size)
    isps = {v: StaticISP(v, camera="microscopy") for v in VARIANTS}
    margin = size * 3 // 16  # the central 160x160 of a 256 frame
    out = {"labels": sim.labels(), "colour": {v: [] for v in VARIANTS}, "fine": {v: [] for v in VARIANTS},
           "band_energy": {v: [] for v in VARIANTS}, "band_difference": {v: [] for v in VARIANTS}}
    render_s = 0.0
    for start in range(0, num, batch):
        t0 = time.process_time()
        raws = np.stack([sim.raw(i) for i in range(start, min(num, start + batch))])
        render_s += time.process_time() - t0
        clean = np.stack([noise_free(sim, i) for i in range(start, min(num, start + batch))])
        with torch.no_grad():
            views = {v: isps[v](raws) for v in VARIANTS}
            clean_views = {v: isps[v](torch.from_numpy(clean)) for v in VARIANTS}
            reference = centre(fine_band(clean_views["bi_s_ga"]), margin)
            for v in VARIANTS:
                view = views[v]
                out["colour"][v].append(colour_features(centre(view, margin)))
                out["fine"][v].append(fine_features(view, margin))
                band = centre(fine_band(clean_views[v]), margin)
                out["band_energy"][v].append((band ** 2).mean((1, 2)).numpy())
                out["band_difference"][v].append(((band - reference) ** 2).mean((1, 2)).numpy())
    for key in ("colour", "fine", "band_energy", "band_difference"):
        out[key] = {v: np.concatenate(out[key][v]) for v in VARIANTS}
    out["cpu_s_per_cell"] = render_s / num
    return out


def time_scenes(modules: dict[str, ModuleType], num: int, seed: int, size: int, block: int = 47
                ) -> dict[str, float]:
    """CPU seconds to render the noise-free signal of ``num`` cells with each module.

    The modules take turns in blocks of ``block`` cells, so that both see the same load on a
    shared machine.
    """
    sims = {k: m.MicroscopySimulator(seed=seed, num_examples=num, size=size) for k, m in modules.items()}
    for sim in sims.values():
        sim.signal(0)  # warm caches (kernels, camera pattern)
    spent = dict.fromkeys(sims, 0.0)
    for start in range(0, num, block):
        for k, sim in sims.items():
            t0 = time.process_time()
            for i in range(start, min(num, start + block)):
                sim.signal(i)
            spent[k] += time.process_time() - t0
    return spent


def probe(x: dict[str, np.ndarray], y: np.ndarray, seed: int = 0) -> dict[str, float]:
    """5-fold CV of a logistic regression trained on bi_s_ga features; scored on every variant."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    predictions = {v: np.zeros_like(y) for v in x}
    for train, test in folds.split(x["bi_s_ga"], y):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        clf.fit(x["bi_s_ga"][train], y[train])
        for v in x:
            predictions[v][test] = clf.predict(x[v][test])
    result = {}
    for v in x:
        result[f"accuracy_{v}"] = float((predictions[v] == y).mean())
        result[f"balanced_accuracy_{v}"] = float(balanced_accuracy_score(y, predictions[v]))
    return result


def summarise(name: str, data: dict) -> dict:
    y = data["labels"]
    sets = {
        "colour": data["colour"],
        "fine": data["fine"],
        "colour+fine": {v: np.concatenate([data["colour"][v], data["fine"][v]], 1) for v in VARIANTS},
    }
    result = {"cells": int(len(y)), "majority_rate": float(np.bincount(y).max() / len(y)),
              "cpu_s_per_cell_render_and_expose": data["cpu_s_per_cell"]}
    for key, feats in sets.items():
        result[key] = probe(feats, y)
    ref = data["band_energy"]["bi_s_ga"]
    for v in VARIANTS[1:]:
        result[f"band_energy_ratio_{v}"] = float(np.median(data["band_energy"][v] / ref))
        result[f"band_difference_{v}"] = float(np.median(data["band_difference"][v] / ref))
    result["band_rms_bi_s_ga"] = float(np.median(np.sqrt(ref)))
    names = data.get("class_names")
    if names is not None:
        result["band_rms_by_class"] = {n: float(np.median(np.sqrt(ref[y == k]))) for k, n in enumerate(names)
                                       if np.any(y == k)}
    return result


def probe_drone(module: ModuleType, scenes: int, seed: int, height: int, width: int) -> dict[str, float]:
    """Fine structure along car outlines in noise-free drone frames, per ISP variant."""
    import scipy.ndimage as ndi

    sim = module.DroneSimulator(seed=seed, num_scenes=scenes, height=height, width=width)
    isps = {v: StaticISP(v, camera="drone") for v in VARIANTS}
    sums = {key: {v: 0.0 for v in VARIANTS} for key in ("edge", "edge_diff", "frame", "frame_diff")}
    render_s = 0.0
    for k in range(scenes):
        t0 = time.process_time()
        out = sim.render(k)
        render_s += time.process_time() - t0
        sensor = sim.sensor
        raw = (sensor.black_level + sensor.gain * out["mean_electrons"].astype(np.float64)) / 65535.0
        raw = torch.from_numpy(np.clip(raw, 0, 1).astype(np.float32))[None]
        mask = out["mask"].astype(bool)
        edge = ndi.binary_dilation(mask, iterations=4) & ~ndi.binary_erosion(mask, iterations=4)
        edge = torch.from_numpy(edge[16:-16, 16:-16])
        with torch.no_grad():
            band = {v: centre(fine_band(isps[v](raw)), 16)[0] for v in VARIANTS}
        for v in VARIANTS:
            diff = (band[v] - band["bi_s_ga"]) ** 2
            sums["edge"][v] += float((band[v] ** 2)[edge].sum())
            sums["edge_diff"][v] += float(diff[edge].sum())
            sums["frame"][v] += float((band[v] ** 2).sum())
            sums["frame_diff"][v] += float(diff.sum())
    result = {"render_cpu_s_per_scene": render_s / scenes}
    for where in ("edge", "frame"):
        ref = sums[where]["bi_s_ga"]
        for v in VARIANTS[1:]:
            result[f"{where}_band_energy_{v}"] = sums[where][v] / ref
            result[f"{where}_band_difference_{v}"] = sums[f"{where}_diff"][v] / ref
    return result


def print_table(results: dict[str, dict]) -> None:
    cols = list(results)
    print(f"\n{'':44}" + "".join(f"{c:>18}" for c in cols))

    def row(label, get):
        print(f"{label:44}" + "".join(f"{get(results[c]):>18.3f}" for c in cols))

    row("majority-class rate", lambda r: r["majority_rate"])
    for key in ("colour", "fine", "colour+fine"):
        row(f"(a/b) {key}: CV accuracy (bi_s_ga)", lambda r, k=key: r[k]["accuracy_bi_s_ga"])
        row(f"      {key}: balanced accuracy", lambda r, k=key: r[k]["balanced_accuracy_bi_s_ga"])
        for v in VARIANTS[1:]:
            row(f"      {key}: trained bi_s_ga, scored {v}", lambda r, k=key, v=v: r[k][f"accuracy_{v}"])
    row("(c) 1-3 px band rms, bi_s_ga (median)", lambda r: r["band_rms_bi_s_ga"])
    for v in VARIANTS[1:]:
        row(f"    band energy {v} / bi_s_ga", lambda r, v=v: r[f"band_energy_ratio_{v}"])
        row(f"    |band {v} - bi_s_ga|^2 / band^2", lambda r, v=v: r[f"band_difference_{v}"])
    row("render + expose, CPU ms per cell", lambda r: 1000 * r["cpu_s_per_cell_render_and_expose"])
    row("noise-free scenes of all cells, CPU s", lambda r: r["scene_cpu_s"])
    if len(cols) == 2:
        print(f"scene time ratio now / before: {results[cols[1]]['scene_cpu_s'] / results[cols[0]]['scene_cpu_s']:.2f}")
    for c in cols:
        by_class = results[c].get("band_rms_by_class")
        if by_class:
            print(f"{c}: 1-3 px band rms by class (bi_s_ga, median): "
                  + ", ".join(f"{k} {v:.4f}" for k, v in by_class.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=940, help="cells (default 940, the real set)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--size", type=int, default=256, help="frame size")
    parser.add_argument("--before", default="243afda", help="git revision of the earlier simulator")
    parser.add_argument("--skip-before", action="store_true", help="probe only the working tree's simulator")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--drone", action="store_true", help="probe the drone simulator instead")
    parser.add_argument("--scenes", type=int, default=2, help="drone scenes (with --drone)")
    args = parser.parse_args(argv)
    if args.num < 50:
        parser.error("--num must be >= 50 (5-fold CV over nine classes)")
    torch.set_num_threads(1)  # small tensors; threads only thrash on a shared CPU

    from machine import machine_info  # benchmarks/machine.py, beside this script

    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    versions = {} if args.skip_before else {f"before ({args.before})": args.before}
    versions["now (working tree)"] = None
    if args.drone:
        drone = {label: probe_drone(load_simulator(rev, DRONE_SIMULATOR), args.scenes, args.seed, 1024, 1536)
                 for label, rev in versions.items()}
        print(f"\n{'drone, 1-3 px luma band (noise-free)':52}" + "".join(f"{c:>20}" for c in drone))
        for key in next(iter(drone.values())):
            print(f"{key:52}" + "".join(f"{r[key]:>20.3f}" for r in drone.values()))
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "args": vars(args) | {"json": str(args.json)},
                                             "results": drone}, indent=2))
        return 0
    modules = {label: load_simulator(revision) for label, revision in versions.items()}
    scene_s = time_scenes(modules, args.num, args.seed, args.size)
    results = {}
    for label, module in modules.items():
        t0 = time.perf_counter()
        data = develop(module, args.num, args.seed, args.size)
        data["class_names"] = module.CLASS_NAMES
        results[label] = summarise(label, data)
        results[label]["scene_cpu_s"] = scene_s[label]
        print(f"{label}: {args.num} cells probed in {time.perf_counter() - t0:.1f} s", flush=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "args": vars(args) | {"json": str(args.json)},
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
