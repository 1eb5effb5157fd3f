"""Property 1: a map-style loader with in_order=True yields exactly the oracle's batches, in order."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .checks import check_epochs
from .pools import as_fork, fresh_pool
from .strategies import Example, Scheme, examples

pytestmark = pytest.mark.processes  # every test here starts worker processes


@given(example=examples(), persistent=st.booleans(), epochs=st.integers(1, 2), data=st.data())
def test_every_epoch_is_the_collation_of_the_drawn_indices_in_order(
    ordered_pools, example, persistent, epochs, data
):
    """Any length (0 included), batch size, drop_last, sampler or batch sampler, worker count,
    start method and prefetch factor, with samples finishing out of order: each epoch delivers
    exactly the oracle's batches in the sampler's order, and nothing more."""
    pool = data.draw(st.sampled_from(ordered_pools), label="pool")
    if persistent:
        check_epochs(pool, example, epochs)
    else:
        # A non-persistent loader starts workers on every epoch: fork keeps that affordable per
        # example (test_epochs.py runs non-persistent spawn and forkserver loaders).
        with fresh_pool(as_fork(pool.key)) as fresh:
            check_epochs(fresh, example, epochs)


def test_a_batch_overtaken_by_the_ones_behind_it_is_still_delivered_first(ordered_pools):
    """The deterministic case of the property above: the first batch is slow (it finishes last,
    as test_unordered.py shows), yet every in-order loader delivers it first."""
    example = Example(
        seed=11, scheme=Scheme("sequential", length=12, batch_size=2), delays_ms={0: 300}
    )
    for pool in ordered_pools:
        check_epochs(pool, example)
