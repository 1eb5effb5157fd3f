"""A state machine drives the session's in-order pools and the oracle together through new
examples, whole epochs, abandoned epochs and switches between loaders: every batch any loader
delivers, in any such sequence, is the oracle's."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from .checks import check_epoch, check_partial_epoch
from .strategies import examples

pytestmark = pytest.mark.processes  # every test here starts worker processes


class LoaderAndOracle(RuleBasedStateMachine):
    pools: list = []  # set by the test from its fixture before the machine runs

    def __init__(self):
        super().__init__()
        self.pool = self.pools[0]
        self.example = None
        self.epoch = 0

    @rule(example=examples(max_length=24))
    def new_example(self, example):
        self.example, self.epoch = example, 0
        self.pool.use(example)

    @rule(data=st.data())
    def switch_loader(self, data):
        """Another pool takes over the current example (its workers have served others since)."""
        self.pool = data.draw(st.sampled_from(self.pools), label="pool")
        if self.example is not None:
            self.pool.use(self.example)

    @precondition(lambda self: self.example is not None)
    @rule()
    def whole_epoch(self):
        delivered, drawn = self.pool.epoch()
        check_epoch(self.pool, self.example, self.epoch, delivered, drawn)
        self.epoch += 1

    @precondition(lambda self: self.example is not None)
    @rule(limit=st.integers(0, 3))
    def abandoned_epoch(self, limit):
        check_partial_epoch(self.pool, self.example, self.epoch, limit)
        self.epoch += 1


def run_machine(pools, machine_settings) -> None:
    """Run the machine over ``pools``, then one whole epoch on each pool, once per test rather than
    per example. A persistent iterator keeps the batches an abandoned epoch had prefetched, each
    holding a shared-memory descriptor, until its next epoch starts; a run ending on an abandoned
    epoch would leave them open past the test (its leak check failed with 9)."""
    LoaderAndOracle.pools = pools
    try:
        run_state_machine_as_test(LoaderAndOracle, settings=machine_settings)
    finally:
        for pool in pools:
            pool.wait_ready()


def test_any_sequence_of_epochs_and_abandoned_iterators_stays_exact(ordered_pools):
    """Runs the machine with the profile's example count, a few steps per run."""
    run_machine(ordered_pools, settings(stateful_step_count=8))
