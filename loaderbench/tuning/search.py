"""The search: which DataLoader settings to use for this dataset on this machine, and why.

It follows the experiment the guides prescribe instead of a grid: start at 0 workers and grow (1,
2, 4, ... up to twice the usable cores; 1 only with a step to overlap) while the next count is
faster *beyond the noise* (its interval below 1 and its estimate past the minimum effect); each
growth step stops measuring as soon as that question is answered; then, at the chosen count, the start
methods this platform offers, a deeper prefetch, and pinning when batches go to a GPU. Every
decision comes from a contest measured side by side (contest.py), never from numbers taken minutes
apart. Among settings within the minimum effect of each other the cheaper wins: fewer workers
(memory), the faster start-up, the default prefetch, no pinning.

One rule picks the worker count, here and in the exhaustive sweep it is checked against
(``preferred``): more workers only when they are *shown* faster than fewer by more than the
minimum effect, the whole paired interval of their time ratio below 1 / (1 + min_effect). When
growth by doubling jumped past counts (2 to 4), the counts between are bisected with the same
rule (4 against 3). A question still open when its seconds are spent (a near tie) gets more
blocks (``contest_schedule``'s ``tie_blocks``) before it is answered "not shown faster".

With a training step, what matters is whether loading keeps up with it: the step alone is a
contestant, and the cheapest setting whose epoch is within the minimum effect of the step-only
epoch is the answer. When loading one batch takes less time than a step, loading is not the
bottleneck and the answer says so.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loaderbench.durations import duration_text
from loaderbench.judging.intervals import PairedEstimate
from loaderbench.tuning.contest import (
    Candidate,
    Contest,
    StepOnly,
    Workload,
    contest_schedule,
    median_of,
    rounds_for,
    run_contest,
    seconds_per_batch,
    step_seconds,
)

#: The start method a platform uses when none is named: fork on Linux up to Python 3.13.
DEFAULT_START = (
    multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
)


@dataclass(frozen=True)
class Settings:
    budget_s: float = 300.0
    min_effect: float = 0.05
    alpha: float = 0.05
    max_workers: int = 2 * len(os.sched_getaffinity(0))
    start_methods: tuple[str, ...] = tuple(multiprocessing.get_all_start_methods())
    prefetch_factors: tuple[int, ...] = (2, 4)
    #: Seconds each contestant of a contest may use (the contest may stop sooner when settled).
    seconds_per_contestant: float = 12.0
    #: The same for a contest that asks one question (is the second setting faster by more than
    #: the minimum effect?): shorter blocks, more of them, measured only until it is answered
    #: (at the pace of the others, each growth step cost as much as settling every ratio).
    question_s_per_contestant: float = 4.0
    round_s: float = 0.5


@dataclass
class Decision:
    setting: str
    value: object
    reason: str


@dataclass
class Outcome:
    """What the search found: the pick, a reason per setting, and every contest behind them."""

    pick: Candidate
    decisions: list[Decision] = field(default_factory=list)
    contests: list[Contest] = field(default_factory=list)
    bottleneck: str | None = None  # "loading", "step", or None without a step
    load_s_per_batch: float | None = None
    step_s_per_batch: float | None = None
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0


def worker_counts(max_workers: int) -> list[int]:
    """0, 1, 2, 4, ... up to ``max_workers`` (which is included)."""
    counts, n = [0, 1], 2
    while n < max_workers:
        counts.append(n)
        n *= 2
    if max_workers > 1:
        counts.append(max_workers)
    return sorted(set(c for c in counts if c <= max_workers))


class Search:
    def __init__(
        self,
        workload: Workload,
        settings: Settings,
        *,
        spawn_ok: bool = True,
        rng: random.Random | None = None,
        show: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    ):
        self.workload, self.settings, self.spawn_ok = workload, settings, spawn_ok
        self.rng = rng or random.Random()
        self.show = show
        self.started = time.monotonic()
        self.outcome = Outcome(Candidate(0))

    # -- the budget -------------------------------------------------------------------------
    def left_s(self) -> float:
        return self.settings.budget_s - (time.monotonic() - self.started)

    def contest(self, title: str, contestants: list, decided=None) -> Contest | None:
        """A contest with its share of the budget, or None (and a note) when none is left;
        ``decided`` as run_contest's (given one, the contest is a question: question pace)."""
        per = (
            self.settings.question_s_per_contestant
            if decided
            else self.settings.seconds_per_contestant
        )
        seconds = min(per * len(contestants), self.left_s())
        if seconds < 0.25 * per * len(contestants):
            self.outcome.notes.append(
                f"the budget was spent before {title} could be measured; "
                "a larger --budget would try it"
            )
            return None
        contest = run_contest(
            title,
            self.workload,
            contestants,
            contest_schedule(
                seconds, max_blocks=8 if decided else 6, tie_blocks=TIE_BLOCKS if decided else 0
            ),
            min_effect=self.settings.min_effect,
            alpha=self.settings.alpha,
            decided=decided,
            rng=self.rng,
            show=self.progress,
        )
        self.outcome.contests.append(contest)
        if contest.stopped == "interrupted":
            raise KeyboardInterrupt
        return contest

    def progress(self, line: str) -> None:
        elapsed = time.monotonic() - self.started
        self.show(
            f"{_bar(elapsed / self.settings.budget_s)} {duration_text(elapsed)} of "
            f"{duration_text(self.settings.budget_s)}  {line}"
        )

    def measured(self, contest: Contest, contestant) -> PairedEstimate:
        """``contestant``'s ratio in a contest that ran: at least min_blocks blocks, so one
        there is (an interrupted contest raised KeyboardInterrupt instead)."""
        est = contest.ratio(contestant, self.settings.alpha)
        assert est is not None, f"{contest.title}: {contestant.label} was not measured"
        return est

    def faster(self, contest: Contest, contestant, than=None) -> bool:
        """Shown faster than ``than`` (the reference by default) by more than the minimum effect:
        the whole paired interval past it (shown_faster)."""
        base = than if than is not None else contest.entries[0].contestant
        est = contest.ratio_between(base, contestant, self.settings.alpha)
        return shown_faster(est, self.settings.min_effect)

    def gain_decided(self, contest: Contest) -> bool:
        """Whether the second contestant is faster beyond the minimum effect is answered
        (answered). A growth step needs no more; telling 3% from 4% would cost the time a sweep
        spends."""
        return answered(contest.entries[1].estimate(contest.alpha), contest.min_effect)

    def keeps_up(self, contest: Contest, contestant) -> bool:
        """An epoch with this loader is within the minimum effect of the step alone."""
        est = contest.ratio(contestant, self.settings.alpha)
        return est is not None and est.ratio <= 1 + self.settings.min_effect

    # -- the search ---------------------------------------------------------------------------
    def run(self) -> Outcome:
        try:
            self._run()
        except KeyboardInterrupt:
            self.outcome.interrupted = True
            self.outcome.notes.append(
                "interrupted: the settings shown are the best measured so far"
            )
        self.outcome.seconds = time.monotonic() - self.started
        return self.outcome

    def _run(self) -> None:
        out = self.outcome
        out.load_s_per_batch = seconds_per_batch(self.workload)
        method = (
            DEFAULT_START
            if DEFAULT_START in self.settings.start_methods
            else self.settings.start_methods[0]
        )
        counts = worker_counts(self.settings.max_workers)
        if self.workload.step is None and self.settings.max_workers >= 2:
            # Without a step to overlap with, one worker only moves the loading out of the main
            # process (and adds a copy of every batch between processes): it cannot load
            # faster than the main process did, so the growth starts at 2.
            counts.remove(1)
        current = Candidate(0)
        if self.workload.step is not None:
            current, done = self._step_stage(method)
            if done:
                out.pick = current
                if current.num_workers:
                    self._decide(
                        "multiprocessing_context",
                        current.start_method,
                        "this platform's default; loading keeps up with it",
                    )
                return
        else:
            self._decide("num_workers", 0, "the starting point")
        jumped_from = None  # the count before the last accepted growth step
        for n in counts:
            if n <= current.num_workers or (self.workload.step is not None and n <= 1):
                continue  # with a step, 0 and 1 worker were measured in the step stage
            nxt = Candidate(n, method)
            contest = self.contest(
                f"{current.label} against {nxt.label}", [current, nxt], decided=self.gain_decided
            )
            if contest is None:
                break
            if not self.faster(contest, nxt):
                est = contest.ratio(nxt, self.settings.alpha)
                self._decide(
                    "num_workers",
                    current.num_workers,
                    (
                        f"{nxt.num_workers} workers were not shown faster by more than "
                        f"{self.settings.min_effect:.0%} (their round took {_speed(est)} the time "
                        f"of {current.label}'s)"
                    ),
                )
                break
            est = self.measured(contest, nxt)
            assert est.low is not None and est.high is not None  # faster(): an interval
            self._decide(
                "num_workers",
                n,
                (
                    f"{1 / est.ratio:.2f}x the throughput of {current.label} (interval "
                    f"{1 / est.high:.2f}-{1 / est.low:.2f}x)"
                ),
            )
            jumped_from = current.num_workers
            current = out.pick = nxt  # the best so far, should Ctrl-C come next
        if jumped_from is not None and jumped_from > 0:
            current = out.pick = self._bisect(jumped_from, current, method)
        out.pick = current
        if current.num_workers == self.settings.max_workers and current.num_workers:
            out.notes.append(
                f"{current.num_workers} workers, the most tried, were still faster "
                "than the count before: more may be faster yet (--max-workers)"
            )
        if current.num_workers:
            out.pick = self._start_methods(current)
            out.pick = self._prefetch(out.pick)
        if self.workload.device.type == "cuda":
            out.pick = self._pinning(out.pick)

    def _bisect(self, low: int, high: Candidate, method: str) -> Candidate:
        """``high`` was shown faster than ``low`` workers: the counts between, by the same rule
        (the fewest not shown slower than a larger one), halving the gap each contest."""
        while high.num_workers - low > 1:
            mid = Candidate((low + high.num_workers) // 2, method)
            contest = self.contest(
                f"{mid.label} against {high.label}", [mid, high], decided=self.gain_decided
            )
            if contest is None:
                break
            est = contest.ratio(high, self.settings.alpha)
            if self.faster(contest, high):
                low = mid.num_workers
                self._decide(
                    "num_workers",
                    high.num_workers,
                    f"{high.label} is faster than {mid.label} by more than "
                    f"{self.settings.min_effect:.0%} too (time {_speed(est)})",
                )
            else:
                self._decide(
                    "num_workers",
                    mid.num_workers,
                    f"{high.num_workers} workers were not shown faster than {mid.num_workers} by "
                    f"more than {self.settings.min_effect:.0%} (time {_speed(est)}), and "
                    f"{mid.num_workers} were faster than {low}",
                )
                high = mid
        return high

    def _step_stage(self, method: str) -> tuple[Candidate, bool]:
        """Step alone, 0 workers and 1 worker side by side: is loading the bottleneck?"""
        out = self.outcome
        step_only, w0, w1 = StepOnly(), Candidate(0), Candidate(1, method)
        contest = self.contest("the step alone against 0 and 1 workers", [step_only, w0, w1])
        if contest is None:
            return w0, True
        step_s = median_of(contest.entry(step_only).round_s)
        out.step_s_per_batch = step_s / self.workload.batches if step_s else None
        loading_bound = (out.load_s_per_batch or 0) >= (out.step_s_per_batch or 0)
        out.bottleneck = "loading" if loading_bound else "step"
        for candidate in (w0, w1):
            if self._record_keeps_up(contest, candidate):
                return candidate, True
        r0, r1 = (self.measured(contest, c).ratio for c in (w0, w1))
        one_is_faster = self.faster(contest, w1, than=w0)  # paired: 1 worker against 0
        if out.bottleneck == "step":
            # One worker already loads a batch sooner than the step takes: what still separates
            # the loop from the step alone is handing each batch to the main process, which
            # more workers do not remove (on the reference machine about 1.7 ms per batch).
            pick = w1 if one_is_faster else w0
            self._decide(
                "num_workers",
                pick.num_workers,
                (
                    f"loading is not the bottleneck: an epoch took {r0:.2f}x the step alone with "
                    f"0 workers, {r1:.2f}x with 1; "
                    + (
                        "1 worker is faster beyond the minimum effect"
                        if one_is_faster
                        else f"within {self.settings.min_effect:.0%} of each other, so no worker (each "
                        f"costs memory)"
                    )
                ),
            )
            return pick, True
        best = w1 if one_is_faster else w0
        self._decide(
            "num_workers",
            best.num_workers,
            "neither 0 nor 1 worker keeps up with the step; growing from here",
        )
        return best, False

    def _record_keeps_up(self, contest: Contest, candidate: Candidate) -> bool:
        if not self.keeps_up(contest, candidate):
            return False
        est = self.measured(contest, candidate)
        self._decide(
            "num_workers",
            candidate.num_workers,
            (
                f"the cheapest setting that keeps up with the step: an epoch takes {est.ratio:.2f}x "
                f"the step alone"
            ),
        )
        return True

    def _start_methods(self, current: Candidate) -> Candidate:
        methods = [m for m in self.settings.start_methods if self.spawn_ok or m == "fork"]
        if len(methods) < 2:
            if not self.spawn_ok:
                self.outcome.notes.append(
                    "spawn and forkserver were not tried: the dataset or "
                    "collate function cannot be pickled"
                )
            self._decide(
                "multiprocessing_context", current.start_method, "the only start method tried"
            )
            return current
        others = [current.with_(start_method=m) for m in methods if m != current.start_method]
        contest = self.contest(
            f"start methods at {current.num_workers} workers", [current, *others]
        )
        if contest is None:
            self._decide("multiprocessing_context", current.start_method, "not compared")
            return current
        return self._cheapest_tie(
            contest,
            "multiprocessing_context",
            "start_method",
            lambda e: median_of(e.first_batch_s) or 0.0,
            "starts its workers fastest",
        )

    def _prefetch(self, current: Candidate) -> Candidate:
        deeper = [
            current.with_(prefetch_factor=p) for p in self.settings.prefetch_factors if p != 2
        ]
        if not deeper:
            return current
        contest = self.contest(
            f"prefetch at {current.label}",
            [current, *deeper],
            decided=self.gain_decided if len(deeper) == 1 else None,
        )
        if contest is None:
            return current
        for candidate in deeper:
            if self.faster(contest, candidate):
                est = self.measured(contest, candidate)
                self._decide(
                    "prefetch_factor",
                    candidate.prefetch_factor,
                    (f"{1 / est.ratio:.2f}x the throughput of the default 2"),
                )
                return candidate
        self._decide(
            "prefetch_factor",
            2,
            "a deeper queue was not faster beyond the noise (each queued batch costs memory)",
        )
        return current

    def _pinning(self, current: Candidate) -> Candidate:
        pinned = current.with_(pin_memory=True)
        contest = self.contest(f"pin_memory at {current.label}", [current, pinned])
        if contest is not None and self.faster(contest, pinned):
            est = self.measured(contest, pinned)
            self._decide(
                "pin_memory",
                True,
                f"copies to the GPU {1 / est.ratio:.2f}x faster per epoch (with non_blocking=True)",
            )
            return pinned
        self._decide("pin_memory", False, "pinned batches were not faster beyond the noise")
        return current

    def _cheapest_tie(
        self, contest: Contest, setting: str, attribute: str, cost: Callable, why_cheap: str
    ) -> Candidate:
        """Among the contestants within the minimum effect of the fastest, the cheapest."""
        ratios = {
            e.contestant: (self.measured(contest, e.contestant).ratio if i else 1.0)
            for i, e in enumerate(contest.entries)
        }
        best = min(ratios.values())
        ties = [
            e
            for e in contest.entries
            if ratios[e.contestant] <= best * (1 + self.settings.min_effect)
        ]
        chosen = min(ties, key=cost)
        costs = ", ".join(
            f"{getattr(e.contestant, attribute)} {cost(e):.2f} s" for e in contest.entries
        )
        self._decide(
            setting,
            getattr(chosen.contestant, attribute),
            (
                f"{why_cheap} among those within {self.settings.min_effect:.0%} of the fastest "
                f"(time to first batch: {costs})"
            ),
        )
        assert isinstance(chosen.contestant, Candidate)  # settings contests hold no StepOnly
        return chosen.contestant

    def _decide(self, setting: str, value, reason: str) -> None:
        self.outcome.decisions = [d for d in self.outcome.decisions if d.setting != setting]
        self.outcome.decisions.append(Decision(setting, value, reason))


#: Blocks a growth question may take, past its seconds, while its answer is still open.
TIE_BLOCKS = 8


def shown_faster(estimate: PairedEstimate | None, margin: float) -> bool:
    """The time ratio's whole interval is below 1 / (1 + margin): faster by more than the
    margin, beyond the noise. A single block (no interval) shows nothing."""
    return estimate is not None and estimate.high is not None and estimate.high < 1 / (1 + margin)


def answered(estimate: PairedEstimate | None, margin: float) -> bool:
    """Whether "faster by more than the margin?" is answered: the time ratio's whole interval
    lies on one side of 1 / (1 + margin). A single block (no interval) answers nothing."""
    line = 1 / (1 + margin)
    return (
        estimate is not None
        and estimate.low is not None
        and estimate.high is not None
        and (estimate.high < line or estimate.low > line)
    )


def _by_workers(contest: Contest) -> list[Candidate]:
    return sorted(
        (e.contestant for e in contest.entries if isinstance(e.contestant, Candidate)),
        key=lambda c: c.num_workers,
    )


def preferred(contest: Contest, margin: float, alpha: float) -> Candidate:
    """The rule both the search and the sweep answer with: of a contest's worker counts, the
    fewest that no larger count is shown faster than (shown_faster, paired cycle by cycle)."""
    ordered = _by_workers(contest)
    for i, candidate in enumerate(ordered):
        if not any(
            shown_faster(contest.ratio_between(candidate, larger, alpha), margin)
            for larger in ordered[i + 1 :]
        ):
            return candidate
    return ordered[-1]


def preferred_decided(contest: Contest) -> bool:
    """The sweep's question is answered: preferred's choice against every larger count is
    answered (its interval wholly past the line, one way or the other). Until then a count
    left behind only because nothing was shown yet (a few noisy blocks) could be the choice."""
    if not contest.blocks:
        return False
    choice = preferred(contest, contest.min_effect, contest.alpha)
    return all(
        answered(contest.ratio_between(choice, larger, contest.alpha), contest.min_effect)
        for larger in _by_workers(contest)
        if larger.num_workers > choice.num_workers
    )


def sweep(
    workload: Workload,
    settings: Settings,
    counts: list[int],
    *,
    show: Callable[[str], None] = lambda line: None,
) -> Contest:
    """Every worker count at once, side by side (the exhaustive experiment the search avoids)."""
    method = DEFAULT_START if DEFAULT_START in settings.start_methods else settings.start_methods[0]
    contestants = [Candidate(n, method if n else None) for n in counts]
    return run_contest(
        "sweep of " + ", ".join(c.label for c in contestants),
        workload,
        contestants,
        # as the search's growth steps: an open answer gets more blocks
        contest_schedule(settings.seconds_per_contestant * len(contestants), tie_blocks=TIE_BLOCKS),
        min_effect=settings.min_effect,
        alpha=settings.alpha,
        decided=preferred_decided,
        show=show,
    )


def plan_workload(
    dataset,
    *,
    batch_size: int,
    collate_fn=None,
    step=None,
    device=None,
    round_s: float = Settings.round_s,
    worker_init_fn=None,
) -> Workload:
    import torch

    probe = Workload(dataset, batch_size, 4, collate_fn, step, device or torch.device("cpu"))
    per_batch = seconds_per_batch(probe)
    if step is not None:  # a round of about round_s includes the steps
        per_batch += step_seconds(probe)
    batches = rounds_for(dataset, batch_size, per_batch, round_s=round_s)
    return Workload(
        dataset,
        batch_size,
        batches,
        collate_fn,
        step,
        device or torch.device("cpu"),
        worker_init_fn=worker_init_fn,
    )


def _speed(estimate) -> str:
    if estimate is None:
        return "not measured"
    if estimate.low is None:
        return f"{estimate.ratio:.2f}x"
    return f"{estimate.ratio:.2f}x [{estimate.low:.2f}, {estimate.high:.2f}]"


def _bar(fraction: float, width: int = 20) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "[" + "#" * filled + "." * (width - filled) + "]"
