"""What a benchmark records through results.Recorder is what the results model reads back."""

from __future__ import annotations

from loaderbench.grid import Case
from loaderbench.results import THROUGHPUT, Benchmark, Recorder


def test_what_a_recorder_writes_the_model_reads_back():
    info: dict = {}
    recorder = Recorder(info)
    recorder.case(THROUGHPUT, Case("cpu", 2, "fork").as_dict(), {"profile": "cpu"})
    recorder.epoch(batches=8, samples=256)
    recorder.rates(0.5)
    recorder.numbers({"peak_pss_mb": 12.5}, storage="list")
    entry = {"name": "test_throughput[cpu-w2-fork]", "stats": {"median": 0.5}, "extra_info": info}
    bench = Benchmark.from_json(entry)
    assert (bench.measure, bench.case_id, bench.num_workers) == (THROUGHPUT, "cpu-w2-fork", 2)
    assert (bench.samples_per_s, bench.value("batches_per_s")) == (512, 16)
    assert bench.settings == {"profile": "cpu"} and bench.value("peak_pss_mb") == 12.5


def test_pooled_rounds_recompute_the_rates_as_the_recorder_defines_them():
    info: dict = {}
    Recorder(info).epoch(batches=4, samples=100)
    Recorder(info).rates(1.0)
    entry = {"name": "b", "stats": {"median": 1.0, "data": [1.0]}, "extra_info": info}
    pooled = Benchmark.from_json(entry).pooled([2.0, 2.0, 4.0])
    assert (pooled.samples_per_s, pooled.value("batches_per_s")) == (50, 2)
