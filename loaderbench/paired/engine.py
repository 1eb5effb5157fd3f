"""The side-by-side engine: rows measured in pairs of rounds, in blocks of fresh processes, until
each row's interval settles or its budget is spent.

A **row** sets arm ``a`` against arm ``b``: the same case and measure in two environments (A/B:
arm ``a`` on side A's process, arm ``b`` on side B's), or two configurations in one environment
(a ratio such as the speed-up of 2 workers over 0: both arms in one side process, whose loaders
alternate, as TorchInductor measures speed-ups within one process).

A **pair** is one round of each arm, taken back to back in an order drawn at random, or, for rows
without worker processes of the profiles in DUET_PROFILES, both at the same moment, each side
pinned to a core of its own (a *duet*). A **block** is one start of
the side processes: every pair of processes carries a bias of a few percent of its own, so a
comparison restarts its sides ``blocks`` times and the interval (intervals.paired) takes the
spread between blocks into account.

How the seconds are spent is the side-by-side schedule (schedule.py, shared with tune's
contests): one pool for the comparison, blocks of at least ``min_blocks``, pairs in each block for
at least as long as its set-up took, and a row stops once its interval is *settled* (narrower than
the minimum effect, inside plus or minus it, or entirely beyond it) or the pool or the planned
blocks run out. A row's note says which. This module supplies what a block measures: the rows'
arms set up in fresh side processes, then pairs of rounds.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loaderbench.durations import duration_text
from loaderbench.grid import Case, Grid
from loaderbench.judging.intervals import PairedEstimate, paired
from loaderbench.judging.verdict import Row, judge_factor, not_judged
from loaderbench.paired.control import SETUP_TIMEOUT_S, SideProcess, SideSpec
from loaderbench.paired.protocol import MEASURES, Hello, Round, Setup, Teardown
from loaderbench.paired.schedule import SPENT, Schedule, settled

#: The pytest benchmark each measure corresponds to: A/B rows carry its names, so they read like
#: the rows of `make bench` and of a baseline.
TEST_OF = {
    "throughput": "test_throughput",
    "epoch": "test_epoch",
    "startup": "test_time_to_first_batch",
    "overlap": "test_overlap",
}
#: Profiles whose rows without workers are timed as a duet. Measured on the 2-core reference
#: machine, A against A at 0 workers, six blocks: the spread of the blocks' ratios was 1.3-2.2% for
#: the cpu profile as a duet and 2.4-3.4% one after the other, with twice the pairs per second as a
#: duet; for noop (allocation and copies, which two cores running at once disturb in each other)
#: 2.5-5% as a duet and 1.9-2.3% one after the other. io waits, so a duet doubles its pairs.
DUET_PROFILES = ("cpu", "io")
#: Ratios between configurations (kind: measure, what arm ``b`` differs in, higher is better).
RATIO_KINDS = {
    "speedup": "throughput at num_workers=0 over throughput at the case's workers",
    "epoch_speedup": "a default loader's whole epoch at num_workers=0 over the case's (workers "
    "started and stopped inside it)",
    "startup_ratio": "time to first batch with spawn/forkserver over fork",
    "overlap_gain": "epoch of load + step at num_workers=0 over the case's",
}


#: The ratios of the serial loader's time over the workers', by the measure timed.
SERIAL_KINDS = {"speedup": "throughput", "epoch_speedup": "epoch", "overlap_gain": "overlap"}


@dataclass(frozen=True)
class Arm:
    case: Case
    measure: str

    def setup(self, slot: str, cpu: int | None) -> Setup:
        return Setup(slot, self.case.as_dict(), self.measure, cpu)


@dataclass(frozen=True)
class Plan:
    """One row: arm ``a`` against arm ``b``. ``inverted``: the row reports a/b, not b/a (a
    speed-up is the 0-worker time over the workers' time)."""

    name: str
    a: Arm
    b: Arm
    higher_is_better: bool = False
    inverted: bool = False

    @property
    def duet(self) -> bool:
        """Timed as a duet (when the sides are two processes and two cores are there)."""
        return all(
            arm.case.num_workers == 0 and arm.case.profile in DUET_PROFILES
            for arm in (self.a, self.b)
        )


def ab_plans(
    grid: Grid, measures: tuple[str, ...] = ("throughput", "epoch", "startup")
) -> list[Plan]:
    """The A/B rows of ``grid``: for each measure, every case (start-up without variants, as the
    benchmarks do), named as the pytest benchmark of that case is."""
    plans = []
    for measure in measures:
        if measure not in MEASURES:
            raise ValueError(f"unknown measure {measure!r}; valid: {', '.join(MEASURES)}")
        for case in grid.cases(variants=measure != "startup"):
            arm = Arm(case, measure)
            plans.append(Plan(f"{TEST_OF[measure]}[{case.id}]", arm, arm))
    return plans


def ratio_plans(grid: Grid, kinds: tuple[str, ...] = tuple(RATIO_KINDS)) -> list[Plan]:
    """The ratios between configurations of ``grid``, each row measured within one process."""
    plans = []
    cases = grid.cases()
    for kind in kinds:
        if kind not in RATIO_KINDS:
            raise ValueError(f"unknown ratio {kind!r}; valid: {', '.join(RATIO_KINDS)}")
        for case in cases:
            if kind in SERIAL_KINDS and case.num_workers:
                measure = SERIAL_KINDS[kind]
                serial = Case(case.profile, 0, batch_size=case.batch_size)
                plans.append(
                    Plan(
                        f"{kind}[{case.id}]",
                        Arm(serial, measure),
                        Arm(case, measure),
                        higher_is_better=True,
                        inverted=True,
                    )
                )
            elif (
                kind == "startup_ratio"
                and case.start_method not in (None, "fork")
                and not case.is_variant
            ):
                fork = Case(case.profile, case.num_workers, "fork")
                plans.append(Plan(f"{kind}[{case.id}]", Arm(fork, "startup"), Arm(case, "startup")))
    return plans


#: The A/B, ratio and re-measure schedule: 35 s per row over 3 to 8 blocks, 2 to 30 pairs each.
SCHEDULE = Schedule(seconds_per_row=35.0, blocks=8, min_blocks=3, min_rounds=2, max_rounds=30)
#: A round repeats its epoch (or first batch) until it lasts about this long, at most
#: MAX_REPEAT times: very short rounds are dominated by the request and the timer.
ROUND_S = 0.1
MAX_REPEAT = 200


@dataclass
class Tally:
    """What has been measured for one row so far."""

    plan: Plan
    blocks: list[list[tuple[float, float]]] = field(default_factory=list)
    spent_s: float = 0.0
    mode: str = "alternate"
    stopped: str = ""
    #: Why a side would not measure this row (its loaderbench predates the measure), or "".
    refused: str = ""

    @property
    def pairs(self) -> int:
        return sum(len(b) for b in self.blocks)

    def estimate(self, alpha: float) -> PairedEstimate | None:
        blocks = [b for b in self.blocks if b]
        return paired(blocks, alpha=alpha) if blocks else None


def duet_cores() -> list[int] | None:
    """Two cores this process may run on, or None (a duet needs one core per side)."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[:2] if len(cores) >= 2 else None


@dataclass
class Engine:
    """Runs ``plans`` between side ``a`` and side ``b`` (``b`` None: both arms in side ``a``'s
    process, a ratio within one environment)."""

    plans: list[Plan]
    a: SideSpec
    b: SideSpec | None
    schedule: Schedule = SCHEDULE
    min_effect: float = 0.05
    alpha: float = 0.05
    logs: Path = Path("results/ab/logs")
    duet: bool = True
    rng: random.Random = field(default_factory=random.Random)
    show: Callable[[str], None] = field(
        default=lambda line: print(line, file=sys.stderr, flush=True)
    )
    #: What each side ("a", "b") said when it first started: versions, settings (protocol.py).
    hellos: dict[str, Hello] = field(default_factory=dict)
    #: Starts side processes (SideProcess.start_all); the tests give it stand-ins.
    start: Callable = SideProcess.start_all

    def run(self) -> list[Tally]:
        tallies = [Tally(plan) for plan in self.plans]
        cores = duet_cores() if self.duet and self.b is not None else None
        started = time.monotonic()

        def block(index: int, active: list[Tally], slice_s: float) -> None:
            self.show(
                f"loaderbench: block {index + 1} of at most {self.schedule.blocks}: "
                f"{len(active)} row(s), fresh side processes (elapsed "
                f"{duration_text(time.monotonic() - started)})"
            )
            self._block(index, active, cores, slice_s)

        self.schedule.run(
            tallies,
            block,
            lambda tally: settled(tally.estimate(self.alpha), self.min_effect),
            self.rng,
        )
        return tallies

    def _block(
        self, block: int, active: list[Tally], cores: list[int] | None, slice_s: float
    ) -> None:
        slot = (block % self.schedule.blocks, self.schedule.blocks)
        specs = [("a", self.a)] + ([("b", self.b)] if self.b is not None else [])
        # Which side starts first is drawn too: on the reference machine, with sides started
        # one after the other, the side started second answered a fork start-up 3-10% faster,
        # block after block, with nothing else different.
        self.rng.shuffle(specs)
        started = dict(
            zip(
                [name for name, _ in specs],
                self.start(
                    [(spec, self.logs / f"side-{spec.label}.log") for _, spec in specs], slot
                ),
            )
        )
        for name, side in started.items():
            self.hellos.setdefault(name, side.hello)
        side_a = started["a"]
        side_b = started.get("b", side_a)
        try:
            for tally in active:
                tally.refused = _refused(tally.plan, started)
                if tally.refused:
                    tally.stopped = "refused"
                    continue
                self._row(tally, side_a, side_b, block, cores, slice_s)
        finally:
            side_a.close()
            if side_b is not side_a:
                side_b.close()

    def _row(
        self,
        tally: Tally,
        side_a: SideProcess,
        side_b: SideProcess,
        block: int,
        cores: list[int] | None,
        slice_s: float,
    ) -> None:
        plan = tally.plan
        duet = cores is not None and plan.duet and side_a is not side_b
        tally.mode = "duet" if duet else "alternate"
        cpu_a, cpu_b = (
            (cores[block % 2], cores[(block + 1) % 2])
            if duet and cores is not None
            else (None, None)
        )
        begun = time.monotonic()
        # Both sides set up at once, the one asked first drawn: a side whose workers always
        # started first would carry whatever that does to them into every block.
        # (One process holding both arms answers in the order asked.)
        setups = [("a", side_a, plan.a), ("b", side_b, plan.b)]
        self.rng.shuffle(setups)
        for slot, side, arm in setups:
            side.send(arm.setup(slot, cpu_a if slot == "a" else cpu_b))
        warm = {
            slot: side.receive(SETUP_TIMEOUT_S, f"setting up {plan.name}").warm_s
            for slot, side, _ in setups
        }
        warm_a, warm_b = warm["a"], warm["b"]
        if warm_a is None or warm_b is None:  # not warmed (start-up with workers): long rounds
            repeat, timeout = 1, SETUP_TIMEOUT_S
        else:
            repeat = max(
                1,
                min(
                    MAX_REPEAT,
                    math.ceil(ROUND_S / max(warm_a, warm_b, 1e-9)),
                ),
            )
            # A round that takes far longer than the warm one has hung or the machine stalled.
            timeout = max(120.0, 30 * repeat * max(warm_a, warm_b))
        ask_a, ask_b = Round("a", repeat), Round("b", repeat)

        def take_pair() -> tuple[float, float]:
            if duet:  # both at once, each on its own core
                side_a.send(ask_a)
                side_b.send(ask_b)
                a = side_a.receive(timeout, f"timing {plan.name}").seconds
                b = side_b.receive(timeout, f"timing {plan.name}").seconds
            elif self.rng.random() < 0.5:
                a = side_a.request(ask_a, timeout, f"timing {plan.name}").seconds
                b = side_b.request(ask_b, timeout, f"timing {plan.name}").seconds
            else:
                b = side_b.request(ask_b, timeout, f"timing {plan.name}").seconds
                a = side_a.request(ask_a, timeout, f"timing {plan.name}").seconds
            return a, b

        pairs = self.schedule.rounds(begun, slice_s, take_pair)
        tally.blocks.append(pairs)
        side_a.request(Teardown("a"), SETUP_TIMEOUT_S, "stopping its workers")
        side_b.request(Teardown("b"), SETUP_TIMEOUT_S, "stopping its workers")
        tally.spent_s += time.monotonic() - begun
        estimate = tally.estimate(self.alpha)
        self.show(
            f"  {plan.name}: {len(pairs)} pairs ({tally.mode}), {tally.pairs} in all, "
            f"{_ratio_text(estimate, plan)}"
        )


def _refused(plan: Plan, started: dict[str, SideProcess]) -> str:
    """Why the started sides cannot measure ``plan``, or "": a side built from an older
    loaderbench (a baseline's recipe, a git ref) does not know a newer measure."""
    for side in started.values():
        missing = [m for m in (plan.a.measure, plan.b.measure) if m not in side.hello.measures]
        if missing:
            return (
                f"side {side.spec.label} ({side.spec.what}) does not measure "
                f"{missing[0]}: its loaderbench predates it"
            )
    return ""


def _ratio_text(estimate: PairedEstimate | None, plan: Plan) -> str:
    if estimate is None:
        return "no pairs yet"
    ratio, low, high = reported(estimate, plan)
    label = plan.name.split("[", 1)[0] if plan.a != plan.b else "B/A"
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None else ""
    return f"{label} {ratio:.3f}{interval}"


def reported(estimate: PairedEstimate, plan: Plan) -> tuple[float, float | None, float | None]:
    """(value, low, high) as the row reports it: b/a, or a/b for an inverted ratio."""
    if not plan.inverted:
        return estimate.ratio, estimate.low, estimate.high
    if estimate.low is None or estimate.high is None:  # both None together (one block)
        return 1 / estimate.ratio, None, None
    return 1 / estimate.ratio, 1 / estimate.high, 1 / estimate.low


def verdict_rows(tallies: list[Tally], *, min_effect: float, alpha: float) -> list[Row]:
    """One verdict row per A/B tally: B against A, with the interval from the pairs."""
    rows = []
    for tally in tallies:
        row = Row(tally.plan.name, kind="seconds", inputs=(tally.plan.name,))
        estimate = tally.estimate(alpha)
        if estimate is None:
            rows.append(not_judged(row, tally.refused or "no pairs were measured"))
            continue
        a_times = [a for block in tally.blocks for a, _ in block]
        b_times = [b for block in tally.blocks for _, b in block]
        row.baseline, row.current = statistics.median(a_times), statistics.median(b_times)
        row.change, row.low, row.high = estimate.ratio, estimate.low, estimate.high
        slower = estimate.ratio > 1
        row.p = estimate.p_slower if slower else estimate.p_faster
        if estimate.low is None:
            not_judged(row, "one block of processes cannot show the spread between processes")
        else:
            why_not = [] if row.p < alpha else [f"signed-rank p {row.p:.2g} >= {alpha:g}"]
            if tally.stopped == SPENT:
                why_not.append("more seconds per row would narrow it")
            judge_factor(
                row, min_effect=min_effect, significant=row.p < alpha, why_not="; ".join(why_not)
            )
        row.note += (
            f"; {estimate.pairs} pairs in {estimate.blocks} blocks ({tally.mode}), {tally.stopped}"
        )
        row.detail = {
            "pairs": estimate.pairs,
            "blocks": estimate.blocks,
            "mode": tally.mode,
            "stopped": tally.stopped,
            "block_ratios": list(estimate.block_ratios),
            "seconds_spent": round(tally.spent_s, 1),
            "rounds": [[list(p) for p in block] for block in tally.blocks],
        }
        rows.append(row)
    return rows
