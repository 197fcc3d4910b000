"""The benchmark scripts run end to end on tiny settings (their figures come from full runs;
nothing here is timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_isp_under_load_writes_ratios_and_the_load(tmp_path):
    out = tmp_path / "isp.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_isp.py"), "--variants", "bi_s_ga",
                           "--batch", "2", "--size", "32", "--repeats", "1", "--ref-repeats", "1",
                           "--under-load", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 added busy-loop processes" in proc.stdout
    result = json.loads(out.read_text())
    assert result["load"]["added_busy_processes"] == 1
    (row,) = result["results"]
    assert row["variant"] == "bi_s_ga" and row["ratio"] > 0
    assert row["max_abs_diff_interior"] < 1e-5


def test_bench_isp_refuses_a_negative_load(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_isp.py"), "--under-load", "-1"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2 and "--under-load must be 0 or more" in proc.stderr


def test_bench_seg_step_times_each_preset_and_refuses_an_empty_list(tmp_path):
    script = str(ROOT / "benchmarks" / "bench_seg_step.py")
    proc = subprocess.run([sys.executable, script, "--presets", "segformer-micro,upernet-micro", "--batch_size", "2",
                           "--image_size", "32", "--repeats", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith(("segformer-micro", "upernet-micro"))]
    assert [r[0] for r in rows] == ["segformer-micro", "upernet-micro"]
    assert rows[0][-1] == "1.00" and float(rows[1][-1]) > 0
    proc = subprocess.run([sys.executable, script, "--presets", ","], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode != 0 and "--presets" in proc.stderr
