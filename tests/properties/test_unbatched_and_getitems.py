"""Property 3: no automatic batching (batch_size=None), and datasets that fetch whole batches
through __getitems__, deliver exactly what the oracle says, in order."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .checks import check_epochs
from .strategies import examples

pytestmark = pytest.mark.processes  # every test here starts worker processes


@given(example=examples(batched=False), epochs=st.integers(1, 2), data=st.data())
def test_without_automatic_batching_each_sample_arrives_alone_and_in_order(
    unbatched_pools, example, epochs, data
):
    """With batch_size=None the loader yields the samples themselves (converted, not collated),
    one per drawn index, in the sampler's order."""
    pool = data.draw(st.sampled_from(unbatched_pools), label="pool")
    check_epochs(pool, example, epochs)


@given(example=examples(), epochs=st.integers(1, 2), data=st.data())
def test_a_dataset_with_getitems_yields_the_oracles_batches_in_order(
    getitems_pools, example, epochs, data
):
    """A dataset implementing __getitems__ (fetching a batch in one call) gives the same batches
    as the per-sample oracle, in order."""
    pool = data.draw(st.sampled_from(getitems_pools), label="pool")
    check_epochs(pool, example, epochs)
