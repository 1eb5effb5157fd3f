"""Two environments measured side by side, round by round, B judged against A: what `loaderbench
ab` (cli/ab.py, whose docstring says how its sides are made), `gate --remeasure`, `gate
--side-by-side`, `ratios` and `sensitivity` build on. ``make_side`` builds a side from its
options, ``measure_side_by_side`` runs the engine (paired/engine.py) and judges its tallies
(verdict.py); the commands show it (presenting/verdict.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from loaderbench.config import ConfigError, Selection
from loaderbench.errors import InputError
from loaderbench.judging.thresholds import Rule
from loaderbench.judging.verdict import Verdict
from loaderbench.machine import Fingerprint
from loaderbench.paired import environments
from loaderbench.paired.control import SideSpec
from loaderbench.paired.engine import Engine, Tally, ab_plans, verdict_rows
from loaderbench.paired.protocol import PROTOCOL, Hello
from loaderbench.paired.schedule import Schedule

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


def measure_side_by_side(
    grid,
    measures: tuple[str, ...],
    a: SideSpec,
    b: SideSpec,
    *,
    schedule: Schedule,
    rule: Rule,
    out: Path,
    duet: bool,
    names: tuple[str, str] = ("A", "B"),
) -> Verdict:
    """Every row of ``grid`` and ``measures`` measured on ``a`` and ``b`` side by side (duets
    where they fit when ``duet``, the sides' logs under ``out``), and judged by ``rule``: what ``ab``
    and ``gate --remeasure`` both do."""
    engine = Engine(
        ab_plans(grid, measures),
        a,
        b,
        schedule=schedule,
        min_effect=rule.min_effect,
        alpha=rule.pair_alpha,
        logs=out / "logs",
        duet=duet,
    )
    tallies = engine.run()
    header = hello_header(engine.hellos, names=names)
    return Verdict(judge_tallies(tallies, rule), header, rule_text(rule, schedule))


def hello_header(hellos: dict[str, Hello], names=("A", "B")) -> list[str]:
    """What differs between the two sides as they reported it: versions, then settings."""
    unsaid = Hello(PROTOCOL)
    a, b = hellos.get("a", unsaid), hellos.get("b", unsaid)
    fa, fb = a.fingerprint or Fingerprint(), b.fingerprint or Fingerprint()
    lines = [
        f"{names[1]} {label} {getattr(fb, key)} vs {names[0]} {label} {getattr(fa, key)}"
        for key, label in VERSION_FIELDS
        if getattr(fa, key) != getattr(fb, key)
    ]
    sa, sb = a.settings, b.settings
    lines += [
        f"{names[1]} {key} {sb.get(key)} vs {names[0]} {key} {sa.get(key)}"
        for key in dict.fromkeys([*sa, *sb])
        if sa.get(key) != sb.get(key)
    ]
    return lines


def rule_text(rule: Rule, schedule: Schedule) -> str:
    return (
        f"regressed = B slower than A with the {1 - rule.pair_alpha:.0%} interval above 1, "
        f"the estimate beyond the minimum effect {rule.min_effect:.0%} and Wilcoxon "
        f"p < {rule.pair_alpha:g}; unchanged = the interval within +/-{rule.min_effect:.0%}; "
        f"budget {schedule.seconds_per_row:g} s per row, {schedule.min_blocks}-{schedule.blocks} "
        "blocks of fresh processes"
    )


def judge_tallies(tallies: list[Tally], rule: Rule) -> list:
    return verdict_rows(tallies, min_effect=rule.min_effect, alpha=rule.pair_alpha)
