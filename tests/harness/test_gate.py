"""The verdict against stored numbers, on synthetic runs: its false-alarm rate, what it calls
regressed, that it never calls unchanged what the interval cannot clear, ratios in their
direction, memory in MB, missing and new rows."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_results import CPU_W0, CPU_W2, JITTER, judged, memory_bench, merged, results, scaled

from loaderbench.grid import Case
from loaderbench.judging.derived import per_round
from loaderbench.judging.thresholds import Rule, Thresholds
from loaderbench.presenting import verdict as shown
from loaderbench.results import Derived


def rows_by_name(verdict) -> dict:
    return {row.name: row for row in verdict.rows}


def baseline_of(*runs: dict) -> dict:
    return merged(list(runs))


def runs_at(*factors: float) -> dict:
    """A baseline of one run per factor: cpu-w0 at the factor, cpu-w2 half as long."""
    return baseline_of(
        *[results({CPU_W0: scaled(JITTER, f), CPU_W2: scaled(JITTER, f / 2)}) for f in factors]
    )


TRIALS = 200
# Under no change a row is called regressed only when its 99% prediction interval misses 1 on
# the slow side (at most 0.5%, less still with the minimum effect): 1 of 200 expected; 6 or more
# happens with probability below 1e-3.
MAX_FALSE_ALARMS = 5


@settings(max_examples=max(3, settings.default.max_examples // 4), deadline=None)
@given(spread=st.floats(0.005, 0.6), seed=st.integers(0, 2**32 - 1))
def test_an_unchanged_run_is_called_regressed_no_more_often_than_alpha(spread, seed):
    """Ten baseline runs and one current run drawn from one spread of run medians."""
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(TRIALS):
        factors = rng.lognormal(0.0, spread, 11)
        verdict = judged(
            baseline_of(*[results({CPU_W0: scaled(JITTER, f)}) for f in factors[:10]]),
            results({CPU_W0: scaled(JITTER, factors[10])}),
        )
        alarms += verdict.regressed
    assert alarms <= MAX_FALSE_ALARMS, f"{alarms} of {TRIALS} unchanged runs called regressed"


@settings(max_examples=max(10, settings.default.max_examples // 2), deadline=None)
@given(
    factors=st.lists(st.floats(0.3, 3.0), min_size=2, max_size=12),
    current=st.floats(0.2, 5.0),
    min_effect=st.floats(0.0, 0.3),
)
def test_no_row_is_called_unchanged_whose_interval_admits_a_change_beyond_the_minimum_effect(
    factors, current, min_effect
):
    verdict = judged(
        runs_at(*factors),
        results({CPU_W0: scaled(JITTER, current), CPU_W2: scaled(JITTER, current / 2)}),
        Thresholds(Rule(min_effect=min_effect)),
    )
    bound = 1 + min_effect
    for row in verdict.rows:
        if row.verdict == "unchanged":
            assert 1 / bound <= row.low and row.high <= bound, row
        if row.verdict == "regressed":
            worse = (lambda v: 1 / v) if row.higher_is_better else (lambda v: v)
            assert min(worse(row.low), worse(row.high)) > 1 and worse(row.change) > bound, row


def entry(fields: dict) -> Derived:
    return Derived(
        name="d",
        case="c",
        value=1.0,
        higher_is_better=True,
        **{**fields, "inputs": tuple(fields["inputs"])},
    )


def test_a_slowdown_beyond_what_the_runs_showed_is_regressed():
    verdict = judged(
        runs_at(1.0, 1.01, 0.99, 1.005),
        results({CPU_W0: scaled(JITTER, 1.2), CPU_W2: scaled(JITTER, 0.6)}),
    )
    rows = rows_by_name(verdict)
    assert rows["test_throughput[cpu-w0]"].verdict == "regressed"
    assert rows["test_throughput[cpu-w2-fork]"].verdict == "regressed"
    assert rows["speedup[cpu-w2-fork]"].verdict == "unchanged"  # both 1.2x slower
    assert shown.text(verdict).startswith("REGRESSED: 2 regressed, 0 inconclusive")


def test_runs_far_apart_make_a_row_inconclusive_not_unchanged():
    """Baseline runs 40% apart: a 30% slower run is not evidence, and no proof of no change."""
    (row, *_) = judged(runs_at(1.0, 1.4, 1.2), results({CPU_W0: scaled(JITTER, 1.56)})).rows
    assert row.verdict == "inconclusive" and row.note.startswith("cannot tell"), row
    assert row.low < 1 < 1.3 < row.high


def test_a_lost_speedup_is_a_regression_even_on_a_uniformly_faster_machine():
    """Every benchmark got faster, but workers now help less: the ratio says so."""
    current = results({CPU_W0: scaled(JITTER, 0.5), CPU_W2: scaled(JITTER, 0.4)})
    rows = rows_by_name(judged(runs_at(1.0, 1.02, 0.99, 1.01), current))
    assert rows["speedup[cpu-w2-fork]"].verdict == "regressed"
    assert rows["efficiency[cpu-w2-fork]"].verdict == "regressed"
    assert rows["test_throughput[cpu-w0]"].verdict == "improved"
    assert rows["test_throughput[cpu-w2-fork]"].verdict == "improved"


def test_a_uniformly_slower_machine_fails_on_seconds_but_not_on_ratios():
    current = results({CPU_W0: scaled(JITTER, 1.6), CPU_W2: scaled(JITTER, 0.8)})
    assert judged(runs_at(1.0, 1.05, 0.97), current).regressed
    only_ratios = judged(runs_at(1.0, 1.05, 0.97), current, only="derived")
    assert {row.kind for row in only_ratios.rows} == {"ratio"}
    assert {row.verdict for row in only_ratios.rows} == {"unchanged"}


def test_a_baseline_of_one_run_judges_nothing_and_says_why():
    verdict = judged(results({CPU_W0: JITTER}), results({CPU_W0: scaled(JITTER, 3.0)}))
    (row,) = verdict.rows
    assert row.verdict == "inconclusive" and "records one run" in row.note
    assert any("records one run" in line for line in verdict.header)
    assert verdict.exit_code() == 0 and verdict.exit_code(strict=True) == 3


def test_memory_is_judged_in_megabytes_and_its_epoch_times_are_not():
    case = Case("pyobj", 2, "fork")
    baseline = baseline_of(
        *[results({}, memory=[memory_bench(case, 300 + d, 100 + d)]) for d in (0.0, 1.5, -1.0, 0.5)]
    )
    grown = rows_by_name(judged(baseline, results({}, memory=[memory_bench(case, 402, 150)])))
    name = "test_memory[pyobj-w2-fork]"
    assert set(grown) == {f"{name}.peak_anon_pss_mb", f"{name}.anon_pss_per_worker_mb"}
    assert grown[f"{name}.anon_pss_per_worker_mb"].verdict == "regressed"
    assert math.isclose(grown[f"{name}.anon_pss_per_worker_mb"].change, 150 - 100.25)
    assert "MB more" in grown[f"{name}.peak_anon_pss_mb"].note
    same = rows_by_name(judged(baseline, results({}, memory=[memory_bench(case, 301, 100.5)])))
    assert {row.verdict for row in same.values()} == {"unchanged"}
    serial = judged(
        baseline_of(*[results({}, memory=[memory_bench(CPU_W0, 250)])] * 2),
        results({}, memory=[memory_bench(CPU_W0, 250)]),
    )
    assert [row.name for row in serial.rows] == ["test_memory[cpu-w0].peak_anon_pss_mb"]


def test_missing_benchmarks_are_reported_and_new_ones_named():
    baseline = runs_at(1.0, 1.0)
    rows = rows_by_name(judged(baseline, results({CPU_W0: JITTER, Case("io", 0): JITTER})))
    assert rows["test_throughput[cpu-w2-fork]"].verdict == "missing"
    assert rows["speedup[cpu-w2-fork]"].verdict == "missing"
    assert rows["test_throughput[io-w0]"].verdict == "new"
    assert rows["test_throughput[cpu-w0]"].verdict == "unchanged"


def test_a_different_torch_and_python_are_shown_prominently_not_refused():
    baseline = baseline_of(*[results({CPU_W0: JITTER})] * 2)
    current = results({CPU_W0: JITTER}, torch="2.14.1", python="3.12.1", cost_scale=1.25)
    verdict = judged(baseline, current)
    assert "candidate torch 2.14.1 vs baseline torch 2.13.0" in verdict.header
    assert "candidate Python 3.12.1 vs baseline Python 3.11.7" in verdict.header
    assert "candidate cost scale 1.25 vs baseline cost scale 1.0" in verdict.header
    markdown = shown.markdown(verdict)
    assert "**candidate torch 2.14.1 vs baseline torch 2.13.0**" in markdown
    assert "| test_throughput[cpu-w0] |" in markdown


def test_group_overrides_apply_to_their_groups_only():
    """A 30% slowdown: regressed under the default, unchanged where the group allows 50%."""
    baseline = runs_at(1.0, 1.01, 0.99)
    current = results({CPU_W0: scaled(JITTER, 1.3), CPU_W2: scaled(JITTER, 0.65)})
    loose = Thresholds(Rule(), groups={"throughput": Rule(min_effect=0.5)})
    other = Thresholds(Rule(), groups={"throughput-io": Rule(min_effect=0.5)})
    assert (
        rows_by_name(judged(baseline, current, loose))["test_throughput[cpu-w0]"].verdict
        == "unchanged"
    )
    assert (
        rows_by_name(judged(baseline, current, other))["test_throughput[cpu-w0]"].verdict
        == "regressed"
    )


def test_derived_ratios_have_one_value_per_round_paired_by_index():
    rounds = {
        "w0": [1.0, 2.0, 3.0],
        "w2": [0.5, 0.5, 1.5, 9.0],
        "fork": [0.1, 0.2],
        "spawn": [1.0, 1.0],
    }
    assert per_round(entry({"kind": "speedup", "inputs": ["w0", "w2"]}), rounds) == [2.0, 4.0, 2.0]
    assert per_round(entry({"kind": "efficiency", "inputs": ["w0", "w2"], "ideal": 2}), rounds) == [
        1.0,
        2.0,
        1.0,
    ]
    assert per_round(entry({"kind": "startup_ratio", "inputs": ["fork", "spawn"]}), rounds) == [
        10.0,
        5.0,
    ]
    assert per_round(entry({"kind": "speedup", "inputs": ["w0", "absent"]}), rounds) is None
    assert per_round(entry({"kind": "no_such_kind", "inputs": ["w0", "w2"]}), rounds) is None
