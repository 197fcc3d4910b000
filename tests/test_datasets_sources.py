"""Real-data sources of the builders: a local copy in the Raw2Logit layout (folders and zips) and the
Zenodo path, tested for real against an HTTP server on 127.0.0.1 serving small archives.

Every file is written by the tests themselves (raw_isp.write_raw, Pillow); nothing touches the
network beyond the loopback server.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import raw_drone
import raw_microscopy
from raw_isp import write_raw
from raw_isp.data.archive import SourceError
from raw_layouts import (RATIOS, LoopbackServer, QuietFileHandler, check_against_files, write_drone_frames,
                         write_microscopy, zip_folder)
from raw_microscopy.builder import BROKEN_FILES, LABEL_FILE

# Tiny sets leave a split empty now and then; the builders say so with a warning.
pytestmark = pytest.mark.filterwarnings("ignore:the .* split got no examples:UserWarning")

# ----------------------------------------------------------------------------- microscopy, local


def test_microscopy_local_layout_skips_broken_and_unknown(tmp_path: Path) -> None:
    data = tmp_path / "data"
    broken = Path(BROKEN_FILES[0]).stem
    cells = write_microscopy(data, extra_labels=(f"{broken} NGS", "Ma190c_x_1 MYB", "Ma190c_x_2 MYB", "Ma190c_x_3 EBO"))
    (data / "images" / "raw_scale100" / BROKEN_FILES[0]).write_bytes(b"II*\x00 broken")
    with pytest.warns(UserWarning) as record:
        ds = raw_microscopy.load_dataset("raw", source="local", data_dir=data, cache_dir=tmp_path / "cache")
    messages = " | ".join(str(w.message) for w in record)
    assert f"skipping the known-broken image {broken}.tiff" in messages
    assert "skipped 3 labels with class codes not among the nine" in messages and "EBO (1), MYB (2)" in messages
    check_against_files(ds, cells, RATIOS)
    assert ds["train"].features["image"].dtype == "uint16"


def test_microscopy_local_zip_archives(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    cells = write_microscopy(layout, num_cells=12, ratios=(1.0, 0.1))
    # data_dir itself a zip, the layout under a top folder.
    archive = zip_folder(layout, tmp_path / "microscopy.zip", prefix="microscopy/")
    ds = raw_microscopy.load_dataset("raw-010", source="local", data_dir=archive, cache_dir=tmp_path / "cache")
    check_against_files(ds, cells, (0.1,))
    # Raw2Logit style: labels as files, each intensity folder zipped inside images/.
    data = tmp_path / "data"
    shutil.copytree(layout / "labels", data / "labels")
    (data / "images").mkdir()
    zip_folder(layout / "images" / "raw_scale100", data / "images" / "raw_scale100.zip", prefix="raw_scale100/")
    ds = raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "cache")
    check_against_files(ds, cells, (1.0,))
    # The archive was extracted into the cache, never beside the data.
    assert sorted(p.name for p in data.rglob("*")) == sorted(
        ["labels", "Ma190c_annotations.dat", "images", "raw_scale100.zip"])


def test_microscopy_missing_file_is_skipped_and_splits_agree_across_configs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cells = write_microscopy(data, num_cells=18, ratios=(1.0, 0.5))
    gone = sorted(cells)[4]
    (data / "images" / "raw_scale050" / f"{gone}.tiff").unlink()
    with pytest.warns(UserWarning, match=r"skipped 1 missing image file\(s\), e.g. .*raw_scale050/" + gone):
        half = raw_microscopy.load_dataset("raw-050", source="local", data_dir=data, cache_dir=tmp_path / "c")
    full = raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "c")
    split_half = {str(i): s for s in half for i in half[s]["image_id"]}
    split_full = {str(i): s for s in full for i in full[s]["image_id"]}
    assert gone not in split_half and set(split_full) == set(cells)
    assert all(split_full[i] == s for i, s in split_half.items())


def test_microscopy_local_errors_name_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_microscopy(data, num_cells=10, ratios=(1.0,))
    bad = sorted((data / "images" / "raw_scale100").glob("*.tiff"))[3]
    write_raw(bad, np.zeros((128, 256), np.uint16))
    with pytest.raises(SourceError, match=rf"{bad.name}: image has shape \(128, 256\), expected \(256, 256\)"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "c1")
    (data / LABEL_FILE).write_text("one_stem BAS\nsecond_line_without_class\n")
    with pytest.raises(SourceError, match="line 2 must be '<file stem> <CLASS>'"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "c2")
    (data / LABEL_FILE).unlink()
    with pytest.raises(SourceError, match="no label file labels/Ma190c_annotations.dat found"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "c3")
    with pytest.raises(SourceError, match="data_dir does not exist"):
        raw_microscopy.load_dataset("raw-100", source="local", data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "c4")
    with pytest.raises(ValueError, match="needs data_dir"):
        raw_microscopy.load_dataset("raw-100", source="local", cache_dir=tmp_path / "c5")


def test_local_copy_changes_are_not_served_from_the_cache(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_microscopy(data, num_cells=9, ratios=(1.0,), seed=1)
    a = raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "c")
    cells = write_microscopy(data, num_cells=9, ratios=(1.0,), seed=2)  # same names, new pixels
    b = raw_microscopy.load_dataset("raw-100", source="local", data_dir=data, cache_dir=tmp_path / "c")
    check_against_files(b, cells, (1.0,))
    assert not np.array_equal(a["train"][0]["image"], b["train"][0]["image"])


# ----------------------------------------------------------------------------- drone, local


def test_drone_local_full_frames_are_tiled_like_the_synthetic_ones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    frames = write_drone_frames(data, ratios=(1.0, 0.1))
    ds = raw_drone.load_dataset("segmentation-100", source="local", data_dir=data, cache_dir=tmp_path / "cache")
    expected = set()
    for stem, f in frames.items():
        for row in range(2):
            for col in range(3):
                if f["mask"][row * 256:(row + 1) * 256, col * 256:(col + 1) * 256].any():
                    expected.add(f"{stem}_r{row:02d}_c{col:02d}")
    got = {str(r["tile_id"]): (split, r) for split in ds for r in ds[split]}
    assert set(got) == expected
    for tile_id, (split, row) in got.items():
        stem, rr, cc = tile_id.rsplit("_", 2)
        y, x = int(rr[1:]) * 256, int(cc[1:]) * 256
        assert row["source_image"] == stem
        assert np.array_equal(row["image"], frames[stem]["raws"][1.0][y:y + 256, x:x + 256])
        assert row["mask"].dtype == np.uint8 and np.array_equal(row["mask"], frames[stem]["mask"][y:y + 256, x:x + 256])
    frames_of = {split: {str(s) for s in ds[split]["source_image"]} for split in ds}
    names = list(frames_of)
    assert all(not (frames_of[a] & frames_of[b]) for a in names for b in names if a < b)
    cls = raw_drone.load_dataset("classification-010", source="local", data_dir=data, cache_dir=tmp_path / "cache")
    labels = np.concatenate([np.asarray(cls[s]["label"]) for s in cls])
    assert labels.sum() * 2 == len(labels) > 0  # balanced car / no-car
    for split in cls:
        for row in cls[split]:
            assert int(row["label"]) == int(row["car_fraction"] > 0.01)
            assert row["intensity"] == pytest.approx(0.1)


def test_drone_local_pretiled_and_errors(tmp_path: Path) -> None:
    data = tmp_path / "tiles"
    rng = np.random.default_rng(0)
    tiles = {}
    for frame in range(4):
        for i in range(3):
            tid = f"{frame:02d}_{i:05d}"
            mask = np.zeros((256, 256), np.uint8)
            mask[10:40, 20:90] = 255 * (i > 0)
            (data / "masks_tiles_256").mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(data / "masks_tiles_256" / f"{tid}.png")
            (data / "images_tiles_256" / "raw_scale100").mkdir(parents=True, exist_ok=True)
            tiles[tid] = rng.integers(0, 65536, (256, 256), dtype=np.uint16)
            write_raw(data / "images_tiles_256" / "raw_scale100" / f"{tid}.tif", tiles[tid])
    ds = raw_drone.load_dataset("segmentation-100", source="local", data_dir=data, cache_dir=tmp_path / "c")
    rows = {str(r["tile_id"]): r for s in ds for r in ds[s]}
    assert set(rows) == {t for t in tiles if not t.endswith("00000")}  # tiles without a car pixel dropped
    for tid, row in rows.items():
        assert np.array_equal(row["image"], tiles[tid]) and row["source_image"] == tid[:2]
        assert set(np.unique(row["mask"])) == {0, 1}
    write_raw(data / "images_tiles_256" / "raw_scale100" / "03_00002.tif", np.zeros((512, 512), np.uint16))
    with pytest.raises(SourceError, match=r"03_00002.tif: image has shape \(512, 512\) but its mask"):
        raw_drone.load_dataset("segmentation-100", source="local", data_dir=data, cache_dir=tmp_path / "c2")
    with pytest.raises(SourceError, match="no Raw-Drone layout found"):
        raw_drone.load_dataset("segmentation-100", source="local", data_dir=tmp_path / "c", cache_dir=tmp_path / "c3")


# ----------------------------------------------------------------------------- zenodo over loopback HTTP


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("served")
    served = LoopbackServer(functools.partial(QuietFileHandler, directory=str(root)))
    try:
        yield served.url, root
    finally:
        served.close()


def publish(server: tuple[str, Path], name: str, data: bytes, manifest_dir: Path, size=True, sha=True,
            declared: bytes | None = None) -> Path:
    """Serve ``data`` as ``name``; write a manifest whose size/sha256 describe ``declared or data``."""
    base, root = server
    (root / name).write_bytes(data)
    ref = declared if declared is not None else data
    manifest = manifest_dir / f"{name}.json"
    manifest.write_text(json.dumps({"record": "loopback test", "files": [{
        "name": name, "url": f"{base}/{name}", "size": len(ref) if size else None,
        "sha256": hashlib.sha256(ref).hexdigest() if sha else None}]}))
    return manifest


def snapshot(cache: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(cache)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")}


def assert_cache_intact(cache: Path, before: dict, allow_new_downloads: bool) -> None:
    after = snapshot(cache)
    for key, stat in before.items():
        assert after.get(key) == stat, f"{key} was lost or changed by a failing load"
    new = set(after) - set(before)
    half = [k for k in after if ".incomplete" in k or ".tmp" in k or ".extract-" in k]
    assert not half, f"half-written files left in the cache: {half}"
    if allow_new_downloads:
        assert all(k.startswith("downloads/") for k in new), new
    else:
        assert not new, f"a failing load left {sorted(new)} in the cache"


@pytest.fixture(scope="module")
def good_archive(tmp_path_factory) -> tuple[bytes, dict]:
    layout = tmp_path_factory.mktemp("zlayout")
    cells = write_microscopy(layout, num_cells=12, ratios=(1.0,))
    z = zip_folder(layout, layout.parent / "zgood.zip", prefix="Raw-Microscopy/")
    return z.read_bytes(), cells


def test_zenodo_download_loads_and_failures_leave_the_cache_intact(tmp_path: Path, server, good_archive,
                                                                    monkeypatch) -> None:
    data, cells = good_archive
    cache = tmp_path / "cache"
    manifest = publish(server, "good.zip", data, tmp_path)
    monkeypatch.setenv("RAW_MICROSCOPY_MANIFEST", str(manifest))
    ds = raw_microscopy.load_dataset("raw-100", source="zenodo", cache_dir=cache)
    check_against_files(ds, cells, (1.0,))
    monkeypatch.delenv("RAW_MICROSCOPY_MANIFEST")
    before = snapshot(cache)
    assert any(k.startswith("downloads/raw_isp_extracted/good-") for k in before)

    def load(manifest: Path):
        return raw_microscopy.load_dataset("raw-100", source="zenodo", files_manifest=manifest, cache_dir=cache)

    # A checksum mismatch: the download is removed again, nothing else changes.
    m = publish(server, "changed.zip", data, tmp_path, declared=data[:-1] + b"x")
    pattern = r"changed.zip \(from http://127.0.0.1:\d+/changed.zip\): SHA-256 .* does not match"
    with pytest.raises(SourceError, match=pattern):
        load(m)
    assert_cache_intact(cache, before, allow_new_downloads=False)
    # A truncated archive: its Content-Length disagrees with the listed size (refused before reading);
    # without size and checksum the zip reader catches it.
    m = publish(server, "cut.zip", data[: len(data) // 2], tmp_path, declared=data)
    with pytest.raises(SourceError, match=rf"the server announces {len(data) // 2:,} bytes \(Content-Length\) but "
                                          rf"the manifest lists {len(data):,}"):
        load(m)
    assert_cache_intact(cache, before, allow_new_downloads=False)
    m = publish(server, "cut2.zip", data[: len(data) // 2], tmp_path, size=False, sha=False)
    with pytest.warns(UserWarning, match="not verified"), \
            pytest.raises(SourceError, match="not a zip archive, or truncated"):
        load(m)
    assert_cache_intact(cache, before, allow_new_downloads=False)
    # A zip with a member that escapes the target folder.
    evil = with_extra_member(data, "Raw-Microscopy/../../escaped.txt", b"gotcha")
    m = publish(server, "evil.zip", evil, tmp_path)
    with pytest.raises(SourceError, match=r"member 'Raw-Microscopy/\.\./\.\./escaped\.txt' has a '\.\.' component"):
        load(m)
    assert_cache_intact(cache, before, allow_new_downloads=False)
    assert not any(p.name == "escaped.txt" for p in tmp_path.rglob("*"))
    # A well-formed archive without the label file.
    layout = tmp_path / "nolabels"
    write_microscopy(layout, num_cells=3, ratios=(1.0,))
    (layout / LABEL_FILE).unlink()
    m = publish(server, "nolabels.zip", zip_folder(layout, tmp_path / "nl.zip").read_bytes(), tmp_path)
    with pytest.raises(SourceError, match="no label file labels/Ma190c_annotations.dat found"):
        load(m)
    assert_cache_intact(cache, before, allow_new_downloads=True)
    # An image of the wrong shape: an error naming the file, no dataset folder written.
    layout = tmp_path / "badshape"
    write_microscopy(layout, num_cells=9, ratios=(1.0,), shape=(128, 256))
    m = publish(server, "badshape.zip", zip_folder(layout, tmp_path / "bs.zip").read_bytes(), tmp_path)
    pattern = r"raw_scale100/Ma190c_\S+\.tiff: image has shape \(128, 256\), expected \(256, 256\)"
    with pytest.raises(SourceError, match=pattern):
        load(m)
    assert_cache_intact(cache, before, allow_new_downloads=True)
    # A label with an unknown class: a documented skip with a warning; the rest loads.
    layout = tmp_path / "unknown"
    cells2 = write_microscopy(layout, num_cells=9, ratios=(1.0,), extra_labels=("Ma190c_q_1 PMO",), seed=5)
    m = publish(server, "unknown.zip", zip_folder(layout, tmp_path / "uk.zip").read_bytes(), tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 1 labels with class codes not among the nine.*PMO \(1\)"):
        ds2 = load(m)
    check_against_files(ds2, cells2, (1.0,))
    # The first dataset is still served from the cache, unchanged.
    again = raw_microscopy.load_dataset("raw-100", source="zenodo", files_manifest=manifest, cache_dir=cache)
    check_against_files(again, cells, (1.0,))


def with_extra_member(data: bytes, name: str, payload: bytes) -> bytes:
    """The zip ``data`` with one more member (written raw, so any name is kept as given)."""
    import io

    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(zipfile.ZipInfo(name), payload)
    return buf.getvalue()


def test_zenodo_drone_archive(tmp_path: Path, server) -> None:
    layout = tmp_path / "layout"
    frames = write_drone_frames(layout, num_frames=4)
    data = zip_folder(layout, tmp_path / "d.zip", prefix="drone/").read_bytes()
    manifest = publish(server, "drone.zip", data, tmp_path)
    ds = raw_drone.load_dataset("segmentation-100", source="zenodo", files_manifest=manifest,
                                cache_dir=tmp_path / "cache")
    for split in ds:
        for row in ds[split]:
            stem, rr, cc = str(row["tile_id"]).rsplit("_", 2)
            y, x = int(rr[1:]) * 256, int(cc[1:]) * 256
            assert np.array_equal(row["image"], frames[stem]["raws"][1.0][y:y + 256, x:x + 256])
    assert sum(len(ds[s]) for s in ds) > 0
    assert os.environ.get("RAW_DRONE_MANIFEST") is None
