"""Distributed loading on torch.distributed itself: gloo on 127.0.0.1, one DataLoader per rank over
a DistributedSampler (see loaderbench/measuring/distributed.py).

Ranks started with spawn (what mp.spawn does, and what CUDA needs) import torch, about 2 s each
here; forked ranks start in milliseconds. So one world runs spawned ranks, to cover that path, and
the others fork (the start method changes nothing once the ranks are up).
"""

from collections import Counter

import pytest
import torch

from loaderbench.grid import Case
from loaderbench.measuring.distributed import Job, World, summarise
from loaderbench.measuring.measure import record_rates
from loaderbench.results import DISTRIBUTED, Recorder

pytestmark = pytest.mark.distributed

WORLD_SIZE = 2
#: Odd, so that with two ranks and drop_last=False exactly one index is padded (and with
#: drop_last=True exactly one is dropped).
ODD_LENGTH = 101
EPOCHS = 2


def content_job(num_workers: int, drop_last: bool) -> Job:
    case = Case("noop", num_workers, "fork" if num_workers else None, batch_size=8)
    return Job("noop", case, length=ODD_LENGTH, drop_last=drop_last, seed=7)


def pooled_ids(records: dict, epoch: int) -> Counter:
    return Counter(i for rank in records["ranks"] for i in rank["epochs"][epoch]["ids"])


def assert_covered_once(pooled: Counter, length: int, world_size: int, drop_last: bool) -> None:
    """Every index exactly once across ranks, except what the sampler documents: with
    drop_last=False the remainder is padded by repeating indices, with True it is dropped."""
    remainder = -length % world_size if not drop_last else length % world_size
    repeated = sorted(i for i, n in pooled.items() if n > 1)
    assert set(pooled) <= set(range(length))
    assert max(pooled.values()) <= 2
    if drop_last:
        assert not repeated and len(pooled) == length - remainder, (
            f"{len(pooled)} distinct of {length}, repeated {repeated[:5]}"
        )
    else:
        assert len(pooled) == length and len(repeated) == remainder, (
            f"{len(pooled)} distinct of {length}, repeated {repeated[:5]} (padding {remainder})"
        )


def assert_all_gone(world: World, job: Job) -> None:
    expected = world.world_size * (1 + job.case.num_workers)  # ranks and their workers
    assert len(world.pids_seen) == expected, f"saw {world.pids_seen}, expected {expected} processes"
    assert not world.left_behind, f"ranks exited leaving workers alive: {world.left_behind}"
    assert not world.survivors(), f"ranks or DataLoader workers still alive: {world.survivors()}"


@pytest.mark.parametrize(
    "num_workers, drop_last, rank_start",
    [(0, False, "spawn"), (2, False, "fork"), (2, True, "fork")],
    ids=["w0-padded-spawn", "w2-padded-fork", "w2-drop_last-fork"],
)
def test_ranks_load_each_sample_once_with_the_single_process_content(
    num_workers, drop_last, rank_start
):
    """Two ranks over two epochs: each rank loads exactly its sampler's shard in the sampler's
    order, with content equal to the single-process oracle, and together they cover the dataset
    once, padded or dropped as documented; set_epoch reshuffles in the real run too."""
    job = content_job(num_workers, drop_last)
    with World(job, WORLD_SIZE, start_method=rank_start) as world:
        records = world.run(EPOCHS)
    assert_all_gone(world, job)
    oracle = job.dataset()
    assert [r["rank"] for r in records["ranks"]] == list(range(WORLD_SIZE))
    for epoch in range(EPOCHS):
        for rank in records["ranks"]:
            seen = rank["epochs"][epoch]
            sampler = job.sampler(oracle, WORLD_SIZE, rank["rank"])
            sampler.set_epoch(epoch)
            assert seen["ids"] == list(sampler), f"rank {rank['rank']} epoch {epoch}: not its shard"
            expected = torch.stack([oracle.expected(i) for i in seen["ids"]])
            assert seen["content"].dtype == expected.dtype
            assert torch.equal(seen["content"], expected), (
                f"rank {rank['rank']} epoch {epoch}: content differs from dataset.expected"
            )
        assert_covered_once(pooled_ids(records, epoch), ODD_LENGTH, WORLD_SIZE, drop_last)
    orders = [[rank["epochs"][e]["ids"] for rank in records["ranks"]] for e in range(EPOCHS)]
    assert orders[0] != orders[1], "set_epoch did not change the order"


#: The benchmarked load: GIL-bound work (~1 ms a sample here) that one rank cannot share with
#: another, so a second rank on a second core can double the world's samples/s.
BENCH_PROFILE = "cpu"
BENCH_LENGTH = 256


@pytest.mark.parametrize("world_size", [1, 2], ids=["ws1", "ws2"])
def test_distributed_throughput(benchmark, world_size, lb_settings):
    """Aggregate samples/s of the world: every round is one epoch on all ranks at once, timed from
    the go to the last rank's done; the per-rank numbers go to extra_info."""
    if BENCH_PROFILE not in lb_settings.grid.profiles:
        pytest.skip(
            f"--lb-profiles leaves out {BENCH_PROFILE!r}, the distributed benchmark's profile"
        )
    job = Job(
        BENCH_PROFILE,
        Case(BENCH_PROFILE, 0),
        length=BENCH_LENGTH,
        cost_scale=lb_settings.cost_scale,
        keep_content=False,
        seed=3,
    )
    benchmark.group = f"{DISTRIBUTED}-{BENCH_PROFILE}"
    recorder = Recorder.of(benchmark)
    recorder.case(DISTRIBUTED, job.case.as_dict(), job.dataset().settings())
    recorder.numbers(world_size=world_size, backend="gloo", drop_last=job.drop_last)
    with World(job, world_size, start_method="fork") as world:
        world.epoch()  # starts every rank's loader and warms caches: not part of the timing
        benchmark.pedantic(world.epoch, rounds=lb_settings.rounds, iterations=1)
        records = world.finish()
    assert_all_gone(world, job)
    epochs = len(records["ranks"][0]["epochs"])
    for epoch in range(epochs):
        assert_covered_once(pooled_ids(records, epoch), BENCH_LENGTH, world_size, job.drop_last)
    summary = summarise(records)
    batches = sum(rank["epochs"][-1]["batches"] for rank in records["ranks"])
    record_rates(benchmark, batches, sum(pooled_ids(records, epochs - 1).values()))
    recorder.numbers(per_rank=summary["per_rank"], samples_per_s_in_ranks=summary["samples_per_s"])
