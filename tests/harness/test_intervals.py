"""The statistics behind the verdicts (intervals.py) and the verdict's rule (verdict.py), on
synthetic pairs and runs: estimates, intervals that widen with few blocks and cover the truth,
the signed-rank p, prediction intervals, and the labels the rule may give."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loaderbench.judging.intervals import paired, prediction
from loaderbench.judging.verdict import Row, Verdict, decide, judge_difference, judge_factor
from loaderbench.presenting import verdict as shown


def blocks_of(rng, ratio, blocks, pairs, noise, bias):
    """``blocks`` of ``pairs`` (a, b) rounds: b = a x ratio x the block's bias x round noise."""
    out = []
    for _ in range(blocks):
        block_bias = math.exp(rng.normal(0, bias))
        a = rng.lognormal(0, 0.2, pairs)  # the machine's speed moves; the pair cancels it
        out.append(list(zip(a, a * ratio * block_bias * rng.lognormal(0, noise, pairs))))
    return out


def test_the_estimate_is_the_ratio_and_identical_blocks_give_a_point():
    estimate = paired([[(1.0, 1.1), (2.0, 2.2)], [(0.5, 0.55)]])
    assert estimate.ratio == pytest.approx(1.1)
    assert estimate.low == pytest.approx(1.1) and estimate.high == pytest.approx(1.1)
    assert (estimate.pairs, estimate.blocks) == (3, 2)


def test_one_block_has_no_interval():
    estimate = paired([[(1.0, 1.2), (1.0, 1.1), (1.0, 1.3)]])
    assert estimate.low is None and estimate.high is None


def test_fewer_blocks_give_a_wider_interval_for_the_same_spread():
    rng = np.random.default_rng(1)
    pairs = blocks_of(rng, 1.0, 12, 20, noise=0.05, bias=0.03)
    few, many = paired(pairs[:3]), paired(pairs)
    assert few.high / few.low > many.high / many.low


def test_the_interval_covers_the_true_ratio_about_as_often_as_it_promises():
    """Biases of the process pairs included: 95% intervals over 6 blocks cover 1.1 in about 95%
    of 300 comparisons (fewer than 90% would mean the blocks are treated as more alike than
    they are)."""
    rng = np.random.default_rng(7)
    covered = sum(
        e.low <= 1.1 <= e.high
        for e in (paired(blocks_of(rng, 1.1, 6, 15, noise=0.05, bias=0.03)) for _ in range(300))
    )
    assert 0.90 <= covered / 300 <= 0.99


def test_the_signed_rank_p_follows_the_direction_of_the_pairs():
    slower = paired([[(1.0, 1.1 + i / 100) for i in range(10)]] * 2)
    assert slower.p_slower < 0.01 < 0.99 < slower.p_faster
    same = paired([[(1.0, 1.0)] * 5] * 2)
    assert same.p_slower == same.p_faster == 1.0


def test_rounds_must_take_time():
    with pytest.raises(ValueError, match="positive, finite"):
        paired([[(1.0, 0.0)]])
    with pytest.raises(ValueError, match="no pairs"):
        paired([[], []])


def test_a_prediction_interval_is_centred_on_the_runs_and_widens_with_their_spread():
    tight = prediction([1.0, 1.01, 0.99, 1.0], 1.0)
    wide = prediction([1.0, 1.3, 0.8, 1.1], 1.0)
    assert tight.change == pytest.approx(1.0, abs=1e-3)
    assert tight.low < 1 < tight.high and wide.high / wide.low > tight.high / tight.low
    assert prediction([1.0], 2.0) is None  # one run shows no spread
    memory = prediction([100.0, 102.0, 101.0], 150.0, log=False)
    assert memory.change == pytest.approx(49.0) and memory.low < 49 < memory.high


@given(
    worse=st.floats(-1, 1),
    width=st.floats(0, 1),
    skew=st.floats(-1, 1),
    threshold=st.floats(0, 0.5),
    significant=st.booleans(),
)
def test_the_rule_never_calls_unchanged_an_interval_that_reaches_beyond_the_minimum_effect(
    worse, width, skew, threshold, significant
):
    low, high = worse - width * (1 + skew) / 2, worse + width * (1 - skew) / 2
    verdict = decide(worse, low, high, threshold, significant)
    if verdict == "unchanged":
        assert -threshold <= low and high <= threshold
    if verdict == "regressed":
        assert low > 0 and worse > threshold and significant
    if verdict == "improved":
        assert high < 0 and -worse > threshold and significant


def test_a_factor_row_says_how_much_the_noise_could_hide():
    row = judge_factor(Row("x", change=1.02, low=0.93, high=1.12), min_effect=0.05)
    assert row.verdict == "inconclusive"
    assert row.note == (
        "cannot tell: 2.0% slower, the interval admits anything from 7.5% faster to 12.0% slower"
    )
    ratio = judge_factor(
        Row("s", "ratio", change=0.8, low=0.75, high=0.85, higher_is_better=True), min_effect=0.05
    )
    assert ratio.verdict == "regressed" and ratio.note.startswith("25.0% worse")


def test_a_memory_row_is_judged_in_megabytes():
    row = judge_difference(Row("m", "memory", change=48.0, low=40.0, high=56.0), min_mb=10)
    assert row.verdict == "regressed" and row.note.startswith("48.0 MB more")
    quiet = judge_difference(Row("m", "memory", change=2.0, low=-3.0, high=7.0), min_mb=10)
    assert quiet.verdict == "unchanged"


def test_the_first_line_counts_regressed_and_inconclusive_rows_first_and_strict_exits_3():
    rows = [
        Row("a", verdict="unchanged"),
        Row("b", verdict="inconclusive"),
        Row("c", verdict="inconclusive"),
    ]
    verdict = Verdict(rows, rule="the rule")
    first = shown.text(verdict).splitlines()[0]
    assert first.startswith("no regression, some rows inconclusive: 0 regressed, 2 inconclusive")
    assert verdict.exit_code() == 0 and verdict.exit_code(strict=True) == 3
    rows.append(Row("d", verdict="regressed"))
    assert verdict.exit_code(strict=True) == 1
    assert [r.name for r in verdict.ordered_rows()][:3] == ["d", "b", "c"]
