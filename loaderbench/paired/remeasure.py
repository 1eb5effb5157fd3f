"""`loaderbench gate --remeasure`: the baseline's environment rebuilt from its recipe and measured
side by side with this one, so that "is it still as fast?" is answered by numbers taken at the
same time rather than hours or days apart.

``gate --side-by-side SECONDS`` (what `make bench` runs) uses the same recipe to settle what the
stored numbers leave open or flag, row by row within a budget: paired/settle.py.

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
from loaderbench.paired import recipe as recipes
from loaderbench.paired.ab import (
    Selection,
    budget_from,
    grid_from,
    measure_side_by_side,
    measures_from,
    parse_selection,
    write_verdict,
)
from loaderbench.paired.side import SETTINGS
from loaderbench.paired.sides import SideSpec
from loaderbench.results import load_results
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
