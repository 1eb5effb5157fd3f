"""Publishing --benchmark-json (loaderbench/suite/publish.py) when a SIGINT was swallowed: the run
passed as far as pytest knows, yet its results are dropped, and the exit status says so."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from loaderbench.suite import publish


@pytest.fixture
def staged(tmp_path):
    """A config whose --benchmark-json (``latest.json``, holding "previous") is staged, the
    staging file written as a run would; SIGINT's handler restored afterwards."""
    final = tmp_path / "latest.json"
    final.write_text("previous")
    config = SimpleNamespace(
        stash=pytest.Stash(), option=SimpleNamespace(benchmark_json=str(final))
    )
    before = signal.getsignal(signal.SIGINT)
    publish.stage(config)
    assert config.option.benchmark_json != str(final)
    with open(config.option.benchmark_json, "w") as f:
        f.write("this run's")
    yield config, final
    signal.signal(signal.SIGINT, before)


def end_session(config) -> SimpleNamespace:
    """The session ending as passed, then publishing; the session, for its exit status."""
    session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    publish.session_ended(session, pytest.ExitCode.OK)
    publish.publish(config)
    return session


def test_a_swallowed_interrupt_drops_the_results_and_ends_the_run_as_interrupted(staged):
    config, final = staged
    noted = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):  # the handler notes it, then raises as Python would
        noted(signal.SIGINT, None)  # type: ignore[operator]
    session = end_session(config)  # ... and the KeyboardInterrupt was swallowed
    assert final.read_text() == "previous"
    assert session.exitstatus == pytest.ExitCode.INTERRUPTED
    assert list(final.parent.iterdir()) == [final]


def test_an_uninterrupted_run_is_published_and_keeps_its_status(staged):
    config, final = staged
    session = end_session(config)
    assert final.read_text() == "this run's"
    assert session.exitstatus == pytest.ExitCode.OK
