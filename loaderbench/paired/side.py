"""One side of a side-by-side comparison: a long-lived measuring process.

    python -m loaderbench.paired.side [SETTING ...]

It takes the settings a benchmark run takes (config.SideSettings: cost scale, dataset, injected
slowdowns, worker ballast, loader class), as the same ``--lb-*`` arguments.

It builds datasets as a benchmark run with the same settings would (``bench_datasets``), holds up
to two loaders at a time (slots ``a`` and ``b``: the two configurations of a ratio live in one
process and alternate, as TorchInductor's dashboard measures speed-ups within one process) and
times one round whenever it is asked. It speaks ``protocol`` on standard input and output; what
anything else prints goes to standard error. When its input closes (the controller went away)
it stops its workers and exits.

Rounds, by measure:

- ``throughput``: ``repeat`` whole epochs of a persistent-worker loader (warmed by one untimed
  epoch at set-up); seconds per epoch;
- ``epoch``: ``repeat`` whole epochs of a default loader (``persistent_workers=False``): the
  workers start and stop inside each one (measure.timed_epoch); seconds per epoch;
- ``startup``: ``repeat`` times a fresh iterator's first batch, worker start-up included; the
  workers' shutdown is untimed; seconds per first batch;
- ``overlap``: ``repeat`` epochs of load plus a simulated training step per batch (overlap.py).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loaderbench.config import SideSettings
from loaderbench.paired import protocol

if TYPE_CHECKING:  # torch is imported only once a side measures
    from torch.utils.data import DataLoader


@dataclass
class Held:
    """A loader in one slot and how to time a round of it."""

    loader: DataLoader
    measure: str
    samples: int | None  # one epoch's samples, to check every timed epoch delivers them all
    step: Callable[[Any], object] | None = None


class Side:
    """The measuring state of a side process: its datasets and the loaders in its slots."""

    def __init__(self, datasets):
        self.datasets = datasets
        self.slots: dict[str, Held] = {}
        # Set together by _pin: what _unpin restores.
        self._affinity: set[int] | None = None
        self._threads: int | None = None

    def setup(self, slot: str, case: dict, measure: str, cpu: int | None = None) -> protocol.Warmed:
        from loaderbench.grid import Case
        from loaderbench.measuring.loaders import build_loader
        from loaderbench.measuring.measure import epoch_length

        self.teardown(slot)
        if measure not in protocol.MEASURES:
            raise ValueError(f"unknown measure {measure!r}; valid: {', '.join(protocol.MEASURES)}")
        grid_case = Case.from_dict(case)
        if cpu is not None:
            self._pin(cpu)
        dataset = self.datasets.get(grid_case.profile)
        loader = build_loader(dataset, grid_case, persistent=measure not in ("startup", "epoch"))
        held = Held(loader, measure, epoch_length(dataset))
        self.slots[slot] = held
        if measure == "overlap":
            from loaderbench.measuring.overlap import step_for

            held.step = step_for(loader, "cpu")
        if measure == "startup" and grid_case.num_workers:
            # Every round starts its workers anew, and a first round measured no slower here
            # (spawn, 2 workers: 2.29 s, then 2.31, 2.31, 2.28 s): no warm-up, whose cost in
            # a spawn case is a whole pair's.
            return protocol.Warmed(None)
        if measure == "epoch" and grid_case.start_method not in (None, "fork"):
            # A warm epoch would start spawn workers once more (seconds); each round starts its
            # own, so nothing stays warm between rounds anyway.
            return protocol.Warmed(None)
        # One untimed round: starts persistent workers, fills caches, imports lazily.
        return protocol.Warmed(self.round(slot, 1))

    def round(self, slot: str, repeat: int = 1) -> float:
        """Seconds per repeat of one round of the loader in ``slot``."""
        held = self.slots[slot]
        if held.measure == "startup":
            return sum(_first_batch(held.loader) for _ in range(repeat)) / repeat
        if held.measure == "epoch":
            return self._whole_epochs(held, repeat)
        start = time.perf_counter()
        for _ in range(repeat):
            samples = _epoch(held)
        elapsed = time.perf_counter() - start
        if held.samples is not None and samples != held.samples:
            raise RuntimeError(f"an epoch delivered {samples} of {held.samples} samples")
        return elapsed / repeat

    @staticmethod
    def _whole_epochs(held: Held, repeat: int) -> float:
        from loaderbench.measuring.measure import timed_epoch

        elapsed = 0.0
        for _ in range(repeat):
            phases, _, samples = timed_epoch(held.loader)
            elapsed += sum(phases.values())
            if held.samples is not None and samples != held.samples:
                raise RuntimeError(f"an epoch delivered {samples} of {held.samples} samples")
        return elapsed / repeat

    def teardown(self, slot: str | None = None) -> None:
        from loaderbench.measuring.loaders import shutdown

        for name in [slot] if slot else list(self.slots):
            held = self.slots.pop(name, None)
            if held is not None and held.measure not in ("startup", "epoch"):
                shutdown(held.loader)
        if not self.slots:
            self._unpin()

    def _pin(self, cpu: int) -> None:
        """Run on core ``cpu`` alone, one intra-op thread: a duet gives each side its own core."""
        import torch

        if self._affinity is None:
            self._affinity, self._threads = os.sched_getaffinity(0), torch.get_num_threads()
        os.sched_setaffinity(0, {cpu})
        torch.set_num_threads(1)

    def _unpin(self) -> None:
        import torch

        if self._affinity is not None and self._threads is not None:
            os.sched_setaffinity(0, self._affinity)
            torch.set_num_threads(self._threads)
            self._affinity = self._threads = None


def _epoch(held: Held) -> int:
    from loaderbench.measuring.loaders import batch_length, drain

    if held.step is None:
        return drain(held.loader)[1]
    samples = 0
    for batch in held.loader:
        held.step(batch)
        samples += batch_length(batch)
    return samples


def _first_batch(loader) -> float:
    """Seconds from ``iter(loader)`` to its first batch; the workers are stopped right after,
    untimed, without finishing the epoch (which would take most of the round). A spawn worker
    stopped mid-batch sometimes aborts as it exits (loaders.shutdown): a warning in the side's
    log, its batch was not wanted."""
    from loaderbench.measuring.loaders import shutdown

    start = time.perf_counter()
    iterator = iter(loader)
    try:
        next(iterator)
        return time.perf_counter() - start
    finally:
        shutdown(iterator)


def hello(settings: dict) -> protocol.Hello:
    import loaderbench
    from loaderbench import machine

    return protocol.Hello(
        protocol=protocol.PROTOCOL,
        measures=protocol.MEASURES,
        pid=os.getpid(),
        executable=sys.executable,
        package=os.path.dirname(loaderbench.__file__),
        fingerprint=machine.fingerprint(),
        settings=settings,
    )


def answer(request: protocol.Request, side: Side) -> protocol.Answer:
    """What ``side`` answers ``request`` when it succeeds."""
    if isinstance(request, protocol.Setup):
        return side.setup(request.slot, request.case, request.measure, request.cpu)
    if isinstance(request, protocol.Round):
        return protocol.Timed(side.round(request.slot, request.repeat))
    if isinstance(request, protocol.Teardown):
        side.teardown(request.slot)
    return protocol.Done()


def serve(requests, reply, side: Side) -> None:
    """Answer requests until ``quit`` or the end of input."""
    for line in requests:
        try:
            request = protocol.decode_request(line)
            reply(answer(request, side))
            if isinstance(request, protocol.Quit):
                return
        except Exception as exc:  # reported to the controller, which decides; the side goes on
            side.teardown()
            reply(failed(exc))


def failed(exc: Exception) -> protocol.Failed:
    return protocol.Failed(f"{type(exc).__name__}: {exc}".splitlines()[0])


def main(argv: list[str] | None = None) -> int:
    # The protocol owns the real standard output; everything printed from here on, by this
    # process or its workers, goes to standard error.
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def reply(message: protocol.Answer) -> None:
        channel.write(protocol.encode(message))

    try:
        settings = SideSettings.from_args(sys.argv[1:] if argv is None else argv)
        import bench_datasets
        from loaderbench.measuring import inject, loaders

        loaders.use_loader(loaders.resolve_loader(settings.loader))
        inject.install(settings.injected)
        datasets = bench_datasets.DatasetCache(
            cost_scale=settings.cost_scale,
            user_dataset=settings.dataset,
            worker_ballast_mb=settings.worker_ballast_mb,
        )
        if settings.dataset:
            datasets.get(bench_datasets.USER_PROFILE)  # a broken dataset fails here, named
        reply(
            hello(
                {
                    "cost_scale": settings.cost_scale,
                    "dataset": settings.dataset,
                    "injected": settings.injected,
                    "worker_ballast_mb": settings.worker_ballast_mb,
                    "loader": loaders.current_loader().describe(),
                }
            )
        )
    except Exception as exc:
        reply(failed(exc))
        return 2
    side = Side(datasets)
    try:
        serve(sys.stdin.buffer, reply, side)
    finally:
        side.teardown()
        datasets.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
