"""Shared test helpers."""

import importlib.util
import struct
import zlib
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """``scripts/<name>.py`` as a module (its ``main`` and ``parse_args`` callable in-process),
    loaded from its file: scripts are not a package, and nothing adds their folder to the import path."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    """A fresh ``datasets`` cache folder per test module (the datasets it builds stay within it)."""
    return str(tmp_path_factory.mktemp("hf_cache"))


@pytest.fixture(scope="module")
def script():
    """``script("drift_synthesis")``: a command-line script as a module (:func:`load_script`)."""
    return load_script


def _deflate_tiff_bomb(path: Path, height: int, width: int) -> Path:
    """A uint16 TIFF of a few hundred bytes whose header declares ``height x width`` pixels in one
    Deflate strip (of zeros): decoding it would allocate ``2 * height * width`` bytes."""
    strip = zlib.compress(bytes(1 << 16), 9)
    tags = [(256, 4, width), (257, 4, height), (258, 3, 16), (259, 3, 8), (262, 3, 1), (273, 4, 0),
            (277, 3, 1), (278, 4, height), (279, 4, len(strip))]
    start = 8 + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHII", tag, kind, 1, start if tag == 273 else value) for tag, kind, value in tags)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + strip)
    return path


@pytest.fixture
def deflate_tiff_bomb():
    """``deflate_tiff_bomb(path, height, width)``: write a decompression-bomb TIFF, return its path."""
    return _deflate_tiff_bomb
