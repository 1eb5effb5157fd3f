"""`loaderbench gate --remeasure` (cli/gate.py): the baseline's environment rebuilt from its
recipe and measured side by side with this one, so that "is it still as fast?" is answered by
numbers taken at the same time rather than hours or days apart.

``gate --side-by-side SECONDS`` (what `make bench` runs) uses the same recipe to settle what the
stored numbers leave open or flag, row by row within a budget: paired/settle.py.

Side A is the recipe's environment (paired/recipe.py: its Python, torch requirement, frozen
packages and the project at its commit, isolated from this shell's PYTHON* and LOADERBENCH_*
variables); side B is this interpreter running this checkout. Both measure the grid the baseline
was recorded with (the grid selection and settings among its recorded arguments), narrowed or
overridden by anything after ``--``. The verdict is the side-by-side one (verdict.py); cli/gate.py writes it to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loaderbench import machine
from loaderbench.config import recorded_selection
from loaderbench.errors import InputError
from loaderbench.judging.baseline import locate_baseline, recording
from loaderbench.judging.thresholds import Rule
from loaderbench.judging.verdict import Verdict
from loaderbench.paired import recipe as recipes
from loaderbench.paired.ab import measure_side_by_side, side_settings
from loaderbench.paired.control import SideSpec
from loaderbench.paired.schedule import Schedule
from loaderbench.results import load_results
from loaderbench.runner import default_runner


def remeasure(
    files: list[str],
    *,
    baselines: Path,
    schedule: Schedule,
    measures: tuple[str, ...],
    rule: Rule,
    venvs: Path,
    out: Path,
    duet: bool,
) -> tuple[Verdict, list[str]]:
    """The baseline (``files``: at most one path, then selection arguments; none: this runner
    class's under ``baselines``) remeasured side by side with this environment (its logs in
    ``out``); the verdict, and the lines that say what was measured against what."""
    paths = [f for f in files if not f.startswith("-")]
    given = [f for f in files if f.startswith("-")]
    if len(paths) > 1:
        raise InputError(
            f"--remeasure takes at most one BASELINE (a file or a folder), got {len(paths)} paths"
        )
    if paths:
        baseline_path = locate_baseline(Path(paths[0]))
    else:
        runner = default_runner()
        baseline_path = locate_baseline(
            baselines / runner, runner=runner, fingerprint=machine.fingerprint()
        )
    baseline = load_results(baseline_path)
    recipe = recipes.check(baseline.recipe)
    selection = recorded_selection(recipe.args, given)
    grid = selection.grid()
    project = Path.cwd()
    reference = recipes.rebuild(recipe, venvs, project, label="A")
    reference = SideSpec(
        "A",
        reference.python,
        side_settings("A", selection),
        pythonpath=reference.pythonpath,
        isolated=True,
        what=reference.what,
    )
    current = SideSpec("B", sys.executable, side_settings("B", selection), what="this environment")
    verdict = measure_side_by_side(
        grid,
        measures,
        reference,
        current,
        schedule=schedule,
        rule=rule,
        out=out,
        duet=duet,
        names=("baseline", "current"),
    )
    return verdict, [
        f"baseline: {baseline_path}{recording(baseline)}, remeasured from its recipe",
        reference.describe(),
        current.describe(),
        f"grid {grid.name}: {', '.join(grid.profiles)}; measures {', '.join(measures)}",
    ]
