"""Rows like datasets rows: Python numbers and strings beside uint16 frames in the default format,
the "raw_isp" format set by name, streaming=True (bit-exact against the prepared rows), and one
size keyword (num_examples) for both datasets."""

import json

import datasets
import numpy as np
import pytest
import torch

import raw_drone
import raw_microscopy

DRONE = dict(num_scenes=7, frame_height=512, frame_width=512)


@pytest.fixture(scope="module")
def cells(cache):
    return raw_microscopy.load_dataset("raw-100", num_examples=12, cache_dir=cache)


@pytest.fixture(scope="module")
def tiles(cache):
    return raw_drone.load_dataset("classification-100", num_examples=10, cache_dir=cache, **DRONE)


def test_default_rows_hold_python_scalars_and_uint16_frames(cells, tiles):
    for ds, label in ((cells["train"], "label"), (tiles["train"], "label")):
        row = ds[0]
        assert isinstance(row["image"], np.ndarray) and row["image"].dtype == np.uint16
        assert type(row[label]) is int and type(row["intensity"]) is float
        for key, value in row.items():
            if key != "image":
                assert type(value) in (int, float, str), (key, type(value))
        json.dumps({k: v for k, v in row.items() if k != "image"})
        assert ds.features[label].int2str(row[label]) in ds.features[label].names
    assert type(cells["train"][0]["image_id"]) is str and type(tiles["train"][0]["tile_id"]) is str
    # Batches keep their arrays (as before): frames (n, H, W) uint16.
    assert cells["train"][:3]["image"].dtype == np.uint16


def test_the_format_is_set_by_name(cells):
    ds = cells["train"]
    as_torch = ds.with_format("raw_isp", output="torch")
    assert as_torch[0]["image"].dtype == torch.uint16 and as_torch[:2]["image"].shape[0] == 2
    assert torch.equal(as_torch[1]["image"], torch.from_numpy(ds[1]["image"]))
    plain = ds.with_format(None).with_format("raw_isp")  # by name alone: the default (numpy) format
    assert plain[0]["image"].dtype == np.uint16 and type(plain[0]["label"]) is int
    view = ds.with_format("raw_isp", columns=["image"], copy=False)[0]["image"]
    assert not view.flags.writeable
    with pytest.raises(TypeError, match=r"with_format\('raw_isp'\): unexpected format kwargs \['outptu'\]"):
        ds.with_format("raw_isp", outptu="torch")[0]
    # The default format converts to an iterable dataset with its row types.
    row = next(iter(ds.to_iterable_dataset()))
    assert row["image"].dtype == np.uint16 and type(row["label"]) is int


@pytest.mark.parametrize("which", ["microscopy", "drone"])
def test_streaming_rows_equal_the_prepared_rows(which, cache, cells, tiles, tmp_path):
    if which == "microscopy":
        prepared = cells
        stream = raw_microscopy.load_dataset("raw-100", num_examples=12, cache_dir=str(tmp_path), streaming=True)
    else:
        prepared = tiles
        stream = raw_drone.load_dataset("classification-100", num_examples=10, cache_dir=str(tmp_path),
                                        streaming=True, **DRONE)
    assert isinstance(stream, datasets.IterableDatasetDict) and set(stream) == set(prepared)
    for split in prepared:
        rows = list(stream[split])
        assert len(rows) == len(prepared[split])
        for i, row in enumerate(rows):
            expected = prepared[split][i]
            assert row["image"].dtype == np.uint16
            np.testing.assert_array_equal(row["image"], expected["image"])
            assert {k: v for k, v in row.items() if k != "image"} == {k: v for k, v in expected.items() if k != "image"}
    assert not list(tmp_path.rglob("*.arrow"))  # nothing prepared
    one = raw_microscopy.load_dataset("raw-100", "test", num_examples=12, cache_dir=str(tmp_path), streaming=True) \
        if which == "microscopy" else None
    if one is not None:
        assert isinstance(one, datasets.IterableDataset)
        with pytest.raises(ValueError, match="output='torch' with streaming=True"):
            raw_microscopy.load_dataset("raw-100", "test", num_examples=12, streaming=True, output="torch")


def test_one_size_keyword_num_tiles_is_a_deprecated_alias(cache, tiles):
    with pytest.warns(FutureWarning, match="num_tiles= is deprecated; pass num_examples="):
        old = raw_drone.load_dataset("classification-100", num_tiles=10, cache_dir=cache, **DRONE)
    for split in tiles:
        assert old[split]["tile_id"] == tiles[split]["tile_id"]  # the same rows, the same cache
    with pytest.raises(ValueError, match="num_examples=10 and its deprecated alias num_tiles=12 disagree"):
        raw_drone.load_dataset("classification-100", num_examples=10, num_tiles=12, cache_dir=cache, **DRONE)


def test_a_rows_frame_carries_its_intensity_into_files_and_the_processor(cache, tmp_path):
    import warnings

    import raw_isp

    dim = raw_microscopy.load_dataset("raw-005", "train", num_examples=12, cache_dir=cache)
    row = dim[0]
    assert row["image"].intensity == row["intensity"] == pytest.approx(0.05)
    assert type(dim[:2]["image"]) is np.ndarray  # batches are plain arrays
    raw_isp.write_raw(tmp_path / "dim.tiff", row["image"])  # a dim frame written from the dataset
    assert raw_isp.read_raw(tmp_path / "dim.tiff").intensity == row["intensity"]
    proc = raw_isp.RawISPImageProcessor(size=32, exposure="metadata", camera="microscopy")
    expected = proc(np.asarray(row["image"]), intensity=row["intensity"]).pixel_values
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no default needed: no warning
        torch.testing.assert_close(proc(row["image"]).pixel_values, expected, rtol=0, atol=0)
        torch.testing.assert_close(proc(str(tmp_path / "dim.tiff")).pixel_values, expected, rtol=0, atol=0)
