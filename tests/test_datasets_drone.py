"""Raw-Drone as a Hugging Face dataset (synthetic source, six small frames): configs, features,
bit-exactness against the simulator, frame-grouped splits, the random tile-level split, k-fold."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

import raw_drone
from raw_drone import DroneSimulator, RawDrone
from raw_drone.synthetic import MIN_CAR_FRACTION
from raw_isp import ISP_VARIANTS, StaticISP
from raw_isp.data.arrow import raw_format
from raw_isp.data.builder import single_threaded_torch
from raw_isp.data.splits import split_assignment

SMALL = dict(num_scenes=6, frame_height=512, frame_width=1024, num_examples=20)
INTENSITIES = raw_drone.INTENSITIES


@pytest.fixture(scope="module")
def sim() -> DroneSimulator:
    return DroneSimulator(seed=0, num_scenes=6, height=512, width=1024)


@pytest.fixture(scope="module")
def scenes(sim: DroneSimulator) -> dict[str, dict]:
    return {sim.scene_id(k): sim.scene(k) for k in range(6)}


@pytest.fixture(scope="module")
def seg_all(cache: str) -> datasets.DatasetDict:
    return raw_drone.load_dataset("segmentation", cache_dir=cache, **SMALL)


def ratio_of(stored: float) -> float:
    return min(INTENSITIES, key=lambda r: abs(r - float(stored)))


def tile_slice(tile_id: str) -> tuple[slice, slice]:
    _, row, col = tile_id.split("_")
    y, x = int(row[1:]) * 256, int(col[1:]) * 256
    return slice(y, y + 256), slice(x, x + 256)


def test_config_names_and_features() -> None:
    names = raw_drone.CONFIG_NAMES
    assert len(names) == 40
    for task in ("segmentation", "classification"):
        assert task in names and f"{task}-100" in names and f"{task}-001" in names
        assert all(f"{task}-rgb-{v}" in names for v in ISP_VARIANTS)
    assert all(len(c.description) > 40 for c in RawDrone.BUILDER_CONFIGS)
    seg = RawDrone(config_name="segmentation-050").info.features
    assert seg["image"] == datasets.Array2D((256, 256), "uint16")
    assert seg["mask"] == datasets.Array2D((256, 256), "uint8")
    cls = RawDrone(config_name="classification").info.features
    assert cls["label"].names == ["no_car", "car"] and "mask" not in cls
    for f in (seg, cls):
        assert f["tile_id"] == f["source_image"] == datasets.Value("string")
        assert f["intensity"] == f["car_fraction"] == datasets.Value("float32")


def test_segmentation_is_bit_exact_to_the_simulator(seg_all, sim: DroneSimulator, scenes: dict) -> None:
    assert sum(len(d) for d in seg_all.values()) == 20 * len(INTENSITIES)
    chosen = {t.tile_id for t in sim.select(20, 0)["segmentation"]}
    for split, ds in seg_all.items():
        batch = ds[:]
        assert batch["image"].dtype == np.uint16 and batch["mask"].dtype == np.uint8
        assert set(np.unique(batch["mask"])) <= {0, 1}
        for k in range(0, len(ds), 3):
            tid, src, r = str(batch["tile_id"][k]), str(batch["source_image"][k]), ratio_of(batch["intensity"][k])
            assert tid in chosen and tid.startswith(src + "_")
            sl = tile_slice(tid)
            full = scenes[src]["raw"][sl]
            want = sim.intensity_series(full, tid, (r,))[r]
            assert np.array_equal(batch["image"][k], want)
            assert np.array_equal(batch["mask"][k], scenes[src]["mask"][sl])
            assert batch["mask"][k].any() and batch["car_fraction"][k] == pytest.approx(scenes[src]["mask"][sl].mean())


def test_grouped_splits_keep_frames_together_and_agree_across_tasks(cache: str, seg_all) -> None:
    frames = {s: set(map(str, d["source_image"])) for s, d in seg_all.items()}
    assert set(frames) == {"train", "validation", "test"}
    assert not (frames["train"] & frames["validation"]) and not (frames["train"] & frames["test"])
    assert not (frames["validation"] & frames["test"])
    expected = dict(zip([f"s{k:02d}" for k in range(6)], split_assignment([f"s{k:02d}" for k in range(6)], seed=0)))
    for split, members in frames.items():
        assert all(expected[f] == split for f in members)
    cls = raw_drone.load_dataset("classification-100", cache_dir=cache, **SMALL)
    for split, d in cls.items():
        assert all(expected[str(f)] == split for f in d["source_image"])
        labels = np.asarray(d["label"])
        assert np.array_equal(labels, (np.asarray(d["car_fraction"]) > MIN_CAR_FRACTION).astype(int))
    labels = np.concatenate([np.asarray(d["label"]) for d in cls.values()])
    assert labels.sum() == 10 and len(labels) == 20  # balanced car / no-car


def test_random_split_mode_is_tile_level(cache: str) -> None:
    ds = raw_drone.load_dataset("segmentation-100", split_mode="random", cache_dir=cache, **SMALL)
    tiles = {s: set(map(str, d["tile_id"])) for s, d in ds.items()}
    frames = {s: set(map(str, d["source_image"])) for s, d in ds.items()}
    assert sum(map(len, tiles.values())) == 20 and len(set().union(*tiles.values())) == 20
    # Tiles are split at random, so frames straddle splits (the leak this mode reproduces).
    assert frames["train"] & (frames["validation"] | frames["test"])
    assert 12 <= len(tiles["train"]) <= 16


def test_kfold_over_frames(cache: str) -> None:
    tests = []
    for k in range(3):
        ds = raw_drone.load_dataset("classification-100", fold=k, n_folds=3, cache_dir=cache, **SMALL)
        frames = {s: set(map(str, d["source_image"])) for s, d in ds.items()}
        others = frames.get("train", set()) | frames.get("validation", set())
        assert frames["test"] and not (frames["test"] & others)
        tests.append(frames["test"])
    assert not (tests[0] & tests[1]) and not (tests[1] & tests[2]) and not (tests[0] & tests[2])


def test_rgb_view_and_torch_formatting(cache: str, seg_all) -> None:
    rgb = raw_drone.load_dataset("segmentation-rgb-bi_u_ga", split="validation", cache_dir=cache, output="torch",
                                 **SMALL)
    raw = seg_all["validation"].filter(lambda r: float(r) == 1.0, input_columns="intensity")
    assert list(map(str, rgb["tile_id"])) == list(map(str, raw["tile_id"]))
    batch = rgb[:]
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (len(rgb), 3, 256, 256)
    assert batch["mask"].dtype == torch.uint8 and torch.equal(batch["mask"], torch.from_numpy(raw[:]["mask"]))
    with torch.no_grad(), single_threaded_torch():
        want = StaticISP("bi_u_ga", camera="drone")(torch.from_numpy(raw[:]["image"]))
    assert torch.equal(batch["image"], want.mul(255).round().clamp(0, 255).to(torch.uint8))
    rows = raw_format(seg_all["train"], output="torch")
    loader = torch.utils.data.DataLoader(rows, batch_size=8, num_workers=2)
    b = next(iter(loader))
    assert b["image"].dtype == torch.uint16 and b["mask"].dtype == torch.uint8
    assert torch.equal(b["image"], torch.from_numpy(seg_all["train"][:8]["image"]))


def test_bad_arguments_are_refused(cache: str) -> None:
    with pytest.raises(ValueError, match="unknown Raw-Drone config"):
        raw_drone.load_dataset("detection", cache_dir=cache)
    with pytest.raises(ValueError, match="split_mode must be one of"):
        raw_drone.load_dataset("segmentation-100", split_mode="tiles", cache_dir=cache)
    with pytest.raises(ValueError, match="use the config 'classification-010'"):
        RawDrone(config_name="classification", intensity=0.1, cache_dir=cache)
    with pytest.raises(ValueError, match="asked for 500 segmentation tiles"):
        raw_drone.load_dataset("segmentation-100", cache_dir=cache, **{**SMALL, "num_examples": 500})
