"""Peak memory (PSS summed over the main process and its workers) over the selected grid, and the
copy-on-read pair: the same values in a Python list and in one numpy array, with fork workers."""

import gc
import multiprocessing

import pytest
import torch

from bench_datasets import make_dataset
from loaderbench.grid import Case
from loaderbench.measuring.loaders import build_loader, running
from loaderbench.measuring.measure import assert_whole_epoch, record_case
from loaderbench.measuring.memory import sampled_steady_state
from loaderbench.results import MEMORY, Recorder

#: Worker counts of the copy-on-read pair: growth with the list should scale with them.
COPY_ON_READ_WORKERS = (0, 2, 4)
COPY_ON_READ_CASES = [
    (storage, Case("pyobj", workers, "fork"))
    for storage in ("list", "numpy")
    for workers in COPY_ON_READ_WORKERS
]


def measure_memory(benchmark, case, dataset, rounds, **loader_options):
    record_case(benchmark, case, MEMORY, dataset)
    with running(build_loader(dataset, case, persistent=True, **loader_options)) as loader:
        numbers, batches, samples = sampled_steady_state(benchmark, loader, rounds)
    recorder = Recorder.of(benchmark)
    recorder.numbers(numbers)
    recorder.epoch(batches, samples)
    assert numbers["workers_sampled"] == case.num_workers, "a worker was missing from the peak"
    assert_whole_epoch(dataset, samples)
    return numbers


def test_memory(benchmark, lb_case, lb_dataset_for, lb_settings):
    """Peak PSS during steady-state epochs, with every worker of the case in the sum."""
    if benchmark.disabled and lb_case.start_method in ("spawn", "forkserver"):
        # Nothing here depends on the start method, the throughput smoke pass already starts
        # such loaders, and each costs ~2 s of importing torch per worker: make test's budget.
        pytest.skip("smoke pass: spawn/forkserver memory is measured by `make bench` only")
    measure_memory(benchmark, lb_case, lb_dataset_for(lb_case), lb_settings.rounds)


@pytest.mark.parametrize(
    "storage, case",
    COPY_ON_READ_CASES,
    ids=[f"{s}-{c.id.removeprefix('pyobj-')}" for s, c in COPY_ON_READ_CASES],
)
def test_memory_copy_on_read(benchmark, storage, case, lb_settings):
    """Forked workers reading a Python list un-share its pages; reading a numpy array does not."""
    if "pyobj" not in lb_settings.grid.profiles:
        pytest.skip("the pyobj profile is not in the selected profiles")
    if case.start_method and case.start_method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"copy-on-read needs {case.start_method} workers; this platform has none")
    dataset = lb_settings.datasets.with_ballast(
        make_dataset("pyobj", cost_scale=lb_settings.cost_scale, storage=storage)
    )
    try:
        # Shuffled, as in training: over the epochs every worker reads every part of the list.
        # In sequence each worker would always get the same batches and touch only its share.
        measure_memory(
            benchmark,
            case,
            dataset,
            lb_settings.rounds,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
        )
        Recorder.of(benchmark).numbers(storage=storage, shuffle=True)
    finally:
        del dataset
        gc.collect()  # the next pair's baseline must not hold this one's list
