"""raw_isp.atomic: whole files or nothing, no temporary left behind, folders published safely."""

from __future__ import annotations

import json
import os

import pytest

from raw_isp.atomic import atomic_write, atomic_write_json, publish_folder


def test_writes_bytes_text_and_callables(tmp_path):
    atomic_write(tmp_path / "a.bin", b"\x00\x01")
    atomic_write(tmp_path / "b.txt", "h\u00e9")
    atomic_write(tmp_path / "c.bin", lambda fh: fh.write(b"abc"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "h\u00e9"
    assert (tmp_path / "c.bin").read_bytes() == b"abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")

    def boom(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    # a value that is not JSON fails before the file is touched
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_json_and_refusals(tmp_path):
    atomic_write_json(tmp_path / "v.json", {"a": [1, 2]}, indent=None)
    assert json.loads((tmp_path / "v.json").read_text()) == {"a": [1, 2]}
    assert (tmp_path / "v.json").read_text().endswith("\n")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        atomic_write(tmp_path, b"x")
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "x.json", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json"]


def test_temporary_names_are_unique_and_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640


def test_publish_folder_replaces_its_own_earlier_folder(tmp_path):
    final, staging = tmp_path / "report", tmp_path / "report.partial"
    final.mkdir(); (final / "old.txt").write_text("old")
    staging.mkdir(); (staging / "new.txt").write_text("new")
    assert publish_folder(staging, final) == final
    assert [p.name for p in final.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the old one renamed aside, then removed


def test_publish_folder_refuses_a_file_or_link_in_the_way(tmp_path):
    staging = tmp_path / "s"
    staging.mkdir()
    (tmp_path / "f").write_text("user's")
    with pytest.raises(FileExistsError, match="not a folder"):
        publish_folder(staging, tmp_path / "f")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link").symlink_to(elsewhere)
    with pytest.raises(FileExistsError):
        publish_folder(staging, tmp_path / "link")
    assert (tmp_path / "f").read_text() == "user's" and elsewhere.is_dir() and staging.is_dir()
