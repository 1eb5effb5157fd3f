"""Property 4: epoch after epoch, persistent or not, each epoch is that epoch's draws; a seeded
shuffle reorders between epochs; an iterator abandoned mid-epoch leaves nothing behind."""

import multiprocessing
from dataclasses import replace

import pytest
import torch
from hypothesis import given, note
from hypothesis import strategies as st

from bench_datasets.planned import PlannedRange
from loaderbench.grid import available_start_methods
from loaderbench.measuring.loaders import DEFAULT_TIMEOUT_S, make_loader, shutdown

from .checks import check_epoch, check_partial_epoch
from .oracle import check_in_order, oracle_batches
from .pools import PoolKey, as_fork, fresh_pool
from .strategies import Example, Scheme, examples

pytestmark = pytest.mark.processes  # every test here starts worker processes

#: Per epoch: None runs it to the end, k abandons it after k batches (then a new iterator starts).
epoch_plans = st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=1, max_size=3).map(
    lambda plan: [*plan, None]
)  # always end with a whole epoch, which must come out clean


def run_epoch_plan(pool, example: Example, plan: list) -> list[list]:
    """Run whole and abandoned epochs as ``plan`` says, checking each; return the whole ones' draws."""
    pool.use(example)
    whole = []
    for epoch, limit in enumerate(plan):
        if limit is None:
            delivered, drawn = pool.epoch()
            check_epoch(pool, example, epoch, delivered, drawn)
            whole.append(drawn)
        else:
            check_partial_epoch(pool, example, epoch, limit)
    return whole


@given(example=examples(), plan=epoch_plans, persistent=st.booleans(), data=st.data())
def test_each_epoch_matches_its_own_draws_even_after_an_abandoned_one(
    ordered_pools, example, plan, persistent, data
):
    """Whole epochs and epochs abandoned after a few batches, in any sequence: every batch
    delivered is the oracle's for that epoch's draws, so nothing is carried over."""
    pool = data.draw(st.sampled_from(ordered_pools), label="pool")
    note(f"epoch plan (None = whole, k = abandoned after k batches): {plan}")
    if persistent:
        run_epoch_plan(pool, example, plan)
    else:
        with fresh_pool(as_fork(pool.key)) as fresh:
            run_epoch_plan(fresh, example, plan)


def keep_last_batch(example: Example) -> Example:
    """drop_last could drop every batch of a short epoch, leaving no order to compare."""
    return replace(example, scheme=replace(example.scheme, drop_last=False))


@given(
    example=examples(kinds=["shuffle"], min_length=6, max_length=16).map(keep_last_batch),
    data=st.data(),
)
def test_a_seeded_shuffle_reorders_between_epochs(ordered_pools, example, data):
    """Three whole epochs of a seeded shuffle are each correct and not all in the same order
    (persistent loaders; the order is the sampler's, non-persistent ones run the test above)."""
    pool = data.draw(st.sampled_from(ordered_pools), label="pool")
    draws = run_epoch_plan(pool, example, [None, None, None])
    orders = [[i for batch in drawn for i in batch] for drawn in draws]
    # 6+ samples: three equal permutations by chance would take odds below 1 in 500 000.
    assert not orders[0] == orders[1] == orders[2], f"{example}: every epoch drew {orders[0]}"


class RecordingSampler(torch.utils.data.Sampler):
    """Wraps the sampler a DataLoader built for itself and records what it draws, per epoch."""

    def __init__(self, inner):
        self.inner, self.epochs = inner, []

    def __iter__(self):
        drawn = []
        self.epochs.append(drawn)
        for index in self.inner:
            drawn.append(index)
            yield index

    def __len__(self):
        return len(self.inner)


@given(
    length=st.integers(1, 30),
    batch_size=st.integers(1, 7),
    drop_last=st.booleans(),
    generator_seed=st.integers(0, 2**32),
    seed=st.integers(0, 2**32),
    workers=st.integers(1, 4),
    persistent=st.booleans(),
)
def test_the_loaders_own_shuffle_is_followed_epoch_after_epoch(
    length, batch_size, drop_last, generator_seed, seed, workers, persistent
):
    """DataLoader(shuffle=True, generator=g) builds its own RandomSampler, which also feeds the
    workers' base seed from g: persistent workers draw it once, so from epoch 2 on the order
    differs from a non-persistent loader's (a torch behaviour, not a bug). Each epoch is checked
    against what that epoch's sampler actually drew."""
    loader = make_loader(
        PlannedRange(length, seed, {0: 3, length - 1: 3}),
        batch_size=batch_size,
        shuffle=True,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(generator_seed),
        num_workers=workers,
        multiprocessing_context=multiprocessing.get_context("fork"),
        persistent_workers=persistent,
        timeout=DEFAULT_TIMEOUT_S,
    )
    recorder = RecordingSampler(loader.batch_sampler.sampler)
    loader.batch_sampler.sampler = recorder  # the BatchSampler DataLoader made reads this
    try:
        for epoch in range(3):
            delivered = list(loader)
            drawn = recorder.epochs[-1]
            batches = [drawn[k : k + batch_size] for k in range(0, len(drawn), batch_size)]
            if drop_last and batches and len(batches[-1]) < batch_size:
                batches.pop()
            check_in_order(
                delivered,
                oracle_batches(batches, seed),
                f"DataLoader(shuffle=True) fork-w{workers} persistent={persistent} "
                f"length={length} batch_size={batch_size} drop_last={drop_last} "
                f"generator_seed={generator_seed} seed={seed} epoch {epoch}",
            )
            assert sorted(drawn) == list(range(length)), f"epoch {epoch} drew {drawn}"
    finally:
        shutdown(loader)


@pytest.mark.parametrize(
    "start_method,workers",
    [(m, w) for m, w in (("spawn", 1), ("forkserver", 1)) if m in available_start_methods()],
)
def test_non_persistent_workers_start_clean_after_an_abandoned_epoch(start_method, workers):
    """Non-persistent spawn and forkserver loaders (new workers every epoch): an epoch abandoned
    midway, then a whole epoch, both exactly as drawn. One worker each: every epoch pays the
    start-up, and several non-persistent workers are covered with fork above."""
    example = Example(
        seed=5,
        scheme=Scheme("shuffle", length=14, batch_size=3, shuffle_seed=9),
        delays_ms={0: 40, 5: 20},
    )
    # Abandoned only once every worker has delivered: shutting down a spawn worker that was
    # still starting was seen to abort it ("terminate called without an active exception") on a
    # loaded machine, an intermittent start-up issue apart from what this property checks.
    with fresh_pool(PoolKey(start_method, workers, 2)) as pool:
        run_epoch_plan(pool, example, [workers, None])
