"""Nothing lost: an interrupted write or an interrupted `loaderbench baseline` leaves the previous
baseline byte for byte as it was, and no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from pytest_benchmark.utils import get_machine_id

from loaderbench import leaks, storage

ROOT = Path(__file__).resolve().parents[2]
TAG = "LOADERBENCH_INTERRUPT_RUN"
PREVIOUS = b'{"previous": "baseline", "kept": "byte for byte"}\n'


def folder_snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# --- the write itself -----------------------------------------------------------------------------

def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """Ctrl-C while the new bytes are being synced: the old file is untouched, nothing is left."""
    target = tmp_path / "0001_baseline.json"
    target.write_bytes(PREVIOUS)

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        storage.write_json_atomic(target, {"new": list(range(1000))})
    assert folder_snapshot(tmp_path) == {target.name: PREVIOUS}


def test_a_write_replaces_the_file_whole_and_keeps_its_permissions(tmp_path):
    target = tmp_path / "results.json"
    target.write_bytes(PREVIOUS)
    target.chmod(0o640)
    storage.write_json_atomic(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


WRITER = """
import sys
from loaderbench.storage import write_json_atomic
versions = [{"version": v, "rounds": [v] * 100_000} for v in (1, 2)]
print("writing", flush=True)
k = 0
while True:
    write_json_atomic(sys.argv[1], versions[k % 2])
    k += 1
"""


def assert_one_whole_version(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["version"] in (1, 2) and data["rounds"] == [data["version"]] * 100_000


def test_a_writer_frozen_or_killed_at_any_moment_leaves_one_whole_version(tmp_path):
    """A writer rewriting a 700 kB file in a loop, frozen (SIGSTOP) at 40 arbitrary moments and
    finally killed (SIGKILL, no clean-up at all): every look finds one complete version, never a
    truncation or a mix."""
    target = tmp_path / "0001_baseline.json"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        while not target.exists():
            time.sleep(0.005)
        for moment in range(40):
            time.sleep(0.003 + 0.002 * (moment % 7))  # moments that do not beat with the writes
            writer.send_signal(signal.SIGSTOP)
            try:
                assert_one_whole_version(target)
            finally:
                writer.send_signal(signal.SIGCONT)
    finally:
        writer.kill()
        writer.wait(timeout=10)
        writer.stdout.close()
    assert_one_whole_version(target)


# --- a real baseline run, interrupted -------------------------------------------------------------

# A small real grid run that starts DataLoader workers (noop throughput, 0 and 2 fork workers) and
# then keeps them busy for seconds (20 rounds), so that the signal lands mid-run.
BASELINE = [sys.executable, "-m", "loaderbench", "baseline", "--runner", "cpu", "--runs", "2",
            "--force"]
GRID = ["-k", "test_throughput", "--lb-profiles=noop", "--lb-workers=0,2",
        "--lb-start-methods=fork", "--lb-rounds=20"]


def _start_baseline(root: Path, tag: str) -> subprocess.Popen:
    previous = root / "cpu" / get_machine_id() / "0001_baseline.json"
    previous.parent.mkdir(parents=True)
    previous.write_bytes(PREVIOUS)
    # A session of its own, so that the signal goes to the whole tree, as a terminal's Ctrl-C or
    # a CI cancellation does.
    return subprocess.Popen([*BASELINE, "--baselines", str(root), "--", *GRID], cwd=ROOT,
                            env={**os.environ, TAG: tag}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_workers(run: subprocess.Popen, timeout_s: float = 120.0) -> list[psutil.Process]:
    """Wait until the grid run has DataLoader workers (grandchildren): truly mid-run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and run.poll() is None:
        try:
            tree = psutil.Process(run.pid).children(recursive=True)
            if any(p.ppid() != run.pid for p in tree):
                return tree
        except psutil.NoSuchProcess:
            pass  # a process of the tree ended while we looked: look again
        time.sleep(0.05)
    raise AssertionError(f"the baseline run never started workers (exit code {run.poll()})")


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory):
    """`loaderbench baseline` interrupted mid-run by SIGINT and by SIGTERM, both at once."""
    runs = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        root = tmp_path_factory.mktemp(f"baselines-{signum.name}")
        tag = uuid.uuid4().hex
        runs[signum] = (root, tag, _start_baseline(root, tag))
    outcomes = {}
    for signum, (root, tag, run) in runs.items():
        tree = _wait_for_workers(run)
        os.killpg(run.pid, signum)
        out, err = run.communicate(timeout=120)
        _, orphans = psutil.wait_procs(leaks.tagged_processes(TAG, tag) + tree, timeout=10)
        leaks.kill(orphans)
        outcomes[signum] = (root, run.returncode, err, orphans)
    return outcomes


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_baseline_run_leaves_the_previous_baseline_intact(interrupted_runs,
                                                                         signum):
    root, returncode, err, orphans = interrupted_runs[signum]
    assert returncode != 0, "the run was meant to be interrupted, yet it finished"
    expected = {f"cpu/{get_machine_id()}/0001_baseline.json": PREVIOUS}
    assert folder_snapshot(root) == expected, err
    assert not orphans, f"left behind: {leaks.describe(orphans)}"
    if signum == signal.SIGINT:  # our last words, not a KeyboardInterrupt traceback
        assert err.rstrip().endswith("files already in place were left as they were"), err
