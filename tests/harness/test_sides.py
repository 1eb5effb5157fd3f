"""Real side processes: one real pairing of two sides (a slowdown injected into DataLoader's main
process is caught), and sides that cannot start, fail a request or die mid-run: each a one-line
error naming the side, no process left behind (the plugin's guard fails a test that leaves one),
no verdict written."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench_datasets.faulty import EXIT_ALLOWED
from loaderbench.cli import main
from loaderbench.grid import Case
from loaderbench.paired.control import SideError, SideProcess, SideSpec
from loaderbench.paired.engine import SCHEDULE, Arm, Engine, Plan, verdict_rows

pytestmark = pytest.mark.processes  # every test here starts worker processes

# Three blocks: with two, the t interval has one degree of freedom and two blocks that differ
# (the per-process bias) leave even a fivefold slowdown inconclusive.
QUICK = dataclasses.replace(SCHEDULE, seconds_per_row=1, blocks=3, min_blocks=3, min_rounds=3)


def plan(case: Case, measure: str = "throughput") -> Plan:
    arm = Arm(case, measure)
    return Plan(f"{measure}[{case.id}]", arm, arm)


def engine(plans, a: SideSpec, b: SideSpec, tmp_path: Path) -> Engine:
    return Engine(plans, a, b, schedule=QUICK, logs=tmp_path / "logs", show=lambda line: None)


def test_two_real_sides_pair_their_rounds_and_catch_a_slower_main_process(tmp_path):
    """B waits 2 ms more for each of the 64 batches of a noop epoch: several times slower."""
    a = SideSpec("A", sys.executable)
    b = SideSpec("B", sys.executable, ("--lb-inject=main-batch-delay=0.002",))
    run = engine([plan(Case("noop", 0)), plan(Case("io", 0), "startup")], a, b, tmp_path)
    tallies = run.run()
    rows = {row.name: row for row in verdict_rows(tallies, min_effect=0.05, alpha=0.05)}
    slower = rows["throughput[noop-w0]"]
    assert slower.verdict == "regressed" and slower.change > 1.5, slower
    assert all(len(block) >= 3 for t in tallies for block in t.blocks)
    assert [t.mode for t in tallies] == [
        "alternate",
        "duet",
    ]  # noop one after the other, io as a duet
    assert run.hellos["b"].settings["injected"] == {"main-batch-delay": 0.002}
    assert run.hellos["a"].fingerprint.torch == run.hellos["b"].fingerprint.torch


def test_a_side_whose_interpreter_cannot_import_the_project_is_one_line(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    side = SideSpec("B", str(bare / "bin" / "python"), what="a bare venv")
    with pytest.raises(SideError) as caught:
        SideProcess.start_all([(side, tmp_path / "b.log")])
    message = str(caught.value)  # torch is missing (the project may be found in the cwd)
    assert message.startswith("side B (a bare venv) ")
    assert "while starting" in message and "No module named" in message and "\n" not in message


def test_a_side_that_fails_a_request_names_the_error_and_serves_on(tmp_path):
    side = SideSpec("A", sys.executable, ("--lb-dataset=bench_datasets.faulty:make_raising",))
    (running,) = SideProcess.start_all([(side, tmp_path / "a.log")])
    try:
        setup = Arm(Case("user", 0), "throughput").setup("a", None)
        with pytest.raises(
            SideError,
            match=r"side A \(this interpreter\) failed while setting "
            r"up: InjectedFault: sample 40 is unreadable",
        ):
            running.request(setup, 60, "setting up")
        fine = Arm(Case("noop", 0), "startup").setup("a", None)
        assert running.request(fine, 60).warm_s > 0  # the failure was answered, not fatal
    finally:
        running.close()
    assert running.proc.returncode == 0


def test_ab_with_a_side_that_dies_exits_2_and_writes_no_verdict(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(EXIT_ALLOWED, "1")  # reaches both sides: A dies as well, whichever is first
    out = tmp_path / "ab"
    code = main(
        [
            "ab",
            "--seconds-per-row",
            "1",
            "--blocks",
            "2",
            "--measures",
            "throughput",
            "--out",
            str(out),
            "--",
            "--lb-dataset=bench_datasets.faulty:make_exiting",
            "--lb-workers=0",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("loaderbench ab: error: side ")
    assert "exited while timing test_throughput[user-w0] with code 3" in err[-1]
    assert not (out / "verdict.md").exists() and not (out / "verdict.json").exists()


def test_a_side_whose_code_comes_from_a_checkout_runs_that_code(tmp_path):
    """A git ref's or a baseline recipe's side imports loaderbench from its checkout, not from
    the project folder the controller runs in (``python -m`` puts its working directory first on
    the import path), also when its interpreter and checkout are given as relative paths."""
    checkout = tmp_path / "checkout"
    side = checkout / "loaderbench" / "paired" / "side.py"
    side.parent.mkdir(parents=True)
    (checkout / "loaderbench" / "__init__.py").write_text("")
    (side.parent / "__init__.py").write_text("")
    side.write_text(
        "import json, sys\n"
        'print(json.dumps({"op": "hello", "ok": True, "protocol": 1, "package": __file__}))\n'
        "sys.stdout.flush()\n"
        "sys.stdin.readline()\n"
    )
    # Both as relative paths, as a cache folder under the project gives them (.venv-ab/...).
    python, path = os.path.relpath(sys.executable), os.path.relpath(checkout)
    spec = SideSpec("A", python, pythonpath=(path,), what="a checkout")
    (started,) = SideProcess.start_all([(spec, tmp_path / "a.log")])
    try:
        assert started.hello.package == str(side)
    finally:
        started.close()
