"""Peak memory of a loader: PSS summed over the main process and its workers, sampled in the
background while the loader runs.

PSS (proportional set size) charges each shared page to the processes that map it in equal parts,
so summing it over a process tree counts a page once. RSS would count a page shared after fork once
per worker, and hide exactly the copy-on-read growth this module exists to show.

Beside the whole PSS, the **anonymous** PSS (``Pss_Anon`` of ``/proc/<pid>/smaps_rollup``: heap,
stacks, tensors; no file-backed pages, no shared memory) is kept too, and it is what the verdict
judges. The file-backed part is mostly torch's shared libraries, whose pages are divided among
every process on the machine that maps them, this tree's or not: on the 2-core reference machine
the same `make bench` row (jpeg at 0 workers) read 407 MB of PSS in one run and 272 MB in its
rerun, which ran while the gate that started it held torch's libraries mapped too. A worker that holds more memory, or un-shares pages by reading
Python objects, grows its anonymous PSS whatever else runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil
from torch.utils.data import DataLoader

from loaderbench.measuring.loaders import drain

MB = 2**20

#: Seconds between samples. Reading /proc/<pid>/smaps_rollup walks the page tables (6-8 ms for a
#: 300 MB process here) under the process's memory-map lock, and the sampling thread competes with
#: torch's intra-op threads: on the busy 2-core reference machine a jpeg epoch in the main process
#: took 1.0 s unsampled, 1.6 s sampled every 50 ms and 1.15 s every 200 ms. Steady-state memory
#: moves slowly, and the last sample is taken when sampling stops, so a coarse interval loses little.
DEFAULT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Usage:
    """One process's PSS and its anonymous part, in bytes (anon None where the kernel's
    smaps_rollup does not say)."""

    pss: int
    anon: int | None


def process_usage(pid: int) -> Usage | None:
    """The PSS of one process, or None when it has gone (a worker may exit between samples)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            fields = dict(line.split(b":", 1) for line in rollup.read().splitlines()[1:])
        pss = int(fields[b"Pss"].split()[0]) * 1024
        anon = fields.get(b"Pss_Anon")
        return Usage(pss, int(anon.split()[0]) * 1024 if anon else None)
    except FileNotFoundError:
        return None
    except (OSError, KeyError, ValueError):  # no smaps_rollup (older kernel, other OS): psutil's
        try:
            return Usage(psutil.Process(pid).memory_full_info().pss, None)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None


def process_pss(pid: int) -> int | None:
    """PSS of one process in bytes, or None when it has gone."""
    usage = process_usage(pid)
    return None if usage is None else usage.pss


def usage_by_process(pids: Iterable[int]) -> dict[int, Usage]:
    """{pid: Usage} for each of ``pids`` still alive."""
    found = {}
    for pid in dict.fromkeys(pids):
        usage = process_usage(pid)
        if usage is not None:
            found[pid] = usage
    return found


def pss_by_process(pids: Iterable[int]) -> dict[int, int]:
    """{pid: PSS bytes} for each of ``pids`` still alive."""
    return {pid: usage.pss for pid, usage in usage_by_process(pids).items()}


def worker_pids(loader: DataLoader) -> list[int]:
    """Pids of the live worker processes behind a loader's persistent iterator ([] without one).

    DataLoader has no public handle on its workers. Listing this process's children instead would
    also count multiprocessing's forkserver and resource tracker, which serve every loader.
    """
    iterator = getattr(loader, "_iterator", None)
    workers = getattr(iterator, "_workers", None) or []
    return [w.pid for w in workers if w.pid is not None and w.is_alive()]


@dataclass
class PssPeak:
    """The sample at which the summed PSS was highest, and the one at which the summed anonymous
    PSS was (None totals where the kernel does not report it)."""

    total: int = 0
    by_process: dict[int, int] = field(default_factory=dict)
    samples: int = 0
    anon_total: int | None = None
    anon_by_process: dict[int, int] = field(default_factory=dict)


class PssSampler:
    """Samples the summed PSS of ``pids()`` on a background thread until stopped; keeps the peak.

    ``pids`` is called at every sample, so workers that start or stop meanwhile are followed.
    Use as a context manager; ``peak`` holds the result after exit.
    """

    def __init__(self, pids: Callable[[], Iterable[int]], interval_s: float = DEFAULT_INTERVAL_S):
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._pids = pids
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.peak = PssPeak()

    def sample(self) -> None:
        usage = usage_by_process(self._pids())
        by_process = {pid: u.pss for pid, u in usage.items()}
        total = sum(by_process.values())
        self.peak.samples += 1
        if total > self.peak.total:
            self.peak.total, self.peak.by_process = total, by_process
        anon = {pid: u.anon for pid, u in usage.items() if u.anon is not None}
        if usage and len(anon) == len(usage):  # every process says its anonymous part
            if self.peak.anon_total is None or sum(anon.values()) > self.peak.anon_total:
                self.peak.anon_total, self.peak.anon_by_process = sum(anon.values()), anon

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.sample()
                self._stop.wait(self._interval_s)
        except BaseException as exc:  # re-raised in the main thread by stop()
            self._error = exc

    def start(self) -> PssSampler:
        self.sample()  # at least one sample even if the measured code is shorter than the interval
        self._thread = threading.Thread(target=self._run, name="loaderbench-pss", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> PssPeak:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        self.sample()
        return self.peak

    def __enter__(self) -> PssSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def loader_sampler(loader: DataLoader, interval_s: float = DEFAULT_INTERVAL_S) -> PssSampler:
    """A sampler over this process and the loader's workers."""
    main = os.getpid()
    return PssSampler(lambda: [main, *worker_pids(loader)], interval_s)


def summarise(peak: PssPeak, baseline: int, num_workers: int, main_pid: int | None = None) -> dict:
    """The numbers a memory benchmark records, in MB.

    ``baseline`` is the main process's PSS before the loader started; ``growth_mb`` is what the
    loader added on top of it (the part that does not depend on what else the process holds).
    """
    main_pid = os.getpid() if main_pid is None else main_pid

    def per_worker(by_process: dict[int, int]) -> float:
        workers = sum(pss for pid, pss in by_process.items() if pid != main_pid)
        return workers / num_workers / MB if num_workers else 0.0

    numbers = {
        "peak_pss_mb": peak.total / MB,
        "baseline_pss_mb": baseline / MB,
        "growth_mb": (peak.total - baseline) / MB,
        "main_pss_mb": peak.by_process.get(main_pid, 0) / MB,
        "pss_per_worker_mb": per_worker(peak.by_process),
        "workers_sampled": len(peak.by_process) - (main_pid in peak.by_process),
        "pss_samples": peak.samples,
    }
    if peak.anon_total is not None:
        numbers.update(
            peak_anon_pss_mb=peak.anon_total / MB,
            anon_pss_per_worker_mb=per_worker(peak.anon_by_process),
        )
    return numbers


def sampled_steady_state(benchmark, loader: DataLoader, rounds: int) -> tuple[dict, int, int]:
    """The memory benchmark's body: one untimed warm epoch, then ``rounds`` timed epochs with the
    sampler running throughout. Returns (memory numbers, batches, samples of one epoch).

    The baseline is read before the first epoch starts the loader's workers.
    """
    baseline = process_pss(os.getpid())
    assert baseline is not None  # this process has not gone
    drain(loader)
    with loader_sampler(loader) as sampler:
        batches, samples = benchmark.pedantic(drain, args=(loader,), rounds=rounds, iterations=1)
    return summarise(sampler.peak, baseline, loader.num_workers), batches, samples
