"""`--benchmark-json` published whole: staged while pytest runs, moved over the target at the end,
and only when the run was not interrupted.

pytest-benchmark writes --benchmark-json in place, at session end, even after Ctrl-C (then with
whatever ran so far). So the option is pointed at a hidden staging file beside the target before
pytest-benchmark reads it, and the previous results stay until a run that was never interrupted
has finished writing. Interrupted means: the session ended as interrupted, or a SIGINT arrived at
all (Python can swallow the KeyboardInterrupt it raises, e.g. inside a finaliser, and the session
then ends as if nothing happened).

pytest-benchmark 5.3 on holds the option as a path and opens it at the end. Before 5.3 argparse
opens it (mode wb) while parsing the command line, before any conftest is loaded: the option is
an open file, PATH is already empty, and the session writes into that file object and closes it.
There the file is closed and replaced by an open staging file, so PATH is still only ever
replaced whole; what cannot be kept is its previous content, emptied before this plugin runs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from loaderbench import storage

_STAGED = pytest.StashKey[tuple]()
_INTERRUPTED = pytest.StashKey[bool]()
_SESSION = pytest.StashKey[pytest.Session]()


def stage(config) -> None:
    """Redirect --benchmark-json to its staging file; call before pytest-benchmark's configure."""
    target = getattr(config.option, "benchmark_json", None)
    if not target:
        return
    if isinstance(target, (str, os.PathLike)):
        final = Path(target)
        staging = storage.staging_path(final)
        config.option.benchmark_json = staging
    else:  # pytest-benchmark < 5.3: a file argparse opened
        name = getattr(target, "name", None)
        if not isinstance(name, str) or name.startswith("<"):
            return  # `--benchmark-json=-` (stdout): nothing on disk to replace whole
        final = Path(name)
        staging = storage.staging_path(final)
        target.close()
        # Closed by pytest-benchmark once written, or by publish() below.
        config.option.benchmark_json = open(staging, "wb")
    opened_early = not isinstance(target, (str, os.PathLike))
    config.stash[_STAGED] = (staging, final, opened_early, _note_sigint(config))


def _note_sigint(config):
    """Remember any SIGINT, then let the handler that was there act on it. Returns that handler."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        return previous  # pytest.main in a thread: signals are the main thread's business

    def noted(signum, frame):
        config.stash[_INTERRUPTED] = True
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, noted)
    return previous


def session_ended(session: pytest.Session, exitstatus) -> None:
    session.config.stash[_SESSION] = session
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        session.config.stash[_INTERRUPTED] = True


def publish(config) -> None:
    """Move the staged results over the target, or drop them after an interruption."""
    staged = config.stash.get(_STAGED, None)
    if staged is None:
        return
    staging, final, opened_early, previous_handler = staged
    signal.signal(signal.SIGINT, previous_handler)
    handle = config.option.benchmark_json
    if opened_early and not handle.closed:
        # pytest-benchmark < 5.3 closes the file once it has written it: still open means it
        # wrote nothing (no benchmark ran), as 5.3 then creates no file at all.
        handle.close()
        staging.unlink(missing_ok=True)
    if config.stash.get(_INTERRUPTED, False):
        staging.unlink(missing_ok=True)
        kept = "emptied as pytest started (pytest-benchmark < 5.3)" if opened_early else "as it was"
        print(f"loaderbench: run interrupted; {final} left {kept}", file=sys.stderr)
        # A swallowed KeyboardInterrupt ends the session as passed: the exit status must still
        # say that this run's results were dropped, or a caller (`loaderbench baseline`, a CI
        # step) reads the old file, or none, as this run's.
        session = config.stash.get(_SESSION, None)
        if session is not None and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
    else:
        storage.publish(staging, final)
