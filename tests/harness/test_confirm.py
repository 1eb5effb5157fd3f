"""Confirming a regression in fresh processes (loaderbench/judging/confirm.py): what is rerun, how the
reruns decide, and the whole path through real pytest processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_results import (
    CPU_W0,
    CPU_W2,
    JITTER,
    memory_bench,
    merged,
    quiet_baseline,
    results,
    scaled,
)

from loaderbench.cli import main
from loaderbench.errors import InputError
from loaderbench.grid import Case
from loaderbench.judging import record
from loaderbench.judging.confirm import confirm, rerun_args, rerun_command
from loaderbench.judging.stored_numbers import judge
from loaderbench.results import Invocation, Results

PROJECT = Path(__file__).resolve().parents[2]
INVOCATION = {
    "python": sys.executable,
    "directory": "/somewhere",
    "args": [
        "tests/benchmarks",
        "--benchmark-only",
        "--lb-grid=quick",
        "--benchmark-json=results/latest.json",
        "-k",
        "throughput",
    ],
}


def current_of(w0: float, w2: float) -> dict:
    run = results({CPU_W0: scaled(JITTER, w0), CPU_W2: scaled(JITTER, 0.5 * w2)})
    run["loaderbench"]["invocation"] = INVOCATION
    return run


class FakeReruns:
    """Stands in for the pytest processes: returns the next scripted results, records commands."""

    def __init__(self, *reruns: dict):
        self.reruns, self.commands, self.listed, self.slots = list(reruns), [], [], []

    def __call__(self, command, directory, slot):
        self.commands.append((command, directory))
        self.slots.append(slot)
        listing = next(a.split("=", 1)[1] for a in command if a.startswith("--lb-rerun="))
        self.listed.append(Path(listing).read_text().split())
        return Results.from_json(self.reruns.pop(0))


def run_confirm(current: dict, fake, runs=2):
    baseline, current_model = Results.from_json(quiet_baseline()), Results.from_json(current)
    verdict = judge(baseline, current_model)
    confirm(
        verdict,
        baseline,
        current_model,
        "cur.json",
        runs=runs,
        rejudge=lambda base, rerun: judge(base, rerun),
        run=fake,
        show=lambda line: None,
    )
    return verdict, {row.name: row for row in verdict.rows}


def test_rerun_args_drop_output_and_storage_options_in_both_forms():
    args = (
        "tests/benchmarks",
        "--benchmark-json",
        "a.json",
        "--benchmark-json=b.json",
        "-k",
        "cpu",
        "--benchmark-save=x",
        "--benchmark-autosave",
        "--benchmark-compare",
        "--lb-rerun=old.txt",
        "--lb-cost-scale=1.1",
        "-p",
        "no:cacheprovider",
    )
    assert rerun_args(args) == [
        "tests/benchmarks",
        "-k",
        "cpu",
        "--lb-cost-scale=1.1",
        "-p",
        "no:cacheprovider",
    ]


def test_the_rerun_is_the_same_pytest_narrowed_and_writing_its_own_file():
    invocation = Invocation(
        INVOCATION["python"], INVOCATION["directory"], tuple(INVOCATION["args"])
    )
    command = rerun_command(invocation, Path("ids.txt"), Path("out.json"))
    assert command == [
        sys.executable,
        "-m",
        "pytest",
        "tests/benchmarks",
        "--benchmark-only",
        "--lb-grid=quick",
        "-k",
        "throughput",
        "--lb-rerun=ids.txt",
        "--benchmark-json=out.json",
    ]


def test_a_regression_every_rerun_repeats_stands_with_the_reruns_ratios():
    fake = FakeReruns(current_of(1.5, 1.0), current_of(1.4, 1.0))
    verdict, rows = run_confirm(current_of(1.5, 1.0), fake)
    assert verdict.regressed and "must repeat in 2 fresh reruns" in verdict.rule
    assert rows["test_throughput[cpu-w0]"].verdict == "regressed"
    assert "confirmed in 2 fresh processes (1.495x, 1.396x)" in rows["test_throughput[cpu-w0]"].note
    # Only the flagged benchmark, by node id, in the recorded directory; the args are replayed.
    assert fake.listed == [["tests/benchmarks/test_grid.py::test_throughput[cpu-w0]"]] * 2
    assert fake.slots == [(0, 2), (1, 2)]  # each rerun its own slice of layouts (layout.py)
    assert {directory for _, directory in fake.commands} == {"/somewhere"}
    assert all("-k" in command and "--lb-grid=quick" in command for command, _ in fake.commands)


def test_one_rerun_that_does_not_repeat_it_clears_it_and_stops_rerunning():
    fake = FakeReruns(current_of(1.0, 1.0), current_of(1.5, 1.0))
    verdict, rows = run_confirm(current_of(1.5, 1.0), fake)
    row = rows["test_throughput[cpu-w0]"]
    # The rerun's own verdict: 3 quiet runs cannot rule out 5%, so "cannot tell", not "unchanged".
    assert not verdict.regressed and row.verdict == "inconclusive"
    assert row.note.startswith("not confirmed:") and "fresh process 1" in row.note
    assert "first run: 49.5% slower" in row.note
    assert len(fake.commands) == 1  # nothing left to confirm after the first rerun


def test_a_derived_ratio_reruns_the_benchmarks_it_is_computed_from():
    # w2 slower alone: speedup and efficiency lose more than 10%.
    fake = FakeReruns(current_of(1.0, 1.5), current_of(1.0, 1.5))
    verdict, rows = run_confirm(current_of(1.0, 1.5), fake)
    assert rows["speedup[cpu-w2-fork]"].verdict == "regressed"
    assert "confirmed in 2" in rows["speedup[cpu-w2-fork]"].note
    assert fake.listed[0] == [
        "tests/benchmarks/test_grid.py::test_throughput[cpu-w0]",
        "tests/benchmarks/test_grid.py::test_throughput[cpu-w2-fork]",
    ]


def test_a_regression_the_rerun_did_not_run_still_stands():
    rerun = results({CPU_W2: scaled(JITTER, 0.5)})  # cpu-w0 no longer collected
    verdict, rows = run_confirm(current_of(1.5, 1.0), FakeReruns(rerun), runs=1)
    assert verdict.regressed
    assert "rerun 1: not rerun" in rows["test_throughput[cpu-w0]"].note


def test_a_memory_regression_is_not_rerun_and_stands():
    """A narrowed rerun measures memory from another starting point: the whole run's row stands."""
    case = Case("pyobj", 2, "fork")
    baseline = merged(
        [results({}, memory=[memory_bench(case, 300 + d, 100 + d)]) for d in (0.0, 1.5, -1.0, 0.5)]
    )
    current = results({}, memory=[memory_bench(case, 350, 150)])
    current["loaderbench"]["invocation"] = INVOCATION
    fake = FakeReruns()
    baseline_model, current_model = Results.from_json(baseline), Results.from_json(current)
    verdict = judge(baseline_model, current_model)
    confirm(
        verdict,
        baseline_model,
        current_model,
        "cur.json",
        runs=2,
        rejudge=lambda base, rerun: judge(base, rerun),
        run=fake,
        show=lambda line: None,
    )
    assert verdict.regressed and fake.commands == []
    assert {row.verdict for row in verdict.rows} == {"regressed"}


def test_no_rerun_without_a_regression_or_with_zero_runs():
    fake = FakeReruns()
    verdict, _ = run_confirm(current_of(1.0, 1.0), fake)
    assert not verdict.regressed and fake.commands == [] and "fresh reruns" in verdict.rule
    verdict, _ = run_confirm(current_of(1.5, 1.0), fake, runs=0)
    assert verdict.regressed and fake.commands == [] and "fresh rerun" not in verdict.rule


def test_results_without_a_recorded_invocation_cannot_be_confirmed():
    current = current_of(1.5, 1.0)
    del current["loaderbench"]["invocation"]
    with pytest.raises(InputError, match="records no pytest invocation.*without --confirm"):
        run_confirm(current, FakeReruns())


def test_a_rerun_that_fails_leaves_the_regression_standing_and_says_why(monkeypatch):
    monkeypatch.setattr(
        record.subprocess,
        "run",
        lambda command, cwd, env: subprocess.CompletedProcess(command, 3),
    )
    verdict, rows = run_confirm(current_of(1.5, 1.0), record.run_pytest)
    assert verdict.regressed
    assert rows["test_throughput[cpu-w0]"].note.endswith(
        "; unconfirmed: rerun 1 failed (pytest exited with code 3)"
    )


# --- through real pytest processes ------------------------------------------------------------

NOOP_W0 = "tests/benchmarks/test_grid.py::test_throughput[noop-w0]"


@pytest.fixture
def real_run(real_runs) -> Path:
    """One real benchmark run (noop, 0 workers) written by the plugin, invocation recorded
    (conftest.py: started with the other real processes of the harness)."""
    assert real_runs.done["benchmark"].returncode == 0, real_runs.done["benchmark"]
    return real_runs.results


def with_rounds_scaled(run: dict, factor: float) -> dict:
    doctored = json.loads(json.dumps(run))
    for bench in doctored["benchmarks"]:
        bench["stats"]["data"] = scaled(bench["stats"]["data"], factor)
    return doctored


@pytest.mark.processes
def test_the_plugin_records_how_to_rerun_and_lb_rerun_selects_node_ids(real_run, real_runs):
    recorded = json.loads(real_run.read_text())["loaderbench"]["invocation"]
    assert recorded["python"] == sys.executable and Path(recorded["directory"]) == PROJECT
    assert real_runs.benchmarked == NOOP_W0 and NOOP_W0 in recorded["args"]
    collected = real_runs.done["rerun-selects"]  # --lb-rerun with a file naming one node id
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert ids == [real_runs.rerun_listed], collected.stdout


@pytest.mark.processes
def test_lb_rerun_with_an_unreadable_file_is_a_usage_error(real_runs):
    done = real_runs.done["rerun-unreadable"]
    assert done.returncode == 4 and "--lb-rerun: cannot read" in done.stderr


@pytest.mark.processes
@pytest.mark.parametrize("scenario", ["one slow process", "real slowdown"])
def test_gate_confirm_reruns_in_a_real_process(real_run, tmp_path, capsys, scenario):
    """A run doctored 3x slower than its baseline is cleared by a real rerun; a baseline doctored
    3x faster makes the real rerun a regression too, so the verdict stands. Both scenarios leave a
    factor of 3 between the real rerun and the baseline, because a real process's epoch can take
    twice as long as the one before it on a busy runner."""
    run = json.loads(real_run.read_text())
    if scenario == "one slow process":
        slow = with_rounds_scaled(run, 3.0)
        baseline, current, expected = merged([slow, slow]), with_rounds_scaled(run, 9.0), 0
    else:
        fast = with_rounds_scaled(run, 1 / 3)
        baseline, current, expected = merged([fast, fast]), run, 1
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    (tmp_path / "cur.json").write_text(json.dumps(current))
    code = main(
        [
            "gate",
            str(tmp_path / "base.json"),
            str(tmp_path / "cur.json"),
            "--confirm",
            "1",
            "--only",
            "benchmarks",
        ]
    )
    assert code == expected
    verdict = (tmp_path / "verdict.md").read_text()
    row = next(line for line in verdict.splitlines() if "test_throughput[noop-w0]" in line)
    assert ("not confirmed" in row) if expected == 0 else ("confirmed in 1 fresh process" in row)
