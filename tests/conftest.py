"""The suite's two modes: ``make test`` runs everything; ``make test-fast`` (``--fast``) runs only
the pure-logic tests, those marked neither ``processes`` nor ``slow``, and checks that they start
no process.

A test (or a fixture it is the first to need) that starts a process in fast mode (subprocess,
multiprocessing, DataLoader workers, a fork) fails naming what it started: mark it ``processes``
(per test, or ``pytestmark`` per module) so that only ``make test`` runs it.
"""

from __future__ import annotations

import multiprocessing.process
import multiprocessing.util
import os
import signal
import subprocess
from pathlib import Path

import pytest

FAST_OPTION = "--fast"
MARKER = "processes"
SLOW = "slow"
TESTS = Path(__file__).parent
BENCHMARKS = TESTS / "benchmarks"


def pytest_addoption(parser):
    parser.addoption(
        FAST_OPTION,
        action="store_true",
        default=False,
        help=f"run only the tests marked neither {MARKER!r} nor {SLOW!r} (pure logic, no "
        "process started); a test that starts one anyway fails as mis-classified",
    )


def _is_platform_probe(args) -> bool:
    """``file -b <python>``: how platform.architecture() (pytest-benchmark's machine id) asks
    about the interpreter, a millisecond and no worker; let through."""
    return isinstance(args, (list, tuple)) and list(args[:2]) == ["file", "-b"]


class ProcessGuard:
    """While installed, every way of starting a process raises and is recorded."""

    def __init__(self):
        self.current = ""  # the running test's node id
        self.starts: list[tuple[str, str]] = []  # (test, what it started)
        self._undo: list[tuple[object, str, object]] = []

    def _refuse(self, what: str):
        self.starts.append((self.current, what))
        raise RuntimeError(
            f"{FAST_OPTION}: {self.current} started a process "
            f"({what}); a test that starts processes belongs to `make test` only: mark it "
            f"@pytest.mark.{MARKER}"
        )

    def _patch(self, owner, name: str, describe, allowed=lambda *a, **k: False) -> None:
        original = getattr(owner, name)
        guard = self

        def refused(*args, **kwargs):
            if allowed(*args, **kwargs):
                return original(*args, **kwargs)
            guard._refuse(describe(*args, **kwargs))

        self._undo.append((owner, name, original))
        setattr(owner, name, refused)

    def install(self) -> None:
        self._patch(
            subprocess.Popen,
            "__init__",
            lambda self, args, *a, **k: f"subprocess.Popen({args!r})",
            allowed=lambda self, args, *a, **k: _is_platform_probe(args),
        )
        self._patch(
            multiprocessing.process.BaseProcess,
            "start",
            lambda self: f"{type(self).__name__}.start() of {self.name}",
        )
        # How multiprocessing starts its helpers (forkserver, resource tracker).
        self._patch(
            multiprocessing.util,
            "spawnv_passfds",
            lambda path, args, passfds: f"multiprocessing helper {args!r}",
        )
        for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp"):
            if hasattr(os, name):
                self._patch(os, name, lambda *a, _name=name, **k: f"os.{_name}()")

    def uninstall(self) -> None:
        while self._undo:
            owner, name, original = self._undo.pop()
            setattr(owner, name, original)

    def starts_of(self, nodeid: str) -> list[str]:
        return [what for who, what in self.starts if who == nodeid]


_GUARD = pytest.StashKey[ProcessGuard]()


def pytest_configure(config):
    # The markers themselves are registered in pyproject.toml ([tool.pytest.ini_options]).
    # A suite started in the background by a shell without job control (`make test &` in a
    # script) inherits SIGINT ignored, and so would every process it starts: the Ctrl-C tests
    # (test_nothing_lost.py, test_publish.py) need it delivered as a terminal's Ctrl-C is.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if config.getoption(FAST_OPTION):
        config.stash[_GUARD] = ProcessGuard()


def pytest_collection_modifyitems(config, items):
    """Every test in tests/benchmarks is ``slow`` (a smoke run over a real dataset); in fast mode
    those and the ``processes`` tests are deselected."""
    for item in items:
        if BENCHMARKS in item.path.parents:
            item.add_marker(SLOW)
    if not config.getoption(FAST_OPTION):
        return

    def fast(item) -> bool:
        return not any(item.get_closest_marker(m) for m in (MARKER, SLOW))

    keep = [item for item in items if fast(item)]
    dropped = [item for item in items if not fast(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """In fast mode every test runs guarded: its set-up (fixtures of any scope it is the first to
    need), its call and its teardown. Collection and pytest's own start-up are not."""
    guard = item.config.stash.get(_GUARD, None)
    if guard is None:
        return (yield)
    guard.current = item.nodeid
    guard.install()
    try:
        return (yield)
    finally:
        guard.uninstall()
        guard.current = ""


@pytest.fixture(autouse=True)
def _fast_mode_starts_no_process(request):
    """Fails a test that started a process in fast mode, even when the code under test caught
    the refusal and carried on."""
    yield
    guard = request.config.stash.get(_GUARD, None)
    started = guard.starts_of(request.node.nodeid) if guard is not None else []
    if started:
        pytest.fail(
            f"{request.node.nodeid} is mis-classified: it started {'; '.join(started)} under "
            f"{FAST_OPTION}; mark it @pytest.mark.{MARKER}",
            pytrace=False,
        )
