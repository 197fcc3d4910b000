"""scripts/isp_demo.py, the README's main job: a raw file in, a labelled PNG grid out."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import raw_isp

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "isp_demo.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("isp_demo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_renders_a_dng_with_its_pattern(demo, tmp_path, capsys):
    raw = (np.random.default_rng(0).random((48, 64)) * 40000).astype(np.uint16)
    raw_isp.write_dng(tmp_path / "frame.dng", raw, pattern="GRBG")
    out = tmp_path / "grid.png"
    assert demo.main(["--raw", str(tmp_path / "frame.dng"), "--camera", "drone", "--intensity", "0.5", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GRBG mosaic" in printed and "intensity 0.5" in printed
    assert all(v in printed for v in raw_isp.ISP_VARIANTS)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".png"] == ["grid.png"]  # no temp files left


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--raw", "missing.tiff"], "no such file"),
        (["--intensity", "0"], "--intensity"),
        (["--output", "grid.jpg"], ".png"),
    ],
)
def test_demo_bad_arguments_exit_2_with_a_message(demo, tmp_path, capsys, argv, message):
    argv = [a if a != "missing.tiff" else str(tmp_path / a) for a in argv]
    assert demo.main(argv) == 2
    assert message in capsys.readouterr().err
