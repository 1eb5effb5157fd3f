"""`loaderbench ratios`' rows shown: the aligned table, ratios.txt and ratios.json. The rows are
measured in paired/ratios.py."""

from __future__ import annotations

import json
from pathlib import Path

from loaderbench.grid import Grid
from loaderbench.storage import write_atomic

COLUMNS = ("ratio", "value", "interval", "pairs", "blocks", "stopped")


def text(rows: list[dict]) -> str:
    table = [COLUMNS] + [
        (
            r["name"],
            f"{r['value']:.3f}",
            "-" if r["low"] is None else f"[{r['low']:.3f}, {r['high']:.3f}]",
            str(r["pairs"]),
            str(r["blocks"]),
            r["stopped"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def write(rows: list[dict], grid: Grid, confidence: float, out: Path) -> None:
    """Print the table; write it to ``out``/ratios.txt and the rows to ratios.json."""
    shown = text(rows)
    print(shown)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(
        out / "ratios.json",
        json.dumps(
            {
                "grid": grid.name,
                "profiles": list(grid.profiles),
                "confidence": confidence,
                "rows": rows,
            },
            indent=1,
        )
        + "\n",
    )
    write_atomic(out / "ratios.txt", shown + "\n")
