"""Pools: multi-worker loaders of generic workers, started once and fed one example after another.

A pool is a DataLoader over a plan-decoding dataset whose (batch) sampler is a ``PlanningSampler``:
the worker processes never change, each example only changes what the sampler draws. Persistent
pools live for the whole session (started by the fixtures in conftest.py, before the leak check
of any test begins); non-persistent ones start fresh workers on every ``iter()``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch

from bench_datasets.planned import (
    PlannedBatchDataset,
    PlannedDataset,
    PlanningSampler,
    record_worker_start,
)
from loaderbench.grid import Case, available_start_methods
from loaderbench.measuring.loaders import build_loader, make_loader, shutdown

from .strategies import Example

#: The base seed of every pool's workers comes from a generator seeded with this.
POOL_GENERATOR_SEED = 1234


@dataclass(frozen=True)
class PoolKey:
    """Everything about a loader that is fixed once its workers start."""

    start_method: str
    num_workers: int
    prefetch_factor: int
    in_order: bool = True
    batched: bool = True  # False: sampler= with batch_size=None (no automatic batching)
    getitems: bool = False  # the dataset also implements __getitems__

    def __str__(self) -> str:
        parts = [self.start_method, f"w{self.num_workers}", f"p{self.prefetch_factor}"]
        parts += [] if self.in_order else ["unordered"]
        parts += [] if self.batched else ["unbatched"]
        parts += ["getitems"] if self.getitems else []
        return "-".join(parts)


class Pool:
    """One DataLoader and its planning sampler; ``use(example)`` then ``epoch()`` as often as needed."""

    def __init__(
        self,
        key: PoolKey,
        *,
        persistent: bool = True,
        worker_init_fn=record_worker_start,
        generator_seed: int = POOL_GENERATOR_SEED,
    ):
        self.key, self.persistent = key, persistent
        self.sampler = PlanningSampler()
        self.example: Example | None = None
        self.loader = build_loader(
            self.dataset_for(key),
            Case(
                "planned",
                key.num_workers,
                key.start_method,
                prefetch_factor=key.prefetch_factor,
                in_order=key.in_order,
            ),
            persistent=persistent,
            worker_init_fn=worker_init_fn,
            generator=torch.Generator().manual_seed(generator_seed),
            **self.carrier_arguments(key, self.sampler),
        )

    @staticmethod
    def dataset_for(key: PoolKey) -> PlannedDataset:
        return PlannedBatchDataset() if key.getitems else PlannedDataset()

    @staticmethod
    def carrier_arguments(key: PoolKey, sampler) -> dict:
        if key.batched:
            return dict(batch_sampler=sampler, batch_size=1)  # 1: DataLoader's "unset"
        return dict(sampler=sampler, batch_size=None)

    def __repr__(self) -> str:
        return f"{self.key}{'' if self.persistent else '-fresh'}"

    def use(self, example: Example, *, probe: bool = False) -> Pool:
        self.example = example
        self.sampler.use(
            example.scheme.source(), seed=example.seed, delays_ms=example.delays_ms, probe=probe
        )
        return self

    def epoch(self, limit: int | None = None) -> tuple[list, list]:
        """One epoch, or its first ``limit`` batches and then abandoned: (delivered, drawn)."""
        iterator = iter(self.loader)
        delivered = list(iterator) if limit is None else list(itertools.islice(iterator, limit))
        if limit is not None and not self.persistent:
            shutdown(iterator)  # an abandoned iterator's workers would otherwise wait for GC
        return delivered, self.sampler.epochs[-1]

    def start(self) -> None:
        """Start the workers without waiting for them (an empty epoch)."""
        self.sampler.use([], seed=0)
        iter(self.loader)

    def wait_ready(self) -> None:
        """Block until every worker has answered (one probe batch each)."""
        workers = range(self.key.num_workers)
        self.sampler.use(
            [[w] for w in workers] if self.key.batched else list(workers), seed=0, probe=True
        )
        list(self.loader)

    def close(self) -> None:
        shutdown(self.loader)


def reference_epoch(key: PoolKey, drawn: list, seed: int) -> list:
    """The same draws through the same dataset and collation with ``num_workers=0``."""
    sampler = PlanningSampler().use(drawn, seed=seed)
    loader = make_loader(
        Pool.dataset_for(key), num_workers=0, **Pool.carrier_arguments(key, sampler)
    )
    return list(loader)


def available(keys: list[PoolKey]) -> list[PoolKey]:
    offered = available_start_methods()
    return [key for key in keys if key.start_method in offered]


@contextmanager
def started_pools(keys: list[PoolKey]) -> Iterator[list[Pool]]:
    """Persistent pools for ``keys`` (those this platform can start), started side by side."""
    pools: list[Pool] = []
    try:
        for key in available(keys):
            pools.append(Pool(key))
            pools[-1].start()
        for pool in pools:
            pool.wait_ready()
        yield pools
    finally:
        for pool in pools:
            pool.close()


@contextmanager
def fresh_pool(key: PoolKey, **options) -> Iterator[Pool]:
    """A non-persistent loader: every epoch starts (and ends) its own workers."""
    pool = Pool(key, persistent=False, **options)
    try:
        yield pool
    finally:
        pool.close()


def as_fork(key: PoolKey) -> PoolKey:
    """The same loader with fork, whose workers start in milliseconds (for per-example loaders)."""
    return replace(key, start_method="fork")
