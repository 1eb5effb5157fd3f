"""Ratios between two configurations measured side by side in one environment (`loaderbench
ratios`, cli/ratios.py), each with a confidence interval: the speed-up of workers over none, the
start-up cost of spawn or forkserver over fork, and the gain overlap brings to an epoch with a
training step.

Both configurations of a ratio live in one side process and alternate round by round, in random
order (paired/engine.py), block after block of fresh processes, rather than being divided out of
medians taken minutes apart as the derived ratios of a benchmark run are.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loaderbench.config import Selection
from loaderbench.errors import InputError
from loaderbench.judging.thresholds import Rule
from loaderbench.paired.ab import side_settings
from loaderbench.paired.control import SideSpec
from loaderbench.paired.engine import RATIO_KINDS, Engine, Tally, ratio_plans, reported
from loaderbench.paired.schedule import Schedule


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


def measure_ratios(
    selection: Selection, kinds: tuple[str, ...], *, schedule: Schedule, rule: Rule, out: Path
) -> list[dict]:
    """Each ratio of ``kinds`` in the selected grid, its two configurations measured side by
    side in one side process of this interpreter (its logs in ``out``): its rows, which
    presenting/ratios.py shows."""
    grid = selection.grid()
    plans = ratio_plans(grid, kinds)
    if not plans:
        raise InputError(
            "the selected grid holds no pair of configurations for these ratios "
            "(a speed-up needs workers beside 0, a start-up ratio spawn or "
            "forkserver beside fork)"
        )
    side = SideSpec("A", sys.executable, side_settings("A", selection))
    engine = Engine(
        plans,
        side,
        None,
        schedule=schedule,
        min_effect=rule.min_effect,
        alpha=rule.pair_alpha,
        logs=out / "logs",
    )
    return rows_of(engine.run(), rule.pair_alpha)
