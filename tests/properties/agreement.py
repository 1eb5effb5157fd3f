"""Does a dataset's multi-worker loader deliver what its single-process loader does?

For any dataset, a user's above all (``--lb-dataset``): map-style, the batches of a loader with
workers must equal those of ``num_workers=0`` fed the same drawn indices, in order; iterable, the
two must yield the same multiset of samples. The multi-worker side is a persistent loader whose
batch sampler is a ``PlanningSampler`` passing plain indices, so one set of workers serves every
example.

On a mismatch, the diagnoses that explain one (a nondeterministic dataset, a random generator copied
into every worker, an unsharded stream; loaderbench.tuning.diagnose.explain_mismatch) come first
in the failure message, before the batches that differ.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch.utils.data import BatchSampler, DataLoader, IterableDataset

from bench_datasets.planned import PlanningSampler
from loaderbench.grid import Case
from loaderbench.measuring.loaders import build_loader, make_loader, running
from loaderbench.tuning.diagnose import explain_mismatch

from .oracle import LoaderMismatch, check_in_order, check_same_multiset, unbatch
from .strategies import ListSampler


@contextmanager
def map_style_pool(dataset, start_method: str, num_workers: int) -> Iterator[tuple]:
    """A started persistent loader of ``dataset`` and its planning batch sampler."""
    sampler = PlanningSampler()
    loader = build_loader(
        dataset,
        Case("user", num_workers, start_method),
        persistent=True,
        batch_sampler=sampler,
        batch_size=1,
    )
    with running(loader):
        sampler.use([])
        iter(loader)
        yield loader, sampler


def check_map_style_agrees(
    loader: DataLoader,
    sampler: PlanningSampler,
    indices: list[int],
    batch_size: int,
    drop_last: bool,
    context: str,
) -> None:
    """The worker loader's batches over ``indices`` equal num_workers=0's, batch for batch."""
    sampler.use(BatchSampler(ListSampler(indices), batch_size, drop_last))
    delivered = list(loader)
    drawn = sampler.epochs[-1]
    reference = list(
        make_loader(
            loader.dataset, batch_sampler=drawn, num_workers=0, collate_fn=loader.collate_fn
        )
    )
    with explained(loader.dataset):
        check_in_order(
            delivered,
            reference,
            f"{context} indices={indices} batch_size={batch_size} drop_last={drop_last}",
        )


def check_iterable_agrees(
    dataset: IterableDataset,
    start_method: str,
    num_workers: int,
    batch_size: int | None,
    context: str,
) -> None:
    """One epoch with workers yields the same multiset of samples as one without."""

    def epoch(workers: int, method: str | None) -> list:
        loader = build_loader(dataset, Case("user", workers, method), batch_size=batch_size)
        with running(loader):
            batches = list(loader)
        if batch_size is None:
            return batches
        return [sample for batch in batches for sample in unbatch(batch)]

    with explained(dataset):
        check_same_multiset(
            epoch(num_workers, start_method),
            epoch(0, None),
            f"{context} batch_size={batch_size} (against num_workers=0)",
            units="samples",
        )


@contextmanager
def explained(dataset) -> Iterator[None]:
    """A LoaderMismatch raised inside starts with the diagnoses that explain it, when there are:
    "workers and no workers differ" tells a user nothing when the dataset differs from itself."""
    try:
        yield
    except LoaderMismatch as mismatch:
        explanation = _explanation(dataset)
        if not explanation:
            raise
        raise LoaderMismatch(f"{explanation}\n{mismatch}") from mismatch


def _remembered(explain: Callable) -> Callable:
    """``explain`` computed once per dataset: Hypothesis replays a failing example many times
    while it shrinks, and each explanation starts two workers. Only a weak reference to the
    last dataset is kept, so it (and whatever it holds open) dies with its test."""
    last: list = [lambda: None, ""]  # a weak reference to the last dataset, its explanation

    def explanation(dataset) -> str:
        if last[0]() is not dataset:
            try:
                reference = weakref.ref(dataset)
            except TypeError:  # a class with __slots__ and no __weakref__: not remembered
                return explain(dataset)
            last[:] = reference, explain(dataset)
        return last[1]

    return explanation


_explanation = _remembered(
    lambda dataset: "\n".join(d.message() for d in explain_mismatch(dataset))
)
