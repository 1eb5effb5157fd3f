"""The properties can fail: each deliberate breakage below is caught by the property that guards
against it. Breakages wrap a pool's output, its workers' start or its dataset; nothing here is
production code.

Each Hypothesis-driven case runs the property's own check over the property's own strategies,
derandomised and without shrinking, until the first failure, and prints how many examples that
took (see them with ``-s``).
"""

from __future__ import annotations

import multiprocessing
import random
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from bench_datasets import ShardedIterable
from bench_datasets.planned import (
    PlannedBatchDataset,
    PlannedRange,
    planned_sample,
    record_worker_start,
)
from loaderbench.measuring.loaders import (
    DEFAULT_TIMEOUT_S,
    make_loader,
    resolve_loader,
    running,
    using,
)

from .agreement import check_iterable_agrees, check_map_style_agrees, map_style_pool
from .checks import check_epochs
from .findings import STATEFUL_MISSING
from .oracle import LoaderMismatch, check_iterable_loader
from .pools import Pool, PoolKey, fresh_pool
from .strategies import examples
from .test_epochs import epoch_plans, run_epoch_plan
from .test_worker_randomness import check_worker_randomness, probe_epoch

pytestmark = pytest.mark.processes  # every test here starts worker processes

#: Enough for every breakage to be found; each stops at its first failure.
SEARCH = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.generate],
)


def examples_until_caught(prop, error=LoaderMismatch, **strategies) -> tuple[int, str]:
    """Run ``prop`` under Hypothesis until it raises ``error``; (examples tried, message)."""
    tried = []

    @SEARCH
    @given(**strategies)
    def search(**drawn):
        tried.append(1)
        prop(**drawn)

    with pytest.raises(error) as caught:
        search()
    return len(tried), str(caught.value)


class Tampered:
    """A pool whose delivered batches pass through ``tamper(delivered, epoch, memory)`` first;
    ``memory`` is the tamperer's own, kept for one example."""

    def __init__(self, pool: Pool, tamper):
        self.pool, self.tamper, self.key = pool, tamper, pool.key
        self.epochs, self.memory = 0, {}

    def __repr__(self) -> str:
        return f"{self.pool!r} tampered by {self.tamper.__name__}"

    def use(self, example, **options):
        self.pool.use(example, **options)
        self.epochs, self.memory = 0, {}
        return self

    def epoch(self, limit=None):
        delivered, drawn = self.pool.epoch(limit)
        delivered = self.tamper(list(delivered), self.epochs, self.memory)
        self.epochs += 1
        return delivered, drawn

    def wait_ready(self):
        self.pool.wait_ready()


def swap_first_two(batches, epoch, memory):
    if len(batches) >= 2:
        batches[0], batches[1] = batches[1], batches[0]
    return batches


def drop_last_batch(batches, epoch, memory):
    return batches[:-1]


def repeat_first_batch(batches, epoch, memory):
    return batches[:1] + batches


def alter_one_value(batches, epoch, memory):
    """One token of one sample of the first batch off by one."""
    if batches:
        tokens = batches[0]["tokens"].clone()
        tokens[0, 0] += 1
        batches[0] = {**batches[0], "tokens": tokens}
    return batches


def widen_one_dtype(batches, epoch, memory):
    """float32 to float64: equal under allclose, caught only because dtypes must match."""
    if batches:
        batches[0] = {**batches[0], "features": batches[0]["features"].double()}
    return batches


def tamper_case(ordered: bool, tamper, reported: str):
    return pytest.param(
        ordered, tamper, reported, id=tamper.__name__ + ("" if ordered else "-unordered")
    )


@pytest.mark.parametrize(
    "ordered,tamper,reported",
    [
        tamper_case(True, swap_first_two, "first differing batch"),
        tamper_case(True, drop_last_batch, "is missing batch"),
        tamper_case(True, alter_one_value, "['tokens']: values differ"),
        tamper_case(True, widen_one_dtype, "dtype torch.float64 != torch.float32"),
        tamper_case(False, drop_last_batch, "omitted (1x)"),
        tamper_case(False, repeat_first_batch, "duplicated (1x extra)"),
        tamper_case(False, alter_one_value, "unexpected (1x extra)"),
    ],
)
def test_properties_1_and_2_catch_a_loader_that_tampers_with_its_batches(
    ordered_pools, unordered_pools, ordered, tamper, reported
):
    """Reordered, dropped, duplicated or altered batches fail the in-order property (1) or the
    multiset property (2), and the report says which batch and how."""
    pools = ordered_pools if ordered else unordered_pools

    def prop(example, data):
        pool = data.draw(st.sampled_from(pools), label="pool")
        check_epochs(Tampered(pool, tamper), example)

    tried, message = examples_until_caught(prop, example=examples(), data=st.data())
    assert reported in message, message
    print(
        f"\n{tamper.__name__} ({'in order' if ordered else 'unordered'}): caught after {tried} "
        f"examples\n{message.splitlines()[0]}\n{message.splitlines()[1]}"
    )


def replay_first_epoch(batches, epoch, memory):
    """A loader that ignores later draws and replays its first epoch (as if persistent workers
    kept the first epoch's order)."""
    return memory.setdefault("first", batches)


def carry_over_leftovers(batches, epoch, memory):
    """A loader that lets the last batch of one epoch (abandoned or not) leak into the next."""
    carried = memory.pop("last", [])
    memory["last"] = batches[-1:]
    return carried + batches


@pytest.mark.parametrize(
    "tamper", [replay_first_epoch, carry_over_leftovers], ids=lambda t: t.__name__
)
def test_property_4_catches_stale_epochs(ordered_pools, tamper):
    """An epoch that replays an earlier one, or starts with a batch from an abandoned epoch,
    fails the epochs property (4)."""

    def prop(example, plan, data):
        pool = data.draw(st.sampled_from(ordered_pools), label="pool")
        run_epoch_plan(Tampered(pool, tamper), example, plan)

    tried, message = examples_until_caught(
        prop, example=examples(), plan=epoch_plans, data=st.data()
    )
    print(f"\n{tamper.__name__}: caught after {tried} examples\n{message.splitlines()[1]}")


class ReversingBatchDataset(PlannedBatchDataset):
    """A __getitems__ that returns the batch's samples reversed."""

    def __getitems__(self, plans):
        return super().__getitems__(plans)[::-1]


def test_property_3_catches_a_getitems_that_reorders():
    """A dataset whose __getitems__ reverses each batch fails the __getitems__ property (3)."""
    key = PoolKey("fork", 2, 2, getitems=True)
    with mock.patch.object(Pool, "dataset_for", staticmethod(lambda key: ReversingBatchDataset())):
        with fresh_pool(key) as pool:
            tried, message = examples_until_caught(
                lambda example: check_epochs(pool, example), example=examples()
            )
    print(f"\nreversing __getitems__: caught after {tried} examples\n{message.splitlines()[1]}")


class UnshardedIterable(ShardedIterable):
    """Ignores get_worker_info(): every worker streams the whole dataset."""

    def indices(self) -> range:
        return range(len(self.dataset))


def test_property_5_reports_an_iterable_that_does_not_shard_with_its_duplicates():
    """The iterable checker names the duplicated samples of a dataset that does not shard."""

    def prop(length, workers, batch_size, seed):
        loader = make_loader(
            UnshardedIterable(PlannedRange(length, seed)),
            batch_size=batch_size,
            num_workers=workers,
            timeout=DEFAULT_TIMEOUT_S,
            multiprocessing_context=multiprocessing.get_context("fork"),
        )
        with running(loader):
            check_iterable_loader(
                loader,
                [planned_sample(seed, i) for i in range(length)],
                f"UnshardedIterable({length}) fork-w{workers}",
            )

    tried, message = examples_until_caught(
        prop,
        length=st.integers(0, 20),
        workers=st.integers(1, 4),
        batch_size=st.one_of(st.none(), st.integers(1, 5)),
        seed=st.integers(0, 2**32),
    )
    assert "duplicated" in message and "'index':" in message, message
    print(
        f"\nunsharded iterable: caught after {tried} examples\n"
        + "\n".join(message.splitlines()[1:3])
    )


def seed_alike(worker_id):
    """A worker_init_fn that gives every worker the same RNG state."""
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    record_worker_start(worker_id)


def hide_worker_info(worker_id):
    """A worker_init_fn that cannot see its worker info."""
    with mock.patch("bench_datasets.planned.get_worker_info", return_value=None):
        record_worker_start(worker_id)


def record_twice(worker_id):
    record_worker_start(worker_id)
    record_worker_start(worker_id)


@pytest.mark.parametrize(
    "init_fn,expected",
    [
        (seed_alike, "is the same in several workers"),
        (hide_worker_info, "id=-1"),
        (record_twice, "ran 2 times"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_property_6_catches_workers_seeded_alike_or_blind(init_fn, expected):
    """Workers seeded alike, a worker_init_fn without worker info, or one that runs twice, fail
    the worker-randomness property (6)."""
    with fresh_pool(PoolKey("fork", 2, 2), worker_init_fn=init_fn) as pool:
        reports = probe_epoch(pool, batches=4)
    with pytest.raises(AssertionError, match=expected) as caught:
        check_worker_randomness(reports, 2, f"fork-w2 with {init_fn.__name__}")
    print(f"\n{init_fn.__name__}: {caught.value}")


class WorkerStamped(torch.utils.data.Dataset):
    """A dataset whose samples depend on the worker that loads them."""

    def __len__(self):
        return 30

    def __getitem__(self, index):
        info = torch.utils.data.get_worker_info()
        return {"x": torch.tensor([index, 0 if info is None else info.id])}


class UnshardedStream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter(range(10))


def test_property_7_catches_a_user_dataset_that_differs_with_workers():
    """A map-style dataset whose content depends on the worker, and an iterable that does not
    shard, fail the user-dataset property (7)."""
    with map_style_pool(WorkerStamped(), "fork", 2) as (loader, sampler):
        tried, message = examples_until_caught(
            lambda indices, batch_size: check_map_style_agrees(
                loader, sampler, indices, batch_size, False, "WorkerStamped"
            ),
            indices=st.lists(st.integers(0, 29), max_size=20),
            batch_size=st.integers(1, 4),
        )
    print(f"\nworker-dependent dataset: caught after {tried} examples\n{message.splitlines()[1]}")
    with pytest.raises(LoaderMismatch, match="duplicated"):
        check_iterable_agrees(UnshardedStream(), "fork", 2, 3, "UnshardedStream")


def test_the_state_machine_catches_a_batch_carried_over_between_epochs(ordered_pools):
    """The loader state machine fails on a loader that carries a batch into the next epoch."""
    from .test_loader_state_machine import run_machine

    with pytest.raises(LoaderMismatch) as caught:
        run_machine(
            [Tampered(pool, carry_over_leftovers) for pool in ordered_pools],
            settings(SEARCH, stateful_step_count=8),
        )
    print(f"\nstate machine, carry_over_leftovers: {str(caught.value).splitlines()[1]}")


class ExtraDrawWithWorkers(torch.utils.data.DataLoader):
    """A DataLoader that takes one value more from its generator when it has workers, so that its
    shuffle order depends on num_workers (what torch refused in pytorch/pytorch#12935)."""

    def _get_iterator(self):
        if self.num_workers and self.generator is not None:
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return super()._get_iterator()


def test_property_8_catches_an_order_that_depends_on_num_workers():
    """A loader whose seeded shuffle depends on num_workers fails the same-epochs property (8)."""
    from .test_same_epochs_whatever_the_workers import check_same_epochs, runs

    with using(resolve_loader(f"{__name__}:ExtraDrawWithWorkers")):
        tried, message = examples_until_caught(check_same_epochs, run=runs())
    assert "against num_workers=0" in message, message
    print(f"\nextra draw with workers: caught after {tried} examples\n{message.splitlines()[0]}")


@pytest.mark.parametrize("breakage", ["first_batch_skipped", "last_batch_repeated"])
def test_property_9_catches_a_resume_that_skips_or_repeats_a_batch(breakage):
    """A StatefulDataLoader resume that loses the first batch after it, or repeats the last one
    before it, fails the resume state machine (9)."""
    pytest.importorskip("torchdata.stateful_dataloader", reason=STATEFUL_MISSING)
    from . import test_resume

    with pytest.raises(LoaderMismatch) as caught:
        test_resume.run_machine(
            test_resume.setups(max_workers=0),  # the breakage is in the resume, not the workers
            settings(SEARCH, stateful_step_count=6),
            after_resume=getattr(test_resume, breakage),
        )
    print(f"\nresume, {breakage}: {str(caught.value).splitlines()[0]}")
