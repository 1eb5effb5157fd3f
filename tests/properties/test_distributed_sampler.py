"""DistributedSampler: how it splits a dataset across ranks, checked on every rank at once.

No process group is needed: every rank's sampler is built here with an explicit ``rank`` and
``num_replicas``. Padding is what the documentation promises: with ``drop_last=False`` "the sampler
will add extra indices to make the data evenly divisible across the replicas"; with
``drop_last=True`` it "will drop the tail of the data".
"""

from collections import Counter
from dataclasses import dataclass

from hypothesis import assume, given
from hypothesis import strategies as st
from torch.utils.data import DistributedSampler


@dataclass(frozen=True)
class Split:
    """One way of splitting a dataset: what every rank's DistributedSampler is built with."""

    length: int
    num_replicas: int
    shuffle: bool
    seed: int
    drop_last: bool
    epoch: int

    @property
    def padding(self) -> int:
        """Indices added so the ranks get equal shares (drop_last=False)."""
        return 0 if self.drop_last else -self.length % self.num_replicas

    @property
    def dropped(self) -> int:
        """Indices left out so the ranks get equal shares (drop_last=True)."""
        return self.length % self.num_replicas if self.drop_last else 0


@st.composite
def splits(draw, min_length: int = 0) -> Split:
    return Split(
        length=draw(st.integers(min_length, 300)),
        num_replicas=draw(st.integers(1, 8)),
        shuffle=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
        drop_last=draw(st.booleans()),
        epoch=draw(st.integers(0, 10_000)),
    )


def samplers(split: Split, epoch: int | None = None) -> list[DistributedSampler]:
    """Every rank's sampler, fresh, set to ``epoch`` (default: the split's)."""
    out = []
    for rank in range(split.num_replicas):
        sampler = DistributedSampler(
            range(split.length),
            num_replicas=split.num_replicas,
            rank=rank,
            shuffle=split.shuffle,
            seed=split.seed,
            drop_last=split.drop_last,
        )
        sampler.set_epoch(split.epoch if epoch is None else epoch)
        out.append(sampler)
    return out


def shares(split: Split, epoch: int | None = None) -> list[list[int]]:
    """The indices each rank draws, in order."""
    return [list(sampler) for sampler in samplers(split, epoch)]


@given(splits())
def test_every_rank_draws_the_same_number_of_indices(split):
    """All ranks draw as many indices as len(sampler) says, and the same number each."""
    drawn = shares(split)
    expected = (split.length + split.padding - split.dropped) // split.num_replicas
    assert [len(share) for share in drawn] == [expected] * split.num_replicas
    assert [len(s) for s in samplers(split)] == [expected] * split.num_replicas


@given(splits())
def test_ranks_together_cover_the_dataset_with_documented_padding_or_dropping(split):
    """Pooled, the ranks draw every index once, plus the padding spread as evenly as possible
    (drop_last=False), or every index at most once with exactly the remainder left out (True)."""
    pooled = Counter(index for share in shares(split) for index in share)
    assert set(pooled) <= set(range(split.length)), "an index outside the dataset"
    if split.drop_last:
        assert max(pooled.values(), default=1) == 1, "an index drawn twice with drop_last=True"
        assert split.length - len(pooled) == split.dropped
    else:
        assert len(pooled) == split.length, "an index no rank draws"
        assert sum(pooled.values()) - split.length == split.padding
        # Padding repeats the order from its start, so no index repeats twice more than another.
        assert max(pooled.values(), default=0) - min(pooled.values(), default=0) <= 1


@given(splits())
def test_ranks_are_disjoint_when_nothing_is_padded(split):
    """When no index is added (drop_last=True, or the length divides evenly), no index is drawn by
    two ranks, nor twice by one."""
    assume(split.padding == 0)
    seen: set[int] = set()
    for rank, share in enumerate(shares(split)):
        overlap = seen & set(share)
        assert not overlap and len(set(share)) == len(share), (
            f"rank {rank} repeats {sorted(overlap or set(share))[:5]}"
        )
        seen |= set(share)


@given(splits(), st.integers(0, 10_000))
def test_the_same_epoch_gives_the_same_order_on_every_run(split, earlier_epoch):
    """An epoch's order depends on (seed, epoch) alone: a fresh sampler, the same sampler iterated
    again, and a sampler that went through another epoch first all draw the same indices."""
    first = shares(split)
    assert shares(split) == first
    for rank, sampler in enumerate(samplers(split, earlier_epoch)):
        list(sampler)
        sampler.set_epoch(split.epoch)
        assert list(sampler) == first[rank] == list(sampler), f"rank {rank}"


@given(splits(min_length=16), st.integers(0, 10_000))
def test_set_epoch_reshuffles_identically_on_every_rank(split, other_epoch):
    """After set_epoch, every rank draws from the same new permutation: pooled, the shares draw
    indices as many times as before, and with shuffle=True the order changed (16 indices or more: a repeat of
    the order by chance is negligible); with shuffle=False it did not."""
    assume(other_epoch != split.epoch)
    before, after = shares(split), shares(split, other_epoch)
    multiplicities = [
        sorted(Counter(i for share in drawn for i in share).values()) for drawn in (before, after)
    ]
    # Which indices are padded or dropped follows the permutation; how many times indices are
    # drawn does not, unless ranks drew from different permutations.
    assert multiplicities[1] == multiplicities[0], "the ranks no longer draw from one permutation"
    assert len(multiplicities[1]) == split.length - split.dropped
    assert (after != before) == split.shuffle
