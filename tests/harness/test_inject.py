"""Slowdowns injected into DataLoader itself (inject.py): they reach fork and spawn workers and
the main process, and bad names or values are refused in one line."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import torch
from torch.utils.data import DataLoader

from loaderbench.config import parse_injections
from loaderbench.measuring import inject
from loaderbench.measuring.loaders import drain, running
from loaderbench.measuring.measure import timed_epoch


class Sleepy(torch.utils.data.Dataset):
    """Each sample waits 5 ms: a fetch of a known length."""

    def __init__(self, length: int = 8):
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        time.sleep(0.005)
        return torch.tensor(index)


@pytest.fixture
def installed():
    """inject.install for one test, undone after it."""
    yield inject.install
    inject.uninstall()


@pytest.mark.processes
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_worker_delays_reach_workers_of_every_start_method(installed, method):
    installed({"worker-start-delay": 0.01, "worker-batch-delay": 0.002})
    loader = DataLoader(
        inject.InjectionProbe(),
        batch_size=2,
        num_workers=1,
        timeout=120,
        multiprocessing_context=multiprocessing.get_context(method),
    )
    batches = list(loader)
    expected = torch.tensor([[0.002, 0.01, 0.0, 0.0, 0.0]] * 2, dtype=torch.float64)
    assert len(batches) == 2 and all(torch.equal(b, expected) for b in batches)


@pytest.mark.processes
def test_without_an_injection_workers_run_the_real_loop():
    loader = DataLoader(
        inject.InjectionProbe(),
        batch_size=4,
        num_workers=1,
        timeout=120,
        multiprocessing_context=multiprocessing.get_context("fork"),
    )
    (batch,) = list(loader)
    assert torch.equal(batch, torch.zeros(4, len(inject.INJECTIONS), dtype=torch.float64))


def test_the_main_process_delay_waits_for_every_batch(installed):
    loader = DataLoader(inject.InjectionProbe(), batch_size=1)
    installed({"main-batch-delay": 0.05})
    start = time.perf_counter()
    with running(loader):
        assert drain(loader) == (4, 4)
    assert time.perf_counter() - start >= 4 * 0.05  # a sleep lasts at least as long as asked


@pytest.mark.parametrize(
    "value, problem",
    [
        ("worker-delay=0.1", "NAME one of worker-batch-delay"),
        ("worker-batch-delay", "is not NAME=VALUE"),
        ("worker-batch-delay=-1", r"VALUE must be a number >= 0 \(seconds\)"),
        ("worker-batch-delay=soon", "VALUE must be a number >= 0"),
        ("fetch-work=-0.1", r"\(a fraction\), e.g. fetch-work=0.1"),
    ],
)
def test_a_bad_injection_is_refused_naming_what_is_valid(value, problem):
    with pytest.raises(ValueError, match=problem):
        parse_injections([value])


@pytest.mark.processes
def test_the_fetch_work_reaches_spawned_workers(installed):
    """A spawned worker imports torch afresh: the replaced fetch must be put in place there too.
    Eight batches of four 5 ms samples, with as much work again: 40 ms a batch, and between the
    first batch and the last at least six of them (two may be ready ahead): 240 ms, where the
    fetches alone take 20 ms a batch."""
    installed({"fetch-work": 1.0})
    loader = DataLoader(
        Sleepy(32),
        batch_size=4,
        num_workers=1,
        timeout=120,
        multiprocessing_context=multiprocessing.get_context("spawn"),
    )
    phases, batches, samples = timed_epoch(loader)
    assert (batches, samples) == (8, 32)
    assert phases["steady_s"] >= 6 * 2 * 4 * 0.005


def test_the_fetch_work_makes_every_fetch_longer_by_its_fraction(installed):
    """Busy work after the real fetch: a batch of 4 samples of 5 ms takes 1.5x with 0.5."""
    loader = DataLoader(Sleepy(), batch_size=4)
    installed({"fetch-work": 0.5})
    start = time.perf_counter()
    assert drain(loader) == (2, 8)
    assert time.perf_counter() - start >= 1.5 * 8 * 0.005
    inject.uninstall()
    assert all(fetcher.fetch is fetch for fetcher, fetch in inject._ORIGINAL_FETCH.items())


@pytest.mark.processes
def test_the_epoch_end_delay_lands_in_a_default_loaders_shutdown(installed):
    """Only where the workers stop: a non-persistent loader's epoch end, not its batches."""
    installed({"epoch-end-delay": 0.2})
    loader = DataLoader(
        Sleepy(),
        batch_size=4,
        num_workers=1,
        timeout=120,
        multiprocessing_context=multiprocessing.get_context("fork"),
    )
    phases, batches, samples = timed_epoch(loader)
    assert (batches, samples) == (2, 8)
    assert phases["shutdown_s"] >= 0.2
    assert phases["steady_s"] < 0.2
