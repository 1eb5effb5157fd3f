"""Host-to-device copies of collated batches: pinned or pageable source, non_blocking or not.

Each copy goes into a destination allocated beforehand, so the timing is the copy and not the
allocator, and the device is synchronised before the clock stops: a non_blocking copy returns
before its bytes have moved. With ``device="cpu"`` the same code copies host to host (pinning
needs an accelerator and is refused), so the logic runs on machines without a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import default_collate

from bench_datasets.sized import SizedDataset
from loaderbench.measuring.overlap import synchronize

GB = 1e9
NO_CUDA = "no CUDA device is available (torch.cuda.is_available() is False)"
#: One copy this large reaches the link's bandwidth; its GB/s is the ceiling for batch copies.
CEILING_BYTES = 256 * 2**20


def can_pin(device: torch.device) -> bool:
    """Page-locked host memory exists only alongside an accelerator."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


@dataclass(frozen=True)
class TransferCase:
    """One transfer setting; its id names the benchmark, e.g. ``cuda-b32-pinned-nonblocking``."""

    device: str
    batch_size: int
    pinned: bool
    non_blocking: bool

    @property
    def id(self) -> str:
        return "-".join(
            [
                self.device,
                f"b{self.batch_size}",
                "pinned" if self.pinned else "pageable",
                "nonblocking" if self.non_blocking else "blocking",
            ]
        )

    def as_dict(self) -> dict:
        return {
            "device": self.device,
            "batch_size": self.batch_size,
            "pinned": self.pinned,
            "non_blocking": self.non_blocking,
            "id": self.id,
        }


def collated_batch(dataset: SizedDataset, batch_size: int) -> torch.Tensor:
    """The data of ``batch_size`` samples collated as a DataLoader does (indices wrap around)."""
    samples = [dataset[i % len(dataset)] for i in range(batch_size)]
    data, _ = default_collate(samples)
    return data


class BatchCopy:
    """A host batch (pinned or not) and a same-shaped destination on ``device``; calling it copies
    one into the other and waits for the device."""

    def __init__(self, batch: torch.Tensor, device, pinned: bool, non_blocking: bool):
        self.device = torch.device(device)
        if pinned and not can_pin(self.device):
            raise ValueError(f"pinned host memory needs a CUDA device, not {self.device}")
        self.source = batch.contiguous().pin_memory() if pinned else batch.contiguous().clone()
        self.destination = torch.empty_like(self.source, device=self.device)
        self.non_blocking = non_blocking
        self.nbytes = self.source.numel() * self.source.element_size()

    def __call__(self) -> None:
        self.destination.copy_(self.source, non_blocking=self.non_blocking)
        synchronize(self.device)


def gb_per_s(nbytes: int, seconds: float) -> float:
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return nbytes / seconds / GB


def ceiling_gb_per_s(device, nbytes: int = CEILING_BYTES, rounds: int = 5) -> float:
    """GB/s of one large copy from pinned memory (pageable on a CPU), best of ``rounds``: the
    physical ceiling that batch copies are read against."""
    device = torch.device(device)
    copy = BatchCopy(
        torch.empty(nbytes, dtype=torch.uint8),
        device,
        pinned=can_pin(device),
        non_blocking=can_pin(device),
    )
    copy()  # first touch of the destination pages, driver warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        copy()
        best = min(best, time.perf_counter() - start)
    return gb_per_s(copy.nbytes, best)
