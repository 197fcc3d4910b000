"""A frame's exposure (intensity ratio) travels in its file: write_raw / write_dng store it,
read_raw returns it on the frame (RawFrame.intensity)."""

import json
import math
import pickle

import numpy as np
import pytest
import tifffile

import raw_isp
from raw_isp.io import RawFileError, RawFrame


@pytest.fixture
def raw():
    return np.random.default_rng(0).integers(0, 65536, (8, 6), dtype=np.uint16)


@pytest.mark.parametrize("writer", ["tiff", "dng"])
def test_intensity_round_trips_exactly(tmp_path, raw, writer):
    path = tmp_path / f"frame.{writer}"
    write = raw_isp.write_raw if writer == "tiff" else raw_isp.write_dng
    write(path, raw, intensity=0.05)
    frame = raw_isp.read_raw(path)
    assert isinstance(frame, np.ndarray) and isinstance(frame, RawFrame) and frame.dtype == np.uint16
    np.testing.assert_array_equal(frame, raw)
    assert frame.intensity == 0.05
    frame2, _ = raw_isp.read_raw_with_pattern(path)
    assert frame2.intensity == 0.05
    page = tifffile.TiffFile(path).pages[0]
    assert json.loads(page.description) == {"raw_isp": {"intensity": 0.05}}
    if writer == "dng":  # BaselineExposure: the EV that brings the frame to the reference
        num, den = page.tags[50730].value
        assert num / den == pytest.approx(-math.log2(0.05), abs=1e-6)


def test_no_intensity_written_reads_none_and_the_frame_behaves_like_an_array(tmp_path, raw):
    raw_isp.write_raw(tmp_path / "a.tiff", raw)
    frame = raw_isp.read_raw(tmp_path / "a.tiff")
    assert frame.intensity is None
    raw_isp.write_raw(tmp_path / "b.tiff", raw, intensity=0.5)
    frame = raw_isp.read_raw(tmp_path / "b.tiff")
    assert frame[:2, :2].intensity == 0.5  # a crop has its frame's exposure
    assert type(frame.max()) is np.uint16 and type(frame * 2) is np.ndarray and type(np.asarray(frame)) is np.ndarray
    assert pickle.loads(pickle.dumps(frame)).intensity == 0.5
    # Writing a frame read back keeps its intensity unless another one is given.
    raw_isp.write_raw(tmp_path / "c.tiff", frame)
    assert raw_isp.read_raw(tmp_path / "c.tiff").intensity == 0.5
    raw_isp.write_raw(tmp_path / "d.tiff", frame, intensity=0.25)
    assert raw_isp.read_raw(tmp_path / "d.tiff").intensity == 0.25


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1.0, ValueError), (math.nan, ValueError), ("0.5", TypeError),
                                        (True, TypeError)])
def test_bad_intensity_is_refused_on_write_and_nothing_is_written(tmp_path, raw, bad, error):
    with pytest.raises(error, match="intensity"):
        raw_isp.write_raw(tmp_path / "a.tiff", raw, intensity=bad)
    assert list(tmp_path.iterdir()) == []


def test_foreign_descriptions_are_ignored_and_a_bad_stored_ratio_names_the_file(tmp_path, raw):
    tifffile.imwrite(tmp_path / "other.tiff", raw, description="raw_isp was here, not JSON", metadata=None)
    assert raw_isp.read_raw(tmp_path / "other.tiff").intensity is None
    tifffile.imwrite(tmp_path / "json.tiff", raw, description=json.dumps({"shape": [8, 6]}), metadata=None)
    assert raw_isp.read_raw(tmp_path / "json.tiff").intensity is None
    bad = tmp_path / "bad.tiff"
    tifffile.imwrite(bad, raw, description=json.dumps({"raw_isp": {"intensity": -2}}), metadata=None)
    with pytest.raises(RawFileError, match=r"bad\.tiff: its ImageDescription declares intensity -2"):
        raw_isp.read_raw(bad)
