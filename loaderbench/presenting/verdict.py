"""A verdict shown: the aligned terminal table, verdict.md and, beside it, verdict.json. The
verdict itself (its rows, the rule, the exit code) is judging/verdict.py; every command that
ends in one (gate, ab, gate --remeasure, the pytest summary, the report) shows it from here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from loaderbench.judging.verdict import Row, Verdict
from loaderbench.storage import write_atomic

COLUMNS = ("benchmark", "baseline", "current", "change", "interval", "p", "verdict", "note")
#: Columns read left-aligned (names and words); the numbers are right-aligned.
LEFT = frozenset(("benchmark", "verdict", "note"))


def _value(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "ratio":
        return f"{value:.3g}"
    if kind == "memory":
        return f"{value:,.1f} MB"
    return f"{value * 1e3:,.2f} ms" if value < 10 else f"{value:,.2f} s"


def _change(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    return f"{value:+,.1f} MB" if kind == "memory" else f"{value:.3f}x"


def _interval(low: float | None, high: float | None, kind: str) -> str:
    if low is None or high is None:
        return "-"
    if kind == "memory":
        return f"[{low:+,.1f}, {high:+,.1f}] MB"
    return f"[{low:.3f}, {high:.3f}]"


def cells(row: Row) -> tuple[str, ...]:
    """One row as the table's COLUMNS show it."""
    return (
        row.name,
        _value(row.baseline, row.kind),
        _value(row.current, row.kind),
        _change(row.change, row.kind),
        _interval(row.low, row.high, row.kind),
        "-" if row.p is None else f"{row.p:.2g}",
        row.verdict,
        row.note,
    )


def text(verdict: Verdict) -> str:
    """The terminal form: the result line, header lines, an aligned table."""
    table = [COLUMNS, *(cells(row) for row in verdict.ordered_rows())]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    out = [f"{verdict.result()}: {verdict.summary()}"]
    out += [f"!! {line}" for line in verdict.header]
    for i, row in enumerate(table):
        out.append(
            "  ".join(
                c.ljust(w) if name in LEFT else c.rjust(w)
                for name, c, w in zip(COLUMNS, row, widths)
            ).rstrip()
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(verdict: Verdict, preamble: Sequence[str] = ()) -> str:
    lines = ["# Regression verdict", "", f"**{verdict.result()}**: {verdict.summary()}", ""]
    lines += [f"- {line}" for line in preamble]
    lines += [f"- **{line}**" for line in verdict.header]
    lines += [
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in verdict.ordered_rows():
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |")
    return "\n".join(lines) + "\n"


def write(verdict: Verdict, markdown_path: Path, preamble: list[str]) -> None:
    """Print the verdict, write it as markdown and, beside it, as JSON (every row, how it was
    judged, its pairs when measured side by side)."""
    print("\n".join(preamble))
    print(text(verdict))
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(markdown_path, markdown(verdict, preamble))
    json_path = markdown_path.with_suffix(".json")
    write_atomic(
        json_path, json.dumps({"preamble": preamble, **verdict.as_dict()}, indent=1) + "\n"
    )
    print(f"verdict written to {markdown_path} (and {json_path.name})")
