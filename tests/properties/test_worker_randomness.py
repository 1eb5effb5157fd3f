"""Property 6: worker randomness. Within an epoch the torch, random and numpy draws of different
workers differ; the same generator seed gives the same draws (whatever the start method);
worker_init_fn runs once per worker, with ids 0..n-1, and sees its get_worker_info()."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .oracle import first_difference
from .pools import POOL_GENERATOR_SEED, Pool, PoolKey, as_fork, fresh_pool
from .strategies import Example, Scheme

pytestmark = pytest.mark.processes  # every test here starts worker processes

RNGS = ("torch", "random", "numpy")


def probe_epoch(pool: Pool, batches: int, batch_size: int = 2) -> list[dict]:
    """One epoch of probe samples; each reports its worker, what worker_init_fn saw and draws."""
    pool.use(Example(0, Scheme("sequential", batches * batch_size, batch_size)), probe=True)
    delivered, _ = pool.epoch()
    reports = []
    for batch in delivered:
        for k in range(len(batch["index"])):
            reports.append(
                {
                    "worker": batch["worker"][k].item(),
                    "init_calls": batch["init_calls"][k].item(),
                    "init_worker_id": batch["init_worker_id"][k].item(),
                    "init_info": tuple(field[k].item() for field in batch["init_info"]),
                    "first_draws": tuple(field[k].item() for field in batch["first_draws"]),
                    "draws": tuple(field[k].item() for field in batch["draws"]),
                }
            )
    return reports


def check_worker_randomness(reports: list[dict], num_workers: int, context: str) -> None:
    """Everything property 6 asks of one epoch's probe reports."""
    by_worker = defaultdict(list)
    for report in reports:
        by_worker[report["worker"]].append(report)
    assert sorted(by_worker) == list(range(num_workers)), (
        f"{context}: samples came from workers {sorted(by_worker)}, expected 0..{num_workers - 1}"
    )
    seeds = {}
    for worker, seen in by_worker.items():
        for report in seen:
            assert report["init_calls"] == 1, (
                f"{context}: worker_init_fn ran {report['init_calls']} times in worker {worker}"
            )
            assert report["init_worker_id"] == worker, (
                f"{context}: worker {worker}'s worker_init_fn got id {report['init_worker_id']}"
            )
            info_id, info_workers, info_seed = report["init_info"]
            assert (info_id, info_workers) == (worker, num_workers), (
                f"{context}: worker_init_fn in worker {worker} saw get_worker_info() "
                f"id={info_id} num_workers={info_workers} (-1: no worker info)"
            )
            seeds[worker] = info_seed
    assert len(set(seeds.values())) == num_workers, f"{context}: worker seeds {seeds} repeat"
    for position, rng in enumerate(RNGS):
        first = {w: seen[0]["first_draws"][position] for w, seen in by_worker.items()}
        assert len(set(first.values())) == num_workers, (
            f"{context}: the first {rng} draw is the same in several workers: {first}"
        )
        owners = {}
        for worker, seen in by_worker.items():
            for report in seen:
                value = report["draws"][position]
                assert owners.setdefault(value, worker) == worker, (
                    f"{context}: workers {owners[value]} and {worker} both drew {value} from {rng}"
                )


def test_workers_of_every_pool_draw_differently_and_init_once(ordered_pools, unordered_pools):
    """In every session pool (fork, spawn, forkserver; ordered or not), after all the epochs the
    other properties ran: worker_init_fn ran exactly once per worker with its own id and worker
    info, and the workers' torch, random and numpy streams differ."""
    for pool in [*ordered_pools, *unordered_pools]:
        reports = probe_epoch(pool, batches=3 * pool.key.num_workers)
        check_worker_randomness(reports, pool.key.num_workers, f"loader {pool!r}")


def test_the_same_generator_seed_gives_the_same_worker_draws_whatever_the_start_method(
    ordered_pools, unordered_pools
):
    """Each pool's workers started from a generator seeded with POOL_GENERATOR_SEED: their first
    draws equal those of a fresh fork loader with that seed and as many workers."""
    for pool in [*ordered_pools, *unordered_pools]:
        with fresh_pool(as_fork(pool.key), generator_seed=POOL_GENERATOR_SEED) as fork:
            reference = probe_epoch(fork, batches=pool.key.num_workers)
        pool_first = {
            r["worker"]: r["first_draws"] for r in probe_epoch(pool, batches=pool.key.num_workers)
        }
        fork_first = {r["worker"]: r["first_draws"] for r in reference}
        assert pool_first == fork_first, (
            f"loader {pool!r} vs fresh fork loader, generator seed {POOL_GENERATOR_SEED}: first "
            f"draws (torch, random, numpy) per worker {pool_first} != {fork_first}"
        )


@given(
    generator_seed=st.integers(0, 2**63 - 1),
    workers=st.integers(1, 4),
    batches=st.integers(1, 6),
    batch_size=st.integers(1, 4),
)
def test_two_runs_with_the_same_generator_seed_draw_the_same(
    generator_seed, workers, batches, batch_size
):
    """Two fresh loaders seeded alike deliver identical probe reports, draw for draw, and each
    run's workers draw differently from one another."""
    key = PoolKey("fork", workers, 2)
    runs = []
    for _ in range(2):
        with fresh_pool(key, generator_seed=generator_seed) as pool:
            runs.append(probe_epoch(pool, max(batches, workers), batch_size))
    context = f"fork-w{workers} generator_seed={generator_seed} batch_size={batch_size}"
    difference = first_difference(runs[0], runs[1], "reports")
    assert difference is None, f"{context}: two runs differ at {difference}"
    check_worker_randomness(runs[0], workers, context)
