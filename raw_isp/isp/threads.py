"""How many CPU threads the ISP uses, and running a batch's chunks on them.

The CPU ISP is thousands of short tensor operations per batch. With PyTorch's intra-op
threads each one is a parallel region that ends in a barrier, so when one core is busy with
other work every operation waits for the thread the scheduler has put aside, and the whole
call becomes many times slower than on one thread. The ISP therefore never splits single
operations across threads: it runs independent chunks of the batch on worker threads, each
with one intra-op thread, taking chunks from a shared queue, so a worker on a busy core
simply takes fewer chunks.

How many workers (:func:`choose_threads`):

- an explicit count (the ISP's ``threads=`` argument, else the environment variable
  ``RAW_ISP_THREADS``; ``"auto"`` or unset means choose);
- otherwise 1 inside a ``torch.utils.data.DataLoader`` worker (the loader already runs one
  process per core);
- otherwise the cores this process may run on (``os.sched_getaffinity``) minus the tasks
  other than this process's own threads that are runnable right now (``/proc/loadavg``'s
  running count, the median of a few samples; the 1-minute load average where ``/proc`` is
  missing), at least 1.

:func:`isp_thread_scope` sets ``torch.set_num_threads`` for the duration of a call and restores
the caller's count afterwards, also on error. The thread count never changes results: every
operation is elementwise within a chunk, and chunks do not interact.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

__all__ = ["THREADS_ENV", "parse_threads", "choose_threads", "usable_cores", "busy_elsewhere", "isp_thread_scope",
           "run_chunks", "contention_warning", "free_cores"]

#: Environment variable overriding the ISP's thread count: a positive integer or "auto".
THREADS_ENV = "RAW_ISP_THREADS"


def parse_threads(value, setting: str) -> int | None:
    """``value`` as a thread count: a positive integer, or None for "auto" / None / "".

    ``setting`` names where the value came from, for the error message."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, bool):
        n = None
    elif isinstance(value, int):
        n = value
    else:
        try:
            n = int(str(value).strip())
        except ValueError:
            n = None
    if n is None or n < 1:
        raise ValueError(f"{setting} must be a positive integer or 'auto', got {value!r}")
    return n


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _own_running_threads() -> int:
    count = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            # The state follows the command name in parentheses, which may itself hold spaces.
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "R":
                count += 1
        except (OSError, IndexError):
            continue
    return max(count, 1)  # at least the thread asking


def busy_elsewhere(samples: int = 3) -> float:
    """Tasks runnable now that are not threads of this process (the median of ``samples`` reads).

    From ``/proc/loadavg`` (runnable tasks on the machine) minus this process's threads in the
    running state; where ``/proc`` is missing, the 1-minute load average (which includes this
    process's own recent work, so it errs towards fewer threads)."""
    try:
        counts = []
        for _ in range(samples):
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
            counts.append(max(0, running - _own_running_threads()))
        return float(sorted(counts)[len(counts) // 2])
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def choose_threads(threads=None) -> int:
    """The ISP's thread count: ``threads`` (an int, or None / "auto" to choose), else
    ``RAW_ISP_THREADS``, else 1 in a DataLoader worker, else the cores free to this process."""
    n = parse_threads(threads, "threads")
    if n is None:
        n = parse_threads(os.environ.get(THREADS_ENV), THREADS_ENV)
    if n is not None:
        return n
    if torch.utils.data.get_worker_info() is not None:
        return 1
    return free_cores()


def free_cores() -> int:
    """Cores this process may use that no other runnable task is taking now, at least 1."""
    cores = usable_cores()
    if cores <= 1:
        return 1
    return max(1, min(cores, cores - round(busy_elsewhere())))


def contention_warning(threads: int | None = None) -> str | None:
    """A message when ``threads`` intra-op threads (default: torch's current count) exceed the
    cores free to this process, else None.

    PyTorch splits each operation across its intra-op threads and waits for all of them, so
    when another process keeps a core busy every operation waits for the scheduler: a model,
    like the ISP, then runs many times slower than on the free cores alone. The training and
    evaluation code does not change torch's thread count itself (results in float differ in
    the last bits between thread counts, and a run should not depend on the machine's load);
    it warns, and the user sets ``OMP_NUM_THREADS`` (or ``torch.set_num_threads``)."""
    n = torch.get_num_threads() if threads is None else threads
    if n <= 1 or torch.utils.data.get_worker_info() is not None:
        return None
    cores, free = usable_cores(), free_cores()
    if n <= free:
        return None
    return (f"torch runs {n} intra-op threads, but only {free} of this process's {cores} cores are free (other "
            f"tasks are running); each operation then waits for a busy core and the run slows down many times. "
            f"With other work on the machine, start it with OMP_NUM_THREADS={free}.")


@contextlib.contextmanager
def isp_thread_scope(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; the caller's count is restored after."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def run_chunks(starts: list[int], workers: int, work: Callable[[int, dict], None]) -> None:
    """Call ``work(start, workspace)`` for every chunk start, on up to ``workers`` threads.

    Each thread takes the next chunk from a shared queue and keeps its own ``workspace`` dict
    (buffers reused from chunk to chunk). Run with one intra-op thread (:func:`isp_thread_scope`):
    the workers are the parallelism. The caller's inference / grad mode holds in the workers.
    The first exception raised by a chunk is raised here once all workers have stopped.
    """
    workers = max(1, min(workers, len(starts)))
    if workers == 1:
        workspace: dict = {}
        for start in starts:
            work(start, workspace)
        return
    queue = iter(starts)
    lock = threading.Lock()
    failed = threading.Event()
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def worker() -> None:
        workspace: dict = {}
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            while not failed.is_set():
                with lock:
                    start = next(queue, None)
                if start is None:
                    return
                try:
                    work(start, workspace)
                except BaseException:
                    failed.set()
                    raise

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="raw_isp") as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
    for future in futures:
        future.result()
