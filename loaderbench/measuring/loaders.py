"""Building DataLoaders for a grid case, and making sure their workers are gone afterwards."""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch.utils.data import DataLoader, Dataset

from loaderbench.grid import Case

#: Seconds a worker may take to deliver one batch before the loader raises instead of hanging.
DEFAULT_TIMEOUT_S = 120.0


def build_loader(
    dataset: Dataset,
    case: Case,
    *,
    persistent: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    **overrides,
) -> DataLoader:
    """A DataLoader for ``case``: the start method is always passed explicitly (never the platform
    default, which changed from fork to forkserver in Python 3.14) and worker loaders always have
    a timeout, so a hung worker becomes an error instead of a stuck job."""
    kwargs: dict[str, Any] = dict(batch_size=case.batch_size, num_workers=case.num_workers)
    if case.num_workers:
        kwargs.update(
            multiprocessing_context=multiprocessing.get_context(case.start_method),
            prefetch_factor=case.prefetch_factor,
            persistent_workers=persistent,
            in_order=case.in_order,
            timeout=timeout,  # DataLoader refuses a timeout without workers
        )
    kwargs.update(overrides)
    return DataLoader(dataset, **kwargs)


def shutdown(obj) -> None:
    """Stop the worker processes behind a DataLoader (its persistent iterator) or an iterator.

    DataLoader has no public close(); relying on garbage collection leaves workers alive for an
    unknown time, and pytest-benchmark never runs a pedantic teardown under --benchmark-disable.
    """
    iterator = obj._iterator if isinstance(obj, DataLoader) else obj
    stop = getattr(iterator, "_shutdown_workers", None)
    if stop is not None:
        try:
            stop()
        except RuntimeError as exc:
            if not _aborted_on_exit(exc):
                raise
            # torch 2.13, seen here: a spawn worker asked to stop while busy with a batch
            # sometimes aborts as its interpreter exits ("terminate called without an active
            # exception"): 2 of 30 such stops in a plain-torch reproduction, 0 of 40 once the
            # epoch was drained. Its work was done, so this is reported, not failed; the other
            # workers, which torch terminated while unwinding, are reaped here.
            warnings.warn(WorkerAbortedOnExit(str(exc)), stacklevel=2)
            for worker in getattr(iterator, "_workers", []):
                worker.join(timeout=5)
    if isinstance(obj, DataLoader):
        obj._iterator = None


class WorkerAbortedOnExit(RuntimeWarning):
    """A DataLoader worker aborted while exiting at shutdown, after its work was delivered."""


def _aborted_on_exit(exc: RuntimeError) -> bool:
    return "is killed by signal: Aborted" in str(exc)


@contextmanager
def running(loader: DataLoader) -> Iterator[DataLoader]:
    """Yield ``loader``; on exit, however it is left, its persistent workers are shut down."""
    try:
        yield loader
    finally:
        shutdown(loader)


def drain(loader: DataLoader) -> tuple[int, int]:
    """Iterate one whole epoch; return (batches, samples). Nothing else happens in the loop."""
    batched = loader.batch_sampler is not None  # None exactly when automatic batching is off
    batches = samples = 0
    for batch in loader:
        batches += 1
        samples += batch_length(batch) if batched else 1
    return batches, samples


def batch_length(batch) -> int:
    """Samples in a collated batch: the length of its first tensor."""
    while isinstance(batch, (list, tuple)) and batch:
        batch = batch[0]
    if isinstance(batch, dict) and batch:
        return batch_length(next(iter(batch.values())))
    shape = getattr(batch, "shape", None)
    return int(shape[0]) if shape else 1
