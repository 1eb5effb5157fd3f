"""Property 2: with in_order=False each epoch yields the drawn batches, each exactly once."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .checks import check_epochs
from .strategies import Example, Scheme, examples

pytestmark = pytest.mark.processes  # every test here starts worker processes


@given(example=examples(), epochs=st.integers(1, 2), data=st.data())
def test_every_epoch_yields_the_drawn_batches_each_exactly_once(
    unordered_pools, example, epochs, data
):
    """Whatever order batches finish in, an unordered loader delivers the multiset of the oracle's
    batches: nothing lost, nothing repeated, nothing altered."""
    pool = data.draw(st.sampled_from(unordered_pools), label="pool")
    check_epochs(pool, example, epochs)


def test_slow_samples_really_make_batches_finish_out_of_order(unordered_pools):
    """The delays the properties draw do reorder completion: a slow first batch is overtaken, so
    an unordered loader delivers it late (otherwise the in-order property would test nothing)."""
    example = Example(
        seed=7, scheme=Scheme("sequential", length=12, batch_size=2), delays_ms={0: 300}
    )
    for pool in unordered_pools:
        pool.use(example)
        delivered, drawn = pool.epoch()
        first_indices = [batch["index"][0].item() for batch in delivered]
        assert first_indices != [batch[0] for batch in drawn], (
            f"{pool!r}: batches arrived in draw order {first_indices} despite a slow first batch"
        )
        assert first_indices[0] != 0, f"{pool!r}: the slow batch came first: {first_indices}"
