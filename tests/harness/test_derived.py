"""Derived ratios computed from one run's benchmark entries."""

import pytest
from synthetic_results import derived_json

from loaderbench.grid import Case


def bench(measure, case, median):
    return {
        "name": f"test_{measure}[{case.id}]",
        "stats": {"median": median},
        "extra_info": {"measure": measure, "case": case.as_dict()},
    }


def test_speedup_and_efficiency_are_relative_to_zero_workers_of_the_same_profile():
    rows = [
        bench("throughput", Case("cpu", 0), 1.0),
        bench("throughput", Case("cpu", 2, "fork"), 0.5),
        bench("throughput", Case("io", 0), 1.0),
        bench("throughput", Case("io", 4, "fork"), 0.5),
    ]
    got = {d["name"]: d for d in derived_json(rows)}
    assert got["speedup[cpu-w2-fork]"]["value"] == pytest.approx(2.0)
    assert got["efficiency[cpu-w2-fork]"]["value"] == pytest.approx(1.0)  # ideal min(2, 2 cores)
    assert got["efficiency[io-w4-fork]"]["value"] == pytest.approx(0.5)  # ideal = 4 workers
    assert got["speedup[cpu-w2-fork]"]["inputs"] == [
        "test_throughput[cpu-w0]",
        "test_throughput[cpu-w2-fork]",
    ]


def test_speedup_compares_like_batch_sizes():
    rows = [
        bench("throughput", Case("cpu", 0, batch_size=8), 2.0),
        bench("throughput", Case("cpu", 0), 1.0),
        bench("throughput", Case("cpu", 2, "fork", batch_size=8), 1.0),
    ]
    (speedup,) = [d for d in derived_json(rows) if d["kind"] == "speedup"]
    assert speedup["value"] == pytest.approx(2.0)


def test_startup_ratio_is_against_fork_at_the_same_workers():
    rows = [
        bench("startup", Case("cpu", 2, "fork"), 0.1),
        bench("startup", Case("cpu", 2, "spawn"), 2.0),
        bench("startup", Case("cpu", 0), 0.01),
    ]
    (ratio,) = derived_json(rows)
    assert ratio["name"] == "startup_ratio[cpu-w2-spawn]"
    assert ratio["value"] == pytest.approx(20.0)
    assert ratio["higher_is_better"] is False


def test_missing_reference_yields_no_ratio_rather_than_a_guess():
    rows = [
        bench("throughput", Case("cpu", 2, "fork"), 0.5),
        bench("startup", Case("cpu", 2, "spawn"), 2.0),
    ]
    assert derived_json(rows) == []
