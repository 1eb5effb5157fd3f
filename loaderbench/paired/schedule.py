"""The side-by-side schedule: how a comparison spends its seconds, one implementation for the
regression engine (rows measured in side processes, engine.py) and tune's contests (loaders of
the user's dataset in this process, tuning/contest.py). Each supplies only what a block measures.

A **row** is one question: arm ``a`` against arm ``b`` (engine), or a set of candidate loaders
against the first (contest). A **block** starts what a row compares afresh (side processes, or
loaders and their workers), sets it up, then takes **rounds**, each in an order drawn at random,
until the block's slice of the seconds is used: every start carries a bias of a few percent of
its own, so the interval (intervals.paired) is taken over blocks, not over rounds.

The seconds are one pool, ``seconds_per_row`` times the rows: a row that settles early leaves
the rest of its share to the rows still open. Within a block every open row gets an equal slice
of what is left, and is measured for at least as long as its set-up took, in at least
``min_rounds`` rounds. After ``min_blocks`` blocks a row stops as soon as it is *settled*, or
when the pool or the planned blocks are spent; a row still open then may go on to
``open_blocks`` blocks in all (a near tie: the answer rests on more than the minimum).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from loaderbench.judging.intervals import PairedEstimate

#: Why a row stopped: its interval settled, or the seconds (or the planned blocks) ran out.
SETTLED = "settled"
SPENT = "budget spent"


class Scheduled(Protocol):
    """What the schedule reads and writes of a row: the seconds its blocks took (set-up and
    rounds, as the block measures them) and why it stopped ("" while open)."""

    spent_s: float
    stopped: str


Row = TypeVar("Row", bound=Scheduled)
Round = TypeVar("Round")


@dataclass(frozen=True)
class Schedule:
    """How long a comparison may measure, and how its rounds are spread over blocks."""

    seconds_per_row: float = 35.0
    blocks: int = 8
    min_blocks: int = 3
    min_rounds: int = 2
    #: More rounds in one block cannot shrink the bias of its start: past this many, a row's
    #: time goes to further blocks instead. None: no limit.
    max_rounds: int | None = None
    #: Blocks in all that a row still open after its seconds (or ``blocks``) may have.
    open_blocks: int = 0

    def __post_init__(self):
        if not self.seconds_per_row > 0:
            raise ValueError(f"the budget must be > 0 seconds per row, got {self.seconds_per_row}")
        if self.blocks < 2 or not 2 <= self.min_blocks <= self.blocks:
            raise ValueError(
                f"blocks must be >= 2 and min_blocks between 2 and blocks (one block "
                f"cannot show the spread between starts), got {self.blocks} and "
                f"{self.min_blocks}"
            )
        if self.min_rounds < 1 or (
            self.max_rounds is not None and self.max_rounds < self.min_rounds
        ):
            raise ValueError(
                f"min_rounds must be >= 1 and <= max_rounds, got {self.min_rounds} and "
                f"{self.max_rounds}"
            )

    def run(
        self,
        rows: Sequence[Row],
        block: Callable[[int, list[Row], float], None],
        settled: Callable[[Row], bool],
        rng: random.Random,
    ) -> None:
        """Measure ``rows`` block after block: ``block(index, open rows in a random order, slice
        of seconds for each)`` measures one block and adds to each row's ``spent_s`` (it may stop
        a row itself, e.g. one a side refuses); ``settled(row)`` says whether a row's question is
        answered. Every row ends with ``stopped`` set."""
        pool = self.seconds_per_row * len(rows)
        for index in range(max(self.blocks, self.open_blocks)):
            active = [row for row in rows if not row.stopped]
            if not active:
                break
            left = max(pool - sum(row.spent_s for row in rows), 0.0)
            slice_s = left / (len(active) * max(self.blocks - index, 1))
            rng.shuffle(active)
            block(index, active, slice_s)
            spent = sum(row.spent_s for row in rows) >= pool or index + 1 >= self.blocks
            for row in active:
                if row.stopped or index + 1 < self.min_blocks:
                    continue  # fewer blocks could not show the spread between starts
                if settled(row):
                    row.stopped = SETTLED
                elif spent and index + 1 >= self.open_blocks:
                    row.stopped = SPENT
        for row in rows:
            row.stopped = row.stopped or SPENT

    def rounds(self, begun: float, slice_s: float, take: Callable[[], Round]) -> list[Round]:
        """One block's rounds of one row, set up since ``begun`` (time.monotonic): ``take()``
        until the slice is used, and for at least as long as setting up took. A block of two
        rounds after seconds of starting spawn workers would spend the budget on set-up and
        leave each block's ratio to the noise of two rounds (on the reference machine one pair of
        noop-w2-spawn epochs varied by 15%, the processes' own bias by about 1%)."""
        set_up = time.monotonic()
        ends = max(begun + slice_s, set_up + (set_up - begun))
        taken: list[Round] = []
        while len(taken) < self.min_rounds or (
            time.monotonic() < ends and (self.max_rounds is None or len(taken) < self.max_rounds)
        ):
            taken.append(take())
        return taken


def settled(estimate: PairedEstimate | None, min_effect: float) -> bool:
    """The interval is narrower than the minimum effect, inside plus or minus it, or beyond it."""
    if estimate is None or estimate.low is None or estimate.high is None:
        return False
    bound = 1 + min_effect
    return (
        estimate.high / estimate.low < bound
        or (estimate.low >= 1 / bound and estimate.high <= bound)
        or estimate.low > bound
        or estimate.high < 1 / bound
    )
