"""The side-by-side schedule (paired/schedule.py) on its own: rows that only count seconds, so
that what the engine and tune's contests share is checked once, apart from what they measure."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from loaderbench.paired import schedule as schedule_mod
from loaderbench.paired.schedule import SETTLED, SPENT, Schedule


@dataclass
class Row:
    settles_after: int | None  # blocks after which it is settled, None: never
    spent_s: float = 0.0
    stopped: str = ""
    slices: list[float] = field(default_factory=list)


def run(schedule: Schedule, rows: list[Row]) -> list[int]:
    """Each block spends exactly each open row's slice; returns the open rows per block."""
    open_rows: list[int] = []

    def block(index, active, slice_s):
        open_rows.append(len(active))
        for row in active:
            row.slices.append(slice_s)
            row.spent_s += slice_s

    def settled(row):
        return row.settles_after is not None and len(row.slices) >= row.settles_after

    schedule.run(rows, block, settled, random.Random(0))
    return open_rows


def test_settled_rows_stop_after_the_minimum_of_blocks_and_leave_their_seconds_to_the_rest():
    rows = [Row(1), Row(None)]
    open_rows = run(Schedule(seconds_per_row=10, blocks=4, min_blocks=3), rows)
    assert open_rows == [2, 2, 2, 1]
    assert [r.stopped for r in rows] == [SETTLED, SPENT]
    # 20 s in the pool: 2.5 s a row for three blocks, then the open row takes all 5 s left
    assert rows[1].slices == pytest.approx([2.5, 2.5, 2.5, 5.0])
    assert sum(r.spent_s for r in rows) == pytest.approx(20.0)


def test_an_open_row_goes_on_to_open_blocks_once_the_pool_is_spent():
    rows = [Row(None)]
    assert run(Schedule(seconds_per_row=3, blocks=3, min_blocks=3, open_blocks=5), rows) == [1] * 5
    assert rows[0].stopped == SPENT
    rows = [Row(4)]
    assert run(Schedule(seconds_per_row=3, blocks=3, min_blocks=3, open_blocks=6), rows) == [1] * 4
    assert rows[0].stopped == SETTLED


def test_a_row_the_block_stopped_itself_is_not_measured_again():
    rows = [Row(None), Row(None)]

    def block(index, active, slice_s):
        for row in active:
            row.slices.append(slice_s)
            row.spent_s += slice_s
            row.stopped = row.stopped or ("refused" if row is rows[0] else "")

    Schedule(seconds_per_row=5, blocks=3).run(rows, block, lambda row: False, random.Random(0))
    assert (len(rows[0].slices), rows[0].stopped) == (1, "refused")
    assert (len(rows[1].slices), rows[1].stopped) == (3, SPENT)


def test_a_block_takes_its_minimum_of_rounds_and_as_long_as_its_set_up_took(monkeypatch):
    clock = iter(range(0, 10**6))  # every look at the clock: 1 s later
    monkeypatch.setattr(schedule_mod.time, "monotonic", lambda: next(clock))
    schedule = Schedule(min_rounds=2, max_rounds=None)
    begun = schedule_mod.time.monotonic() - 10  # set up since 11 s before rounds() starts
    taken = schedule.rounds(begun, 1.0, lambda: 0)  # each round: one look at the clock
    assert 10 <= len(taken) <= 12  # about 11 s of rounds, though the slice was 1 s
    assert len(Schedule(min_rounds=2, max_rounds=4).rounds(begun, 1.0, lambda: 0)) == 4
    now = schedule_mod.time.monotonic()  # no set-up, no slice: the minimum alone
    assert len(Schedule(min_rounds=3).rounds(now, 0.0, lambda: 0)) == 3
