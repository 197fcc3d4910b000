"""raw_isp.data.archive and raw_isp.data.download: safe, atomic zip extraction; manifests and download verification."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path

import pytest

from raw_isp.data.archive import ArchiveError, ExtractLimits, SourceError, safe_extract_zip, zip_member_names
from raw_isp.data.download import ManifestEntry, download_timeout, load_manifest, verify_file


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None,
             special: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
        for name, mode in (special or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (mode | 0o644) << 16
            zf.writestr(info, b"")
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_extracts_files_and_folders(tmp_path: Path) -> None:
    members = {"layout/labels/a.dat": b"x BAS\n", "layout/images/raw_scale100/x.tiff": b"\x00" * 1000}
    z = make_zip(tmp_path / "good.zip", members)
    target = safe_extract_zip(z, tmp_path / "out")
    for name, data in members.items():
        assert (target / name).read_bytes() == data
    assert leftovers(tmp_path) == ["good.zip", "out"]
    with pytest.raises(FileExistsError, match="already exists"):
        safe_extract_zip(z, tmp_path / "out")
    z2 = make_zip(tmp_path / "other.zip", {"b.txt": b"new"})
    safe_extract_zip(z2, tmp_path / "out", replace=True)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["b.txt"]
    assert leftovers(tmp_path) == ["good.zip", "other.zip", "out"]


@pytest.mark.parametrize(
    "members, kwargs, message",
    [
        ({"ok.txt": b"1", "../escape.txt": b"2"}, {}, r"'\.\./escape\.txt' has a '\.\.' component"),
        ({"a/../../escape.txt": b"2"}, {}, "'..' component"),
        ({"/etc/passwd": b"2"}, {}, "absolute path"),
        ({"C:/windows/x.txt": b"2"}, {}, "drive letter"),
        ({"a\\..\\..\\x.txt": b"2"}, {}, "'..' component"),
        ({"ok.txt": b"1", "big.bin": b"\x00" * 5000}, {"max_total_bytes": 4000}, "max_total_bytes=4000"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_is_written(tmp_path: Path, members, kwargs, message) -> None:
    z = make_zip(tmp_path / "bad.zip", members)
    with pytest.raises(ArchiveError, match=message) as info:
        safe_extract_zip(z, tmp_path / "out", **kwargs)
    assert str(z) in str(info.value)
    assert leftovers(tmp_path) == ["bad.zip"]
    assert not (tmp_path.parent / "escape.txt").exists()


def test_symlinks_special_files_and_duplicates_are_refused(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "link.zip", {"a.txt": b"1"}, symlinks={"link": "/etc/passwd"})
    with pytest.raises(ArchiveError, match="'link' is a symbolic link"):
        safe_extract_zip(z, tmp_path / "out")
    z = make_zip(tmp_path / "fifo.zip", {"a.txt": b"1"}, special={"pipe": stat.S_IFIFO})
    with pytest.raises(ArchiveError, match="'pipe' is a special file"):
        safe_extract_zip(z, tmp_path / "out")
    with zipfile.ZipFile(tmp_path / "dup.zip", "w") as zf:
        zf.writestr("a.txt", b"1")
        with pytest.warns(UserWarning):
            zf.writestr("a.txt", b"2")
    with pytest.raises(ArchiveError, match="appears twice"):
        safe_extract_zip(tmp_path / "dup.zip", tmp_path / "out")
    assert leftovers(tmp_path) == ["dup.zip", "fifo.zip", "link.zip"]


def test_truncated_and_corrupt_archives_leave_nothing(tmp_path: Path) -> None:
    z = make_zip(tmp_path / "a.zip", {f"d/f{i}.bin": bytes(range(256)) * 400 for i in range(4)})
    data = z.read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="cut.zip: not a zip archive, or truncated"):
        safe_extract_zip(tmp_path / "cut.zip", tmp_path / "out")
    # Damage the data of the last member but keep the directory: a CRC or inflate error mid-way.
    with zipfile.ZipFile(z) as zf:
        last = zf.infolist()[-1]
    bad = bytearray(data)
    start = last.header_offset + 30 + len(last.filename)
    for k in range(start + 10, start + 60):
        bad[k] ^= 0xFF
    (tmp_path / "corrupt.zip").write_bytes(bytes(bad))
    with pytest.raises(ArchiveError, match="'d/f3.bin' cannot be read, the archive is truncated or corrupt"):
        safe_extract_zip(tmp_path / "corrupt.zip", tmp_path / "out")
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(ArchiveError, match="not a zip archive"):
        safe_extract_zip(tmp_path / "text.zip", tmp_path / "out")
    assert leftovers(tmp_path) == ["a.zip", "corrupt.zip", "cut.zip", "text.zip"]


def test_bombs_and_oversized_members_are_refused_before_writing(tmp_path: Path) -> None:
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.txt", b"1")
        zf.writestr("zeros.bin", bytes(4 << 20))  # 4 MiB of zeros in about 4 kB
    with pytest.raises(ArchiveError, match=r"member 'zeros.bin' would inflate [\d,]+ bytes to 4,194,304 \([\d,]+x\), "
                                           r"more than max_ratio=100 .* looks like a decompression bomb"):
        safe_extract_zip(z, tmp_path / "out")
    with pytest.raises(ArchiveError, match="'zeros.bin' would inflate"):
        zip_member_names(z)
    assert leftovers(tmp_path) == ["bomb.zip"]
    # Small members are not ratio-checked (text compresses well); the size limit applies to all.
    small = tmp_path / "small.zip"
    with zipfile.ZipFile(small, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", bytes(5000))
    safe_extract_zip(small, tmp_path / "out")
    assert zip_member_names(small) == ["a.txt"]
    with pytest.raises(ArchiveError, match=r"'a.txt' would be 5,000 bytes uncompressed, more than max_member_bytes=4,096"):
        safe_extract_zip(small, tmp_path / "out2", limits=ExtractLimits(max_member_bytes=4096))
    safe_extract_zip(z, tmp_path / "out3", limits=ExtractLimits(max_ratio=5000))
    assert (tmp_path / "out3" / "zeros.bin").stat().st_size == 4 << 20
    assert leftovers(tmp_path) == ["bomb.zip", "out", "out3", "small.zip"]
    with pytest.raises(ValueError, match="max_ratio must be a number >= 1"):
        ExtractLimits(max_ratio=0.5)


def test_download_timeout_comes_from_the_argument_or_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("RAW_ISP_DOWNLOAD_TIMEOUT", raising=False)
    assert download_timeout() == 60.0
    monkeypatch.setenv("RAW_ISP_DOWNLOAD_TIMEOUT", "2.5")
    assert download_timeout() == 2.5 and download_timeout(7) == 7.0
    monkeypatch.setenv("RAW_ISP_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match=r"\$RAW_ISP_DOWNLOAD_TIMEOUT must be a number of seconds, got 'soon'"):
        download_timeout()
    with pytest.raises(ValueError, match="download_timeout must be a positive number of seconds, got 0"):
        download_timeout(0)


def write_manifest(path: Path, files: list[dict]) -> Path:
    path.write_text(json.dumps({"record": "test", "files": files}))
    return path


def test_manifest_is_validated(tmp_path: Path) -> None:
    good = {"name": "m.zip", "url": "http://127.0.0.1/m.zip", "size": 10, "sha256": "ab" * 32}
    entries = load_manifest(write_manifest(tmp_path / "m.json", [good, {"name": "x.dat", "url": "u", "size": None,
                                                                        "sha256": None, "path": "labels/x.dat"}]))
    assert entries[0] == ManifestEntry("m.zip", "http://127.0.0.1/m.zip", 10, "ab" * 32, True, None)
    assert entries[0].verified and not entries[1].verified and not entries[1].extract
    for bad, message in [
        ({**good, "sha256": "xyz"}, "'sha256' must be 64 hex digits"),
        ({**good, "size": -1}, "'size' must be a byte count"),
        ({**good, "name": "../m.zip"}, "'name' must be a plain file name"),
        ({**good, "url": ""}, "'url' must be a non-empty string"),
        ({**good, "path": "../x"}, "'path' must be a relative path"),
    ]:
        with pytest.raises(SourceError, match=message):
            load_manifest(write_manifest(tmp_path / "bad.json", [bad]))
    with pytest.raises(SourceError, match="non-empty list 'files'"):
        load_manifest(write_manifest(tmp_path / "empty.json", []))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SourceError, match="cannot read the download manifest as JSON"):
        load_manifest(tmp_path / "broken.json")
    with pytest.raises(SourceError, match="manifest not found"):
        load_manifest(tmp_path / "missing.json")


def test_verify_file_checks_size_and_checksum(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"raw data" * 100)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    verify_file(f, ManifestEntry("x.bin", "u", 800, sha))
    with pytest.raises(SourceError, match="800 bytes downloaded but the manifest says 801"):
        verify_file(f, ManifestEntry("x.bin", "u", 801, sha))
    with pytest.raises(SourceError, match=f"SHA-256 {sha} does not match"):
        verify_file(f, ManifestEntry("x.bin", "u", 800, "0" * 64))
    with pytest.warns(UserWarning, match=f"not verified.*size 800, sha256 {sha}"):
        verify_file(f, ManifestEntry("x.bin", "u", None, None))
    md5 = hashlib.md5(f.read_bytes()).hexdigest()
    verify_file(f, ManifestEntry("x.bin", "u", 800, md5=md5))
    with pytest.raises(SourceError, match=f"MD5 {md5} does not match Zenodo record 7's 0{{32}}"):
        verify_file(f, ManifestEntry("x.bin", "u", 800, md5="0" * 32, origin="Zenodo record 7"))


def _overlapping_zip(path: Path, kernel: bytes, n: int) -> int:
    """A zip of ``n`` members that share one Deflate stream (the "quoted overlap" construction):
    member i's compressed data is a stored block quoting member i+1's local header, then member
    i+1's data; the last holds ``kernel``. Each member inflates no more than ``kernel`` does.
    Returns the sum of the members' uncompressed sizes."""
    import struct
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = comp.compress(kernel) + comp.flush()
    names = [f"m{k:03d}.bin" for k in range(n)]

    def local_header(name: str, crc: int, csize: int, usize: int) -> bytes:
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, csize, usize, len(name), 0) + name.encode()

    datas, headers = [stream], []  # built from the last member back
    plain = [kernel]
    for k in range(n - 1, -1, -1):
        header = local_header(names[k], zlib.crc32(plain[0]), len(datas[0]), len(plain[0]))
        headers.insert(0, header)
        if k:  # member k-1 quotes this header in a non-final stored block, then continues with this data
            datas.insert(0, b"\x00" + struct.pack("<HH", len(header), len(header) ^ 0xFFFF) + header + datas[0])
            plain.insert(0, header + plain[0])
    body = headers[0] + datas[0]
    offsets = [0]
    for k in range(1, n):
        offsets.append(offsets[-1] + len(headers[k - 1]) + 5)
    central = b""
    for k in range(n):
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, zlib.crc32(plain[k]),
                               len(datas[k]), len(plain[k]), len(names[k]), 0, 0, 0, 0, 0, offsets[k]) + names[k].encode()
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(body), 0)
    path.write_bytes(body + central + end)
    return sum(len(p) for p in plain)


def test_members_sharing_one_deflate_stream_are_refused_before_writing(tmp_path: Path) -> None:
    # issue 18: 40 overlapping members, each under the per-member ratio, multiplied one stream
    import numpy as np

    kernel = np.random.default_rng(0).integers(0, 4, 2 << 20, dtype=np.uint8).tobytes()  # ~4x with Deflate
    src = tmp_path / "overlap.zip"
    total = _overlapping_zip(src, kernel, 40)
    with zipfile.ZipFile(src) as zf:  # a valid archive: Python 3.11's zipfile reads every member
        assert zf.read("m000.bin")[-len(kernel):] == kernel and zf.read("m039.bin") == kernel
    assert total > 40 * len(kernel) and total > 100 * src.stat().st_size
    with pytest.raises(ArchiveError, match=r"overlap.zip: member 'm000.bin' overlaps member 'm001.bin' in the file"):
        safe_extract_zip(src, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlap.zip"]  # nothing written at all


def test_the_extraction_budget_bounds_many_small_members(tmp_path: Path) -> None:
    # members under the 1 MiB ratio floor are not ratio-checked one by one; the archive's budget adds them up
    from raw_isp.data.archive import extraction_budget

    src = tmp_path / "small.zip"
    member = bytes((1 << 20) - 1)
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(40):
            zf.writestr(f"f{k}.bin", member)
    budget = extraction_budget(src.stat().st_size, ExtractLimits())
    assert budget < 40 * len(member) and budget == max(1 << 20, 100 * src.stat().st_size)
    with pytest.raises(ArchiveError, match=r"extraction budget of [\d,]+ bytes \(max_ratio=100 times its"):
        safe_extract_zip(src, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.zip"]
    # a larger floor lets the same archive through
    limits = ExtractLimits(ratio_floor=1 << 30)
    assert extraction_budget(src.stat().st_size, limits) == 1 << 30
    assert len(list(safe_extract_zip(src, tmp_path / "ok", limits=limits).iterdir())) == 40
