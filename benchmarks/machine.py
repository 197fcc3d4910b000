"""What the benchmarks print about the machine they ran on (shared by the bench_* scripts)."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Iterator

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


def _spin(stop, deadline: float) -> None:
    """Busy-loop one core until ``stop`` is set or ``deadline`` (time.monotonic) passes."""
    x = 0
    while not stop.is_set() and time.monotonic() < deadline:
        for _ in range(100_000):
            x += 1


@contextlib.contextmanager
def cpu_load(processes: int, max_seconds: float = 1800.0) -> Iterator[None]:
    """Run ``processes`` busy-loop processes (one core each) for the duration of the block, the
    contention users see when the ISP runs beside training or other jobs. They stop when the
    block ends, also on error, and in any case after ``max_seconds`` (a bound should the
    benchmark be killed). ``processes`` 0 is no load."""
    if processes < 0:
        raise ValueError(f"cpu_load: processes must be >= 0, got {processes}")
    if processes == 0:
        yield
        return
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    deadline = time.monotonic() + max_seconds
    procs = [ctx.Process(target=_spin, args=(stop, deadline), daemon=True) for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)  # let the load reach the scheduler (and the load average start rising)
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
