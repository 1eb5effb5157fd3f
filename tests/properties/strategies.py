"""Strategies for the properties, named for what they produce.

An example is what a pool of generic workers is asked to load: a content seed, per-sample delays
(drawn so that samples finish out of order) and a sampling scheme. The scheme builds a fresh
index source each time, so an example replays identically when Hypothesis reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from hypothesis import strategies as st
from torch.utils.data import BatchSampler, RandomSampler, Sampler, SequentialSampler

MAX_LENGTH = 40
#: Milliseconds; mostly zero with a few slow samples, so that a batch with a slow sample is
#: overtaken by the batches behind it in other workers.
DELAYS_MS = (0, 0, 0, 1, 4, 12)
SAMPLER_KINDS = ("sequential", "shuffle", "custom_sampler", "custom_batch_sampler")


class ListSampler(Sampler):
    """A custom sampler: any list of indices, repeats and omissions allowed."""

    def __init__(self, indices: list[int]):
        self.indices = indices

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class ListBatchSampler(Sampler):
    """A custom batch sampler: batches of uneven sizes, as bucketing samplers make."""

    def __init__(self, batches: list[list[int]]):
        self.batches = batches

    def __iter__(self):
        return (list(batch) for batch in self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass(frozen=True)
class Scheme:
    """How indices are drawn: a sampler kind over ``length`` samples, batched or not."""

    kind: str
    length: int
    batch_size: int | None  # None: single indices (no automatic batching) or custom batches
    drop_last: bool = False
    shuffle_seed: int = 0
    indices: tuple[int, ...] = ()  # custom_sampler
    batches: tuple[tuple[int, ...], ...] = ()  # custom_batch_sampler

    def source(self):
        """A fresh source of draws; each ``iter()`` of it is one epoch (a shuffle reshuffles)."""
        if self.kind == "custom_batch_sampler":
            return ListBatchSampler([list(b) for b in self.batches])
        if self.kind == "sequential":
            sampler = SequentialSampler(range(self.length))
        elif self.kind == "shuffle":
            generator = torch.Generator().manual_seed(self.shuffle_seed)
            sampler = RandomSampler(range(self.length), generator=generator)
        else:
            sampler = ListSampler(list(self.indices))
        if self.batch_size is None:
            return sampler
        return BatchSampler(sampler, self.batch_size, self.drop_last)


@dataclass(frozen=True)
class Example:
    """One example for a pool: content seed, sampling scheme and per-sample delays."""

    seed: int
    scheme: Scheme
    delays_ms: dict = field(default_factory=dict)

    def __str__(self) -> str:
        slow = {i: d for i, d in sorted(self.delays_ms.items()) if d}
        return f"seed={self.seed} {self.scheme} slow_samples_ms={slow}"


@st.composite
def schemes(
    draw,
    *,
    batched: bool = True,
    kinds=SAMPLER_KINDS,
    min_length: int = 0,
    max_length: int = MAX_LENGTH,
) -> Scheme:
    """Any sampling scheme; lengths include 0 and lengths not divisible by the batch size."""
    kinds = [k for k in kinds if batched or k != "custom_batch_sampler"]
    kind = draw(st.sampled_from(kinds))
    # torch refuses a RandomSampler over nothing, so a shuffle needs at least one sample.
    length = draw(st.integers(max(min_length, 1 if kind == "shuffle" else 0), max_length))
    batch_size = draw(st.integers(1, 9)) if batched else None
    drop_last = draw(st.booleans()) if batched else False
    if kind == "custom_sampler":
        indices = (
            draw(st.lists(st.integers(0, max(length - 1, 0)), max_size=length)) if length else []
        )
        return Scheme(kind, length, batch_size, drop_last, indices=tuple(indices))
    if kind == "custom_batch_sampler":
        batches = (
            draw(
                st.lists(
                    st.lists(st.integers(0, length - 1), min_size=1, max_size=9).map(tuple),
                    max_size=max(1, length // 2),
                )
            )
            if length
            else []
        )
        return Scheme(kind, length, None, False, batches=tuple(batches))
    if kind == "shuffle":
        return Scheme(kind, length, batch_size, drop_last, shuffle_seed=draw(st.integers(0, 2**32)))
    return Scheme(kind, length, batch_size, drop_last)


@st.composite
def examples(draw, **scheme_options) -> Example:
    scheme = draw(schemes(**scheme_options))
    delays = draw(
        st.lists(st.sampled_from(DELAYS_MS), min_size=scheme.length, max_size=scheme.length)
    )
    return Example(draw(st.integers(0, 2**32)), scheme, dict(enumerate(delays)))
