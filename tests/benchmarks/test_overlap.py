"""Overlap of loading with a simulated training step, over the selected grid's profiles whose
loading costs time comparable to the step (cpu, io, and your own dataset). On a GPU: the same
loop with pin_memory=True and a device kernel as the step."""

import pytest
import torch

from bench_datasets import USER_PROFILE
from loaderbench.measuring.loaders import build_loader, running
from loaderbench.measuring.measure import assert_whole_epoch, record_case
from loaderbench.measuring.overlap import measure_overlap, step_for
from loaderbench.measuring.transfer import NO_CUDA
from loaderbench.results import OVERLAP, Recorder
from loaderbench.suite.plugin import lb_state

#: Profiles whose load time per batch is comparable to the simulated step: GIL-bound work and
#: waiting, the two cases workers exist for. For noop, disk, large and pyobj loading is so cheap
#: on the reference machine that the step alone sets the epoch; jpeg behaves like cpu here and is
#: left out to keep `make test` within its budget.
OVERLAP_PROFILES = ("cpu", "io", USER_PROFILE)

needs_cuda = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]


def pytest_generate_tests(metafunc):
    if "overlap_case" in metafunc.fixturenames:
        cases = [c for c in lb_state(metafunc.config).grid.cases() if c.profile in OVERLAP_PROFILES]
        metafunc.parametrize("overlap_case", cases, ids=[c.id for c in cases])


def run_overlap(benchmark, case, dataset, rounds, device, pin_memory):
    record_case(benchmark, case, OVERLAP, dataset)
    loader = build_loader(dataset, case, persistent=True, pin_memory=pin_memory)
    with running(loader):
        numbers, batches, samples = measure_overlap(
            benchmark, loader, step_for(loader, device), rounds
        )
    recorder = Recorder.of(benchmark)
    recorder.numbers(numbers)
    recorder.epoch(batches, samples)
    assert_whole_epoch(dataset, samples)
    return numbers


def test_overlap(benchmark, overlap_case, lb_dataset_for, lb_settings):
    """An epoch of load + a CPU step (a GIL-releasing wait); overlap efficiency and step share."""
    if benchmark.disabled and overlap_case.start_method in ("spawn", "forkserver"):
        # As for memory: the code does not depend on the start method; start-up costs ~2 s.
        pytest.skip("smoke pass: spawn/forkserver overlap is measured by `make bench` only")
    run_overlap(
        benchmark,
        overlap_case,
        lb_dataset_for(overlap_case),
        lb_settings.rounds,
        device="cpu",
        pin_memory=False,
    )


@pytest.mark.parametrize("device", [pytest.param("cuda", marks=needs_cuda)])
def test_overlap_on_gpu(benchmark, overlap_case, lb_dataset_for, lb_settings, device):
    """The same epoch with pinned batches copied non_blocking and a device kernel as the step."""
    run_overlap(
        benchmark,
        overlap_case,
        lb_dataset_for(overlap_case),
        lb_settings.rounds,
        device=device,
        pin_memory=True,
    )
