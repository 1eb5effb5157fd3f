"""Session pools for the properties.

Which pools exist is declared here, as data. Worker count and start method are fixed once a pool's
workers start, so each property's Hypothesis draws the pool from its family together with
everything else (sampler, length, batch size, drop_last, delays, seeds, epochs); the families
cover fork, spawn and forkserver and 1 to 4 workers between them. Pools start side by side in
fixture set-up, so worker start-up is paid once per session and never inside a test.
"""

from __future__ import annotations

import pytest

from loaderbench.measuring.loaders import current_loader
from loaderbench.suite.plugin import lb_state

from .findings import FINDINGS
from .oracle import LoaderMismatch
from .pools import PoolKey, started_pools

ORDERED = [
    PoolKey("fork", 1, 1),
    PoolKey("fork", 4, 3),
    PoolKey("spawn", 2, 2),
    PoolKey("forkserver", 3, 1),
]
UNORDERED = [
    PoolKey("fork", 3, 2, in_order=False),
    PoolKey("spawn", 2, 1, in_order=False),
    PoolKey("forkserver", 2, 3, in_order=False),
]
# One worker each for spawn and forkserver here: fork covers several, and start-up is the cost.
UNBATCHED = [PoolKey("fork", 2, 2, batched=False), PoolKey("forkserver", 1, 2, batched=False)]
GETITEMS = [PoolKey("fork", 3, 1, getitems=True), PoolKey("spawn", 1, 2, getitems=True)]


def session_pools(keys: list[PoolKey]):
    """A session fixture yielding started persistent pools for ``keys``, shut down at the end."""

    @pytest.fixture(scope="session")
    def pools():
        with started_pools(keys) as started:
            yield started

    return pools


ordered_pools = session_pools(ORDERED)
unordered_pools = session_pools(UNORDERED)
unbatched_pools = session_pools(UNBATCHED)
getitems_pools = session_pools(GETITEMS)


def pytest_collection_modifyitems(config, items):
    """The findings of the loader class in use (findings.py), marked as expected failures."""
    found = FINDINGS.get(current_loader().spec, {})
    for item in items:
        reason = found.get(getattr(item, "originalname", item.name))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, raises=LoaderMismatch, reason=reason))


def pytest_generate_tests(metafunc):
    """``user_loader_key``: every (start method, num_workers > 0) of the selected grid, so that
    ``--lb-dataset`` is checked on the configurations the user benchmarks."""
    if "user_loader_key" in metafunc.fixturenames:
        grid = lb_state(metafunc.config).grid
        keys = [
            (method, workers)
            for method in grid.start_methods
            for workers in grid.workers
            if workers > 0
        ]
        metafunc.parametrize("user_loader_key", keys, ids=[f"{m}-w{w}" for m, w in keys])
