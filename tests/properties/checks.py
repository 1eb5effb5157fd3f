"""Running an example through a pool and holding every epoch to the oracle."""

from __future__ import annotations

from hypothesis import currently_in_test_context, note

from .oracle import check_in_order, check_same_multiset, oracle_batches
from .pools import Pool, reference_epoch
from .strategies import Example


def context(pool: Pool, example: Example, epoch: int, extra: str = "") -> str:
    """Everything needed to reproduce a failure, on one line."""
    return f"loader {pool!r} epoch {epoch} example {example}{extra}"


def check_epochs(pool: Pool, example: Example, epochs: int = 1) -> list[list]:
    """Run ``epochs`` whole epochs; each must be the oracle's batches for that epoch's draws
    (in order, or as a multiset for an unordered loader) and match ``num_workers=0`` fed the same
    draws. Returns the draws of every epoch."""
    pool.use(example)
    if currently_in_test_context():
        note(f"loader {pool!r}; {example}")
    draws = []
    for epoch in range(epochs):
        delivered, drawn = pool.epoch()
        check_epoch(pool, example, epoch, delivered, drawn)
        draws.append(drawn)
    return draws


def check_epoch(pool: Pool, example: Example, epoch: int, delivered: list, drawn: list) -> None:
    expected = oracle_batches(drawn, example.seed)
    if pool.key.in_order:
        check_in_order(delivered, expected, context(pool, example, epoch))
        check_in_order(
            delivered,
            reference_epoch(pool.key, drawn, example.seed),
            context(pool, example, epoch, " (against num_workers=0)"),
        )
    else:
        check_same_multiset(delivered, expected, context(pool, example, epoch))


def check_partial_epoch(pool: Pool, example: Example, epoch: int, limit: int) -> None:
    """The first ``limit`` batches of an epoch that is then abandoned are the oracle's first ones."""
    delivered, drawn = pool.epoch(limit)
    expected = oracle_batches(drawn[: len(delivered)], example.seed)
    check_in_order(
        delivered, expected, context(pool, example, epoch, f" (abandoned after {limit})")
    )
    if len(delivered) != min(limit, len(drawn)):
        raise AssertionError(
            f"{context(pool, example, epoch)}: {len(delivered)} batches delivered "
            f"before abandoning, {min(limit, len(drawn))} drawn"
        )
