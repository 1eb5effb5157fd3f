"""Host-to-device copies of collated batches of the large profile: pinned or pageable,
non_blocking or not, three batch sizes, beside one large copy's bandwidth (the ceiling)."""

from functools import cache

import pytest
import torch

from loaderbench.grid import Case
from loaderbench.measuring.measure import record_case
from loaderbench.measuring.transfer import (
    NO_CUDA,
    BatchCopy,
    TransferCase,
    can_pin,
    ceiling_gb_per_s,
    collated_batch,
    gb_per_s,
)
from loaderbench.results import TRANSFER, Recorder

TRANSFER_PROFILE = "large"  # 3x224x224 float32 samples: 0.6 MB each
BATCH_SIZES = (8, 32, 128)

needs_cuda = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]
SETTINGS = [
    TransferCase(device, size, pinned, non_blocking)
    for device in ("cpu", "cuda")
    for size in BATCH_SIZES
    for pinned in (False, True)
    for non_blocking in (False, True)
]
CASES = [pytest.param(s, id=s.id, marks=needs_cuda if s.device == "cuda" else ()) for s in SETTINGS]


@cache
def ceiling(device: str) -> float:
    """Measured once per device and run, so every batch copy is read against the same ceiling."""
    return ceiling_gb_per_s(device)


@pytest.mark.parametrize("transfer", CASES)
def test_transfer(benchmark, transfer, lb_settings):
    """A collated batch reaches the device intact; GB/s with the device synchronised in the timing."""
    if transfer.pinned and not can_pin(torch.device(transfer.device)):
        pytest.skip("pinned host memory needs a CUDA device; the cpu path copies pageable memory")
    dataset = lb_settings.dataset(TRANSFER_PROFILE)
    record_case(
        benchmark, Case(TRANSFER_PROFILE, 0, batch_size=transfer.batch_size), TRANSFER, dataset
    )
    batch = collated_batch(dataset, transfer.batch_size)
    copy = BatchCopy(batch, transfer.device, transfer.pinned, transfer.non_blocking)
    benchmark.pedantic(copy, rounds=lb_settings.rounds, warmup_rounds=1, iterations=1)
    top = ceiling(transfer.device)
    recorder = Recorder.of(benchmark)
    recorder.numbers(transfer=transfer.as_dict(), bytes=copy.nbytes, ceiling_gb_per_s=top)
    stats = getattr(benchmark, "stats", None)  # None when benchmarks are disabled
    if stats is not None:
        rate = gb_per_s(copy.nbytes, stats.stats.median)
        recorder.numbers(gb_per_s=rate, fraction_of_ceiling=rate / top)
    assert torch.equal(copy.destination.cpu(), batch), "the copy did not deliver the batch"
