"""How small a slowdown the side-by-side verdict catches on this runner, now, and how often it
raises a false alarm, shown rather than argued (`loaderbench sensitivity`, cli/sensitivity.py).

Each run compares, side by side (the engine of `loaderbench ab`, same budget):

- A against A (the same environment twice): any row called regressed is a false alarm;
- A against B with more work per sample (``--slowdowns 1.10,1.25``: B's ``--lb-cost-scale``);
- A against B with a slowdown injected into DataLoader itself (``--inject NAME=VALUE``,
  inject.py: per batch on the way from a worker, per worker start, per batch in the main process).

The table gives, per row, the false alarms and the spread of the A/A estimates, and for each
slowdown in how many runs the row came out regressed. ``results/sensitivity/`` receives
sensitivity.json after every comparison (a long run interrupted keeps what it measured) and
sensitivity.md; ``--tabulate`` counts the files of several commands together in one table.
"""

from __future__ import annotations

import json
import math
import statistics
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


def summarise(records: list[dict], names: list[str]) -> tuple[list[str], list[list[str]]]:
    """The table: one line per row, a column per variant (A/A: false alarms and the estimates'
    spread; a slowdown: runs regressed out of runs)."""
    rows = list(dict.fromkeys(r["name"] for rec in records for r in rec["rows"]))
    header = ["row", *names, "smallest cost slowdown caught in every run"]
    lines = []
    for row in rows:
        cells = [row]
        measured, caught = False, []  # cost factors tried on this row; those caught every run
        for name in names:
            seen = [
                r
                for rec in records
                if rec["variant"] == name
                for r in rec["rows"]
                if r["name"] == row
            ]
            if not seen:
                cells.append("-")
                continue
            regressed = sum(r["verdict"] == "regressed" for r in seen)
            if name == AA:
                changes = [r["change"] for r in seen if r["change"] is not None]
                spread = f", {min(changes):.3f}-{max(changes):.3f}x" if changes else ""
                cells.append(f"{regressed} of {len(seen)} regressed{spread}")
            else:
                cells.append(f"{regressed} of {len(seen)} regressed")
                if name.startswith("cost x"):
                    measured = True
                    if regressed == len(seen):
                        caught.append(float(name.removeprefix("cost x")))
        smallest = f"{min(caught) - 1:.0%}" if caught else ("none" if measured else "-")
        lines.append([*cells, smallest])
    return header, lines


def to_markdown(records: list[dict], names: list[str], preamble: list[str]) -> str:
    header, lines = summarise(records, names)
    out = ["# Sensitivity of the side-by-side verdict", ""]
    out += [f"- {line}" for line in preamble]
    durations: dict[str, list[float]] = {}
    for rec in records:
        durations.setdefault(rec["variant"], []).append(rec["seconds"])
    out += [
        f"- {name}: {len(d)} comparison(s), {min(d) / 60:.1f}-{max(d) / 60:.1f} min each"
        for name, d in durations.items()
    ]
    out += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    spreads = pair_spreads(records)
    if spreads:
        out += [
            "",
            "How much one pair's ratio B/A moves within a block of processes, A against A "
            "(standard deviation of its logarithm, median over the blocks of each run; the "
            "range over runs): the noise each block's median has to average away.",
            "",
        ]
        out += [f"- {name}: {min(v):.1%}-{max(v):.1%}" for name, v in spreads.items()]
    return "\n".join(out) + "\n"


def pair_spreads(records: list[dict]) -> dict[str, list[float]]:
    """Per A/A row, for each run whose rounds were kept, the median over its blocks of the spread
    of the pairs' log ratios (blocks of at least three pairs)."""
    spreads: dict[str, list[float]] = {}
    for rec in records:
        if rec["variant"] != AA:
            continue
        for row in rec["rows"]:
            per_block = [
                statistics.stdev(math.log(b / a) for a, b in block)
                for block in row.get("rounds") or []
                if len(block) >= 3
            ]
            if per_block:
                spreads.setdefault(row["name"], []).append(statistics.median(per_block))
    return spreads


def tabulate(paths: list[str]) -> str:
    """One table from the sensitivity.json of several commands (runs made in several sittings)."""
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
    return to_markdown(records, names, preamble)


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
) -> str:
    """A against each of ``chosen`` side by side, ``runs`` times over, every comparison's rows
    recorded in ``out``/sensitivity.json as it ends; the table (also sensitivity.md)."""
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
    markdown = to_markdown(records, [v.name for v in chosen], preamble)
    write_atomic(out / "sensitivity.md", markdown)
    return markdown
