"""Real-data sources against hostile or sloppy input: label entries that point outside the data,
BOM and CRLF label files, unlabelled images and frameless masks, layouts deep inside zips of zips,
and archives that are decompression bombs. Each case is one that loaded the wrong data, lost data
silently or exhausted memory before the data layer checked it."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import raw_drone
import raw_microscopy
from raw_isp import write_raw
from raw_isp.data.archive import ArchiveError, ExtractLimits, SourceError
from raw_layouts import (
    check_against_files,
    check_drone_tiles,
    half_written,
    per_folder_zips,
    write_drone_frames,
    write_microscopy,
    zip_bytes,
)
from raw_microscopy.builder import LABEL_FILE

pytestmark = pytest.mark.filterwarnings("ignore:the .* split got no examples:UserWarning")


@pytest.mark.parametrize("stem", ["../../../outside/secret", "ABSOLUTE"])
def test_label_entries_cannot_read_files_outside_the_data(tmp_path: Path, stem: str) -> None:
    data = tmp_path / "data"
    write_microscopy(data, num_cells=9, ratios=(1.0,))
    secret = tmp_path / "outside" / "secret"
    secret.parent.mkdir()
    write_raw(secret.with_suffix(".tiff"), np.full((256, 256), 4242, np.uint16))
    if stem == "ABSOLUTE":
        stem = str(secret)
    labels = data / LABEL_FILE
    labels.write_text(labels.read_text() + f"{stem} BAS\n")
    with pytest.raises(SourceError, match=rf"line 10: '{stem}' is not a file stem .* refusing the label file"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "cache")


def test_label_file_with_bom_and_crlf_and_unlabelled_images(tmp_path: Path, recwarn) -> None:
    data = tmp_path / "data"
    cells = write_microscopy(data, num_cells=10, ratios=(1.0,))
    labels = data / LABEL_FILE
    labels.write_bytes(b"\xef\xbb\xbf" + labels.read_text().replace("\n", "\r\n").encode())
    ds = raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "cache")
    check_against_files(ds, cells, (1.0,))
    assert not [w for w in recwarn if "missing" in str(w.message)]
    for k in range(2):
        write_raw(data / "images" / "raw_scale100" / f"Ma190c_extra_{k}.tiff", np.zeros((256, 256), np.uint16))
    with pytest.warns(UserWarning, match=r"2 image file\(s\) have no line in .*Ma190c_annotations.dat and are left "
                                         r"out, e.g. .*raw_scale100/Ma190c_extra_0.tiff"):
        again = raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "cache")
    check_against_files(again, cells, (1.0,))


def test_frameless_masks_and_maskless_frames_are_counted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    frames = write_drone_frames(data, num_frames=3, shape=(256, 768))
    for k in range(2):
        shutil.copy(data / "masks_full" / "DJI_0000.png", data / "masks_full" / f"DJI_09{k}0.png")
    write_raw(data / "images_full" / "raw_scale100" / "DJI_0777.tif", np.zeros((256, 768), np.uint16))
    with pytest.warns(UserWarning) as record:
        ds = raw_drone.load_dataset("segmentation-100", source="local", data_dir=data, cache_dir=tmp_path / "c")
    messages = [str(w.message) for w in record]
    assert any(m.startswith("2 mask(s) without a frame in") and "DJI_0900.png" in m for m in messages), messages
    assert any(m.startswith("1 full frame(s) without a mask skipped, e.g. DJI_0777") for m in messages), messages
    assert check_drone_tiles(ds, frames) > 0


def test_layouts_deep_inside_zips_of_zips(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    cells = write_microscopy(layout, num_cells=9, ratios=(1.0, 0.1))
    frames = write_drone_frames(layout / "drone", num_frames=3, shape=(256, 768))
    # A zip, in folders, holding a zip that holds per-intensity zips and the labels.
    inner = zip_bytes(per_folder_zips(layout, ["images/raw_scale100", "images/raw_scale010", "drone/images_full",
                                               "drone/masks_full"], prefix="Raw2Logit/"))
    deep = tmp_path / "data" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "bundle.zip").write_bytes(zip_bytes({"inner/all.zip": inner, "readme.txt": b"hello"}))
    (deep / "loop").symlink_to(tmp_path / "data")  # walked once, not forever
    cache = tmp_path / "cache"
    ds = raw_microscopy.load_dataset("raw-010", source="local", data_dir=tmp_path / "data", cache_dir=cache)
    check_against_files(ds, cells, (0.1,))
    seg = raw_drone.load_dataset("segmentation-100", source="local", data_dir=tmp_path / "data", cache_dir=cache)
    assert check_drone_tiles(seg, frames) > 0
    # Not found: the error says what is at the top of the tree.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    (tmp_path / "other" / "pictures.zip").write_bytes(zip_bytes({"holiday/beach.png": b"png"}))
    with pytest.raises(SourceError, match=r"no label file .* Found at the top: pictures/ \(holiday/\); notes.txt"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=tmp_path / "other", cache_dir=cache)


def test_decompression_bombs_are_refused_before_writing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_microscopy(data, num_cells=3, ratios=(1.0,))
    with zipfile.ZipFile(data / "images" / "raw_scale100.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("raw_scale100/zeros.tiff", bytes(8 << 20))  # 8 MiB of zeros in about 8 kB
    cache = tmp_path / "cache"
    with pytest.raises(ArchiveError, match=r"raw_scale100.zip: member 'raw_scale100/zeros.tiff' would inflate "
                                           r"[\d,]+ bytes to 8,388,608 \([\d,]+x\), more than max_ratio=100"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=cache)
    assert not half_written(cache) and not list(cache.rglob("zeros.tiff"))
    # The limits are the caller's to set.
    with pytest.warns(UserWarning, match=r"1 image file\(s\) have no line .* e.g. .*raw_scale100/zeros.tiff"):
        ds = raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "c2",
                                         extract_limits=ExtractLimits(max_ratio=5000))
    assert sum(len(ds[s]) for s in ds) == 3  # the zip's folder merges with the plain one; its file has no label
    with pytest.raises(ArchiveError, match=r"would be 8,388,608 bytes uncompressed, more than max_member_bytes=1,000"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "c3",
                                    extract_limits=ExtractLimits(max_member_bytes=1000, max_ratio=5000))


def test_options_a_dataset_does_not_take_are_named(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"raw_microscopy.load_dataset\(\) got unexpected keyword argument\(s\) "
                                        r"\['num_tiles'\]; it takes \[.*'num_examples'"):
        raw_microscopy.load_dataset("raw-100", num_tiles=3, cache_dir=tmp_path)
    with pytest.raises(TypeError, match=r"raw_drone.load_dataset\(\) got unexpected keyword argument\(s\) "
                                        r"\['num_cells'\]"):
        raw_drone.load_dataset("segmentation-100", num_cells=3, cache_dir=tmp_path)


# ---------------------------------------------------------------- issue 18: links, label copies, zip depth


def test_a_symbolic_link_out_of_data_dir_or_onto_itself_is_refused(tmp_path: Path) -> None:
    # issue 18: a TIFF link pointing outside data_dir loaded that file's pixels; a link to itself gave a raw OSError
    data = tmp_path / "data"
    write_microscopy(data, num_cells=9, ratios=(1.0,))
    folder = next(data.rglob("raw_scale100"))
    frame = sorted(folder.glob("*.tiff"))[0]
    outside = tmp_path / "outside.tiff"
    write_raw(outside, np.full((256, 256), 4242, np.uint16))
    frame.unlink()
    frame.symlink_to(outside)
    cache = tmp_path / "cache"
    with pytest.raises(SourceError, match=rf"{frame}: a symbolic link to {outside}, outside data_dir {data}"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=cache)
    frame.unlink()
    frame.symlink_to(frame.name)
    with pytest.raises(SourceError, match=rf"{frame}: a symbolic link that loops back on itself"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=cache)
    frame.unlink()
    frame.symlink_to(folder / ".." / "raw_scale100" / sorted(folder.glob("*.tiff"))[0].name)  # inside: fine
    assert len(raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=cache)["train"]) > 0


def test_two_label_file_copies_at_different_depths_are_an_error(tmp_path: Path) -> None:
    # issue 18: the shallower copy was used silently although the README says two candidates are an error
    data = tmp_path / "data"
    write_microscopy(data, num_cells=9, ratios=(1.0,))
    copy = data / "backup" / LABEL_FILE
    copy.parent.mkdir(parents=True)
    shutil.copy(data / LABEL_FILE, copy)
    with pytest.raises(SourceError, match=rf"several label files could be the one: {data / LABEL_FILE}, {copy}; "
                                          "point data_dir at one copy"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "cache")


def test_a_layout_below_the_zip_depth_limit_names_the_limit(tmp_path: Path) -> None:
    # issue 18: four zip levels gave "no label file ... at any depth" without the depth limit
    layout = tmp_path / "layout"
    write_microscopy(layout, num_cells=9, ratios=(1.0,))
    level = zip_bytes(per_folder_zips(layout, ["images/raw_scale100"]))
    for k in range(3):
        level = zip_bytes({f"level{k}.zip": level})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "top.zip").write_bytes(level)
    with pytest.raises(SourceError, match=r"up to 3 zip levels deep\).*\(1 archive\(s\) more than MAX_ZIP_DEPTH=3 zip "
                                          r"levels deep were not opened, e\.g\. top/level2/level1/level0\.zip"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=tmp_path / "data", cache_dir=tmp_path / "c")
