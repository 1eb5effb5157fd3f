"""Batch copies: exact content, the device synchronised inside every copy, GB/s arithmetic."""

import pytest
import torch

from bench_datasets import make_dataset
from loaderbench.measuring import transfer
from loaderbench.measuring.transfer import (
    GB,
    NO_CUDA,
    BatchCopy,
    TransferCase,
    ceiling_gb_per_s,
    collated_batch,
    gb_per_s,
)


def test_a_collated_batch_is_the_samples_stacked_in_order_wrapping_around():
    dataset = make_dataset("large", length=3, side=8)
    batch = collated_batch(dataset, 5)
    expected = torch.stack([dataset.expected(i % 3) for i in range(5)])
    assert batch.dtype == expected.dtype and torch.equal(batch, expected)


def test_a_copy_delivers_the_batch_exactly_and_waits_for_the_device(monkeypatch):
    synced = []
    monkeypatch.setattr(transfer, "synchronize", lambda device: synced.append(device))
    batch = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    copy = BatchCopy(batch, "cpu", pinned=False, non_blocking=True)
    copy.destination.fill_(-1.0)
    copy()
    assert torch.equal(copy.destination, batch) and copy.destination.dtype == batch.dtype
    assert copy.destination.data_ptr() not in (batch.data_ptr(), copy.source.data_ptr())
    assert copy.nbytes == 24 * 4
    assert synced == [torch.device("cpu")]


def test_pinning_without_an_accelerator_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="pinned host memory needs a CUDA device"):
        BatchCopy(torch.zeros(4), "cpu", pinned=True, non_blocking=False)


def test_gb_per_s_is_bytes_over_seconds():
    assert gb_per_s(int(3 * GB), 1.5) == 2.0
    with pytest.raises(ValueError, match="seconds must be > 0"):
        gb_per_s(100, 0.0)


def test_the_ceiling_is_a_real_copy_rate():
    rate = ceiling_gb_per_s("cpu", nbytes=16 * 2**20, rounds=2)
    assert 0.0 < rate < float("inf")


def test_transfer_case_ids_name_every_setting():
    assert TransferCase("cuda", 32, True, True).id == "cuda-b32-pinned-nonblocking"
    assert TransferCase("cpu", 8, False, False).as_dict() == {
        "device": "cpu",
        "batch_size": 8,
        "pinned": False,
        "non_blocking": False,
        "id": "cpu-b8-pageable-blocking",
    }


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize("pinned", [False, True])
def test_a_non_blocking_copy_has_arrived_when_the_call_returns(pinned):
    batch = torch.randn(64, 3, 224, 224)
    copy = BatchCopy(batch, "cuda", pinned=pinned, non_blocking=True)
    copy()
    assert copy.source.is_pinned() == pinned
    assert torch.equal(copy.destination.cpu(), batch)


def transfer_entry(setting, median):
    return {
        "name": f"test_transfer[{setting.id}]",
        "stats": {"median": median},
        "extra_info": {
            "measure": "transfer",
            "transfer": setting.as_dict(),
            "case": {"id": f"large-w0-b{setting.batch_size}"},
        },
    }


def test_pin_gain_is_pageable_over_pinned_time_at_the_same_size_and_blocking():
    from synthetic_results import derived_json

    rows = [
        transfer_entry(TransferCase("cuda", 32, False, True), 3.0),
        transfer_entry(TransferCase("cuda", 32, True, True), 1.5),
        transfer_entry(TransferCase("cuda", 32, True, False), 1.0),  # no pageable partner
        transfer_entry(TransferCase("cuda", 8, False, True), 1.0),
    ]  # no pinned partner
    (gain,) = derived_json(rows)
    assert gain["name"] == "pin_gain[cuda-b32-nonblocking]"
    assert gain["value"] == 2.0 and gain["higher_is_better"] is True
    assert gain["inputs"] == [
        "test_transfer[cuda-b32-pageable-nonblocking]",
        "test_transfer[cuda-b32-pinned-nonblocking]",
    ]
