"""PSS sampling: summed over the main process and its workers, shared pages counted once, peak kept."""

import multiprocessing
import os
import time

import psutil
import pytest
import torch
from torch.utils.data import Dataset, get_worker_info

from loaderbench.grid import Case
from loaderbench.measuring.loaders import build_loader, drain, running
from loaderbench.measuring.memory import (
    MB,
    PssPeak,
    PssSampler,
    loader_sampler,
    process_pss,
    process_usage,
    pss_by_process,
    summarise,
    worker_pids,
)

HOARD_MB = 64
_hoard = None


def touched_bytes(megabytes: int) -> bytearray:
    """Memory whose every page is written, so the kernel really backs it."""
    return bytearray(b"\x01") * (megabytes * MB)


class HoardingDataset(Dataset):
    """Each worker keeps HOARD_MB of private memory once it has loaded a sample."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        global _hoard
        if get_worker_info() is not None and _hoard is None:
            _hoard = touched_bytes(HOARD_MB)
        return torch.tensor([index])


def hold_then_release(ready, release, megabytes, hold_s):
    block = touched_bytes(megabytes)
    ready.set()
    time.sleep(hold_s)
    del block
    release.wait(30)


def wait_for(ready, release):
    ready.set()
    release.wait(30)


def start_child(target, *args):
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    child = context.Process(target=target, args=(ready, release, *args))
    child.start()
    return child, ready, release


def stop_child(child, release):
    release.set()
    child.join(30)
    assert child.exitcode == 0


@pytest.mark.processes
def test_loader_peak_includes_every_worker():
    """The loader's sampler sums the workers' PSS: two workers each holding 64 MB show up."""
    case = Case("hoard", 2, "fork", batch_size=2)
    with running(build_loader(HoardingDataset(), case, persistent=True)) as loader:
        drain(loader)  # every worker has loaded a sample, so every worker hoards
        assert len(worker_pids(loader)) == 2
        baseline = process_pss(os.getpid())
        with loader_sampler(loader) as sampler:
            drain(loader)
        numbers = summarise(sampler.peak, baseline, num_workers=2)
    assert numbers["workers_sampled"] == 2
    assert numbers["pss_per_worker_mb"] >= HOARD_MB
    assert numbers["peak_pss_mb"] >= numbers["baseline_pss_mb"] + 2 * HOARD_MB
    assert numbers["anon_pss_per_worker_mb"] >= HOARD_MB  # the hoard is anonymous memory
    assert numbers["peak_anon_pss_mb"] >= 2 * HOARD_MB


def test_worker_pids_is_empty_without_workers():
    """A loader without workers (or before its first epoch) has no worker pids to sample."""
    with running(build_loader(HoardingDataset(), Case("hoard", 0), persistent=True)) as loader:
        assert worker_pids(loader) == []
        drain(loader)
        assert worker_pids(loader) == []


@pytest.mark.processes
def test_pages_shared_after_fork_are_counted_once():
    """Summed PSS of a parent and an idle forked child stays near the parent's alone; RSS doubles."""
    block = touched_bytes(128)
    alone = process_pss(os.getpid())
    child, ready, release = start_child(wait_for)
    try:
        assert ready.wait(30)
        pids = [os.getpid(), child.pid]
        summed_pss = sum(pss_by_process(pids).values())
        summed_rss = sum(psutil.Process(pid).memory_info().rss for pid in pids)
    finally:
        stop_child(child, release)
    del block
    assert abs(summed_pss - alone) < 32 * MB, (summed_pss / MB, alone / MB)
    assert summed_rss - summed_pss > 100 * MB  # the shared block, counted twice by RSS


@pytest.mark.processes
def test_sampler_keeps_the_peak_not_the_last_sample():
    """A child that holds 64 MB briefly and then frees it still shows in the peak."""
    baseline = process_pss(os.getpid())
    child, ready, release = start_child(hold_then_release, HOARD_MB, 0.3)
    try:
        with PssSampler(lambda: [os.getpid(), child.pid], interval_s=0.01) as sampler:
            assert ready.wait(30)
            time.sleep(0.6)  # the child has freed its block by now
            last = sum(pss_by_process([os.getpid(), child.pid]).values())
    finally:
        stop_child(child, release)
    assert sampler.peak.total >= baseline + (HOARD_MB - 8) * MB
    assert sampler.peak.total - last >= (HOARD_MB - 8) * MB
    assert sampler.peak.samples >= 10


@pytest.mark.processes
def test_a_process_that_has_gone_is_left_out():
    child, _, release = start_child(wait_for)
    stop_child(child, release)
    assert process_pss(child.pid) is None
    assert list(pss_by_process([os.getpid(), child.pid])) == [os.getpid()]


def test_summary_splits_the_peak_into_main_and_workers():
    peak = PssPeak(total=700 * MB, by_process={1: 300 * MB, 2: 150 * MB, 3: 250 * MB}, samples=9)
    numbers = summarise(peak, baseline=250 * MB, num_workers=2, main_pid=1)
    assert numbers == {
        "peak_pss_mb": 700.0,
        "baseline_pss_mb": 250.0,
        "growth_mb": 450.0,
        "main_pss_mb": 300.0,
        "pss_per_worker_mb": 200.0,
        "workers_sampled": 2,
        "pss_samples": 9,
    }
    assert (
        summarise(PssPeak(10 * MB, {1: 10 * MB}, 1), 10 * MB, 0, main_pid=1)["pss_per_worker_mb"]
        == 0.0
    )
    anon = PssPeak(
        700 * MB,
        {1: 300 * MB, 2: 150 * MB, 3: 250 * MB},
        9,
        anon_total=320 * MB,
        anon_by_process={1: 120 * MB, 2: 90 * MB, 3: 110 * MB},
    )
    numbers = summarise(anon, baseline=250 * MB, num_workers=2, main_pid=1)
    assert (numbers["peak_anon_pss_mb"], numbers["anon_pss_per_worker_mb"]) == (320.0, 100.0)


def test_anonymous_memory_is_read_apart_from_the_shared_libraries():
    """This process maps torch's libraries: its whole PSS is above its anonymous part (by how
    much depends on how many other processes map them too), and a block it writes grows the
    anonymous part by that much."""
    before = process_usage(os.getpid())
    block = touched_bytes(HOARD_MB)
    after = process_usage(os.getpid())
    del block
    assert before.anon is not None and before.pss > before.anon
    assert after.anon - before.anon >= (HOARD_MB - 4) * MB


def test_an_error_on_the_sampling_thread_reaches_the_caller():
    calls = []

    def broken():
        calls.append(1)
        if len(calls) == 2:  # the first sample is taken in start(), the second on the thread
            raise RuntimeError("no pids today")
        return [os.getpid()]

    with pytest.raises(RuntimeError, match="no pids today"):
        with PssSampler(broken):
            time.sleep(0.1)


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        PssSampler(lambda: [], interval_s=0)
