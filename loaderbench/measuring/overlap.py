"""Overlap of loading with the training step: a simulated step of a set duration per batch.

Workers exist to load the next batches while the model trains on this one. If they do, an epoch of
load + step takes max(load-only, step-only) instead of their sum, so

    overlap efficiency = max(load-only epoch, step-only epoch) / measured epoch

is 1.0 for perfect overlap and ``max / (load + step)`` for a serial loop (``num_workers=0``).

The step moves the batch to the device and then waits for a set duration: on a CPU by sleeping,
which releases the GIL like a real step spent in torch kernels (or optionally by running small
matmuls, which also compete with the workers for the cores); on a GPU by a device kernel. Either
way the step ends by waiting for the device, as a loop that reads its loss every step does, so on
the CPU and on a GPU the same code measures the same thing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median

import torch
from torch.utils.data import DataLoader

from loaderbench.measuring.loaders import batch_length, drain

#: Simulated step per sample of a batch (a step's cost grows with its batch). 0.5 ms is below the
#: load time per sample of the cpu, io and jpeg profiles at num_workers=0 on the reference machine
#: (1-2 ms), so a serial loop shows a clear sum and two workers can hide the step.
DEFAULT_STEP_S_PER_SAMPLE = 0.0005

COMPUTES = ("wait", "matmul")
#: Side of the square matrices of the optional real computation.
MATMUL_SIDE = 128


def to_device(batch, device: torch.device, non_blocking: bool = False):
    """The batch with every tensor moved to ``device`` (the structure is kept)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, non_blocking) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    return batch


def synchronize(device: torch.device) -> None:
    """Wait for everything queued on ``device``; a CPU has no queue."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def calibrate_gpu_sleep(device: torch.device, probe_cycles: int = 10_000_000) -> float:
    """Cycles of ``torch.cuda._sleep`` per second on ``device`` (the kernel spins for N cycles)."""
    with torch.cuda.device(device):
        torch.cuda._sleep(probe_cycles)  # the first launch pays for loading the kernel
        elapsed = min(_timed(lambda: torch.cuda._sleep(probe_cycles), device) for _ in range(3))
    return probe_cycles / elapsed


def calibrate_matmuls(device: torch.device, duration_s: float) -> int:
    """How many MATMUL_SIDE matmuls take about ``duration_s`` on ``device`` (at least one)."""
    a = torch.randn(MATMUL_SIDE, MATMUL_SIDE, device=device)
    a @ a  # warm-up: kernel selection, thread pool start
    reps = 20
    per = min(_timed(lambda: [a @ a for _ in range(reps)], device) for _ in range(3)) / reps
    return max(1, round(duration_s / per))


@dataclass
class TrainingStep:
    """A simulated training step: the batch goes to ``device``, then ``duration_s`` of work.

    ``compute``: ``"wait"`` sleeps on a CPU (GIL released, no core used) and runs a calibrated
    spinning kernel on a GPU; ``"matmul"`` runs calibrated small matmuls on either.
    """

    duration_s: float
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    compute: str = "wait"
    non_blocking: bool = False
    _work: Callable[[], object] = field(init=False, repr=False)  # set by __post_init__

    def __post_init__(self):
        if self.duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {self.duration_s}")
        if self.compute not in COMPUTES:
            raise ValueError(f"compute must be one of {', '.join(COMPUTES)}, got {self.compute!r}")
        self.device = torch.device(self.device)
        self._work = self._make_work()

    def _make_work(self) -> Callable[[], object]:
        if self.compute == "matmul":
            a = torch.randn(MATMUL_SIDE, MATMUL_SIDE, device=self.device)
            reps = calibrate_matmuls(self.device, self.duration_s) if self.duration_s else 0
            return lambda: [a @ a for _ in range(reps)]
        if self.device.type == "cuda":
            cycles = int(self.duration_s * calibrate_gpu_sleep(self.device))
            return lambda: torch.cuda._sleep(cycles)
        return lambda: time.sleep(self.duration_s)

    def __call__(self, batch) -> None:
        to_device(batch, self.device, self.non_blocking)
        self._work()
        synchronize(self.device)  # like reading the loss: the step is over when the device is


def step_for(
    loader: DataLoader,
    device="cpu",
    compute: str = "wait",
    s_per_sample: float = DEFAULT_STEP_S_PER_SAMPLE,
) -> TrainingStep:
    """The step for ``loader``'s batches: duration proportional to its batch size; batches are
    copied with non_blocking exactly when the loader pins memory."""
    return TrainingStep(
        s_per_sample * (loader.batch_size or 1),
        torch.device(device),
        compute,
        non_blocking=loader.pin_memory,
    )


def train_epoch(loader: DataLoader, step: Callable) -> tuple[int, int]:
    """One epoch of load + step; returns (batches, samples)."""
    batches = samples = 0
    for batch in loader:
        step(batch)
        batches += 1
        samples += batch_length(batch)
    return batches, samples


def step_epoch(step: Callable, batch, batches: int) -> float:
    """Seconds for ``batches`` steps on one batch already in memory: the epoch without loading."""
    start = time.perf_counter()
    for _ in range(batches):
        step(batch)
    return time.perf_counter() - start


def load_epoch(loader: DataLoader) -> float:
    """Seconds for one epoch of loading alone."""
    start = time.perf_counter()
    drain(loader)
    return time.perf_counter() - start


def overlap_numbers(load_only_s: float, step_only_s: float, epoch_s: float) -> dict:
    """Overlap efficiency and the step's share of wall time (on a GPU: the device's busy fraction).

    Efficiency is not clipped: a value above 1.0 means the parts were measured slower alone than
    together, i.e. noise, and should be read as such.
    """
    if epoch_s <= 0 or math.isnan(epoch_s):
        raise ValueError(f"epoch time must be > 0, got {epoch_s}")
    return {
        "overlap_efficiency": max(load_only_s, step_only_s) / epoch_s,
        "step_share": step_only_s / epoch_s,
        "load_only_s": load_only_s,
        "step_only_s": step_only_s,
        "serial_s": load_only_s + step_only_s,
        "epoch_s": epoch_s,
    }


def measure_overlap(
    benchmark, loader: DataLoader, step: TrainingStep, rounds: int
) -> tuple[dict, int, int]:
    """The overlap benchmark's body. Each timed round (an epoch of load + step) is preceded, in
    the untimed set-up, by one load-only epoch and one step-only epoch, so the three are
    interleaved and drift on a noisy machine affects them alike. Returns (numbers, batches,
    samples of one epoch), the numbers from the medians.
    """
    sample_batch, batches = None, 0
    for batch in loader:  # the warm epoch: starts persistent workers, fills caches
        sample_batch = batch if sample_batch is None else sample_batch
        batches += 1
    load_only, step_only, together = [], [], []

    def measure_parts():
        load_only.append(load_epoch(loader))
        step_only.append(step_epoch(step, sample_batch, batches))

    def load_and_step():
        start = time.perf_counter()
        counts = train_epoch(loader, step)
        together.append(time.perf_counter() - start)
        return counts

    batches, samples = benchmark.pedantic(
        load_and_step, setup=measure_parts, rounds=rounds, iterations=1
    )
    stats = getattr(benchmark, "stats", None)  # None when benchmarks are disabled
    epoch_s = stats.stats.median if stats is not None else median(together)
    numbers = overlap_numbers(median(load_only), median(step_only), epoch_s)
    numbers.update(
        step_s_per_batch=step.duration_s,
        compute=step.compute,
        device=str(step.device),
        pin_memory=loader.pin_memory,
    )
    return numbers, batches, samples
