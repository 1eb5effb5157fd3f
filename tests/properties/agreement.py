"""Does a dataset's multi-worker loader deliver what its single-process loader does?

For any dataset, a user's above all (``--lb-dataset``): map-style, the batches of a loader with
workers must equal those of ``num_workers=0`` fed the same drawn indices, in order; iterable, the
two must yield the same multiset of samples. The multi-worker side is a persistent loader whose
batch sampler is a ``PlanningSampler`` passing plain indices, so one set of workers serves every
example.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch.utils.data import BatchSampler, DataLoader, IterableDataset

from bench_datasets.planned import PlanningSampler
from loaderbench.grid import Case
from loaderbench.loaders import build_loader, running

from .oracle import check_in_order, check_same_multiset, unbatch
from .strategies import ListSampler


@contextmanager
def map_style_pool(dataset, start_method: str, num_workers: int) -> Iterator[tuple]:
    """A started persistent loader of ``dataset`` and its planning batch sampler."""
    sampler = PlanningSampler()
    loader = build_loader(dataset, Case("user", num_workers, start_method), persistent=True,
                          batch_sampler=sampler, batch_size=1)
    with running(loader):
        sampler.use([])
        iter(loader)
        yield loader, sampler


def check_map_style_agrees(loader: DataLoader, sampler: PlanningSampler, indices: list[int],
                           batch_size: int, drop_last: bool, context: str) -> None:
    """The worker loader's batches over ``indices`` equal num_workers=0's, batch for batch."""
    sampler.use(BatchSampler(ListSampler(indices), batch_size, drop_last))
    delivered = list(loader)
    drawn = sampler.epochs[-1]
    reference = list(DataLoader(loader.dataset, batch_sampler=drawn, num_workers=0,
                                collate_fn=loader.collate_fn))
    check_in_order(delivered, reference,
                   f"{context} indices={indices} batch_size={batch_size} drop_last={drop_last}")


def check_iterable_agrees(dataset: IterableDataset, start_method: str, num_workers: int,
                          batch_size: int | None, context: str) -> None:
    """One epoch with workers yields the same multiset of samples as one without."""
    def epoch(workers: int, method: str | None) -> list:
        loader = build_loader(dataset, Case("user", workers, method), batch_size=batch_size)
        with running(loader):
            batches = list(loader)
        if batch_size is None:
            return batches
        return [sample for batch in batches for sample in unbatch(batch)]

    check_same_multiset(epoch(num_workers, start_method), epoch(0, None),
                        f"{context} batch_size={batch_size} (against num_workers=0)",
                        units="samples")
