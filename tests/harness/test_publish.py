"""Publishing --benchmark-json (loaderbench/suite/publish.py) when a SIGINT was swallowed: the run
passed as far as pytest knows, yet its results are dropped, and the exit status says so."""

from __future__ import annotations

import signal
from pathlib import Path
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


@pytest.fixture
def opened_by_argparse(tmp_path):
    """pytest-benchmark < 5.3: --benchmark-json is an argparse.FileType('wb'), so the option
    holds ``latest.json`` already opened (and emptied); SIGINT's handler restored afterwards."""
    final = tmp_path / "latest.json"
    opened = open(final, "wb")
    config = SimpleNamespace(stash=pytest.Stash(), option=SimpleNamespace(benchmark_json=opened))
    before = signal.getsignal(signal.SIGINT)
    publish.stage(config)
    yield config, final, opened
    signal.signal(signal.SIGINT, before)


def test_an_open_benchmark_json_is_swapped_for_an_open_staging_file(opened_by_argparse):
    """The session writes into the file object it finds in the option and closes it, as
    pytest-benchmark 5.1 and 5.2 do; the target is replaced whole at the end."""
    config, final, opened = opened_by_argparse
    assert opened.closed
    handle = config.option.benchmark_json
    assert Path(handle.name) != final and Path(handle.name).parent == final.parent
    with handle as fh:
        fh.write(b'{"benchmarks": []}')
    assert final.read_bytes() == b""
    session = end_session(config)
    assert final.read_bytes() == b'{"benchmarks": []}'
    assert session.exitstatus == pytest.ExitCode.OK
    assert list(final.parent.iterdir()) == [final]


def test_an_open_benchmark_json_nothing_was_written_to_leaves_no_staging_file(opened_by_argparse):
    config, final, _ = opened_by_argparse
    end_session(config)
    assert config.option.benchmark_json.closed
    assert list(final.parent.iterdir()) == [final] and final.read_bytes() == b""


def test_an_interrupted_run_into_an_open_file_drops_what_it_wrote(opened_by_argparse, capsys):
    config, final, _ = opened_by_argparse
    with config.option.benchmark_json as fh:
        fh.write(b"half a run")
    session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.INTERRUPTED)
    publish.session_ended(session, pytest.ExitCode.INTERRUPTED)
    publish.publish(config)
    assert list(final.parent.iterdir()) == [final] and final.read_bytes() == b""
    assert "emptied as pytest started (pytest-benchmark < 5.3)" in capsys.readouterr().err


def test_stdout_as_benchmark_json_is_left_to_pytest_benchmark():
    """``--benchmark-json=-`` is argparse's stdout: there is no file on disk to stage."""
    stdout = SimpleNamespace(name="<stdout>", closed=False)
    config = SimpleNamespace(stash=pytest.Stash(), option=SimpleNamespace(benchmark_json=stdout))
    publish.stage(config)
    assert config.option.benchmark_json is stdout
    publish.publish(config)
