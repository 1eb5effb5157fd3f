"""Property 5: an IterableDataset sharded with get_worker_info() yields every sample exactly once
across 1-4 workers, with drop_last applied per worker."""

import multiprocessing

import pytest
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from bench_datasets import ShardedIterable
from bench_datasets.planned import PlannedRange, planned_sample
from loaderbench.grid import available_start_methods
from loaderbench.measuring.loaders import DEFAULT_TIMEOUT_S, make_loader, running

from .oracle import check_iterable_loader
from .strategies import DELAYS_MS

pytestmark = pytest.mark.processes  # every test here starts worker processes


def expected_indices(length: int, workers: int, batch_size: int | None, drop_last: bool) -> list:
    """What ShardedIterable promises: worker k streams k, k + n, ...; with drop_last each worker
    drops its own incomplete last batch (workers batch their streams separately)."""
    indices = []
    for worker in range(workers):
        shard = list(range(worker, length, workers))
        if batch_size is not None and drop_last:
            shard = shard[: len(shard) - len(shard) % batch_size]
        indices += shard
    return indices


def sharded_loader(
    length, seed, delays, workers, batch_size, drop_last, start_method, persistent
) -> DataLoader:
    return make_loader(
        ShardedIterable(PlannedRange(length, seed, delays)),
        batch_size=batch_size,
        drop_last=drop_last,
        num_workers=workers,
        persistent_workers=persistent,
        multiprocessing_context=multiprocessing.get_context(start_method),
        timeout=DEFAULT_TIMEOUT_S,
    )


def check_epochs(loader, length, seed, workers, batch_size, drop_last, epochs, context):
    expected = [
        planned_sample(seed, i) for i in expected_indices(length, workers, batch_size, drop_last)
    ]
    for epoch in range(epochs):
        check_iterable_loader(loader, expected, f"{context} epoch {epoch}")


@given(
    length=st.integers(0, 40),
    seed=st.integers(0, 2**32),
    workers=st.integers(1, 4),
    batch_size=st.one_of(st.none(), st.integers(1, 7)),
    drop_last=st.booleans(),
    persistent=st.booleans(),
    delays=st.lists(st.sampled_from(DELAYS_MS), max_size=40),
)
def test_a_sharded_iterable_yields_every_sample_exactly_once(
    length, seed, workers, batch_size, drop_last, persistent, delays
):
    """Any length, worker count, batch size (or none) and drop_last, persistent (two epochs) or
    not: the samples are exactly the shards' (less each worker's short last batch under
    drop_last), each once."""
    drop_last = drop_last and batch_size is not None  # torch refuses drop_last without batching
    context = (
        f"ShardedIterable(length={length}, seed={seed}) fork-w{workers} "
        f"batch_size={batch_size} drop_last={drop_last} persistent={persistent}"
    )
    loader = sharded_loader(
        length, seed, dict(enumerate(delays)), workers, batch_size, drop_last, "fork", persistent
    )
    with running(loader):
        # A second epoch matters for persistent workers (they resume); otherwise it is a rerun.
        check_epochs(loader, length, seed, workers, batch_size, drop_last, 1 + persistent, context)


@pytest.mark.parametrize(
    "start_method,workers",
    [(m, w) for m, w in (("spawn", 2), ("forkserver", 2)) if m in available_start_methods()],
)
def test_a_sharded_iterable_is_exact_under_spawn_and_forkserver(start_method, workers):
    """The same with workers that unpickle the dataset (one configuration each, start-up costs
    seconds), persistent, over two epochs."""
    length, seed, batch_size = 23, 3, 4
    loader = sharded_loader(
        length, seed, {1: 30, 4: 10}, workers, batch_size, True, start_method, True
    )
    with running(loader):
        check_epochs(
            loader,
            length,
            seed,
            workers,
            batch_size,
            True,
            2,
            f"ShardedIterable {start_method}-w{workers} batch_size={batch_size}",
        )
