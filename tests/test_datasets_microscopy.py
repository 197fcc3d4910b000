"""Raw-Microscopy as a Hugging Face dataset (synthetic source, tiny sizes): configs, features,
dtypes, bit-exactness against the simulator, leak-free stratified splits, k-fold, the uint16
formatting (rows, slices, DataLoader workers)."""

from __future__ import annotations

import math
from collections import Counter

import datasets
import numpy as np
import pytest
import torch

import raw_microscopy
from raw_isp import ISP_VARIANTS, StaticISP
from raw_isp.data.arrow import RawBatches, raw_dataloader, raw_format
from raw_isp.data.builder import single_threaded_torch
from raw_isp.data.splits import split_assignment
from raw_microscopy import CLASS_NAMES, INTENSITIES, MicroscopySimulator, RawMicroscopy

N = 24


@pytest.fixture(scope="module")
def raw_all(cache: str) -> datasets.DatasetDict:
    return raw_microscopy.load_dataset("raw", num_examples=N, cache_dir=cache)


@pytest.fixture(scope="module")
def sim() -> MicroscopySimulator:
    return MicroscopySimulator(seed=0, num_examples=N)


def index_of(image_id: str) -> int:
    return int(str(image_id).rsplit("-", 1)[1])


def ratio_of(stored: float) -> float:
    """The exact ratio (0.1, not the float32 0.10000000149) of a stored intensity."""
    return min(INTENSITIES, key=lambda r: abs(r - float(stored)))


def test_config_names_descriptions_and_features_without_generating() -> None:
    names = raw_microscopy.CONFIG_NAMES
    assert names[:8] == ("raw", "raw-100", "raw-075", "raw-050", "raw-025", "raw-010", "raw-005", "raw-001")
    assert names[8:] == tuple(f"rgb-{v}" for v in ISP_VARIANTS) and len(names) == 20
    for c in RawMicroscopy.BUILDER_CONFIGS:
        assert len(c.description) > 40
    raw = RawMicroscopy(config_name="raw-050").info.features
    assert raw["image"] == datasets.Array2D((256, 256), "uint16")
    assert raw["label"].names == list(CLASS_NAMES) == ["BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC"]
    assert raw["image_id"] == datasets.Value("string") and raw["intensity"] == datasets.Value("float32")
    assert isinstance(RawMicroscopy(config_name="rgb-bi_s_ga").info.features["image"], datasets.Image)


def test_raw_config_is_bit_exact_to_the_simulator(raw_all: datasets.DatasetDict, sim: MicroscopySimulator) -> None:
    assert set(raw_all) == {"train", "validation", "test"}
    assert sum(len(d) for d in raw_all.values()) == N * len(INTENSITIES)
    seen = set()
    for split, ds in raw_all.items():
        batch = ds[:]
        assert batch["image"].dtype == np.uint16 and batch["image"].shape == (len(ds), 256, 256)
        for k in range(0, len(ds), 5):  # a sample of rows, every intensity occurs
            i, r = index_of(batch["image_id"][k]), ratio_of(batch["intensity"][k])
            assert np.array_equal(batch["image"][k], sim.raws(i, (r,))[r])
            assert batch["label"][k] == sim.label(i)
        seen |= {(str(a), float(b)) for a, b in zip(batch["image_id"], batch["intensity"])}
    assert {r for _, r in seen} == {float(np.float32(r)) for r in INTENSITIES}
    assert sim.example(3)["image_id"] in {a for a, _ in seen}


def test_splits_are_leak_free_stratified_and_deterministic(raw_all: datasets.DatasetDict, sim: MicroscopySimulator
                                                           ) -> None:
    ids = {split: set(map(str, ds["image_id"])) for split, ds in raw_all.items()}
    assert not (ids["train"] & ids["validation"]) and not (ids["train"] & ids["test"])
    assert not (ids["validation"] & ids["test"])
    assert len(ids["train"] | ids["validation"] | ids["test"]) == N
    # Exactly the documented assignment: grouped by image_id, stratified by class, seed 0.
    all_ids = [f"synthetic-0-{i:05d}" for i in range(N)]
    expected = dict(zip(all_ids, split_assignment(all_ids, [sim.label(i) for i in range(N)], seed=0)))
    for split, members in ids.items():
        assert all(expected[m] == split for m in members)
    # Every class of the subset: each split has floor or ceil of its share.
    per_class = Counter(sim.label(i) for i in range(N))
    for split, f in (("train", 0.7), ("validation", 0.15), ("test", 0.15)):
        got = Counter(sim.label(index_of(m)) for m in ids[split])
        for c, n in per_class.items():
            assert math.floor(f * n) <= got[c] <= math.ceil(f * n)


def test_single_intensity_configs_match_the_all_intensity_config(cache: str, raw_all: datasets.DatasetDict) -> None:
    one = raw_microscopy.load_dataset("raw", intensity=0.1, num_examples=N, cache_dir=cache)
    same = raw_microscopy.load_dataset("raw-010", num_examples=N, cache_dir=cache)
    assert one["train"].info.config_name == "raw-010" and one["train"].cache_files == same["train"].cache_files
    for split in raw_all:
        full = raw_all[split].filter(lambda r: abs(float(r) - 0.1) < 1e-6, input_columns="intensity")
        assert list(map(str, full["image_id"])) == list(map(str, one[split]["image_id"]))
        assert np.array_equal(full[:]["image"], one[split][:]["image"])
        assert np.allclose(one[split][:]["intensity"], 0.1)


def test_rgb_config_is_the_projects_isp_in_8_bit(cache: str, raw_all: datasets.DatasetDict) -> None:
    rgb = raw_microscopy.load_dataset("rgb-ma_u_me", split="test", num_examples=N, cache_dir=cache, output="torch")
    raw = raw_all["test"].filter(lambda r: float(r) == 1.0, input_columns="intensity")
    assert list(map(str, rgb["image_id"])) == list(map(str, raw["image_id"]))
    images = rgb[:]["image"]
    assert images.dtype == torch.uint8 and images.shape == (len(rgb), 3, 256, 256)
    isp = StaticISP("ma_u_me", camera="microscopy")
    with torch.no_grad(), single_threaded_torch():  # as the builder runs it
        want = isp(torch.from_numpy(raw[:]["image"])).mul(255).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(images, want)
    half = raw_microscopy.load_dataset("rgb-bi_s_ga", split="train", num_examples=N, intensity=0.5, cache_dir=cache)
    assert np.allclose(half[:]["intensity"], 0.5) and half[0]["image"].shape == (256, 256, 3)


def test_kfold_rounds(cache: str) -> None:
    folds = [raw_microscopy.load_dataset("raw-100", num_examples=N, fold=k, n_folds=3, cache_dir=cache) for k in (0, 1)]
    ids = [{s: set(map(str, d[s]["image_id"])) for s in d} for d in folds]
    for d in ids:
        assert len(d["train"] | d["validation"] | d["test"]) == N
        assert not (d["train"] & d["test"]) and not (d["validation"] & d["test"])
        assert 6 <= len(d["test"]) <= 10
    assert ids[0]["validation"] == ids[1]["test"] and not (ids[0]["test"] & ids[1]["test"])


def test_uint16_rows_slices_and_dataloader_workers(raw_all: datasets.DatasetDict) -> None:
    plain = raw_all["train"]
    ref = plain[:]["image"]
    ds = raw_format(plain, output="torch")
    row = ds[5]
    assert row["image"].dtype == torch.uint16 and row["image"].shape == (256, 256)
    assert row["label"].dtype == torch.int64 and isinstance(row["image_id"], str)
    assert torch.equal(row["image"], torch.from_numpy(ref[5]))
    assert torch.equal(ds[2:7]["image"], torch.from_numpy(ref[2:7]))
    assert torch.equal(ds[[9, 0, 4]]["image"], torch.from_numpy(ref[[9, 0, 4]]))
    assert torch.equal(ds["image"][:3], torch.from_numpy(ref[:3]))  # a Column, sliced
    assert next(iter(ds))["image"].dtype == torch.uint16 and next(ds.iter(batch_size=4))["image"].shape == (4, 256, 256)
    # Plain DataLoader with two worker processes: uint16 batches, bit-exact, every row once.
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False, num_workers=2)
    got = torch.cat([b["image"] for b in loader])
    assert got.dtype == torch.uint16 and torch.equal(got, torch.from_numpy(ref))
    # The batch-sampler loader, shuffled: the same rows, uint16.
    seen = []
    for b in raw_dataloader(ds, batch_size=32, shuffle=True, seed=0, num_workers=2):
        assert b["image"].dtype == torch.uint16 and b["image"].shape[1:] == (256, 256)
        seen.extend(zip(map(str, b["image_id"]), b["intensity"].tolist(), b["image"]))
    assert len(seen) == len(ds)
    by_key = {(str(i), float(r)): k for k, (i, r) in enumerate(zip(plain["image_id"], plain["intensity"]))}
    for image_id, r, image in seen[:20]:
        assert torch.equal(image, torch.from_numpy(ref[by_key[(image_id, r)]]))


def test_format_survives_a_spawned_worker(raw_all: datasets.DatasetDict) -> None:
    ds = raw_format(raw_all["validation"].select(range(4)), output="torch")
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1, multiprocessing_context="spawn")
    batch = next(iter(loader))
    assert batch["image"].dtype == torch.uint16
    assert torch.equal(batch["image"], torch.from_numpy(raw_all["validation"].select(range(4))[:]["image"]))


def test_numpy_views_and_mask_columns() -> None:
    feats = datasets.Features({"image": datasets.Array2D((4, 6), "uint16"), "mask": datasets.Array2D((4, 6), "uint8"),
                               "x": datasets.Value("float32")})
    rng = np.random.default_rng(0)
    img = rng.integers(0, 65536, (5, 4, 6), dtype=np.uint16)
    msk = rng.integers(0, 2, (5, 4, 6), dtype=np.uint8)
    ds = datasets.Dataset.from_dict({"image": img, "mask": msk, "x": np.arange(5, dtype=np.float32)}, features=feats)
    out = raw_format(ds, output="numpy")[1:4]
    assert out["image"].dtype == np.uint16 and np.array_equal(out["image"], img[1:4]) and out["image"].flags.writeable
    assert out["mask"].dtype == np.uint8 and np.array_equal(out["mask"], msk[1:4])
    view = raw_format(ds, output="numpy", copy=False)[1:4]["image"]
    assert np.array_equal(view, img[1:4]) and not view.flags.writeable
    with pytest.raises(ValueError, match=r"columns \['x'\] are not fixed-shape array columns"):
        raw_format(ds, columns=["x"])
    with pytest.raises(ValueError, match="output must be one of"):
        raw_format(ds, output="jax")


def test_raw_batches_equal_the_formatted_dataset_after_shuffle_and_filter() -> None:
    feats = datasets.Features({"image": datasets.Array2D((4, 6), "uint16"), "mask": datasets.Array2D((4, 6), "uint8"),
                               "label": datasets.ClassLabel(names=["no", "yes"]), "x": datasets.Value("float32"),
                               "s": datasets.Value("string")})
    rng = np.random.default_rng(0)
    columns = {"image": rng.integers(0, 65536, (50, 4, 6), dtype=np.uint16),
               "mask": rng.integers(0, 2, (50, 4, 6), dtype=np.uint8), "label": rng.integers(0, 2, 50),
               "x": rng.random(50).astype(np.float32), "s": [f"id{i}" for i in range(50)]}
    whole = datasets.Dataset.from_dict(columns, features=feats)
    chunked = datasets.concatenate_datasets([whole.select(range(20)), whole.select(range(20, 50))])
    mapped = chunked.shuffle(seed=1).filter(lambda s: not s.endswith("3"), input_columns="s")
    for ds in (whole, chunked, mapped):
        for output in ("torch", "numpy"):
            last = len(ds) - 1
            got, want = RawBatches(ds, output=output)[[5, 0, 12, -1]], raw_format(ds, output=output)[[5, 0, 12, last]]
            assert list(got) == list(want)
            for c in ("image", "mask", "label", "x"):
                assert got[c].dtype == want[c].dtype and np.array_equal(np.asarray(got[c]), np.asarray(want[c]))
            assert list(map(str, got["s"])) == list(map(str, want["s"]))
        loader = raw_dataloader(ds, batch_size=7, shuffle=False, num_workers=2)
        assert torch.equal(torch.cat([b["image"] for b in loader]), raw_format(ds)[:]["image"])
    with pytest.raises(IndexError, match="out of range"):
        RawBatches(whole)[[50]]


def test_bad_arguments_are_refused(cache: str) -> None:
    with pytest.raises(ValueError, match="unknown Raw-Microscopy config 'rgb'"):
        raw_microscopy.load_dataset("rgb", cache_dir=cache)
    with pytest.raises(ValueError, match="intensity must be one of"):
        raw_microscopy.load_dataset("raw", intensity=0.3, cache_dir=cache)
    with pytest.raises(ValueError, match="use the config 'raw-050'"):
        RawMicroscopy(config_name="raw-100", intensity=0.5, cache_dir=cache)
    with pytest.raises(ValueError, match="fold must be an integer in 0..4"):
        raw_microscopy.load_dataset("raw-100", fold=5, cache_dir=cache)
    with pytest.raises(ValueError, match="source must be one of"):
        raw_microscopy.load_dataset("raw-100", source="hub", cache_dir=cache)
    with pytest.raises(ValueError, match="data_dir is only used with source='local'"):
        raw_microscopy.load_dataset("raw-100", data_dir="/tmp", cache_dir=cache)
