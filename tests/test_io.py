"""Tests of raw_isp.io: TIFF/DNG round trips, clear errors for bad files, atomic writes."""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
import types
import warnings
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tifffile
import torch

import raw_isp.io as rio
from raw_isp.io import RawFileError, normalize_raw, read_raw, read_raw_with_pattern, write_dng, write_raw

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
HAS_IMAGECODECS = importlib.util.find_spec("imagecodecs") is not None


def mosaic(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).integers(0, 65536, (h, w), dtype=np.uint16)
    a[0, 0], a[-1, -1] = 0, 65535
    return a


def png_bytes() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x80")  # one scanline: filter byte 0, one grey pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def patch_ifd0_short(path: Path, tag: int, value: int) -> None:
    """Overwrite a SHORT tag value in IFD0 of a little-endian classic TIFF."""
    b = bytearray(path.read_bytes())
    assert b[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", b, 4)[0]
    (n,) = struct.unpack_from("<H", b, ifd)
    for i in range(n):
        entry = ifd + 2 + 12 * i
        t, typ, _count = struct.unpack_from("<HHI", b, entry)
        if t == tag:
            assert typ == 3
            struct.pack_into("<H", b, entry + 8, value)
            path.write_bytes(bytes(b))
            return
    raise AssertionError(f"tag {tag} not found")


def folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- round trips


def test_write_raw_read_raw_round_trip(tmp_path):
    a = mosaic()
    write_raw(tmp_path / "a.tif", a)
    b = read_raw(tmp_path / "a.tif")
    assert b.dtype == np.uint16 and b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    # str paths and torch tensors work too; an existing file is replaced
    c = mosaic(seed=1)
    write_raw(str(tmp_path / "a.tif"), torch.from_numpy(c))
    np.testing.assert_array_equal(read_raw(str(tmp_path / "a.tif")), c)
    assert folder_listing(tmp_path) == ["a.tif"]
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert len(tif.pages) == 1 and tif.pages[0].compression == 1


def test_read_plain_tifffile_and_big_endian(tmp_path):
    a = mosaic(4, 6)
    tifffile.imwrite(tmp_path / "plain.tif", a)
    np.testing.assert_array_equal(read_raw(tmp_path / "plain.tif"), a)
    tifffile.imwrite(tmp_path / "be.tif", a, byteorder=">")
    b = read_raw(tmp_path / "be.tif")
    assert b.dtype == np.dtype(np.uint16) and b.dtype.isnative
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_write_dng_round_trip(tmp_path, pattern):
    a = mosaic(8, 10, seed=3)
    path = tmp_path / "a.dng"
    write_dng(path, a, pattern=pattern)
    np.testing.assert_array_equal(read_raw(path), a)
    b, found = read_raw_with_pattern(path)
    np.testing.assert_array_equal(b, a)
    assert found == pattern
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert tif.is_dng and page.photometric == 32803
        assert tuple(page.tags[33421].value) == (2, 2)
        assert tuple(page.tags[50706].value) == (1, 4, 0, 0)
    assert folder_listing(tmp_path) == ["a.dng"]


def test_plain_tiff_has_no_pattern(tmp_path):
    write_raw(tmp_path / "a.tif", mosaic())
    assert read_raw_with_pattern(tmp_path / "a.tif")[1] is None


def test_dng_with_cfa_in_subifd(tmp_path):
    """The usual camera layout: IFD0 is an RGB thumbnail, the CFA raw is in a SubIFD."""
    a = mosaic(8, 8, seed=5)
    path = tmp_path / "cam.dng"
    with tifffile.TiffWriter(path) as w:
        w.write(
            np.zeros((4, 4, 3), np.uint8),
            photometric="rgb",
            subfiletype=1,
            subifds=1,
            extratags=[(50706, "B", 4, (1, 4, 0, 0), True)],
        )
        w.write(
            a,
            photometric=32803,
            subfiletype=0,
            extratags=[(33421, "H", 2, (2, 2), True), (33422, "B", 4, bytes([1, 2, 0, 1]), True)],
        )
    b, pattern = read_raw_with_pattern(path)
    np.testing.assert_array_equal(b, a)
    assert pattern == "GBRG"


# --------------------------------------------------------------------------- bad files


def _missing(d: Path) -> Path:
    return d / "missing.tif"


def _zero_bytes(d: Path) -> Path:
    p = d / "zero.tif"
    p.write_bytes(b"")
    return p


def _png(d: Path) -> Path:
    p = d / "picture.tif"  # a misleading suffix: the content decides
    p.write_bytes(png_bytes())
    return p


def _text(d: Path) -> Path:
    p = d / "notes.dng"
    p.write_text("this is not an image\n")
    return p


def _truncated(keep: Callable[[int], int]) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        full = d / "full.tif"
        write_raw(full, mosaic(16, 16))
        data = full.read_bytes()
        p = d / "cut.tif"
        p.write_bytes(data[: keep(len(data))])
        full.unlink()
        return p

    return make


def _tiff_of(array: np.ndarray, name: str = "x.tif", **kwargs) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tifffile warns about zero-size arrays
            tifffile.imwrite(p, array, **kwargs)
        return p

    return make


def _directory(d: Path) -> Path:
    p = d / "folder.tif"
    p.mkdir()
    return p


def _linear_raw_dng(d: Path) -> Path:
    p = d / "linear.dng"
    tifffile.imwrite(
        p, np.zeros((4, 4, 3), np.uint16), photometric=34892, extratags=[(50706, "B", 4, (1, 4, 0, 0), True)]
    )
    return p


def _cfa_stack(d: Path) -> Path:
    p = d / "cfa_stack.tif"  # two CFA pages in a plain (non-DNG) TIFF
    with tifffile.TiffWriter(p) as w:
        for _ in range(2):
            w.write(np.zeros((4, 6), np.uint16), photometric=32803, metadata=None)
    return p


BAD_FILES = {
    "missing": (_missing, ["no such file"]),
    "zero bytes": (_zero_bytes, ["empty"]),
    "png": (_png, ["not a TIFF", "PNG"]),
    "text": (_text, ["not a TIFF", "text"]),
    "truncated header": (_truncated(lambda n: 6), ["truncated"]),
    "truncated after header": (_truncated(lambda n: 8), ["truncated"]),
    "truncated in IFD": (_truncated(lambda n: 40), ["truncated"]),
    "truncated data": (_truncated(lambda n: n - 1), ["truncated"]),
    "truncated half": (_truncated(lambda n: n // 2), ["truncated"]),
    "uint8": (_tiff_of(np.zeros((4, 4), np.uint8)), ["uint8", "expected uint16"]),
    "float32": (_tiff_of(np.zeros((4, 4), np.float32)), ["float32", "expected uint16"]),
    "int32": (_tiff_of(np.zeros((4, 4), np.int32)), ["int32", "expected uint16"]),
    "rgb": (_tiff_of(np.zeros((4, 6, 3), np.uint16), photometric="rgb"), ["3 samples", "(4, 6, 3)"]),
    "stack": (
        _tiff_of(np.zeros((3, 4, 6), np.uint16), photometric="minisblack", metadata=None),
        ["stack", "(3, 4, 6)"],
    ),
    "cfa stack": (_cfa_stack, ["stack", "(2, 4, 6)"]),
    "odd height": (_tiff_of(np.zeros((5, 6), np.uint16)), ["5x6", "even"]),
    "odd width": (_tiff_of(np.zeros((4, 7), np.uint16)), ["4x7", "even"]),
    "empty image": (_tiff_of(np.zeros((0, 0), np.uint16)), ["empty"]),
    "directory": (_directory, ["directory"]),
    "linear raw dng": (_linear_raw_dng, ["CFA", "LinearRaw"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_raw_file_error(tmp_path, case):
    make, words = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(RawFileError) as info:
        read_raw(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert path.name in message
    for word in words:
        assert word in message, (case, message)
    assert isinstance(info.value, ValueError)


def _jpeg_marked_dng(tmp_path: Path) -> Path:
    path = tmp_path / "lossless.dng"
    write_dng(path, mosaic(4, 4), pattern="BGGR")
    patch_ifd0_short(path, 259, 7)  # Compression = JPEG (lossless JPEG in real DNGs)
    return path


def test_compressed_dng_without_codec(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rawpy", None)  # make `import rawpy` fail
    path = _jpeg_marked_dng(tmp_path)
    with pytest.raises(RawFileError) as info:
        read_raw(path)
    message = str(info.value)
    assert message.startswith(str(path))
    if not HAS_IMAGECODECS:
        assert "imagecodecs" in message and "pip install imagecodecs" in message and "rawpy" in message


@pytest.mark.skipif(HAS_IMAGECODECS, reason="the fallback is only used when imagecodecs is missing")
def test_compressed_dng_falls_back_to_rawpy(tmp_path, monkeypatch):
    decoded = mosaic(4, 6, seed=9)

    class FakeRaw:
        raw_image = decoded
        raw_pattern = np.array([[0, 1], [3, 2]])
        color_desc = b"RGBG"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    fake = types.ModuleType("rawpy")
    fake.imread = lambda p: FakeRaw()
    monkeypatch.setitem(sys.modules, "rawpy", fake)
    arr, pattern = read_raw_with_pattern(_jpeg_marked_dng(tmp_path))
    np.testing.assert_array_equal(arr, decoded)
    assert pattern == "RGGB"


def test_read_raw_rejects_non_path():
    with pytest.raises(TypeError, match="path"):
        read_raw(42)  # type: ignore[arg-type]


def test_size_limits_are_checked_before_decoding(tmp_path, monkeypatch, deflate_tiff_bomb):
    bomb = deflate_tiff_bomb(tmp_path / "bomb.tif", 200_000, 200_000)
    assert bomb.stat().st_size < 1200
    with pytest.raises(RawFileError, match=r"bomb.tif: declares a size of 200000x200000 \(HxW\) = 40,000,000,000 "
                                           r"pixels, more than the limit of 100,000,000 .*\(74.5 GiB as uint16\)"):
        read_raw(bomb)
    with pytest.raises(RawFileError, match=r"2x70000 \(HxW\), a side longer than the limit of 65536"):
        read_raw(deflate_tiff_bomb(tmp_path / "wide.tif", 2, 70_000))
    rio.check_frame_size(3648, 5472)  # a real Raw-Drone frame passes the defaults
    frame = mosaic(64, 96)
    write_raw(tmp_path / "f.tif", frame)
    with pytest.raises(RawFileError, match=r"f.tif: declares a size of 64x96 \(HxW\) = 6,144 pixels, more than the "
                                           r"limit of 6,000"):
        read_raw(tmp_path / "f.tif", max_pixels=6000)
    monkeypatch.setenv("RAW_ISP_MAX_PIXELS", "6000")
    with pytest.raises(RawFileError, match="more than the limit of 6,000"):
        read_raw_with_pattern(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_raw(tmp_path / "f.tif", max_pixels=6144), frame)
    monkeypatch.setenv("RAW_ISP_MAX_PIXELS", "many")
    with pytest.raises(ValueError, match=r"\$RAW_ISP_MAX_PIXELS must be a positive integer pixel count, got 'many'"):
        read_raw(tmp_path / "f.tif")


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros((4, 4), np.float32), ["uint16", "float32"]),
        (np.zeros((4, 4), np.int32), ["uint16", "int32"]),
        (np.zeros((2, 4, 4), np.uint16), ["2-D", "(2, 4, 4)"]),
        (np.zeros((4, 4, 3), np.uint16), ["2-D", "(4, 4, 3)"]),
        (np.zeros((5, 4), np.uint16), ["5x4", "even"]),
        (np.zeros((0, 4), np.uint16), ["empty"]),
        ([[1, 2], [3, 4]], ["numpy array"]),
    ],
)
def test_write_raw_validates_array(tmp_path, array, words):
    for writer in (write_raw, write_dng):
        with pytest.raises(ValueError) as info:
            writer(tmp_path / "bad.tif", array)
        message = str(info.value)
        assert "array" in message
        for word in words:
            assert word in message
    assert folder_listing(tmp_path) == []


def test_write_dng_validates_pattern(tmp_path):
    with pytest.raises(ValueError, match="pattern.*'RGBG'"):
        write_dng(tmp_path / "a.dng", mosaic(), pattern="RGBG")
    assert folder_listing(tmp_path) == []


def test_write_raw_missing_folder(tmp_path):
    target = tmp_path / "nope" / "a.tif"
    with pytest.raises(RawFileError, match="does not exist"):
        write_raw(target, mosaic())
    assert folder_listing(tmp_path) == []


@pytest.mark.parametrize("writer", [write_raw, write_dng])
def test_failed_write_leaves_nothing_half_written(tmp_path, monkeypatch, writer):
    target = tmp_path / "a.tif"
    old = mosaic(seed=11)
    write_raw(target, old)

    def broken_imwrite(fh, *args, **kwargs):
        fh.write(b"II*\x00partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(rio.tifffile, "imwrite", broken_imwrite)
    with pytest.raises(OSError, match="simulated"):
        writer(target, mosaic(seed=12))
    assert folder_listing(tmp_path) == ["a.tif"]
    np.testing.assert_array_equal(read_raw(target), old)  # the previous file is intact
    with pytest.raises(OSError, match="simulated"):
        writer(tmp_path / "new.tif", mosaic(seed=12))
    assert folder_listing(tmp_path) == ["a.tif"]


def test_written_file_honours_umask(tmp_path):
    write_raw(tmp_path / "a.tif", mosaic())
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.tif").stat().st_mode & 0o777 == 0o666 & ~umask


# --------------------------------------------------------------------------- normalize_raw


def test_normalize_raw_numpy_and_torch():
    a = np.array([[0, 1], [32768, 65535]], dtype=np.uint16)
    n = normalize_raw(a)
    assert isinstance(n, np.ndarray) and n.dtype == np.float32
    np.testing.assert_allclose(n, a.astype(np.float64) / 65535, rtol=1e-7)
    assert n[0, 0] == 0.0 and n[1, 1] == 1.0
    t = normalize_raw(torch.from_numpy(a))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), n)


def test_normalize_raw_refuses_float():
    with pytest.raises(TypeError, match="uint16"):
        normalize_raw(np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError, match="uint16"):
        normalize_raw(torch.zeros(2, 2))
