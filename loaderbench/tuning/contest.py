"""Candidate DataLoader settings measured side by side, in this process, on the user's dataset.

A **contest** holds a loader for every candidate at once and times them round by round, each
cycle in an order drawn at random, so that every candidate's round was taken within a second or
two of the reference's: what the machine was doing then cancels in their ratio (the same idea as
the regression verdict's pairs, paired/engine.py). A **block** builds the loaders anew (fresh
workers) and measures them until its slice of the seconds is spent; the interval of each ratio
is Student's t over the blocks (intervals.paired), so a worker pool that happened to start badly
counts once, not in every pair. How the seconds are spread over blocks and cycles, and when a
contest stops, is the side-by-side schedule the regression engine uses too (paired/schedule.py):
a contest is its one row, and this module supplies what a block measures.

Besides the ratios, each block records for every candidate what the grid measures: the time to
its first batch with workers starting (the warm round's first batch), the peak PSS of this process
and its workers, and how much each worker's anonymous memory grew over the block's rounds.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import random
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from loaderbench.judging.intervals import PairedEstimate, paired
from loaderbench.measuring.loaders import batch_length, make_loader, shutdown
from loaderbench.measuring.memory import MB, usage_by_process, worker_pids
from loaderbench.measuring.overlap import synchronize, to_device
from loaderbench.paired.schedule import Schedule, settled

#: A worker that takes longer than this for one batch has hung (tune is interactive: seconds, not
#: the two minutes a benchmark allows).
WORKER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Candidate:
    """One set of DataLoader settings. ``prefetch_factor`` None: DataLoader's default (2)."""

    num_workers: int
    start_method: str | None = None
    prefetch_factor: int | None = None
    pin_memory: bool = False

    def __post_init__(self):
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.num_workers and self.start_method is None:
            raise ValueError("a candidate with workers needs a start method")
        if not self.num_workers and (self.start_method or self.prefetch_factor):
            raise ValueError("start method and prefetch factor mean nothing without workers")

    @property
    def label(self) -> str:
        parts = [f"w{self.num_workers}"]
        if self.start_method:
            parts.append(self.start_method)
        if self.prefetch_factor is not None:
            parts.append(f"p{self.prefetch_factor}")
        if self.pin_memory:
            parts.append("pin")
        return "-".join(parts)

    def with_(self, **changes) -> Candidate:
        values: dict[str, Any] = {
            "num_workers": self.num_workers,
            "start_method": self.start_method,
            "prefetch_factor": self.prefetch_factor,
            "pin_memory": self.pin_memory,
        }
        values.update(changes)
        return Candidate(**values)


@dataclass(frozen=True)
class StepOnly:
    """The training step alone, on batches already loaded: the time a loop that loads for free
    would take, against which "keeps up" is measured."""

    label: str = "step only"
    num_workers: int = 0


@dataclass
class Workload:
    """What one round does: ``batches`` batches of the dataset (the first indices of a map-style
    dataset, the first batches of a stream), each followed by ``step`` when there is one."""

    dataset: Dataset
    batch_size: int
    batches: int
    collate_fn: Callable | None = None
    step: Callable | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: The user's worker_init_fn, given to every loader with workers.
    worker_init_fn: Callable | None = None

    @property
    def iterable(self) -> bool:
        return isinstance(self.dataset, IterableDataset)

    def loader(self, candidate: Candidate, *, persistent: bool = True) -> DataLoader:
        """The candidate's loader; ``persistent`` False: a default loader, whose workers start
        and stop with every epoch."""
        kwargs: dict = dict(
            batch_size=self.batch_size,
            num_workers=candidate.num_workers,
            pin_memory=candidate.pin_memory,
        )
        if self.collate_fn is not None:
            kwargs["collate_fn"] = self.collate_fn
        if not self.iterable:
            # Dataset declares no __len__; a map-style dataset given to tune has one.
            kwargs["sampler"] = range(
                min(len(cast(Sized, self.dataset)), self.batches * self.batch_size)
            )
        if candidate.num_workers:
            kwargs.update(
                multiprocessing_context=multiprocessing.get_context(candidate.start_method),
                persistent_workers=persistent,
                timeout=WORKER_TIMEOUT_S,
            )
            if self.worker_init_fn is not None:
                kwargs["worker_init_fn"] = self.worker_init_fn
            if candidate.prefetch_factor is not None:
                kwargs["prefetch_factor"] = candidate.prefetch_factor
        return make_loader(self.dataset, **kwargs)

    def consume(self, batch) -> None:
        """What the loop does with a batch: the step, or at least the move to the device."""
        if self.step is not None:
            self.step(batch)
        elif self.device.type != "cpu":
            to_device(batch, self.device, non_blocking=True)
            synchronize(self.device)


@contextmanager
def _more_workers_than_cores_on_purpose() -> Iterator[None]:
    """tune tries up to twice the usable cores; DataLoader warns at every start above them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        yield


class LoaderRounds:
    """A candidate's loader during one block: times its rounds, reads its memory."""

    def __init__(self, workload: Workload, candidate: Candidate):
        self.workload, self.candidate = workload, candidate
        with _more_workers_than_cores_on_purpose():
            self.loader = workload.loader(candidate)
        self.samples = 0

    def first_round(self) -> float:
        """The warm round (workers start, caches fill); returns the seconds to its first batch."""
        start = time.perf_counter()
        with _more_workers_than_cores_on_purpose():
            iterator = iter(self.loader)
        first = next(iterator, None)
        first_s = time.perf_counter() - start
        if first is None:
            raise ValueError("the dataset gave no batch: nothing to measure")
        self.samples = self._rest(iterator, first)
        return first_s

    def round(self) -> float:
        start = time.perf_counter()
        samples = self._rest(iter(self.loader), None)
        elapsed = time.perf_counter() - start
        if samples != self.samples:
            raise RuntimeError(
                f"{self.candidate.label}: a round delivered {samples} samples, the "
                f"first {self.samples}; the dataset changes between epochs"
            )
        return elapsed

    def _rest(self, iterator, first) -> int:
        samples = 0
        if first is not None:
            self.workload.consume(first)
            samples += batch_length(first)
        limit = self.workload.batches - (first is not None)
        for batch in itertools.islice(iterator, limit):
            self.workload.consume(batch)
            samples += batch_length(batch)
        return samples

    def memory(self) -> tuple[float, dict[int, float]]:
        """(PSS of this process and the workers, MB; each worker's anonymous PSS, MB)."""
        pids = worker_pids(self.loader) if self.candidate.num_workers else []
        usage = usage_by_process([os.getpid(), *pids])
        anon = {
            pid: (u.anon if u.anon is not None else u.pss) / MB
            for pid, u in usage.items()
            if pid != os.getpid()
        }
        return sum(u.pss for u in usage.values()) / MB, anon

    def close(self) -> None:
        shutdown(self.loader)


class StepRounds:
    """The step alone, on the batches the reference loads once per block."""

    def __init__(self, workload: Workload):
        self.workload = workload
        loader = workload.loader(Candidate(0))
        self.cached = list(itertools.islice(iter(loader), workload.batches))
        self.samples = sum(batch_length(b) for b in self.cached)

    def first_round(self) -> float:
        self.round()
        return 0.0

    def round(self) -> float:
        start = time.perf_counter()
        for batch in self.cached:
            self.workload.consume(batch)
        return time.perf_counter() - start

    def memory(self) -> tuple[float, dict[int, float]]:
        usage = usage_by_process([os.getpid()]).get(os.getpid())
        assert usage is not None  # this process has not gone
        return usage.pss / MB, {}

    def close(self) -> None:
        self.cached = []


@dataclass
class Entry:
    """What a contest measured for one contestant."""

    contestant: Candidate | StepOnly
    #: Per block, (reference seconds, this contestant's seconds) of each cycle.
    blocks: list[list[tuple[float, float]]] = field(default_factory=list)
    first_batch_s: list[float] = field(default_factory=list)
    round_s: list[float] = field(default_factory=list)
    peak_pss_mb: float = 0.0
    worker_growth_mb: list[float] = field(default_factory=list)  # per block, per worker
    samples: int = 0

    @property
    def label(self) -> str:
        return self.contestant.label

    def estimate(self, alpha: float) -> PairedEstimate | None:
        kept = [b for b in self.blocks if b]
        return paired(kept, alpha=alpha) if kept else None

    @property
    def samples_per_s(self) -> float | None:
        typical = median_of(self.round_s)
        return self.samples / typical if typical else None

    @property
    def growth_per_worker_mb(self) -> float | None:
        return median_of(self.worker_growth_mb)

    def as_dict(self, alpha: float) -> dict:
        estimate = self.estimate(alpha)
        return {
            "label": self.label,
            "num_workers": self.contestant.num_workers,
            "time_ratio": estimate.ratio if estimate else 1.0,
            "low": estimate.low if estimate else None,
            "high": estimate.high if estimate else None,
            "pairs": estimate.pairs if estimate else 0,
            "samples_per_s": self.samples_per_s,
            "first_batch_s": median_of(self.first_batch_s),
            "peak_pss_mb": self.peak_pss_mb or None,
            "growth_per_worker_mb": self.growth_per_worker_mb,
        }


@dataclass
class Contest:
    """The outcome: one entry per contestant, the first the reference of every ratio."""

    title: str
    entries: list[Entry]
    #: Wall-clock seconds the contest took.
    seconds: float = 0.0
    blocks: int = 0
    #: Why it stopped: schedule.SETTLED (its question answered), schedule.SPENT, "interrupted".
    stopped: str = ""
    #: What its question is asked with (``decided`` reads them).
    min_effect: float = 0.05
    alpha: float = 0.05
    #: Seconds its blocks took, set-up included (what the schedule spends).
    spent_s: float = 0.0

    def entry(self, contestant) -> Entry:
        return next(e for e in self.entries if e.contestant == contestant)

    def ratio(self, contestant, alpha: float) -> PairedEstimate | None:
        """Time of ``contestant``'s round over the reference's (below 1: faster)."""
        return self.entry(contestant).estimate(alpha)

    def ratio_between(self, base, other, alpha: float) -> PairedEstimate | None:
        """Time of ``other``'s round over ``base``'s, paired cycle by cycle (every contestant
        ran in every cycle of a block), any two contestants, the reference or not."""
        times = [self._cycle_times(c) for c in (base, other)]
        blocks = [list(zip(a, b)) for a, b in zip(*times) if a and b]
        return paired(blocks, alpha=alpha) if blocks else None

    def _cycle_times(self, contestant) -> list[list[float]]:
        """Per block, ``contestant``'s round time in each cycle."""
        index = self.entries.index(self.entry(contestant))
        if index:
            return [[mine for _, mine in block] for block in self.entries[index].blocks]
        other = self.entries[1] if len(self.entries) > 1 else None
        return [[ref for ref, _ in block] for block in other.blocks] if other else []

    def as_dict(self, alpha: float) -> dict:
        return {
            "title": self.title,
            "reference": self.entries[0].label,
            "seconds": round(self.seconds, 1),
            "blocks": self.blocks,
            "stopped": self.stopped,
            "entries": [e.as_dict(alpha) for e in self.entries],
        }


def median_of(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def contest_schedule(
    seconds: float, *, max_blocks: int = 6, tie_blocks: int = 0, min_cycles: int = 2
) -> Schedule:
    """A contest's schedule: ``seconds`` for it in all, at least 3 blocks of at least
    ``min_cycles`` cycles, at most ``max_blocks``; a question still open then (a near tie) may go
    on to ``tie_blocks`` blocks, so that its answer rests on more than the minimum of blocks."""
    return Schedule(
        seconds_per_row=seconds,
        blocks=max_blocks,
        min_blocks=min(3, max_blocks),
        min_rounds=min_cycles,
        open_blocks=tie_blocks,
    )


def run_contest(
    title: str,
    workload: Workload,
    contestants: Sequence,
    schedule: Schedule,
    *,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    decided: Callable[[Contest], bool] | None = None,
    rng: random.Random | None = None,
    show: Callable[[str], None] = lambda line: None,
) -> Contest:
    """Measure ``contestants`` side by side on ``schedule`` (one row: the contest); the first is
    every ratio's reference.

    ``decided``: when the contest has answered its question (default: every ratio settled);
    checked after each block from the ``min_blocks``-th on. Ctrl-C ends the contest with what
    its finished blocks measured, ``stopped`` "interrupted" (the caller decides what next).
    """
    rng = rng or random.Random()
    decided = decided or all_settled
    contest = Contest(title, [Entry(c) for c in contestants], min_effect=min_effect, alpha=alpha)
    started = time.monotonic()

    def block(index: int, _: list[Contest], slice_s: float) -> None:
        _block(contest, workload, slice_s, schedule, rng)
        show(
            f"{title}: block {index + 1}, "
            + ", ".join(_ratio_text(contest, e, alpha) for e in contest.entries[1:])
        )

    try:
        schedule.run([contest], block, decided, rng)
    except KeyboardInterrupt:
        contest.stopped = "interrupted"
    finally:
        contest.seconds = time.monotonic() - started
    return contest


def all_settled(contest: Contest) -> bool:
    """Every ratio's interval settled (schedule.settled): narrow, inside or beyond the minimum
    effect."""
    return all(settled(e.estimate(contest.alpha), contest.min_effect) for e in contest.entries[1:])


def _ratio_text(contest: Contest, entry: Entry, alpha: float) -> str:
    estimate = entry.estimate(alpha)
    if estimate is None:
        return f"{entry.label} -"
    interval = f" [{estimate.low:.2f}, {estimate.high:.2f}]" if estimate.low else ""
    return f"{entry.label} {estimate.ratio:.3f}x{interval}"


def _open(workload: Workload, contestant) -> LoaderRounds | StepRounds:
    if isinstance(contestant, StepOnly):
        return StepRounds(workload)
    return LoaderRounds(workload, contestant)


def _block(
    contest: Contest, workload: Workload, slice_s: float, schedule: Schedule, rng: random.Random
) -> None:
    """One block: every contestant's loader built anew, warmed, then timed cycle after cycle.
    What it measured is recorded only when it finishes (an interrupted block counts for
    nothing)."""
    begun = time.monotonic()
    entries = contest.entries
    runners: dict[int, LoaderRounds | StepRounds] = {}
    try:
        first_batch: dict[int, float] = {}
        order = list(range(len(entries)))
        rng.shuffle(order)  # which loader starts its workers first is drawn too
        for index in order:
            runners[index] = _open(workload, entries[index].contestant)
            first_batch[index] = runners[index].first_round()
        start_anon = {index: runner.memory()[1] for index, runner in runners.items()}
        peaks = [0.0] * len(entries)

        def cycle() -> list[float]:
            times = [0.0] * len(entries)
            rng.shuffle(order)
            for index in order:
                times[index] = runners[index].round()
                peaks[index] = max(peaks[index], runners[index].memory()[0])
            return times

        cycles = schedule.rounds(begun, slice_s, cycle)
        for index, entry in enumerate(entries):
            runner = runners[index]
            if not isinstance(runner, StepRounds):
                entry.first_batch_s.append(first_batch[index])
            entry.samples = runner.samples
            entry.round_s += [cycle[index] for cycle in cycles]
            entry.peak_pss_mb = max(entry.peak_pss_mb, peaks[index])
            if index:
                entry.blocks.append([(cycle[0], cycle[index]) for cycle in cycles])
            end_anon = runner.memory()[1]
            growth = [
                end_anon[pid] - start_anon[index][pid]
                for pid in end_anon
                if pid in start_anon[index]
            ]
            if growth:
                entry.worker_growth_mb.append(sum(growth) / len(growth))
        contest.blocks += 1
    finally:
        for runner in runners.values():
            runner.close()
        contest.spent_s += time.monotonic() - begun  # stopping the workers counts too


def rounds_for(
    dataset,
    batch_size: int,
    seconds_per_batch: float,
    *,
    round_s: float = 0.5,
    min_batches: int = 4,
    max_batches: int = 400,
) -> int:
    """How many batches make a round of about ``round_s`` at num_workers=0 (bounded by the
    dataset's length): short rounds are dominated by the timer and by workers waking up."""
    batches = max(min_batches, min(max_batches, math.ceil(round_s / max(seconds_per_batch, 1e-6))))
    if not isinstance(dataset, IterableDataset):
        batches = min(batches, max(1, math.ceil(len(dataset) / batch_size)))
    return batches


def seconds_per_batch(workload: Workload, batches: int = 3) -> float:
    """One batch's load time at num_workers=0 (the second and later: the first imports)."""
    runner = LoaderRounds(
        Workload(workload.dataset, workload.batch_size, batches + 1, workload.collate_fn),
        Candidate(0),
    )
    try:
        iterator = iter(runner.loader)
        if next(iterator, None) is None:
            raise ValueError("the dataset gave no batch: nothing to measure")
        start = time.perf_counter()
        got = sum(1 for _ in itertools.islice(iterator, batches))
        return (time.perf_counter() - start) / got if got else 0.0
    finally:
        runner.close()


def step_seconds(workload: Workload, repeat: int = 3) -> float:
    """One step's time on a batch of the dataset (the median of ``repeat``)."""
    runner = StepRounds(
        Workload(
            workload.dataset,
            workload.batch_size,
            1,
            workload.collate_fn,
            workload.step,
            workload.device,
        )
    )
    try:
        return statistics.median(runner.round() for _ in range(repeat))
    finally:
        runner.close()
