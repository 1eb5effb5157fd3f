"""What stored numbers cannot settle, measured side by side with the baseline's recipe.

`make bench` judges a run against stored numbers first (judging/stored_numbers.py). Those numbers were taken
hours or days ago, on a machine whose speed moves by tens of percent, or on another machine kind,
where seconds are not judged at all: most time rows stay inconclusive, and a 25% slowdown passes.
So every time row the stored verdict leaves open (inconclusive, not judged, new) or flags
(regressed, to be confirmed) is measured again, side by side: side A is the baseline's recipe
(paired/recipe.py: its Python, packages and project commit, isolated from this shell), side B is
this run as it ran (its interpreter and ``--lb-*`` settings, injected slowdowns included).

The rows are measured in order of how much they matter, within one budget of wall-clock seconds:

1. rows the stored numbers flag as regressed: an unconfirmed regression would fail the run;
2. the headline rows: throughput, whole epoch and first batch, at 0 workers and at the run's
   largest worker count with fork, for every profile (measure by measure, so that a small budget
   still covers every profile's throughput);
3. every other time row, in the run's order.

They go to the engine in chunks that fit the budget left (``estimate_s`` of each row); the
budget ends the queue, never a row half-measured. A row judged side by side takes that verdict
(a regressed derived ratio stands only if each of its benchmarks regresses); the others keep the
stored verdict and say why (``detail["judged"]``: stored numbers, side by side, or not reached).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loaderbench.config import recorded_selection
from loaderbench.durations import duration_text
from loaderbench.errors import InputError
from loaderbench.grid import Case
from loaderbench.judging.thresholds import Rule
from loaderbench.judging.verdict import Row, Verdict, not_judged
from loaderbench.paired import recipe as recipes
from loaderbench.paired.ab import judge_tallies, side_settings
from loaderbench.paired.control import SideError, SideSpec
from loaderbench.paired.engine import ROUND_S, SCHEDULE, TEST_OF, Arm, Engine, Plan
from loaderbench.paired.schedule import Schedule
from loaderbench.results import EPOCH, STARTUP, THROUGHPUT, Benchmark, Results

#: How the rows of a verdict were judged (``Row.detail["judged"]``).
STORED, SIDE_BY_SIDE, NOT_REACHED = "stored numbers", "side by side", "not reached"
#: The measures of the headline rows, in the order they are measured.
HEADLINE_MEASURES = (THROUGHPUT, EPOCH, STARTUP)
#: The engine's schedule for settling: the fewest blocks that show the spread between processes,
#: one more for rows still open, and at least this many seconds a row.
SETTLE_SCHEDULE = dataclasses.replace(SCHEDULE, seconds_per_row=8.0, blocks=4, min_blocks=3)
#: Seconds one block's fresh pair of side processes takes to start (both import torch).
BLOCK_START_S = 4.0


@dataclass(frozen=True)
class Wanted:
    """A verdict row to measure side by side, and the plans measuring its benchmarks."""

    row: Row
    plans: tuple[Plan, ...]
    estimate_s: float


def plan_of(bench: Benchmark) -> Plan | None:
    """The side-by-side plan measuring a benchmark of the results, or None (memory, transfer,
    distributed: not a measure of the engine)."""
    measure, case = bench.measure, bench.case
    if (
        measure not in TEST_OF
        or case is None
        or bench.name != f"{TEST_OF[measure]}[{bench.case_id}]"
    ):
        return None
    arm = Arm(Case.from_dict(case), measure)
    return Plan(bench.name, arm, arm)


def estimate_s(bench: Benchmark, schedule: Schedule = SETTLE_SCHEDULE) -> float:
    """Seconds a row is given: its minimum of blocks, each a warm round and its minimum of pairs
    (two rounds each, a round lasting at least ROUND_S), and never less than the budget's
    ``seconds_per_row``: with the minimum alone a cpu row's interval stayed wider than +/-20%."""
    round_s = max(bench.median, ROUND_S)
    least = schedule.min_blocks * (bench.median + 2 * schedule.min_rounds * round_s)
    return max(least, schedule.seconds_per_row)


def add_unjudged_time_rows(verdict: Verdict, current: Results) -> None:
    """A row, not judged, for every benchmark the engine can measure that the stored verdict left
    out (seconds measured on another machine kind, or at another speed, are not judged)."""
    named = {row.name for row in verdict.rows}
    why = "seconds are not judged against this baseline (see the lines above the table)"
    for bench in current.benchmarks:
        if bench.name not in named and plan_of(bench) is not None:
            verdict.rows.append(not_judged(Row(bench.name, "seconds", inputs=(bench.name,)), why))


def wanted(verdict: Verdict, current: Results) -> list[Wanted]:
    """The rows to measure side by side, most wanted first (module docstring)."""
    benches = current.by_name()
    grid = [benches[n] for n in benches if plan_of(benches[n]) is not None]
    most = max((b.num_workers or 0 for b in grid), default=0)
    profiles = list(dict.fromkeys(str(b.case_id).split("-", 1)[0] for b in grid))

    def headline(bench: Benchmark) -> tuple[int, int] | None:
        case = Case.from_dict(bench.case or {})
        if bench.measure not in HEADLINE_MEASURES or case.is_variant:
            return None
        if case.num_workers and not (case.num_workers == most and case.start_method == "fork"):
            return None
        return HEADLINE_MEASURES.index(str(bench.measure)), profiles.index(case.profile)

    found: list[tuple[tuple, Wanted]] = []
    for order, row in enumerate(verdict.rows):
        confirm = row.verdict == "regressed"
        unsettled = row.kind == "seconds" and row.verdict in ("inconclusive", "new")
        inputs = [benches.get(name) for name in row.inputs]
        plans = [plan_of(b) if b else None for b in inputs]
        if not (confirm or unsettled) or not plans or None in plans:
            continue
        measured = [b for b in inputs if b is not None]
        head = headline(measured[0]) if unsettled and len(measured) == 1 else None
        rank = (0, 0, 0, order) if confirm else (1, *head, order) if head else (2, 0, 0, order)
        found.append(
            (
                rank,
                Wanted(
                    row,
                    tuple(p for p in plans if p is not None),
                    sum(estimate_s(b) for b in measured),
                ),
            )
        )
    return [w for _, w in sorted(found, key=lambda pair: pair[0])]


def next_chunk(queue: list[Wanted], left_s: float, block_start_s: float = BLOCK_START_S):
    """The first rows of ``queue`` whose estimates, with the blocks' process starts, fit in
    ``left_s`` (at least one row, so a budget smaller than a row still measures one)."""
    overhead = SETTLE_SCHEDULE.blocks * block_start_s
    taken: list[Wanted] = []
    spent = overhead
    for item in queue:
        if taken and spent + item.estimate_s > left_s:
            break
        taken.append(item)
        spent += item.estimate_s
    return taken


@dataclass
class Settled:
    """What side by side measured: its rows by benchmark name, and how the budget went."""

    measured: dict[str, Row]
    not_reached: list[Wanted]
    spent_s: float
    failure: str = ""


def measure(
    queue: list[Wanted],
    reference: SideSpec,
    here: SideSpec,
    *,
    budget_s: float,
    rule: Rule,
    logs: Path,
    duet: bool,
    show: Callable[[str], None],
    engine=Engine,
    clock=time.monotonic,
) -> Settled:
    """Measure ``queue`` in chunks until it is done or ``budget_s`` is spent. A side that fails
    (it cannot start, it dies) ends the measuring: what was measured is kept, the rest is not
    reached, and ``failure`` says why in one line."""
    begun = clock()
    done: dict[str, Row] = {}
    queue = list(queue)
    while queue:
        left = budget_s - (clock() - begun)
        if left <= 0:
            break
        chunk = next_chunk(queue, left)
        plans = list(dict.fromkeys(p for w in chunk for p in w.plans if p.name not in done))
        show(
            f"loaderbench: side by side against the baseline's recipe: {len(chunk)} row(s) "
            f"({len(queue) - len(chunk)} more queued), {duration_text(left)} of the budget left"
        )
        per_row = max(sum(w.estimate_s for w in chunk) / max(len(plans), 1), 1.0)
        schedule = dataclasses.replace(SETTLE_SCHEDULE, seconds_per_row=per_row)
        runner = engine(
            plans,
            reference,
            here,
            schedule=schedule,
            min_effect=rule.min_effect,
            alpha=rule.pair_alpha,
            logs=logs,
            duet=duet,
        )
        try:
            tallies = runner.run()
        except SideError as exc:
            return Settled(done, queue, clock() - begun, str(exc))
        done.update((row.name, row) for row in judge_tallies(tallies, rule))
        queue = queue[len(chunk) :]
    return Settled(done, queue, clock() - begun)


def merge(verdict: Verdict, queue: list[Wanted], settled: Settled, budget_s: float) -> None:
    """Each row of ``queue`` takes what side by side said of it; the others keep the stored
    verdict. ``verdict.judged`` counts each kind."""
    for row in verdict.rows:
        row.detail.setdefault("judged", STORED)
    unreached = {id(w) for w in settled.not_reached}
    for item in (w for w in queue if id(w) not in unreached):
        _take(item.row, [settled.measured[p.name] for p in item.plans])
    for item in settled.not_reached:
        row = item.row
        row.detail["judged"] = NOT_REACHED
        why = (
            f"not re-measured: {settled.failure}"
            if settled.failure
            else f"not reached within the side-by-side budget ({budget_s:g} s)"
        )
        row.note = f"{why}; stored numbers: {row.note}"
    # What the rows left would take at least, with one chunk's process starts.
    more = sum(w.estimate_s for w in settled.not_reached) + SETTLE_SCHEDULE.blocks * BLOCK_START_S
    counts = {
        kind: sum(row.detail["judged"] == kind for row in verdict.rows)
        for kind in (STORED, SIDE_BY_SIDE, NOT_REACHED)
    }
    verdict.judged = (
        f"{counts[STORED]} rows judged by stored numbers, {counts[SIDE_BY_SIDE]} side by side "
        f"against the baseline's recipe ({settled.spent_s:.0f} s)"
    )
    if counts[NOT_REACHED]:
        verdict.judged += f", {counts[NOT_REACHED]} not re-measured" + (
            f" ({settled.failure})"
            if settled.failure
            else f": a budget about {math.ceil(more / 10) * 10:.0f} s larger would reach them"
        )


def _take(row: Row, seen: list[Row]) -> None:
    """``row`` judged by the side-by-side rows of its benchmarks: a time row takes its own; a
    derived ratio flagged by stored numbers stands only if each of its benchmarks regresses."""
    said = ", ".join(
        f"{s.name} {s.change:.3f}x [{s.low:.3f}, {s.high:.3f}] {s.verdict}"
        if s.low is not None and s.change is not None
        else f"{s.name} {s.verdict}"
        for s in seen
    )
    stored = f"stored numbers: {row.verdict}, {row.note}"
    unmeasured = [s for s in seen if s.change is None]
    if unmeasured:  # a side refused the measure (its loaderbench predates it), or no pairs
        row.detail["judged"] = NOT_REACHED
        row.note = f"not measured side by side: {unmeasured[0].note}; {stored}"
        return
    row.detail.update(judged=SIDE_BY_SIDE, side_by_side=said, stored_verdict=row.verdict)
    if row.kind == "seconds" and len(seen) == 1:
        (own,) = seen
        row.baseline, row.current = own.baseline, own.current
        row.change, row.low, row.high, row.p = own.change, own.low, own.high, own.p
        row.verdict, row.note = own.verdict, f"side by side: {own.note}; {stored}"
        return
    if all(s.verdict == "regressed" for s in seen):
        row.note += f"; confirmed side by side: {said}"
        return
    worst = next((s for s in seen if s.verdict == "inconclusive"), seen[0])
    row.verdict = "inconclusive" if worst.verdict == "inconclusive" else "unchanged"
    row.note = f"not confirmed side by side: {said}; {stored}"


def sides(
    baseline: Results, current: Results, venvs: Path, project: Path
) -> tuple[SideSpec, SideSpec]:
    """Side A, the baseline's recipe rebuilt (once; later runs reuse it), with the recipe's own
    settings; side B, this run as it ran: its interpreter and ``--lb-*`` settings."""
    recipe = recipes.check(baseline.recipe)
    reference = recipes.rebuild(recipe, venvs, project, label="A")
    reference = SideSpec(
        "A",
        reference.python,
        side_settings("A", recorded_selection(recipe.args)),
        pythonpath=reference.pythonpath,
        isolated=True,
        what=reference.what,
    )
    invocation = current.invocation
    python = (
        invocation.python if invocation and Path(invocation.python).is_file() else sys.executable
    )
    args = list(invocation.args) if invocation else []
    here = SideSpec(
        "B",
        python,
        side_settings("B", recorded_selection(args)),
        what="this run's environment",
    )
    return reference, here


def settle(
    verdict: Verdict,
    baseline: Results,
    current: Results,
    *,
    budget_s: float,
    rule: Rule,
    venvs: Path,
    out: Path,
    duet: bool = True,
    show: Callable[[str], None] = print,
) -> str:
    """Measure side by side what the stored verdict leaves open (module docstring) and merge it
    into ``verdict``; returns "" or, when side by side could not run or finish (no recipe, a
    recipe that cannot be installed, a side that died), the one line saying why."""
    add_unjudged_time_rows(verdict, current)
    queue = wanted(verdict, current)
    verdict.rule += (
        f"; time rows the stored numbers leave open or flag are measured side by side against "
        f"the baseline's recipe (budget {budget_s:g} s): regressed = the "
        f"{1 - rule.pair_alpha:.0%} interval of the pairs above 1 and beyond {rule.min_effect:.0%}"
    )
    if not queue:
        merge(verdict, [], Settled({}, [], 0.0), budget_s)
        return ""
    if baseline.recipe is None:
        failure = (
            "the baseline records no recipe to measure against: re-record it with "
            "`make baseline FORCE=1`"
        )
        merge(verdict, queue, Settled({}, queue, 0.0, failure), budget_s)
        return failure
    try:
        reference, here = sides(baseline, current, venvs, Path.cwd())
    except InputError as exc:
        merge(verdict, queue, Settled({}, queue, 0.0, str(exc)), budget_s)
        return str(exc)
    show(
        f"loaderbench: {len(queue)} time row(s) left open or flagged by the stored numbers; "
        f"measuring them side by side within {budget_s:g} s"
    )
    settled = measure(
        queue,
        reference,
        here,
        budget_s=budget_s,
        rule=rule,
        logs=out / "logs",
        duet=duet,
        show=show,
    )
    merge(verdict, queue, settled, budget_s)
    return settled.failure
