"""`loaderbench gate --remeasure`: the baseline's environment rebuilt from its recipe and measured
side by side with this one, so that "is it still as fast?" is answered by numbers taken at the
same time rather than hours or days apart.

``gate --confirm-side-by-side`` uses the same to confirm what the stored numbers flag: every
regressed time row (and derived ratio) whose benchmarks the engine can measure is measured side by
side against the recipe's environment, and stands only if it regresses there too. A machine that
runs slower today than on the day the baseline was recorded slows both sides alike.

Side A is the recipe's environment (paired/recipe.py: its Python, torch requirement, frozen
packages and the project at its commit, isolated from this shell's PYTHON* and LOADERBENCH_*
variables); side B is this interpreter running this checkout. Both measure the grid the baseline
was recorded with (its ``--lb-grid``/``--lb-profiles``/... arguments), narrowed or overridden by
anything after ``--``. The verdict is the side-by-side one (verdict.py), written to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loaderbench import machine
from loaderbench.errors import InputError
from loaderbench.judging.baseline import locate_baseline, recording
from loaderbench.judging.thresholds import load_thresholds
from loaderbench.judging.verdict import Verdict
from loaderbench.paired import recipe as recipes
from loaderbench.paired.ab import (
    Selection,
    budget_from,
    grid_from,
    judge_tallies,
    measure_side_by_side,
    measures_from,
    parse_selection,
    write_verdict,
)
from loaderbench.paired.engine import Engine
from loaderbench.paired.side import SETTINGS
from loaderbench.paired.sides import SideSpec
from loaderbench.results import Benchmark, Results, load_results
from loaderbench.runner import default_runner


def recorded_selection(args: list[str]) -> list[str]:
    """The recipe's pytest arguments that select the grid or set the sides (others, such as -k,
    have no side-by-side meaning and are left out)."""
    wanted = ("--lb-grid", "--lb-profiles", "--lb-workers", "--lb-start-methods", *SETTINGS)
    kept, items = [], list(args)
    while items:
        arg = items.pop(0)
        name, sep, value = arg.partition("=")
        if name in wanted:
            kept.append(f"{name}={value if sep else (items.pop(0) if items else '')}")
    return kept


def merged_selection(recorded: list[str], given: list[str]) -> Selection:
    """The recipe's selection with the given one on top: an option given replaces every recorded
    occurrence of it."""
    replaced = {arg.split("=", 1)[0] for arg in given}
    return parse_selection([a for a in recorded if a.split("=", 1)[0] not in replaced] + given)


def remeasure(args) -> int:
    paths = [f for f in args.files if not f.startswith("-")]
    given = [f for f in args.files if f.startswith("-")]
    if len(paths) > 1:
        raise InputError(
            f"--remeasure takes at most one BASELINE (a file or a folder), got {len(paths)} paths"
        )
    if paths:
        baseline_path = locate_baseline(Path(paths[0]))
    else:
        runner = default_runner()
        baseline_path = locate_baseline(
            Path(args.baselines) / runner, runner=runner, fingerprint=machine.fingerprint()
        )
    baseline = load_results(baseline_path)
    recipe = recipes.check(baseline.recipe)
    selection = merged_selection(recorded_selection(recipe["args"]), given)
    grid = grid_from(selection)
    budget = budget_from(args)
    measures = measures_from(args.measures)
    rule = load_thresholds().overridden(min_effect=args.min_effect).default
    project, cache, out = Path.cwd(), Path(args.venvs), Path(args.out)
    reference = recipes.rebuild(recipe, cache, project, label="A")
    reference = SideSpec(
        "A",
        reference.python,
        selection.common,
        pythonpath=reference.pythonpath,
        isolated=True,
        what=reference.what,
    )
    current = SideSpec("B", sys.executable, selection.common, what="this environment")
    verdict = measure_side_by_side(
        grid,
        measures,
        reference,
        current,
        budget=budget,
        rule=rule,
        out=out,
        mode=args.mode,
        names=("baseline", "current"),
    )
    write_verdict(
        verdict,
        out,
        [
            f"baseline: {baseline_path}{recording(baseline)}, remeasured from its recipe",
            reference.describe(),
            current.describe(),
            f"grid {grid.name}: {', '.join(grid.profiles)}; measures {', '.join(measures)}",
        ],
    )
    return verdict.exit_code(args.strict)


def _plan_of(bench: Benchmark):
    """The side-by-side plan measuring a benchmark of the results, or None (memory, transfer,
    distributed: not a measure of the engine)."""
    from loaderbench.grid import Case
    from loaderbench.paired.engine import TEST_OF, Arm, Plan

    measure, case = bench.measure, bench.case
    if (
        measure not in TEST_OF
        or case is None
        or bench.name != f"{TEST_OF[measure]}[{bench.case_id}]"
    ):
        return None
    arm = Arm(Case.from_dict(case), measure)
    return Plan(bench.name, arm, arm)


def confirm_side_by_side(
    verdict: Verdict, baseline: Results, current: Results, args, show=print
) -> None:
    """Measure the benchmarks behind every regressed row side by side with the baseline's
    recipe; a row stands only when each of them regresses there too (its note gives the
    side-by-side change), else it takes the side-by-side verdict. Rows the engine cannot measure,
    or a baseline without a recipe, are left to the fresh reruns of confirm.py."""
    flagged = [row for row in verdict.rows if row.verdict == "regressed"]
    benches = current.by_name()
    plans = {
        name: _plan_of(benches[name]) for row in flagged for name in row.inputs if name in benches
    }
    measurable = [
        row for row in flagged if row.inputs and all(plans.get(name) for name in row.inputs)
    ]
    recipe = baseline.recipe
    if not measurable:
        return
    if recipe is None:
        show(
            "loaderbench: the baseline records no recipe: its regressions are confirmed by "
            "fresh reruns only (re-record it with `make baseline FORCE=1` to confirm side by "
            "side)"
        )
        return
    recipe = recipes.check(recipe)
    invocation = list(current.invocation.args) if current.invocation else []
    common = parse_selection(recorded_selection(invocation)).common
    reference = recipes.rebuild(recipe, Path(args.venvs), Path.cwd(), label="A")
    reference = SideSpec(
        "A",
        reference.python,
        parse_selection(recorded_selection(recipe["args"])).common,
        pythonpath=reference.pythonpath,
        isolated=True,
        what=reference.what,
    )
    here = SideSpec("B", sys.executable, common, what="this environment")
    needed = list(dict.fromkeys(plans[name] for row in measurable for name in row.inputs))
    show(
        f"loaderbench: confirming {len(measurable)} regression(s) side by side against the "
        f"baseline's recipe ({len(needed)} benchmark(s))"
    )
    rule = load_thresholds().overridden(min_effect=args.min_effect).default
    engine = Engine(
        needed,
        reference,
        here,
        budget=budget_from(args),
        min_effect=rule.min_effect,
        alpha=rule.pair_alpha,
        logs=Path(args.out) / "logs",
        duet=args.mode == "auto",
    )
    measured = {row.name: row for row in judge_tallies(engine.run(), rule)}
    verdict.rule += (
        "; a regression of a time must repeat side by side against the baseline's recipe"
    )
    for row in measurable:
        seen = [measured[name] for name in row.inputs]
        said = ", ".join(
            f"{s.name} {s.change:.3f}x [{s.low:.3f}, {s.high:.3f}] {s.verdict}"
            if s.low is not None
            else f"{s.name} {s.verdict}"
            for s in seen
        )
        row.detail["side_by_side"] = said
        if all(s.verdict == "regressed" for s in seen):
            row.note += f"; confirmed side by side: {said}"
        else:
            worst = next((s for s in seen if s.verdict == "inconclusive"), seen[0])
            row.verdict = "inconclusive" if worst.verdict == "inconclusive" else "unchanged"
            row.note = f"not confirmed side by side: {said}; stored numbers: {row.note}"
