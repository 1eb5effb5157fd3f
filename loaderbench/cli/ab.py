"""`loaderbench ab`: two environments measured side by side, round by round, B judged against A.

Each side is a long-lived process (paired/side.py) of its own environment: this interpreter,
another one (``--b-python``), a pip requirement in a virtualenv made here (``--b-spec``), the code
of a git ref (``--b-ref``, of this project or, with ``--b-repo``, of the repository holding your
dataset), plus settings of its own (``--b-args='--lb-cost-scale=1.1'``). Both build the same
cases; their rounds are paired, in random order or as a duet, block after block of fresh
processes, until each row's interval settles or the budget is spent (paired/engine.py). Every row
is regressed, improved, unchanged or inconclusive (verdict.py).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from loaderbench.cli import options
from loaderbench.paired import environments
from loaderbench.paired.ab import make_side, measure_side_by_side, side_settings
from loaderbench.presenting import verdict as shown

DEFAULT_OUT = Path("results/ab")


def cmd_ab(args) -> int:
    selection = options.selection(args)
    grid = selection.grid()
    schedule, measures, rule = (
        options.schedule(args),
        options.measures(args),
        options.pair_rule(args),
    )
    cache, project, out = Path(args.venvs), Path.cwd(), Path(args.out)
    a, b = (
        make_side(
            label,
            python=getattr(args, f"{low}_python"),
            spec=getattr(args, f"{low}_spec"),
            ref=getattr(args, f"{low}_ref"),
            repo=getattr(args, f"{low}_repo"),
            settings=side_settings(
                label, selection, shlex.split(getattr(args, f"{low}_args") or "")
            ),
            cache=cache,
            project=project,
        )
        for label, low in (("A", "a"), ("B", "b"))
    )
    if (a.python, a.settings, a.pythonpath) == (b.python, b.settings, b.pythonpath):
        print(
            "loaderbench ab: A and B are the same environment: this is an A/A run (a check of "
            "the false-alarm rate)",
            file=sys.stderr,
            flush=True,
        )
    verdict = measure_side_by_side(
        grid, measures, a, b, schedule=schedule, rule=rule, out=out, duet=args.mode == "auto"
    )
    shown.write(
        verdict,
        out / "verdict.md",
        [
            a.describe(),
            b.describe(),
            f"grid {grid.name}: {', '.join(grid.profiles)}; measures {', '.join(measures)}",
        ],
    )
    return verdict.exit_code(args.strict)


def register(commands) -> None:
    parser = commands.add_parser(
        "ab",
        help="compare two environments side by side (exit 1 if B regressed)",
        description="Measure the same cases in two environments at the same time, round by "
        "round, and judge B against A with a confidence interval per row. Anything "
        "after -- selects the grid (--lb-profiles=cpu --lb-workers=0,2) or sets both "
        "sides (--lb-cost-scale=1.1).",
    )
    for label in ("a", "b"):
        side = label.upper()
        parser.add_argument(
            f"--{label}-python",
            metavar="PATH",
            help=f"interpreter of side {side} (a venv's bin/python). Default: this one",
        )
        parser.add_argument(
            f"--{label}-spec",
            metavar="REQUIREMENT",
            help=f"pip requirement installed into a new virtualenv for side "
            f"{side}, e.g. 'torch==2.12.0'",
        )
        parser.add_argument(
            f"--{label}-ref",
            metavar="REF",
            help=f"git ref whose code side {side} runs (checked out with git "
            f"worktree); of this project unless --{label}-repo",
        )
        parser.add_argument(
            f"--{label}-repo",
            metavar="DIR",
            help=f"the git repository of --{label}-ref (e.g. the one holding "
            "your --lb-dataset). Default: this project's",
        )
        parser.add_argument(
            f"--{label}-args",
            metavar="SETTINGS",
            help=f"settings of side {side} only; write it with '=': "
            f"--{label}-args='--lb-cost-scale=1.1'",
        )
    options.add_budget(parser)
    options.add_two_sides(parser)
    options.add_pair_thresholds(parser)
    options.add_strict(parser)
    options.add_out(parser, DEFAULT_OUT, "where verdict.md, verdict.json and the sides' logs go")
    options.add_venvs(parser, environments.DEFAULT_CACHE)
    options.add_selection(parser)
    parser.set_defaults(run=cmd_ab)
