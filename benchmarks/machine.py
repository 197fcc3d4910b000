"""What the benchmarks print about the machine they ran on (shared by the bench_* scripts)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Callable

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews every timing)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine_info(device: torch.device | str = "cpu", **extra: Any) -> dict[str, Any]:
    """CPU model, cores, torch threads, load, versions, and the GPU's name on CUDA."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    info.update(extra)
    return info


def timing_device(name: str) -> tuple[torch.device, Callable[[], None]]:
    """``(device, sync)`` for ``--device name``: ``sync()`` waits for the device's queued work
    (a no-op on the CPU), so a timer reads finished work. Exits with a message when CUDA is
    asked for and absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device is available")
    return device, ((lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None))


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """Write a benchmark's result to ``path`` (its folder made; nothing when ``path`` is None)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")
