"""Shutting loaders down: a worker that aborts while exiting is reported, anything else raised."""

import pytest

from loaderbench.measuring.loaders import WorkerAbortedOnExit, shutdown


class FakeIterator:
    """Stands in for a multi-worker iterator whose shutdown meets the given error."""

    def __init__(self, error):
        self.error = error
        self._workers = []

    def _shutdown_workers(self):
        raise self.error


def test_a_worker_aborting_on_exit_is_a_warning_not_a_failure():
    aborted = RuntimeError("DataLoader worker (pid 4242) is killed by signal: Aborted. ")
    with pytest.warns(WorkerAbortedOnExit, match="pid 4242"):
        shutdown(FakeIterator(aborted))


@pytest.mark.parametrize(
    "message",
    [
        "DataLoader worker (pid 4242) is killed by signal: Killed. ",
        "DataLoader worker (pid(s) 4242) exited unexpectedly",
    ],
)
def test_any_other_worker_failure_at_shutdown_is_raised(message):
    with pytest.raises(RuntimeError, match="4242"):
        shutdown(FakeIterator(RuntimeError(message)))
