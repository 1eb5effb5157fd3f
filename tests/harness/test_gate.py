"""The verdict on synthetic samples: error rate, power, direction, noise band, missing and new."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from loaderbench.baseline import merge_runs
from loaderbench.derived import per_round
from loaderbench.gate import judge
from loaderbench.grid import Case
from loaderbench.thresholds import Rule, Thresholds

from synthetic_results import CPU_W0, CPU_W2, JITTER, results, scaled

PURE_TEST = Thresholds(Rule(min_effect=0.0, alpha=0.01))  # only the rank test decides


def rows_by_name(verdict) -> dict[str, dict]:
    return {row["benchmark"]: row for row in verdict.rows}


def baseline_of(*runs: dict) -> dict:
    return merge_runs(list(runs))


@st.composite
def distributions(draw):
    """(sampler, description): a positive timing distribution of some shape and spread."""
    family = draw(st.sampled_from(["lognormal", "normal", "shifted-exponential", "uniform"]))
    scale = draw(st.floats(1e-4, 10.0))
    spread = draw(st.floats(0.005, 0.5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shapes = {
        "lognormal": lambda n: rng.lognormal(0.0, spread, n),
        "normal": lambda n: np.clip(1 + spread * rng.standard_normal(n), 1e-3, None),
        "shifted-exponential": lambda n: 1 + spread * rng.exponential(1.0, n),
        "uniform": lambda n: 1 + spread * rng.random(n),
    }
    return (lambda n: list(scale * shapes[family](n))), f"{family} x{scale:.3g} spread {spread:.3g}"


TRIALS = 150
# With p < 0.01 a valid test flags about 1.5 of 150 identical pairs; 9 or more happens with
# probability below 1e-4, so a count above 8 means the test is not holding its error rate.
MAX_FALSE_FLAGS = 8


@settings(max_examples=max(3, settings.default.max_examples // 4))
@given(distributions())
def test_identical_distributions_are_flagged_no_more_often_than_alpha(distribution):
    """Baseline (3 runs x 5 rounds pooled) and current (5 rounds) drawn from one distribution:
    the rank test alone flags a difference at most at rate alpha, in either direction."""
    draw, described = distribution
    flagged = {"regressed": 0, "improved": 0}
    for _ in range(TRIALS):
        verdict = judge(results({CPU_W0: draw(15)}), results({CPU_W0: draw(5)}), PURE_TEST)
        (row,) = verdict.rows
        if row["verdict"] in flagged:
            flagged[row["verdict"]] += 1
    assert max(flagged.values()) <= MAX_FALSE_FLAGS, f"{described}: {flagged} of {TRIALS}"


@given(base=st.floats(1e-3, 10.0), noise=st.floats(0.0, 0.05),
       offsets=st.lists(st.floats(1.0, 1.3), min_size=3, max_size=3),
       min_effect=st.sampled_from([0.05, 0.10, 0.20]), seed=st.integers(0, 2**32 - 1))
def test_a_slowdown_beyond_band_and_minimum_effect_is_flagged(base, noise, offsets, min_effect, seed):
    """Baseline runs that drift between processes (the band), then a candidate slower than the
    widest the band allows: flagged as regressed, whatever the scale."""
    rng = np.random.default_rng(seed)
    runs = [results({CPU_W0: list(base * off * (1 + noise * rng.uniform(-1, 1, 5)))})
            for off in offsets]
    widest_band = max(offsets) * (1 + noise) / (min(offsets) * (1 - noise)) - 1
    slower = base * max(offsets) * (1 + noise) * (1 + max(min_effect, widest_band)) * 1.05
    current = results({CPU_W0: list(slower * (1 + noise * rng.uniform(0, 1, 5)))})
    verdict = judge(baseline_of(*runs), current, Thresholds(Rule(min_effect, 0.01)))
    (row,) = verdict.rows
    assert row["verdict"] == "regressed", row
    assert verdict.regressed


@given(runs=st.lists(st.lists(st.floats(1e-3, 10.0), min_size=1, max_size=8), min_size=2,
                     max_size=4),
       faster=st.floats(0.01, 1.0), min_effect=st.sampled_from([1e-9, 0.1]))
def test_a_uniformly_faster_candidate_never_fails(runs, faster, min_effect):
    """Every round of the candidate is a baseline round made faster: never a regression, neither
    for the seconds nor for the ratios (which a uniform change leaves alone, up to float rounding:
    hence a minimum effect above zero)."""
    baseline = baseline_of(*[results({CPU_W0: r, CPU_W2: scaled(r, 0.6)}) for r in runs])
    pooled = [value for r in runs for value in r]
    current = results({CPU_W0: scaled(pooled, faster), CPU_W2: scaled(pooled, 0.6 * faster)})
    verdict = judge(baseline, current, Thresholds(Rule(min_effect, 0.01)))
    assert not verdict.regressed, [r for r in verdict.rows if r["verdict"] == "regressed"]
    assert {row["verdict"] for row in verdict.rows} <= {"improved", "unchanged"}


def test_a_lost_speedup_is_a_regression_even_on_a_uniformly_faster_machine():
    """Every benchmark got faster, but workers now help less: the ratio says so."""
    runs = [results({CPU_W0: scaled(JITTER, 1.0 * s), CPU_W2: scaled(JITTER, 0.5 * s)})
            for s in (1.0, 1.05, 0.97)]
    # The machine is twice as fast, but w2 only 1.25x faster than w0 instead of 2x.
    current = results({CPU_W0: scaled(JITTER, 0.5), CPU_W2: scaled(JITTER, 0.4)})
    rows = rows_by_name(judge(baseline_of(*runs), current))
    assert rows["speedup[cpu-w2-fork]"]["verdict"] == "regressed"
    assert rows["efficiency[cpu-w2-fork]"]["verdict"] == "regressed"
    assert rows["test_throughput[cpu-w0]"]["verdict"] == "improved"
    assert rows["test_throughput[cpu-w2-fork]"]["verdict"] == "improved"


def test_a_uniformly_slower_machine_fails_on_seconds_but_not_on_ratios():
    """A machine 1.6x slower everywhere: the seconds regress, the ratios travel unchanged."""
    runs = [results({CPU_W0: scaled(JITTER, s), CPU_W2: scaled(JITTER, 0.5 * s)})
            for s in (1.0, 1.05, 0.97)]
    current = results({CPU_W0: scaled(JITTER, 1.6), CPU_W2: scaled(JITTER, 0.8)})
    assert judge(baseline_of(*runs), current).regressed
    only_ratios = judge(baseline_of(*runs), current, only="derived")
    assert {row["kind"] for row in only_ratios.rows} == {"derived"}
    assert not only_ratios.regressed
    assert {row["verdict"] for row in only_ratios.rows} == {"unchanged"}


def test_a_significant_shift_below_the_minimum_effect_is_unchanged():
    """5% slower in every round (p tiny) is below the 10% minimum effect."""
    baseline = baseline_of(*[results({CPU_W0: JITTER}) for _ in range(3)])
    (row,) = judge(baseline, results({CPU_W0: scaled(JITTER, 1.05)})).rows
    assert row["verdict"] == "unchanged" and "minimum effect" in row["note"], row
    (strict,) = judge(baseline, results({CPU_W0: scaled(JITTER, 1.05)}),
                      Thresholds(Rule(min_effect=0.02))).rows
    assert strict["verdict"] == "regressed", strict


def test_a_shift_within_the_noise_band_is_unchanged():
    """Baseline runs 40% apart: a 30% slower candidate is within what the baseline itself showed."""
    baseline = baseline_of(*[results({CPU_W0: scaled(JITTER, s)}) for s in (1.0, 1.4, 1.2)])
    (row,) = judge(baseline, results({CPU_W0: scaled(JITTER, 1.2 * 1.3)})).rows
    assert abs(row["band"] - 0.4) < 1e-9
    assert row["verdict"] == "unchanged" and "noise band" in row["note"], row
    (beyond,) = judge(baseline, results({CPU_W0: scaled(JITTER, 1.2 * 1.6)})).rows
    assert beyond["verdict"] == "regressed", beyond


def test_one_slow_round_is_not_enough_evidence():
    """A single current round cannot reach p < 0.01 against 15 (its smallest p is 1/16)."""
    baseline = baseline_of(*[results({CPU_W0: scaled(JITTER, s)}) for s in (1.0, 1.001, 0.999)])
    (row,) = judge(baseline, results({CPU_W0: [3.0]})).rows
    assert row["verdict"] == "unchanged" and "chance" in row["note"], row
    assert abs(row["p"] - 1 / 16) < 1e-9


def test_missing_benchmarks_are_reported_and_new_ones_named():
    baseline = baseline_of(*[results({CPU_W0: JITTER, CPU_W2: scaled(JITTER, 0.5)})] * 2)
    current = results({CPU_W0: JITTER, Case("io", 0): JITTER})
    rows = rows_by_name(judge(baseline, current))
    assert rows["test_throughput[cpu-w2-fork]"]["verdict"] == "missing"
    assert rows["speedup[cpu-w2-fork]"]["verdict"] == "missing"
    assert rows["test_throughput[io-w0]"]["verdict"] == "new"
    assert rows["test_throughput[cpu-w0]"]["verdict"] == "unchanged"
    assert not judge(baseline, current).regressed


def test_a_different_torch_and_python_are_shown_prominently_not_refused():
    baseline = baseline_of(*[results({CPU_W0: JITTER})] * 2)
    current = results({CPU_W0: JITTER}, torch="2.14.1", python="3.12.1", cost_scale=1.25)
    verdict = judge(baseline, current)
    assert "candidate torch 2.14.1 vs baseline torch 2.13.0" in verdict.header
    assert "candidate Python 3.12.1 vs baseline Python 3.11.7" in verdict.header
    assert "candidate cost scale 1.25 vs baseline cost scale 1.0" in verdict.header
    markdown = verdict.to_markdown()
    assert "**candidate torch 2.14.1 vs baseline torch 2.13.0**" in markdown
    assert "| test_throughput[cpu-w0] |" in markdown


def test_group_overrides_apply_to_their_groups_only():
    """A 30% slowdown: regressed under the default, unchanged where the group allows 50%."""
    baseline = baseline_of(*[results({CPU_W0: JITTER})] * 3)
    current = results({CPU_W0: scaled(JITTER, 1.3)})
    loose = Thresholds(Rule(), groups={"throughput": Rule(min_effect=0.5)})
    other = Thresholds(Rule(), groups={"throughput-io": Rule(min_effect=0.5)})
    assert judge(baseline, current, loose).rows[0]["verdict"] == "unchanged"
    assert judge(baseline, current, other).rows[0]["verdict"] == "regressed"


def test_derived_ratios_have_one_value_per_round_paired_by_index():
    rounds = {"w0": [1.0, 2.0, 3.0], "w2": [0.5, 0.5, 1.5, 9.0], "fork": [0.1, 0.2],
              "spawn": [1.0, 1.0]}
    assert per_round({"kind": "speedup", "inputs": ["w0", "w2"]}, rounds) == [2.0, 4.0, 2.0]
    assert per_round({"kind": "efficiency", "inputs": ["w0", "w2"], "ideal": 2},
                     rounds) == [1.0, 2.0, 1.0]
    assert per_round({"kind": "startup_ratio", "inputs": ["fork", "spawn"]}, rounds) == [10.0, 5.0]
    assert per_round({"kind": "speedup", "inputs": ["w0", "absent"]}, rounds) is None
    assert per_round({"kind": "no_such_kind", "inputs": ["w0", "w2"]}, rounds) is None
