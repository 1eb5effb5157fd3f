"""`loaderbench sensitivity`'s comparisons tabulated: per row, the false alarms of A against A
with the spread of its estimates, and for each slowdown in how many runs the row came out
regressed. The comparisons are measured, and read back for ``--tabulate``, in
paired/sensitivity.py."""

from __future__ import annotations

import math
import statistics

from loaderbench.paired.sensitivity import AA, Comparisons


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


def markdown(comparisons: Comparisons) -> str:
    """The table, sensitivity.md's content."""
    records, names, preamble = comparisons.records, comparisons.names, comparisons.preamble
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
