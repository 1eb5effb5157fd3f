"""Publishing --benchmark-json (loaderbench/suite/publish.py) when a SIGINT was swallowed: the run
passed as far as pytest knows, yet its results are dropped, and the exit status says so."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from loaderbench.suite import publish


def test_a_swallowed_interrupt_drops_the_results_and_ends_the_run_as_interrupted(tmp_path):
    final = tmp_path / "latest.json"
    final.write_text("previous")
    config = SimpleNamespace(
        stash=pytest.Stash(), option=SimpleNamespace(benchmark_json=str(final))
    )
    before = signal.getsignal(signal.SIGINT)
    publish.stage(config)
    try:
        staged = config.option.benchmark_json
        assert staged != str(final)
        with open(staged, "w") as f:
            f.write("this run's, incomplete")
        noted = signal.getsignal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):  # the handler notes it, then raises as Python would
            noted(signal.SIGINT, None)  # type: ignore[operator]
        # ... and the KeyboardInterrupt was swallowed: the session ends as passed.
        session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
        publish.session_ended(session, pytest.ExitCode.OK)
        publish.publish(config)
    finally:
        signal.signal(signal.SIGINT, before)
    assert final.read_text() == "previous"
    assert session.exitstatus == pytest.ExitCode.INTERRUPTED
    assert list(tmp_path.iterdir()) == [final]


def test_an_uninterrupted_run_is_published_and_keeps_its_status(tmp_path):
    final = tmp_path / "latest.json"
    config = SimpleNamespace(
        stash=pytest.Stash(), option=SimpleNamespace(benchmark_json=str(final))
    )
    before = signal.getsignal(signal.SIGINT)
    publish.stage(config)
    try:
        with open(config.option.benchmark_json, "w") as f:
            f.write("this run's")
        session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
        publish.session_ended(session, pytest.ExitCode.OK)
        publish.publish(config)
    finally:
        signal.signal(signal.SIGINT, before)
    assert final.read_text() == "this run's"
    assert session.exitstatus == pytest.ExitCode.OK
