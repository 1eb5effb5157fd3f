"""The overlap measurement: efficiency is max(parts) over the whole, parts are interleaved with the
timed rounds, and the simulated step sees every batch and waits for its device."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import Dataset

from loaderbench.grid import Case
from loaderbench.measuring import overlap
from loaderbench.measuring.loaders import build_loader, running
from loaderbench.measuring.overlap import (
    TrainingStep,
    measure_overlap,
    overlap_numbers,
    step_epoch,
    step_for,
    to_device,
    train_epoch,
)
from loaderbench.measuring.transfer import NO_CUDA


class Indexed(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, index):
        return {"x": torch.full((3,), index, dtype=torch.int64), "i": index}


class FakeBenchmark:
    """pytest-benchmark's pedantic contract (set-up before every round), with an optional median."""

    def __init__(self, median=None):
        self.stats = SimpleNamespace(stats=SimpleNamespace(median=median)) if median else None
        self.extra_info = {}
        self.calls = []

    def pedantic(
        self, target, args=(), kwargs=None, setup=None, rounds=1, iterations=1, warmup_rounds=0
    ):
        for _ in range(rounds):
            if setup is not None:
                setup()
                self.calls.append("setup")
            result = target(*args, **(kwargs or {}))
            self.calls.append("target")
        return result


class RecordingStep:
    def __init__(self):
        self.device = torch.device("cpu")
        self.duration_s = 0.0
        self.compute = "wait"
        self.seen = []

    def __call__(self, batch):
        self.seen.append(batch)


def test_efficiency_is_the_larger_part_over_the_whole_not_the_sum():
    """A serial loop (epoch = load + step) scores max/sum; perfect overlap (epoch = max) scores 1."""
    serial = overlap_numbers(load_only_s=0.75, step_only_s=0.25, epoch_s=1.0)
    assert serial["overlap_efficiency"] == 0.75
    assert serial["step_share"] == 0.25
    assert serial["serial_s"] == 1.0
    assert overlap_numbers(0.75, 0.25, 0.75)["overlap_efficiency"] == 1.0
    assert overlap_numbers(0.25, 0.5, 0.5)["overlap_efficiency"] == 1.0  # the step dominates


@pytest.mark.parametrize("epoch_s", [0.0, -1.0, math.nan])
def test_a_non_positive_epoch_is_refused(epoch_s):
    with pytest.raises(ValueError, match="epoch time must be > 0"):
        overlap_numbers(1.0, 1.0, epoch_s)


@pytest.mark.processes
@pytest.mark.parametrize("workers", [0, 2])
def test_parts_are_measured_before_every_timed_round(workers):
    """Load-only and step-only epochs run in the set-up of each round, so the three interleave."""
    bench = FakeBenchmark()
    case = Case("indexed", workers, "fork", batch_size=4)
    with running(build_loader(Indexed(), case, persistent=True)) as loader:
        step = RecordingStep()
        numbers, batches, samples = measure_overlap(bench, loader, step, rounds=3)
    assert bench.calls == ["setup", "target"] * 3
    assert (batches, samples) == (3, 12)
    # 3 step-only epochs on one batch, plus 3 epochs of load + step
    assert len(step.seen) == 3 * batches + 3 * batches
    assert (
        numbers["overlap_efficiency"]
        == max(numbers["load_only_s"], numbers["step_only_s"]) / numbers["epoch_s"]
    )


def test_benchmark_median_is_the_epoch_time_when_benchmarks_run():
    bench = FakeBenchmark(median=10.0)
    with running(
        build_loader(Indexed(), Case("indexed", 0, batch_size=4), persistent=True)
    ) as loader:
        numbers, _, _ = measure_overlap(bench, loader, RecordingStep(), rounds=2)
    assert numbers["epoch_s"] == 10.0
    assert (
        numbers["overlap_efficiency"] == max(numbers["load_only_s"], numbers["step_only_s"]) / 10.0
    )


@pytest.mark.processes
def test_the_step_sees_every_batch_in_order():
    """train_epoch hands each collated batch to the step, exactly as the loader delivered it."""
    case = Case("indexed", 2, "fork", batch_size=5)
    with running(build_loader(Indexed(), case, persistent=True)) as loader:
        step = RecordingStep()
        assert train_epoch(loader, step) == (3, 12)
    assert [b["i"].tolist() for b in step.seen] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    for batch in step.seen:
        assert torch.equal(batch["x"], batch["i"].unsqueeze(1).expand(-1, 3))


def test_a_wait_step_waits_its_duration_and_then_for_its_device(monkeypatch):
    """time.sleep never returns early, so steps of d seconds take at least n*d together."""
    synced = []
    monkeypatch.setattr(overlap, "synchronize", lambda device: synced.append(device))
    step = TrainingStep(0.01)
    assert step_epoch(step, torch.zeros(2), batches=5) >= 0.05
    assert synced == [torch.device("cpu")] * 5


def test_the_step_moves_the_batch_and_keeps_its_structure():
    batch = ({"a": torch.arange(4)}, [torch.ones(2, dtype=torch.float64)], 7)
    moved = to_device(batch, torch.device("cpu"))
    assert type(moved) is tuple and type(moved[1]) is list and moved[2] == 7
    assert torch.equal(moved[0]["a"], batch[0]["a"]) and moved[0]["a"].dtype == torch.int64
    assert torch.equal(moved[1][0], batch[1][0]) and moved[1][0].dtype == torch.float64


def test_matmul_step_runs_a_calibrated_number_of_products():
    step = TrainingStep(0.005, compute="matmul")
    step(torch.zeros(1))
    assert overlap.calibrate_matmuls(torch.device("cpu"), 0.0) == 1


def test_step_duration_follows_the_batch_size_and_pinning():
    case = Case("indexed", 0, batch_size=4)
    loader = build_loader(Indexed(), case)
    step = step_for(loader, s_per_sample=0.25)
    assert (step.duration_s, step.non_blocking, step.device) == (1.0, False, torch.device("cpu"))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"duration_s": -1.0}, "duration_s must be >= 0"),
        ({"compute": "nap"}, "compute must be one of"),
    ],
)
def test_bad_step_settings_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainingStep(**{"duration_s": 0.01, **bad})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_a_gpu_step_keeps_the_device_busy_for_its_duration():
    """The calibrated kernel spins at least about as long as asked (the device is synchronised)."""
    step = TrainingStep(0.02, torch.device("cuda"), non_blocking=True)
    batch = torch.zeros(32, 3).pin_memory()
    assert step_epoch(step, batch, batches=10) >= 0.2 * 0.8


def overlap_entry(case, efficiency, device="cpu"):
    return {
        "name": f"test_overlap[{case.id}]",
        "stats": {"median": 1.0},
        "extra_info": {
            "measure": "overlap",
            "case": case.as_dict(),
            "device": device,
            "overlap_efficiency": efficiency,
        },
    }


def test_overlap_efficiency_is_a_derived_ratio_per_case_and_device():
    from synthetic_results import derived_json

    rows = [
        overlap_entry(Case("io", 2, "fork"), 0.9),
        overlap_entry(Case("io", 2, "fork"), 0.8, "cuda"),
    ]
    got = {d["name"]: d for d in derived_json(rows)}
    assert set(got) == {"overlap_efficiency[io-w2-fork]", "overlap_efficiency[io-w2-fork-cuda]"}
    assert got["overlap_efficiency[io-w2-fork]"]["value"] == 0.9
    assert got["overlap_efficiency[io-w2-fork-cuda]"]["higher_is_better"] is True
    assert got["overlap_efficiency[io-w2-fork]"]["inputs"] == ["test_overlap[io-w2-fork]"]
