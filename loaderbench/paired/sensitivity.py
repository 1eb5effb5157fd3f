"""How small a slowdown the side-by-side verdict catches on this runner, now, and how often it
raises a false alarm, shown rather than argued (`loaderbench sensitivity`, cli/sensitivity.py).

Each run compares, side by side (the engine of `loaderbench ab`, same budget):

- A against A (the same environment twice): any row called regressed is a false alarm;
- A against B with more work per sample (``--slowdowns 1.10,1.25``: B's ``--lb-cost-scale``);
- A against B with a slowdown injected into DataLoader itself (``--inject NAME=VALUE``,
  inject.py: per batch on the way from a worker, per worker start, per batch in the main process).

The table (presenting/sensitivity.py) gives, per row, the false alarms and the spread of the A/A estimates, and for each
slowdown in how many runs the row came out regressed. ``results/sensitivity/`` receives
sensitivity.json after every comparison (a long run interrupted keeps what it measured) and
sensitivity.md; ``--tabulate`` counts the files of several commands together in one table.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from loaderbench.config import Selection, args_for, parse_injections
from loaderbench.errors import InputError
from loaderbench.judging.thresholds import Rule
from loaderbench.paired.ab import judge_tallies, side_settings
from loaderbench.paired.control import SideSpec
from loaderbench.paired.engine import Engine, ab_plans
from loaderbench.paired.schedule import Schedule
from loaderbench.storage import write_atomic

AA = "A/A"


@dataclass(frozen=True)
class Variant:
    """What side B differs in: nothing (A/A), a cost scale or an injected slowdown."""

    name: str
    settings: tuple[str, ...] = ()


def variants(aa: bool, slowdowns: str, injects: list[str]) -> list[Variant]:
    """A/A, then the cost scales from the smallest, then the injected slowdowns."""
    found = [Variant(AA)] if aa else []
    factors = []
    for value in (v.strip() for v in slowdowns.split(",") if v.strip()):
        try:
            factors.append(float(value))
        except ValueError:
            factors.append(0.0)
        if not factors[-1] > 1:
            raise InputError(
                f"--slowdowns: {value!r} is not a factor > 1 (e.g. 1.10 for 10% "
                "more work per sample)"
            )
    found += [Variant(f"cost x{f:g}", tuple(args_for(cost_scale=f))) for f in sorted(set(factors))]
    for value in injects:
        parse_injections([value])  # a ConfigError (exit 2) naming the valid ones
        found.append(Variant(f"inject {value}", tuple(args_for(inject=(value,)))))
    if not found:
        raise InputError("nothing to compare: give --slowdowns or --inject, or keep A/A")
    return found


@dataclass(frozen=True)
class Comparisons:
    """What sensitivity.json holds: every comparison's rows, the variants in table order, and the
    lines that say what was run (presenting/sensitivity.py tabulates them)."""

    records: list[dict]
    names: list[str]
    preamble: list[str]


def load_comparisons(paths: list[str]) -> Comparisons:
    """The sensitivity.json of several commands (runs made in several sittings), counted
    together."""
    records: list[dict] = []
    preamble: list[str] = []
    for path in paths:
        try:
            stored = json.loads(Path(path).read_text())
            records += stored["records"]
            preamble += [f"{path}: {line}" for line in stored["preamble"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"--tabulate: {path} is not a sensitivity.json ({exc}); give the "
                "files `loaderbench sensitivity` wrote"
            ) from None
    names = list(dict.fromkeys(rec["variant"] for rec in records))
    costs = sorted(
        (n for n in names if n.startswith("cost x")), key=lambda n: float(n.removeprefix("cost x"))
    )
    names = [n for n in names if n == AA] + costs + [n for n in names if n != AA and n not in costs]
    return Comparisons(records, names, preamble)


def measure_sensitivity(
    selection: Selection,
    chosen: list[Variant],
    *,
    runs: int,
    schedule: Schedule,
    measures: tuple[str, ...],
    rule: Rule,
    out: Path,
    duet: bool,
) -> Comparisons:
    """A against each of ``chosen`` side by side, ``runs`` times over, every comparison's rows
    recorded in ``out``/sensitivity.json as it ends (a long run interrupted keeps what it
    measured)."""
    if runs < 1:
        raise InputError(f"--runs must be >= 1, got {runs}")
    grid = selection.grid()
    plans = ab_plans(grid, measures)
    a = SideSpec("A", sys.executable, side_settings("A", selection))
    preamble = [
        f"grid {grid.name}: {', '.join(grid.profiles)}; measures {', '.join(measures)}; "
        f"{runs} run(s); budget {schedule.seconds_per_row:g} s per row, up to "
        f"{schedule.blocks} blocks; minimum effect {rule.min_effect:.0%}",
        f"started {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]
    records: list[dict] = []
    total = runs * len(chosen)
    for run in range(1, runs + 1):
        for variant in chosen:
            b = SideSpec(
                "B",
                sys.executable,
                side_settings("B", selection, variant.settings),
            )
            print(
                f"loaderbench sensitivity: run {run} of {runs}, {variant.name} "
                f"({len(records) + 1} of {total})",
                file=sys.stderr,
                flush=True,
            )
            started = time.monotonic()
            engine = Engine(
                plans,
                a,
                b,
                schedule=schedule,
                min_effect=rule.min_effect,
                alpha=rule.pair_alpha,
                logs=out / "logs",
                duet=duet,
            )
            rows = judge_tallies(engine.run(), rule)
            records.append(
                {
                    "run": run,
                    "variant": variant.name,
                    "seconds": round(time.monotonic() - started, 1),
                    "rows": [
                        {
                            k: r.as_dict().get(k)
                            for k in (
                                "name",
                                "verdict",
                                "change",
                                "low",
                                "high",
                                "p",
                                "pairs",
                                "blocks",
                                "stopped",
                                "block_ratios",
                                "rounds",
                            )
                        }
                        for r in rows
                    ],
                }
            )
            out.mkdir(parents=True, exist_ok=True)
            write_atomic(
                out / "sensitivity.json",
                json.dumps({"preamble": preamble, "records": records}, indent=1) + "\n",
            )
    return Comparisons(records, [v.name for v in chosen], preamble)
