"""Slowdowns injected into DataLoader itself (inject.py): they reach fork and spawn workers and
the main process, and bad names or values are refused in one line."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import torch
from torch.utils.data import DataLoader

from loaderbench.measuring import inject
from loaderbench.measuring.loaders import drain, running


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
    expected = torch.tensor([[0.002, 0.01, 0.0]] * 2, dtype=torch.float64)
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
    assert torch.equal(batch, torch.zeros(4, 3, dtype=torch.float64))


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
        ("worker-batch-delay", "is not NAME=SECONDS"),
        ("worker-batch-delay=-1", "SECONDS must be a number >= 0"),
        ("worker-batch-delay=soon", "SECONDS must be a number >= 0"),
    ],
)
def test_a_bad_injection_is_refused_naming_what_is_valid(value, problem):
    with pytest.raises(ValueError, match=problem):
        inject.parse([value])
