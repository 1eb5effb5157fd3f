"""Plan-carrying datasets and samplers: one pool of workers serves many checked examples.

Starting a spawn or forkserver worker costs seconds (it imports torch), far too much to pay per
Hypothesis example. So the workers stay generic: the dataset holds no per-example state, and the
main-process sampler carries each example's plan to them. The "index" a ``PlanningSampler`` yields
is a ``Plan`` (seed, sample index, delay) that ``PlannedDataset`` decodes; the sampler records, in
the main process, which indices it drew for every batch of every epoch, which is what the oracle
recomputes.

This module lives in the installed package, not under tests/, because spawn and forkserver workers
unpickle these classes by importing them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sized
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info


class Plan(NamedTuple):
    """What a worker must do for one sample: the content's key ``(seed, index)`` and how long to take."""

    seed: int
    index: int  # type: ignore[assignment]  # the field shadows tuple.index on purpose
    delay_ms: int = 0
    probe: bool = False  # report on the worker's randomness (worker_report) instead of content


def planned_sample(seed: int, index: int) -> dict[str, Any]:
    """A pure function of ``(seed, index)`` with a structure that default collation must keep:
    tensors of several dtypes, a nested dict, a tuple, and Python ints, floats and strings."""
    rng = np.random.default_rng([seed, index])
    return {
        "index": index,
        "features": torch.from_numpy(rng.standard_normal(3, dtype=np.float32)),
        "wide": torch.from_numpy(rng.standard_normal(2)),  # float64
        "tokens": torch.from_numpy(rng.integers(-1000, 1000, size=4, dtype=np.int64)),
        "pixels": torch.from_numpy(rng.integers(0, 256, size=(2, 2), dtype=np.uint8)),
        "extra": {
            "half": torch.from_numpy(rng.standard_normal(2, dtype=np.float32)).half(),
            "mask": torch.from_numpy(rng.integers(0, 2, size=3).astype(bool)),
        },
        "meta": (float(rng.random()), f"s{seed}-i{index}", int(rng.integers(0, 2**31))),
    }


def fulfil(plan: Plan) -> dict[str, Any]:
    return worker_report(plan.index) if plan.probe else planned_sample(plan.seed, plan.index)


class PlannedDataset(Dataset):
    """Map-style dataset indexed by ``Plan``: waits ``delay_ms``, then returns ``planned_sample``.

    Delays that differ between samples make batches finish out of order across workers, which is
    the only situation in which the loader's ordering is really put to the test.
    """

    def __getitem__(self, plan: Plan) -> dict[str, Any]:
        if plan.delay_ms:
            time.sleep(plan.delay_ms / 1000.0)
        return fulfil(plan)


class PlannedBatchDataset(PlannedDataset):
    """Also fetches whole batches through ``__getitems__``, as datasets backed by batch reads do
    (DataLoader prefers it over per-sample ``__getitem__`` when batching automatically)."""

    def __getitems__(self, plans: list[Plan]) -> list[dict[str, Any]]:
        # One wait for the whole batch, like one round trip to storage.
        longest = max((plan.delay_ms for plan in plans), default=0)
        if longest:
            time.sleep(longest / 1000.0)
        return [fulfil(plan) for plan in plans]


class PlanningSampler(Sampler):
    """Forwards what its current source draws (indices, or lists of indices for a batch sampler),
    turned into plans, and records every draw in the main process.

    ``use(source, seed=..., delays_ms=...)`` starts a new example; each ``iter()`` is one epoch and
    appends its draws to ``epochs`` as they happen, so an epoch abandoned midway records only what
    was actually drawn. With ``seed=None`` the raw indices pass through unchanged (for a dataset
    that takes plain indices, such as a user's).
    """

    def __init__(self):
        self.source: Iterable | None = None
        self.seed: int | None = None
        self.delays_ms: dict[int, int] = {}
        self.probe = False
        self.epochs: list[list] = []

    def use(
        self,
        source: Iterable,
        *,
        seed: int | None = None,
        delays_ms: dict[int, int] | None = None,
        probe: bool = False,
    ) -> PlanningSampler:
        self.source, self.seed, self.delays_ms = source, seed, dict(delays_ms or {})
        self.probe = probe
        self.epochs = []
        return self

    def _plan(self, index: int):
        if self.seed is None:
            return index
        return Plan(self.seed, index, self.delays_ms.get(index, 0), self.probe)

    def __iter__(self):
        if self.source is None:
            raise RuntimeError("PlanningSampler: call use(source, ...) before iterating")
        drawn: list = []
        self.epochs.append(drawn)
        for item in self.source:
            if isinstance(item, (list, tuple)):
                batch = [int(i) for i in item]
                drawn.append(batch)
                yield [self._plan(i) for i in batch]
            else:
                drawn.append(int(item))
                yield self._plan(int(item))

    def __len__(self) -> int:
        # A source without a length (or none yet) raises TypeError here, as len(source) would.
        return len(cast(Sized, self.source))


# --- worker randomness -------------------------------------------------------------------------

#: Set in each worker by ``record_worker_start``; None in the main process.
_WORKER_START: dict[str, Any] | None = None


def first_draws() -> tuple[int, int, int]:
    """One draw from each RNG a worker seeds: torch, ``random`` and numpy's legacy global RNG."""
    return (
        int(torch.randint(0, 2**62, (1,)).item()),
        random.getrandbits(62),
        int(np.random.randint(0, 2**62, dtype=np.int64)),
    )


def record_worker_start(worker_id: int) -> None:
    """A ``worker_init_fn`` that remembers what it saw, for ``worker_report`` to report: how often
    it ran, its id, the worker info, and the first draw of each RNG right after torch seeded them."""
    global _WORKER_START
    info = get_worker_info()
    calls = 1 if _WORKER_START is None else _WORKER_START["calls"] + 1
    _WORKER_START = {
        "calls": calls,
        "worker_id": worker_id,
        # Reduced so that default collation's int64 cannot overflow (base seed + id may exceed it).
        "info": None if info is None else (info.id, info.num_workers, info.seed % 2**62),
        "draws": first_draws(),
    }


def worker_report(index: int) -> dict[str, Any]:
    """What a probe sample reports: which worker made it, what ``record_worker_start`` saw there
    (-1 where it saw nothing), and fresh draws from the worker's torch, ``random`` and numpy RNGs.
    Only ints, so default collation turns every field into an int64 tensor."""
    info = get_worker_info()
    start = _WORKER_START or {"calls": 0, "worker_id": -1, "info": None, "draws": (-1, -1, -1)}
    seen_id, seen_workers, seen_seed = start["info"] or (-1, -1, -1)
    return {
        "index": index,
        "worker": -1 if info is None else info.id,
        "init_calls": start["calls"],
        "init_worker_id": start["worker_id"],
        "init_info": (seen_id, seen_workers, seen_seed),
        "first_draws": start["draws"],
        "draws": first_draws(),
    }


class PlannedRange(Dataset):
    """An ordinary map-style dataset of ``length`` samples indexed 0..length-1, with the same
    content and delays as plans would give: for loaders whose own sampler draws the indices
    (``shuffle=True``) and for iterable sharding."""

    def __init__(self, length: int, seed: int, delays_ms: dict[int, int] | None = None):
        self.length, self.seed, self.delays_ms = length, seed, dict(delays_ms or {})

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for length {self.length}")
        return PlannedDataset()[Plan(self.seed, index, self.delays_ms.get(index, 0))]
