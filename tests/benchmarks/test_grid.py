"""Throughput, a default loader's whole epoch and time to first batch over the selected grid
(see loaderbench/grid.py)."""

import pytest

from loaderbench.measuring.loaders import batch_length, build_loader, running
from loaderbench.measuring.measure import (
    EPOCH,
    STARTUP,
    THROUGHPUT,
    assert_whole_epoch,
    epoch_length,
    first_batch,
    record_case,
    record_rates,
    steady_state,
    whole_epoch,
)


def skip_in_smoke_pass(benchmark, case, lb_settings) -> None:
    """`make test` runs every benchmark once (--benchmark-disable), as a smoke pass. There,
    spawn and forkserver cases run for the grid's first profile only (noop in the quick grid; your
    own dataset with --lb-dataset): each of their workers imports torch, ~2 s apiece, and the
    code path does not depend on the profile. That every profile's dataset survives the pickling
    they need is checked in tests/harness/test_profiles.py; `make bench` runs them all."""
    if (
        benchmark.disabled
        and case.start_method in ("spawn", "forkserver")
        and case.profile != lb_settings.grid.profiles[0]
    ):
        pytest.skip(
            f"smoke pass: {case.start_method} runs for {lb_settings.grid.profiles[0]} only; "
            "`make bench` measures every profile"
        )


def test_throughput(benchmark, lb_case, lb_dataset_for, lb_settings):
    """Steady-state epochs with persistent workers deliver the whole dataset each time."""
    skip_in_smoke_pass(benchmark, lb_case, lb_settings)
    dataset = lb_dataset_for(lb_case)
    record_case(benchmark, lb_case, THROUGHPUT, dataset)
    with running(build_loader(dataset, lb_case, persistent=True)) as loader:
        batches, samples = steady_state(benchmark, loader, lb_settings.rounds)
    record_rates(benchmark, batches, samples)
    assert_whole_epoch(dataset, samples)


def test_epoch(benchmark, lb_case, lb_dataset_for, lb_settings):
    """A default loader's whole epoch (workers started and stopped inside it) delivers the
    whole dataset; its start, steady part and shutdown are recorded apart."""
    skip_in_smoke_pass(benchmark, lb_case, lb_settings)
    dataset = lb_dataset_for(lb_case)
    record_case(benchmark, lb_case, EPOCH, dataset)
    loader = build_loader(dataset, lb_case, persistent=False)
    batches, samples = whole_epoch(benchmark, loader, lb_settings.rounds)
    record_rates(benchmark, batches, samples)
    assert_whole_epoch(dataset, samples)
    assert set(benchmark.extra_info["epoch_phases"]) == {"start_s", "steady_s", "shutdown_s"}


def test_time_to_first_batch(benchmark, lb_startup_case, lb_dataset_for, lb_settings):
    """A fresh iterator's first batch arrives, worker start-up included in the timing."""
    case = lb_startup_case
    skip_in_smoke_pass(benchmark, case, lb_settings)
    dataset = lb_dataset_for(case)
    record_case(benchmark, case, STARTUP, dataset)
    batch = first_batch(
        benchmark, build_loader(dataset, case, persistent=False), lb_settings.rounds
    )
    expected = epoch_length(dataset)
    if expected is not None:
        assert batch_length(batch) == min(case.batch_size, expected)
