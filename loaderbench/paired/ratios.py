"""`loaderbench ratios`: ratios between two configurations measured side by side in one
environment, each with a confidence interval: the speed-up of workers over none, the start-up
cost of spawn or forkserver over fork, and the gain overlap brings to an epoch with a training step.

Both configurations of a ratio live in one side process and alternate round by round, in random
order (paired/engine.py), block after block of fresh processes, rather than being divided out of
medians taken minutes apart as the derived ratios of a benchmark run are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from loaderbench.config import parse_selection
from loaderbench.errors import EXIT_OK, InputError
from loaderbench.judging.thresholds import load_thresholds
from loaderbench.paired.ab import (
    add_engine_options,
    budget_from,
    side_settings,
)
from loaderbench.paired.engine import RATIO_KINDS, Engine, Tally, ratio_plans, reported
from loaderbench.paired.sides import SideSpec
from loaderbench.storage import write_atomic

DEFAULT_OUT = Path("results/ratios")
COLUMNS = ("ratio", "value", "interval", "pairs", "blocks", "stopped")


def rows_of(tallies: list[Tally], alpha: float) -> list[dict]:
    rows = []
    for tally in tallies:
        estimate = tally.estimate(alpha)
        if estimate is None:
            continue
        value, low, high = reported(estimate, tally.plan)
        rows.append(
            {
                "name": tally.plan.name,
                "value": value,
                "low": low,
                "high": high,
                "pairs": estimate.pairs,
                "blocks": estimate.blocks,
                "mode": tally.mode,
                "stopped": tally.stopped,
                "what": RATIO_KINDS[tally.plan.name.split("[")[0]],
            }
        )
    return rows


def to_text(rows: list[dict]) -> str:
    cells = [COLUMNS] + [
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
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def cmd_ratios(args) -> int:
    selection = parse_selection(args.pytest_args)
    grid = selection.grid()
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = [k for k in kinds if k not in RATIO_KINDS]
    if unknown or not kinds:
        raise InputError(
            f"--kinds: unknown ratio {', '.join(unknown) or '(none given)'}; valid: "
            f"{', '.join(RATIO_KINDS)}"
        )
    plans = ratio_plans(grid, kinds)
    if not plans:
        raise InputError(
            "the selected grid holds no pair of configurations for these ratios "
            "(a speed-up needs workers beside 0, a start-up ratio spawn or "
            "forkserver beside fork)"
        )
    rule = load_thresholds().overridden(min_effect=args.min_effect, pair_alpha=args.alpha).default
    side = SideSpec("A", sys.executable, side_settings("A", selection))
    out = Path(args.out)
    engine = Engine(
        plans,
        side,
        None,
        budget=budget_from(args),
        min_effect=rule.min_effect,
        alpha=rule.pair_alpha,
        logs=out / "logs",
    )
    rows = rows_of(engine.run(), rule.pair_alpha)
    text = to_text(rows)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(
        out / "ratios.json",
        json.dumps(
            {
                "grid": grid.name,
                "profiles": list(grid.profiles),
                "confidence": 1 - rule.pair_alpha,
                "rows": rows,
            },
            indent=1,
        )
        + "\n",
    )
    write_atomic(out / "ratios.txt", text + "\n")
    print(f"ratios written to {out / 'ratios.json'}")
    return EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser(
        "ratios",
        help="ratios between configurations (speed-up, start-up ratio, overlap gain), "
        "measured side by side with an interval",
        description="Measure, in this environment, each ratio's two configurations side by side "
        "(alternating rounds in one process, blocks of fresh processes) and print it "
        "with its confidence interval. Anything after -- selects the grid "
        "(--lb-profiles=cpu --lb-workers=0,2,4).",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(RATIO_KINDS),
        metavar="LIST",
        help=f"which ratios: {', '.join(RATIO_KINDS)}. Default: all",
    )
    add_engine_options(parser, two_sides=False)
    parser.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        metavar="DIR",
        help=f"where ratios.json and ratios.txt go. Default: {DEFAULT_OUT}",
    )
    parser.add_argument(
        "pytest_args", nargs="*", metavar="-- SELECTION", help="grid selection and settings"
    )
    parser.set_defaults(run=cmd_ratios)
