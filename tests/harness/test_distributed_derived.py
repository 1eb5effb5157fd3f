"""The world_speedup ratio derived from distributed benchmarks (loaderbench/judging/derived.py)."""

from synthetic_results import derived_json

from loaderbench.grid import Case
from loaderbench.judging.derived import per_round
from loaderbench.results import DISTRIBUTED, Derived


def distributed_bench(world_size: int, median: float, case: Case = Case("cpu", 0)) -> dict:
    return {
        "name": f"test_distributed_throughput[ws{world_size}]",
        "stats": {"median": median},
        "extra_info": {"measure": DISTRIBUTED, "case": case.as_dict(), "world_size": world_size},
    }


def test_world_speedup_is_one_rank_over_n_ranks_for_the_same_case():
    benches = [
        distributed_bench(1, 0.8),
        distributed_bench(2, 0.5),
        distributed_bench(2, 0.1, Case("noop", 0)),
    ]  # no world size 1 to compare with
    derived = [d for d in derived_json(benches) if d["kind"] == "world_speedup"]
    assert [(d["name"], d["value"], d["world_size"]) for d in derived] == [
        ("world_speedup[cpu-w0-ws2]", 0.8 / 0.5, 2)
    ]
    assert derived[0]["higher_is_better"] is True
    assert derived[0]["inputs"] == [
        "test_distributed_throughput[ws1]",
        "test_distributed_throughput[ws2]",
    ]


def test_world_speedup_per_round_pairs_the_inputs_rounds():
    entry = [
        d
        for d in derived_json([distributed_bench(1, 0.8), distributed_bench(2, 0.5)])
        if d["kind"] == "world_speedup"
    ][0]
    rounds = {
        "test_distributed_throughput[ws1]": [0.8, 0.9],
        "test_distributed_throughput[ws2]": [0.4, 0.6],
    }
    assert per_round(Derived.from_json(entry), rounds) == [0.8 / 0.4, 0.9 / 0.6]
