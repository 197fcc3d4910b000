"""The CPU ISP's thread policy (raw_isp.isp.threads): results never depend on the thread count,
DataLoader workers get one thread, the caller's torch thread count is restored, and a bad
override is refused by name. No timing here (benchmarks/bench_isp.py has the figures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import raw_isp
from raw_isp.isp.threads import THREADS_ENV, choose_threads, isp_thread_scope, parse_threads, run_chunks
from raw_isp.testing.reference_isp import synthetic_raws


@pytest.fixture(scope="module")
def raws():
    # 6 frames of 64x64 in chunks of 2 frames: three chunks to share out among workers
    return torch.from_numpy(synthetic_raws(6, 64, 64, "drone", seed=3, level=0.5).astype(np.float32))


@pytest.mark.parametrize("camera", ["drone", "microscopy"])
@pytest.mark.parametrize("variant", list(raw_isp.ISP_VARIANTS))
def test_the_thread_count_does_not_change_a_bit(raws, variant, camera):
    outs = []
    for threads in (1, 2, 3):
        isp = raw_isp.StaticISP(variant, camera=camera, chunk_pixels=2 * 64 * 64, threads=threads)
        with torch.inference_mode():
            outs.append(isp(raws))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_the_callers_thread_count_is_restored_even_on_error(raws):
    before = torch.get_num_threads()
    isp = raw_isp.StaticISP("bi_s_ga", camera="drone", chunk_pixels=2 * 64 * 64, threads=2)
    with torch.inference_mode():
        isp(raws)
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        with isp_thread_scope(1 if before != 1 else 2):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


class _Probe(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        return choose_threads()


def test_a_dataloader_worker_gets_one_thread(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    loader = torch.utils.data.DataLoader(_Probe(), batch_size=None, num_workers=1)
    assert list(loader) == [1]
    assert choose_threads(3) == 3  # an explicit count wins everywhere


def test_the_override_and_its_errors(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "2")
    assert choose_threads() == 2 and choose_threads("auto") == 2 and choose_threads(1) == 1
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ValueError, match=f"{THREADS_ENV} must be a positive integer or 'auto', got 'many'"):
        choose_threads()
    with pytest.raises(ValueError, match="threads must be a positive integer or 'auto', got 0"):
        raw_isp.StaticISP("bi_s_ga", threads=0)
    assert parse_threads(" auto ", "x") is None and parse_threads("4", "x") == 4
    with pytest.raises(ValueError, match="got True"):
        parse_threads(True, "threads")


def test_run_chunks_covers_every_chunk_once_and_raises_the_first_error():
    seen = []
    run_chunks(list(range(0, 10, 2)), 3, lambda start, ws: seen.append(start))
    assert sorted(seen) == [0, 2, 4, 6, 8]

    def fail(start, ws):
        if start == 4:
            raise ValueError("chunk 4")

    with pytest.raises(ValueError, match="chunk 4"):
        run_chunks(list(range(0, 10, 2)), 2, fail)


def test_contention_warning_names_the_free_cores(monkeypatch):
    from raw_isp.isp import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda samples=3: 3.0)
    message = threads.contention_warning(4)
    assert message is not None and "only 1 of this process's 4 cores are free" in message
    assert "OMP_NUM_THREADS=1" in message
    assert threads.contention_warning(1) is None  # one thread never waits for another
    monkeypatch.setattr(threads, "busy_elsewhere", lambda samples=3: 0.0)
    assert threads.contention_warning(4) is None  # an idle machine
