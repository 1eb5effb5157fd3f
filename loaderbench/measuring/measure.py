"""The timed bodies of the grid benchmarks, and what each records beside its timing.

Set-up (building the dataset, starting persistent workers, the warm epoch, shutting workers down)
always happens outside the timed region.
"""

from __future__ import annotations

import statistics
import time

from torch.utils.data import DataLoader

from loaderbench.grid import Case
from loaderbench.measuring.loaders import batch_length, drain, shutdown
from loaderbench.results import EPOCH, STARTUP, THROUGHPUT, Recorder

__all__ = [
    "EPOCH",
    "STARTUP",
    "THROUGHPUT",
    "assert_whole_epoch",
    "epoch_length",
    "first_batch",
    "whole_epoch",
    "record_case",
    "record_rates",
    "steady_state",
]


def record_case(benchmark, case: Case, measure: str, dataset) -> None:
    """Store the settings in effect beside the result (extra_info is saved in the JSON)."""
    settings = dataset.settings() if hasattr(dataset, "settings") else {"profile": case.profile}
    benchmark.group = f"{measure}-{case.profile}"
    Recorder.of(benchmark).case(measure, case.as_dict(), settings)


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


#: The parts of a whole epoch, in ``extra_info.epoch_phases`` (seconds, medians over rounds).
EPOCH_PHASES = ("start_s", "steady_s", "shutdown_s")


def timed_epoch(loader: DataLoader) -> tuple[dict[str, float], int, int]:
    """One whole epoch of a fresh iterator: (phases, batches, samples).

    ``start_s``: ``iter()`` to the first batch (workers started); ``steady_s``: first to last
    batch; ``shutdown_s``: from the last batch until the iterator ends. Without persistent
    workers that last step is where DataLoader stops its workers (``_shutdown_workers``), inside
    the user's epoch, as every training loop pays it.
    """
    batched = loader.batch_sampler is not None
    batches = samples = 0
    begun = time.perf_counter()
    first = last = begun
    iterator = iter(loader)
    try:
        for batch in iterator:
            last = time.perf_counter()
            if not batches:
                first = last
            batches += 1
            samples += batch_length(batch) if batched else 1
        ended = time.perf_counter()
    finally:
        shutdown(iterator)  # a no-op after a whole epoch; stops the workers of a failed one
    if not batches:
        first = last = ended
    phases = {"start_s": first - begun, "steady_s": last - first, "shutdown_s": ended - last}
    return phases, batches, samples


def whole_epoch(benchmark, loader: DataLoader, rounds: int) -> tuple[int, int]:
    """Time whole epochs of a default loader (``persistent_workers=False``): every round starts
    the workers, delivers every batch and stops the workers, as the seed experiment and most
    training loops do. The median of each phase goes to ``extra_info.epoch_phases``.

    Returns (batches, samples) of one epoch.
    """
    seen: list[dict[str, float]] = []
    counts: list[tuple[int, int]] = []

    def one_epoch():
        phases, batches, samples = timed_epoch(loader)
        seen.append(phases)
        counts.append((batches, samples))

    benchmark.pedantic(one_epoch, rounds=rounds, iterations=1)
    Recorder.of(benchmark).phases(
        {name: statistics.median(p[name] for p in seen) for name in EPOCH_PHASES}
    )
    return counts[-1]


def record_rates(benchmark, batches: int, samples: int) -> None:
    """Samples/s and batches/s from the median epoch time (absent when benchmarks are disabled)."""
    stats = getattr(benchmark, "stats", None)
    recorder = Recorder.of(benchmark)
    recorder.epoch(batches, samples)
    if stats is not None:
        recorder.rates(stats.stats.median)


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
