"""The statistics behind every verdict: an estimate of the change with an interval around it.

Side by side (``paired``): B's round and A's round of one pair were taken at the same time, so
their ratio cancels whatever the machine was doing then. Pairs come in *blocks*, one per pair of
side processes, and each pair of processes carries a bias of a few percent of its own (measured on
the 2-core reference machine: A against A gave 1.021, 0.969 and 0.998 in three fresh pairs of
processes), so the pairs of one block are not independent draws and pooling them would claim a
precision the processes do not have. Each block therefore gives one estimate, the median of its
per-pair ratios B/A, and the interval is Student's t over the blocks' estimates (log scale), with
as many degrees of freedom as blocks less one: few blocks give a wide interval, as they should.
Significance is scipy's Wilcoxon signed-rank test of every pair's log ratio.

Against stored numbers (``prediction``): a baseline keeps the median of each of its runs (each a
separate process, possibly hours apart). A new, unchanged run is one more draw from the same
spread, so the change that the current value allows is a prediction interval: Student's t over
the baseline's run values (on a log scale for times and ratios), widened for the new draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedEstimate:
    """The ratio B/A from blocks of pairs: the geometric mean of the blocks' median ratios, its
    interval (None bounds with a single block), and the signed-rank p of every pair."""

    ratio: float
    low: float | None
    high: float | None
    p_slower: float  # one-sided: B takes longer than A
    p_faster: float  # one-sided: B takes less time than A
    pairs: int
    blocks: int
    block_ratios: tuple[float, ...]  # each block's own median ratio (the process-pair biases)


def paired(
    blocks: Sequence[Sequence[tuple[float, float]]], *, alpha: float = 0.05
) -> PairedEstimate:
    """The estimate of B/A from ``blocks`` of (a_seconds, b_seconds) pairs."""
    from scipy import stats  # imported here: 1 s, and reading results needs none

    kept = [np.asarray(block, dtype=float).reshape(-1, 2) for block in blocks if len(block)]
    if not kept:
        raise ValueError("no pairs to estimate from")
    if not all(np.all(np.isfinite(block)) and np.all(block > 0) for block in kept):
        raise ValueError("every round must take a positive, finite time")
    logs = [np.log(block[:, 1] / block[:, 0]) for block in kept]
    pooled = np.concatenate(logs)
    per_block = np.array([np.median(block) for block in logs])
    centre = float(per_block.mean())
    low = high = None
    if len(per_block) >= 2:
        half = float(
            stats.t.ppf(1 - alpha / 2, len(per_block) - 1)
            * per_block.std(ddof=1)
            / math.sqrt(len(per_block))
        )
        low, high = math.exp(centre - half), math.exp(centre + half)
    return PairedEstimate(
        ratio=math.exp(centre),
        low=low,
        high=high,
        p_slower=_signed_rank_p(pooled, "greater"),
        p_faster=_signed_rank_p(pooled, "less"),
        pairs=len(pooled),
        blocks=len(logs),
        block_ratios=tuple(float(np.exp(b)) for b in per_block),
    )


def _signed_rank_p(log_ratios: np.ndarray, alternative: str) -> float:
    from scipy import stats  # imported here: 1 s, and reading results needs none

    if len(log_ratios) < 2 or not np.any(log_ratios):
        return 1.0
    p = stats.wilcoxon(log_ratios, alternative=alternative).pvalue
    return 1.0 if math.isnan(p) else float(p)


@dataclass(frozen=True)
class Prediction:
    """The current value against the baseline's runs: the centre of the runs, the change (a
    factor, or a difference on the linear scale) and its interval."""

    centre: float
    change: float
    low: float
    high: float
    runs: int


def prediction(
    run_values: Sequence[float], current: float, *, alpha: float = 0.01, log: bool = True
) -> Prediction | None:
    """The change from the baseline's runs to ``current`` with a (1 - ``alpha``) prediction
    interval; None with fewer than two run values (one run cannot show how far runs move).

    ``log``: factors (times, ratios; every value must be > 0); else differences (memory).
    """
    from scipy import stats  # imported here: 1 s, and reading results needs none

    values = [v for v in run_values if v is not None and math.isfinite(v)]
    if len(values) < 2 or not math.isfinite(current):
        return None
    if log:
        if min(values) <= 0 or current <= 0:
            return None
        values, current = [math.log(v) for v in values], math.log(current)
    n = len(values)
    centre = float(np.mean(values))
    spread = float(np.std(values, ddof=1))
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * spread * math.sqrt(1 + 1 / n)
    change = current - centre
    if log:
        return Prediction(
            math.exp(centre), math.exp(change), math.exp(change - half), math.exp(change + half), n
        )
    return Prediction(centre, change, change - half, change + half, n)
