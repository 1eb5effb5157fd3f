"""What stored numbers leave open, measured side by side with the baseline's recipe (settle.py):
which rows and in what order, the budget that ends the queue, how the two verdicts merge, and
the one line and exit code when side by side cannot run. The engine is a stand-in here; the real
one is tested in test_engine.py and test_sides.py."""

from __future__ import annotations

import json
import sys

import pytest
from synthetic_results import FINGERPRINT, JITTER, bench, derived_json, merged, scaled

from loaderbench.cli import main
from loaderbench.grid import Case
from loaderbench.judging.stored_numbers import judge
from loaderbench.judging.thresholds import Rule
from loaderbench.judging.verdict import Row
from loaderbench.paired import settle
from loaderbench.paired.control import SideError, SideSpec
from loaderbench.presenting import verdict as shown
from loaderbench.results import Results
from loaderbench.storage import write_json_atomic

TEST_NAMES = {"startup": "test_time_to_first_batch"}
RECIPE = {"python": "3.11.7", "torch": "torch==2.13.0", "packages": [], "commit": "abc", "args": []}
RULE = Rule(min_effect=0.05, alpha=0.01, pair_alpha=0.05, memory_min_mb=10)


def grid_bench(case: Case, measure: str, factor: float = 1.0, seconds: float = 0.1) -> dict:
    """A benchmark named as the grid's test of ``measure`` names it."""
    entry = bench(case, scaled(JITTER, seconds * factor), measure)
    test = TEST_NAMES.get(measure, f"test_{measure}")
    entry["name"] = f"{test}[{case.id}]"
    entry["fullname"] = f"tests/benchmarks/test_grid.py::{entry['name']}"
    return entry


def run_of(entries: list[dict], **fingerprint) -> dict:
    return {
        "machine_info": {"loaderbench": {**FINGERPRINT, **fingerprint}},
        "commit_info": {},
        "datetime": "2026-01-01T00:00:00",
        "version": "5.3.1",
        "benchmarks": entries,
        "loaderbench": {"derived": derived_json(entries), "grid": "quick", "runner": "cpu"},
    }


CASES = [
    Case("noop", 0),
    Case("noop", 2, "fork"),
    Case("noop", 2, "spawn"),
    Case("cpu", 0),
    Case("cpu", 2, "fork"),
    Case("cpu", 2, "spawn"),
]
MEASURES = ("throughput", "epoch", "startup")


def grid_run(factor: float = 1.0, **fingerprint) -> dict:
    return run_of([grid_bench(case, m, factor) for m in MEASURES for case in CASES], **fingerprint)


def baseline_and_current(factor: float = 1.0, **fingerprint):
    baseline = merged([grid_run(f) for f in (1.0, 1.6, 0.7)], recipe=RECIPE)
    return Results.from_json(baseline), Results.from_json(grid_run(factor, **fingerprint))


def test_the_rows_left_open_go_headline_first_and_memory_never():
    """Three noisy stored runs leave every time row inconclusive: throughput, then epoch, then
    first batch, each at 0 workers and at the largest worker count with fork, every profile;
    then the rest (spawn) in the run's order."""
    baseline, current = baseline_and_current()
    verdict = judge(baseline, current)
    order = [w.row.name for w in settle.wanted(verdict, current)]
    assert order[:12] == [
        "test_throughput[noop-w0]",
        "test_throughput[noop-w2-fork]",
        "test_throughput[cpu-w0]",
        "test_throughput[cpu-w2-fork]",
        "test_epoch[noop-w0]",
        "test_epoch[noop-w2-fork]",
        "test_epoch[cpu-w0]",
        "test_epoch[cpu-w2-fork]",
        "test_time_to_first_batch[noop-w0]",
        "test_time_to_first_batch[noop-w2-fork]",
        "test_time_to_first_batch[cpu-w0]",
        "test_time_to_first_batch[cpu-w2-fork]",
    ]
    assert sorted(order[12:]) == sorted(
        f"{settle.TEST_OF[m]}[{p}-w2-spawn]" for m in MEASURES for p in ("noop", "cpu")
    )


def test_a_stored_regression_is_measured_before_anything_else():
    baseline = merged([grid_run(f) for f in (1.0, 1.01, 0.99)], recipe=RECIPE)
    current = grid_run()
    slow = next(b for b in current["benchmarks"] if b["name"] == "test_epoch[cpu-w2-spawn]")
    slow["stats"]["data"] = scaled(slow["stats"]["data"], 1.5)
    slow["stats"]["median"] *= 1.5
    baseline, current_model = Results.from_json(baseline), Results.from_json(current)
    verdict = judge(baseline, current_model)
    first, *rest = settle.wanted(verdict, current_model)
    assert first.row.name == "test_epoch[cpu-w2-spawn]" and first.row.verdict == "regressed"
    assert all(w.row.verdict != "unchanged" for w in rest)


def test_another_machine_kinds_baseline_leaves_every_time_row_to_side_by_side():
    """Seconds are not judged across machine kinds: they become rows, not judged, to measure."""
    baseline, current = baseline_and_current(cpu_model="Another CPU")
    verdict = judge(baseline, current)
    assert verdict.only == "portable" and not any(r.kind == "seconds" for r in verdict.rows)
    settle.add_unjudged_time_rows(verdict, current)
    seconds = [r for r in verdict.rows if r.kind == "seconds"]
    assert len(seconds) == len(CASES) * len(MEASURES)
    assert all(r.verdict == "inconclusive" and "not judged" in r.note for r in seconds)
    assert len(settle.wanted(verdict, current)) == len(seconds)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def stand_in_engine(clock: Clock, factor_of, seconds_per_run: float, runs: list):
    """An engine whose every run takes ``seconds_per_run`` of ``clock`` and reports B/A as
    ``factor_of(plan name)`` with a tight interval."""

    class Engine:
        def __init__(self, plans, a, b, **kwargs):
            self.plans = plans
            runs.append([p.name for p in plans])

        def run(self):
            clock.now += seconds_per_run
            return [Tally(p, factor_of(p.name)) for p in self.plans]

    return Engine


class Tally:
    """What judge_tallies reads of an engine's tally, for a row that settled at ``factor``."""

    def __init__(self, plan, factor):
        self.plan, self.factor = plan, factor


@pytest.fixture
def judged_by_factor(monkeypatch):
    """judge_tallies replaced: each tally becomes a row at its factor, regressed beyond 5%."""

    def judge_tallies(tallies, rule):
        return [
            Row(
                t.plan.name,
                baseline=0.1,
                current=0.1 * t.factor,
                change=t.factor,
                low=t.factor * 0.98,
                high=t.factor * 1.02,
                verdict="regressed" if t.factor > 1.05 else "unchanged",
                note=f"{t.factor - 1:.0%} slower",
            )
            for t in tallies
        ]

    monkeypatch.setattr(settle, "judge_tallies", judge_tallies)


def measured(queue, clock, engine, budget_s):
    return settle.measure(
        queue,
        SideSpec("A", sys.executable),
        SideSpec("B", sys.executable),
        budget_s=budget_s,
        rule=RULE,
        logs=settle.Path("unused"),
        duet=False,
        show=lambda line: None,
        engine=engine,
        clock=clock,
    )


def test_the_budget_ends_the_queue_between_chunks_and_the_verdict_says_what_more_would_reach(
    judged_by_factor,
):
    baseline, current = baseline_and_current()
    verdict = judge(baseline, current)
    queue = settle.wanted(verdict, current)
    clock, runs = Clock(), []
    engine = stand_in_engine(clock, lambda name: 1.0, seconds_per_run=40.0, runs=runs)
    # Every estimate here: 3 blocks x (0.1 s warm + 4 rounds of 0.1 s) = 1.5 s a row, raised to
    # the 8 s every row gets, and 16 s of process starts a chunk: 32 s take two rows in a chunk.
    assert all(w.estimate_s == 8.0 for w in queue)
    done = measured(queue, clock, engine, budget_s=32.0)
    assert runs == [["test_throughput[noop-w0]", "test_throughput[noop-w2-fork]"]]
    assert len(done.not_reached) == len(queue) - 2 and done.spent_s == 40.0
    settle.merge(verdict, queue, done, budget_s=32.0)
    rows = {row.name: row for row in verdict.rows}
    assert rows["test_throughput[noop-w0]"].verdict == "unchanged"
    assert rows["test_throughput[noop-w0]"].detail["judged"] == settle.SIDE_BY_SIDE
    assert rows["test_throughput[noop-w0]"].note.startswith("side by side: 0% slower; stored")
    far = rows["test_epoch[cpu-w2-spawn]"]
    assert far.detail["judged"] == settle.NOT_REACHED and far.verdict == "inconclusive"
    assert far.note.startswith("not reached within the side-by-side budget (32 s); stored")
    assert verdict.judged.startswith(
        f"{len(verdict.rows) - len(queue)} rows judged by stored numbers, 2 side by side"
    )
    assert verdict.judged.endswith(
        f"{len(queue) - 2} not re-measured: a budget about 150 s larger would reach them"
    )
    # 16 rows of 8 s and one chunk's 16 s of process starts: 144 s, said in tens.
    assert verdict.judged in shown.text(verdict).splitlines()[0]


def test_a_budget_that_covers_the_queue_measures_every_row_and_a_regression_fails(
    judged_by_factor,
):
    baseline, current = baseline_and_current()
    verdict = judge(baseline, current)
    queue = settle.wanted(verdict, current)
    clock, runs = Clock(), []
    slower = {"test_epoch[cpu-w2-fork]": 1.3}
    engine = stand_in_engine(clock, lambda n: slower.get(n, 1.0), seconds_per_run=5.0, runs=runs)
    done = measured(queue, clock, engine, budget_s=600.0)
    assert len(runs) == 1 and not done.not_reached
    settle.merge(verdict, queue, done, budget_s=600.0)
    regressed = [row.name for row in verdict.rows if row.verdict == "regressed"]
    assert regressed == ["test_epoch[cpu-w2-fork]"] and verdict.exit_code() == 1


def test_a_derived_regression_stands_only_if_each_benchmark_regresses_side_by_side(
    judged_by_factor,
):
    row = Row(
        "speedup[cpu-w2-fork]",
        "ratio",
        verdict="regressed",
        note="20% worse",
        inputs=("test_throughput[cpu-w0]", "test_throughput[cpu-w2-fork]"),
    )
    seen = [
        Row("test_throughput[cpu-w0]", change=1.0, low=0.99, high=1.01, verdict="unchanged"),
        Row("test_throughput[cpu-w2-fork]", change=1.3, low=1.2, high=1.4, verdict="regressed"),
    ]
    settle._take(row, seen)
    assert row.verdict == "unchanged"
    assert row.note.startswith("not confirmed side by side: test_throughput[cpu-w0] 1.000x")


def test_a_side_that_dies_keeps_what_was_measured_and_says_why():
    baseline, current = baseline_and_current()
    verdict = judge(baseline, current)
    queue = settle.wanted(verdict, current)

    class Dying:
        def __init__(self, *args, **kwargs):
            pass

        def run(self):
            raise SideError("side A (the recipe) exited while starting (log: x.log)")

    done = measured(queue, Clock(), Dying, budget_s=600.0)
    assert done.failure.startswith("side A (the recipe) exited") and done.not_reached == queue
    settle.merge(verdict, queue, done, budget_s=600.0)
    row = next(r for r in verdict.rows if r.name == "test_throughput[noop-w0]")
    assert row.note.startswith("not re-measured: side A (the recipe) exited while starting")
    assert verdict.judged.endswith(
        f"{len(queue)} not re-measured (side A (the recipe) exited while starting (log: x.log))"
    )


@pytest.fixture
def files(tmp_path):
    baseline, current = baseline_and_current()
    paths = tmp_path / "baseline.json", tmp_path / "current.json"
    write_json_atomic(paths[0], baseline.to_json())
    write_json_atomic(paths[1], json.loads(json.dumps(current.raw)))
    return paths


def test_a_recipe_that_cannot_be_installed_exits_2_with_the_stored_verdict_written(
    files, tmp_path, monkeypatch, capsys
):
    def cannot(*args, **kwargs):
        raise settle.InputError("side A: the baseline's recipe: could not be installed (pip ...)")

    monkeypatch.setattr(settle.recipes, "rebuild", cannot)
    markdown = tmp_path / "verdict.md"
    code = main(
        [
            "gate",
            *map(str, files),
            "--side-by-side",
            "60",
            "--markdown",
            str(markdown),
            "--out",
            str(tmp_path / "sbs"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == (
        "loaderbench gate: side by side not done: side A: the baseline's recipe: could not be "
        "installed (pip ...)"
    )
    text = markdown.read_text()
    assert "not re-measured: side A: the baseline's recipe: could not be installed" in text
    assert "rows judged by stored numbers, 0 side by side" in text


def test_a_negative_budget_is_refused_in_one_line(files, capsys):
    assert main(["gate", *map(str, files), "--side-by-side", "-5"]) == 2
    assert "--side-by-side must be >= 0 seconds" in capsys.readouterr().err


def test_a_row_the_recipe_cannot_measure_keeps_its_stored_verdict_and_says_why():
    """A recipe made before the epoch measure refuses it: the row is not re-measured."""
    row = Row("test_epoch[cpu-w0]", baseline=0.1, current=0.12, verdict="inconclusive", note="wide")
    refused = Row(
        "test_epoch[cpu-w0]",
        verdict="inconclusive",
        note="not judged: side A (the recipe) does not measure epoch: its loaderbench predates it",
    )
    settle._take(row, [refused])
    assert (row.baseline, row.current, row.verdict) == (0.1, 0.12, "inconclusive")
    assert row.detail["judged"] == settle.NOT_REACHED
    assert row.note == (
        "not measured side by side: not judged: side A (the recipe) does not measure epoch: its "
        "loaderbench predates it; stored numbers: inconclusive, wide"
    )
