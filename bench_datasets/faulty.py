"""Datasets and callables that fail on purpose: hang, die, raise, or run out of file descriptors.

They exist to show what the suite does when loading goes wrong. Every one is defined at module
level so that spawn and forkserver workers can unpickle it. Each sample that does not fail is
``(tensor([index]), index)``, so whatever does arrive can be checked exactly.

The deadly ones (killing, segfaulting) refuse to act outside a DataLoader worker: a mistake in a
test must never take the test runner itself down.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import time

import torch
from torch.utils.data import Dataset, default_collate, get_worker_info


class InjectedFault(Exception):
    """Raised by these datasets on purpose; its own type, so a test can see it survive the trip."""


def _in_worker() -> bool:
    return get_worker_info() is not None


def _refuse_outside_worker(what: str) -> None:
    if not _in_worker():
        raise RuntimeError(f"{what} only happens inside a DataLoader worker (num_workers > 0)")


class FaultyDataset(Dataset):
    """``length`` samples; ``fault(index)`` misbehaves at the indices in ``at``."""

    def __init__(self, length: int, at: int | tuple[int, ...]):
        self.length = length
        self.at = frozenset((at,) if isinstance(at, int) else at)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if index in self.at:
            self.fault(index)
        return self.expected(index), index

    @staticmethod
    def expected(index: int) -> torch.Tensor:
        return torch.tensor([index], dtype=torch.int64)

    def fault(self, index: int) -> None:
        raise NotImplementedError


class HangingDataset(FaultyDataset):
    """Blocks for ``hang_s`` seconds (default an hour: to a test, forever) at chosen indices."""

    def __init__(self, length: int, at, hang_s: float = 3600.0):
        super().__init__(length, at)
        self.hang_s = hang_s

    def fault(self, index: int) -> None:
        time.sleep(self.hang_s)


class SelfKillingDataset(FaultyDataset):
    """The worker sends itself ``signum`` (default SIGKILL: no clean-up, no last words)."""

    def __init__(self, length: int, at, signum: int = signal.SIGKILL):
        super().__init__(length, at)
        self.signum = int(signum)

    def fault(self, index: int) -> None:
        _refuse_outside_worker("SelfKillingDataset's kill")
        os.kill(os.getpid(), self.signum)
        time.sleep(60)  # a catchable signal may take a moment to arrive; never return a sample


class SegfaultingDataset(FaultyDataset):
    """The worker reads address 0: a real segmentation fault, as a buggy C extension would cause."""

    def fault(self, index: int) -> None:
        _refuse_outside_worker("SegfaultingDataset's segfault")
        faulthandler.disable()  # inherited from pytest under fork; its dump would only be noise
        ctypes.string_at(0)


#: Set in the environment of a process that ExitingDataset may end (a side a test started).
EXIT_ALLOWED = "LOADERBENCH_FAULT_EXIT"


class ExitingDataset(FaultyDataset):
    """Ends the whole process that loads it (``os._exit(3)``) the ``times``-th time it loads a
    chosen index, as a crash of a measuring process in mid-run would. Armed only where
    EXIT_ALLOWED is set in the environment (a process a test started to die); anywhere else, a
    test runner included, it loads like any dataset."""

    def __init__(self, length: int, at, times: int = 1):
        super().__init__(length, at)
        self.times, self.seen = times, 0

    def fault(self, index: int) -> None:
        self.seen += 1
        if self.seen < self.times:
            return
        if os.environ.get(EXIT_ALLOWED) == "1":
            os._exit(3)


def make_exiting() -> ExitingDataset:
    """``--lb-dataset=bench_datasets.faulty:make_exiting``: 64 samples; the process ends in its
    third epoch (after a warm one and a timed one)."""
    return ExitingDataset(64, at=40, times=3)


def make_raising() -> RaisingDataset:
    """``--lb-dataset=bench_datasets.faulty:make_raising``: 64 samples, sample 40 raises."""
    return RaisingDataset(64, at=40)


class RaisingDataset(FaultyDataset):
    """Raises InjectedFault naming the index (a per-sample error the loader can continue past)."""

    def fault(self, index: int) -> None:
        raise InjectedFault(f"sample {index} is unreadable")


def failing_worker_init(worker_id: int) -> None:
    """A ``worker_init_fn`` that fails in every worker."""
    raise InjectedFault(f"worker_init_fn failed in worker {worker_id}")


class FailingCollate:
    """A ``collate_fn`` that raises for any batch holding index ``at`` and collates the rest."""

    def __init__(self, at: int):
        self.at = at

    def __call__(self, samples):
        if any(index == self.at for _, index in samples):
            raise InjectedFault(f"cannot collate the batch holding sample {self.at}")
        return default_collate(samples)


class ManyTensorsDataset(Dataset):
    """Each sample is ``tensors`` separate tensors: under the ``file_descriptor`` sharing strategy
    every tensor a worker sends costs the main process one open file descriptor for as long as the
    tensor lives, so keeping the batches exhausts a low ``ulimit -n``."""

    def __init__(self, length: int, tensors: int = 8):
        self.length = length
        self.tensors = tensors

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return [torch.full((2,), index, dtype=torch.int64) for _ in range(self.tensors)]
