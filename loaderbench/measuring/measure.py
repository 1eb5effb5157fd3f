"""The timed bodies of the grid benchmarks, and what each records beside its timing.

Set-up (building the dataset, starting persistent workers, the warm epoch, shutting workers down)
always happens outside the timed region.
"""

from __future__ import annotations

from torch.utils.data import DataLoader

from loaderbench.grid import Case
from loaderbench.measuring.loaders import drain, shutdown
from loaderbench.results import STARTUP, THROUGHPUT

__all__ = [
    "STARTUP",
    "THROUGHPUT",
    "assert_whole_epoch",
    "epoch_length",
    "first_batch",
    "record_case",
    "record_rates",
    "steady_state",
]


def record_case(benchmark, case: Case, measure: str, dataset) -> None:
    """Store the settings in effect beside the result (extra_info is saved in the JSON)."""
    settings = dataset.settings() if hasattr(dataset, "settings") else {"profile": case.profile}
    benchmark.group = f"{measure}-{case.profile}"
    benchmark.extra_info.update(measure=measure, case=case.as_dict(), dataset=settings)


def steady_state(benchmark, loader: DataLoader, rounds: int) -> tuple[int, int]:
    """Time whole epochs of a persistent-worker loader after one untimed warm epoch.

    Returns (batches, samples) of one epoch.
    """
    drain(loader)  # starts the persistent workers and warms caches: not part of steady state
    return benchmark.pedantic(drain, args=(loader,), rounds=rounds, iterations=1)


def first_batch(benchmark, loader: DataLoader, rounds: int):
    """Time ``next(iter(loader))``: a fresh iterator each round, worker start-up included.

    Each round's workers are shut down in the next round's set-up (untimed) and at the end here,
    never in a pedantic teardown, which pytest-benchmark skips under --benchmark-disable.
    """
    live: list = []

    def stop_previous(finish: bool = True):
        while live:
            iterator = live.pop()
            if finish and loader.num_workers:
                # Finish the epoch (untimed) so the workers are idle when they stop: a spawn
                # worker stopped mid-batch sometimes aborts on exit (see loaders.shutdown).
                for _ in iterator:
                    pass
            shutdown(iterator)

    def fetch_first():
        iterator = iter(loader)
        live.append(iterator)
        return next(iterator)

    try:
        batch = benchmark.pedantic(fetch_first, setup=stop_previous, rounds=rounds, iterations=1)
    except BaseException:
        stop_previous(finish=False)  # the loader failed: stop it as it is, keep the real error
        raise
    stop_previous()
    return batch


def record_rates(benchmark, batches: int, samples: int) -> None:
    """Samples/s and batches/s from the median epoch time (absent when benchmarks are disabled)."""
    stats = getattr(benchmark, "stats", None)
    benchmark.extra_info.update(batches_per_epoch=batches, samples_per_epoch=samples)
    if stats is None:
        return
    median = stats.stats.median
    benchmark.extra_info.update(samples_per_s=samples / median, batches_per_s=batches / median)


def epoch_length(dataset) -> int | None:
    """Samples one epoch must deliver (drop_last is off), or None when the dataset has no length."""
    try:
        return len(dataset)
    except TypeError:  # an IterableDataset may have none
        return None


def assert_whole_epoch(dataset, samples: int) -> None:
    """Every benchmark's sanity check: the timed epoch delivered the whole dataset."""
    expected = epoch_length(dataset)
    assert expected is None or samples == expected, f"epoch delivered {samples} of {expected}"
