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

import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

from loaderbench.config import ConfigError, Selection, parse_selection
from loaderbench.errors import InputError
from loaderbench.judging.thresholds import Rule, load_thresholds
from loaderbench.judging.verdict import Verdict
from loaderbench.paired import environments
from loaderbench.paired.engine import Budget, Engine, Tally, ab_plans, verdict_rows
from loaderbench.paired.protocol import MEASURES
from loaderbench.paired.sides import SideSpec
from loaderbench.storage import write_atomic

DEFAULT_OUT = Path("results/ab")
VERSION_FIELDS = (("torch", "torch"), ("python", "Python"), ("cuda", "CUDA"))


def side_settings(label: str, selection: Selection, own: Iterable[str] = ()) -> tuple[str, ...]:
    """A side's arguments: both sides' settings, then the side's own (``--b-args``, which win),
    checked and written back in one canonical form."""
    try:
        return tuple(selection.side(own).args())
    except ConfigError as exc:
        raise InputError(f"side {label}: {exc}") from None


def make_side(
    label: str,
    *,
    python: str | None,
    spec: str | None,
    ref: str | None,
    repo: str | None,
    settings: tuple[str, ...],
    cache: Path,
    project: Path,
) -> SideSpec:
    """The SideSpec of one side from its options; an InputError when they cannot be used."""
    if python and spec:
        raise InputError(f"side {label}: give an interpreter or a spec, not both")
    if repo and not ref:
        raise InputError(f"side {label}: --{label.lower()}-repo needs --{label.lower()}-ref")
    if python:
        if not Path(python).is_file():
            raise InputError(f"side {label}: interpreter {python} does not exist")
        side = SideSpec(label, python, what=f"interpreter {python}")
    elif spec:
        side = environments.spec_side(label, spec, cache, project)
    else:
        side = SideSpec(label, sys.executable)
    side = SideSpec(label, side.python, settings, what=side.what)
    if ref:
        repository = Path(repo) if repo else project
        if not (repository / ".git").exists():
            raise InputError(
                f"side {label}: {repository} is not a git repository (--"
                f"{label.lower()}-repo names the repository of --"
                f"{label.lower()}-ref)"
            )
        side = environments.ref_side(side, ref, repository, cache, project)
    return side


def budget_from(args) -> Budget:
    try:
        return Budget(
            seconds_per_row=args.budget,
            blocks=args.blocks,
            min_blocks=min(Budget.min_blocks, args.blocks),
        )
    except ValueError as exc:
        raise InputError(f"--budget/--blocks: {exc}") from None


def measures_from(value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(m.strip() for m in value.split(",") if m.strip()))
    unknown = [m for m in chosen if m not in MEASURES]
    if unknown or not chosen:
        raise InputError(
            f"--measures: unknown measure {', '.join(unknown) or '(none given)'}; "
            f"valid: {', '.join(MEASURES)}"
        )
    return chosen


def measure_side_by_side(
    grid,
    measures: tuple[str, ...],
    a: SideSpec,
    b: SideSpec,
    *,
    budget: Budget,
    rule: Rule,
    out: Path,
    mode: str,
    names: tuple[str, str] = ("A", "B"),
) -> Verdict:
    """Every row of ``grid`` and ``measures`` measured on ``a`` and ``b`` side by side (duets
    when ``mode`` is auto, the sides' logs under ``out``), and judged by ``rule``: what ``ab``
    and ``gate --remeasure`` both do."""
    engine = Engine(
        ab_plans(grid, measures),
        a,
        b,
        budget=budget,
        min_effect=rule.min_effect,
        alpha=rule.pair_alpha,
        logs=out / "logs",
        duet=mode == "auto",
    )
    tallies = engine.run()
    header = hello_header(engine.hellos, names=names)
    return Verdict(judge_tallies(tallies, rule), header, rule_text(rule, budget))


def hello_header(hellos: dict[str, dict], names=("A", "B")) -> list[str]:
    """What differs between the two sides as they reported it: versions, then settings."""
    a, b = hellos.get("a", {}), hellos.get("b", {})
    fa, fb = a.get("fingerprint") or {}, b.get("fingerprint") or {}
    lines = [
        f"{names[1]} {label} {fb.get(key)} vs {names[0]} {label} {fa.get(key)}"
        for key, label in VERSION_FIELDS
        if fa.get(key) != fb.get(key)
    ]
    sa, sb = a.get("settings") or {}, b.get("settings") or {}
    lines += [
        f"{names[1]} {key} {sb.get(key)} vs {names[0]} {key} {sa.get(key)}"
        for key in dict.fromkeys([*sa, *sb])
        if sa.get(key) != sb.get(key)
    ]
    return lines


def rule_text(rule: Rule, budget: Budget) -> str:
    return (
        f"regressed = B slower than A with the {1 - rule.pair_alpha:.0%} interval above 1, "
        f"the estimate beyond the minimum effect {rule.min_effect:.0%} and Wilcoxon "
        f"p < {rule.pair_alpha:g}; unchanged = the interval within +/-{rule.min_effect:.0%}; "
        f"budget {budget.seconds_per_row:g} s per row, {budget.min_blocks}-{budget.blocks} "
        "blocks of fresh processes"
    )


def judge_tallies(tallies: list[Tally], rule: Rule) -> list:
    return verdict_rows(tallies, min_effect=rule.min_effect, alpha=rule.pair_alpha)


def write_verdict(verdict: Verdict, out: Path, preamble: list[str]) -> None:
    """Print the verdict, then write verdict.md and verdict.json into ``out``."""
    print("\n".join(preamble))
    print(verdict.to_text())
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "verdict.md", verdict.to_markdown(preamble))
    write_atomic(
        out / "verdict.json",
        json.dumps({"preamble": preamble, **verdict.as_dict()}, indent=1) + "\n",
    )
    print(f"verdict written to {out / 'verdict.md'} (pairs in {out / 'verdict.json'})")


def cmd_ab(args) -> int:
    selection = parse_selection(args.pytest_args)
    grid = selection.grid()
    budget = budget_from(args)
    measures = measures_from(args.measures)
    rule = load_thresholds().overridden(min_effect=args.min_effect, pair_alpha=args.alpha).default
    cache, project, out = Path(args.venvs), Path.cwd(), Path(args.out)
    sides = [
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
    ]
    a, b = sides
    if (a.python, a.settings, a.pythonpath) == (b.python, b.settings, b.pythonpath):
        print(
            "loaderbench ab: A and B are the same environment: this is an A/A run (a check of "
            "the false-alarm rate)",
            file=sys.stderr,
            flush=True,
        )
    verdict = measure_side_by_side(
        grid, measures, a, b, budget=budget, rule=rule, out=out, mode=args.mode
    )
    write_verdict(
        verdict,
        out,
        [
            a.describe(),
            b.describe(),
            f"grid {grid.name}: {', '.join(grid.profiles)}; measures {', '.join(measures)}",
        ],
    )
    return verdict.exit_code(args.strict)


def add_engine_options(parser, *, thresholds: bool = True, two_sides: bool = True) -> None:
    """Budget and blocks, the paired thresholds (``thresholds``), what to measure and how to pair
    two sides (``two_sides``): shared by ab, gate --remeasure, sensitivity and ratios."""
    parser.add_argument(
        "--budget",
        type=float,
        default=Budget.seconds_per_row,
        metavar="SECONDS",
        help="measuring time per row, on average (rows that settle early leave "
        f"theirs to the others). Default: {Budget.seconds_per_row:g}",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        default=Budget.blocks,
        metavar="N",
        help="at most this many starts of fresh side processes (at least "
        f"{Budget.min_blocks}). Default: {Budget.blocks}",
    )
    if two_sides:
        parser.add_argument(
            "--measures",
            default="throughput,startup",
            metavar="LIST",
            help=f"what to measure: {', '.join(MEASURES)}. Default: throughput,startup",
        )
        parser.add_argument(
            "--mode",
            choices=("auto", "alternate"),
            default="auto",
            help="auto: rows without workers of the cpu and io profiles as a duet "
            "(both sides at once, a core each), the rest one after the other "
            "in random order; alternate: every row one after the other",
        )
    if not thresholds:
        return
    parser.add_argument(
        "--min-effect",
        type=float,
        metavar="FRACTION",
        help="smallest change worth calling (default: pyproject [tool.loaderbench], else 0.05)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        metavar="P",
        help="1 - confidence of the interval, and the Wilcoxon level "
        "(default: pyproject pair_alpha, else 0.05)",
    )


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
    add_engine_options(parser)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 when no row regressed but some are inconclusive",
    )
    parser.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        metavar="DIR",
        help=f"where verdict.md, verdict.json and the sides' logs go. Default: {DEFAULT_OUT}",
    )
    parser.add_argument(
        "--venvs",
        default=str(environments.DEFAULT_CACHE),
        metavar="DIR",
        help="where spec virtualenvs and git-ref checkouts are made and reused. "
        f"Default: {environments.DEFAULT_CACHE}",
    )
    parser.add_argument(
        "pytest_args",
        nargs="*",
        metavar="-- SELECTION",
        help="grid selection and settings for both sides",
    )
    parser.set_defaults(run=cmd_ab)
