"""The verdict every comparison ends in, side by side or against stored numbers.

Each row states a change with an interval and is one of:

- **regressed**: the interval lies entirely on the slower (worse) side of no change, the estimate
  is beyond the minimum effect, and the significance test agrees;
- **improved**: the mirror image (never fails a build);
- **unchanged**: the whole interval lies within plus or minus the minimum effect: the data rule
  out any change that large;
- **inconclusive**: none of these; the data cannot tell, and the note says how large a change the
  noise could hide. A row is never called unchanged when its interval admits a change beyond the
  minimum effect;
- **missing** / **new**: measured on one side only.

Times and ratios are judged as factors (1.10x = 10% slower), memory as a difference in MB. The
terminal table, verdict.md and verdict.json are presenting/verdict.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loaderbench.errors import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_REGRESSION

#: Table order: what needs attention first.
VERDICTS = ("regressed", "inconclusive", "improved", "missing", "new", "unchanged")
#: What a row's values are: seconds (lower is better), a ratio of two measurements (its
#: ``higher_is_better`` says which way is worse), or megabytes (lower is better).
KINDS = ("seconds", "ratio", "memory")


@dataclass
class Row:
    """One judged quantity. ``change`` is current/baseline for seconds and ratios, current minus
    baseline (MB) for memory; ``low``/``high`` bound it."""

    name: str
    kind: str = "seconds"
    baseline: float | None = None
    current: float | None = None
    change: float | None = None
    low: float | None = None
    high: float | None = None
    p: float | None = None
    verdict: str = "inconclusive"
    note: str = ""
    higher_is_better: bool = False
    #: Benchmarks this row is computed from (what a confirming rerun must run again).
    inputs: tuple[str, ...] = ()
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "baseline": self.baseline,
            "current": self.current,
            "change": self.change,
            "low": self.low,
            "high": self.high,
            "p": self.p,
            "verdict": self.verdict,
            "note": self.note,
            "higher_is_better": self.higher_is_better,
            "inputs": list(self.inputs),
            **self.detail,
        }


# --- the rule ---------------------------------------------------------------------------------------


def decide(
    worse: float, low: float, high: float, threshold: float, significant: bool = True
) -> str:
    """The verdict from an estimate and interval on a "worse by" scale (0 = no change, positive =
    worse) and the minimum effect on the same scale."""
    if low > 0 and worse > threshold and significant:
        return "regressed"
    if high < 0 and -worse > threshold and significant:
        return "improved"
    if low >= -threshold and high <= threshold:
        return "unchanged"
    return "inconclusive"


def judge_factor(
    row: Row, *, min_effect: float, significant: bool = True, why_not: str = ""
) -> Row:
    """Fill ``row.verdict`` and ``row.note`` from its factor ``change`` in [``low``, ``high``]
    (seconds, or a ratio in the direction ``higher_is_better`` says). ``why_not``: what would
    settle the row, said when it stays inconclusive."""
    if row.change is None or row.low is None or row.high is None:
        raise ValueError(f"{row.name}: a factor is judged from its change and interval")
    flip = -1.0 if row.higher_is_better else 1.0
    low, high = sorted(flip * math.log(v) for v in (row.low, row.high))
    words = ("worse", "better") if row.higher_is_better else ("slower", "faster")

    def moved(log_worse: float) -> str:
        if abs(log_worse) < 5e-4:
            return "no change"
        return f"{math.expm1(abs(log_worse)):.1%} {words[0] if log_worse > 0 else words[1]}"

    return _judge(
        row,
        flip * math.log(row.change),
        low,
        high,
        math.log1p(min_effect),
        significant,
        moved,
        f"{min_effect:.0%}",
        why_not,
    )


def judge_difference(row: Row, *, min_mb: float) -> Row:
    """Fill ``row.verdict`` and ``row.note`` from a memory difference (MB) in [``low``, ``high``]."""

    def moved(mb: float) -> str:
        return (
            "no change" if abs(mb) < 0.05 else f"{abs(mb):,.1f} MB {'more' if mb > 0 else 'less'}"
        )

    if row.change is None or row.low is None or row.high is None:
        raise ValueError(f"{row.name}: a difference is judged from its change and interval")
    return _judge(row, row.change, row.low, row.high, min_mb, True, moved, f"{min_mb:g} MB", "")


def _judge(
    row: Row,
    worse: float,
    low: float,
    high: float,
    threshold: float,
    significant: bool,
    moved,
    minimum: str,
    why_not: str,
) -> Row:
    """The verdict and its note, on a "worse by" scale that ``moved`` puts into words."""
    row.verdict = decide(worse, low, high, threshold, significant)
    if row.verdict in ("regressed", "improved"):
        row.note = f"{moved(worse)}, beyond the minimum effect {minimum}"
    elif row.verdict == "unchanged":
        row.note = f"{moved(worse)}; the interval rules out more than {minimum} either way"
    else:
        row.note = (
            f"cannot tell: {moved(worse)}, the interval admits anything from "
            f"{moved(low)} to {moved(high)}"
        )
        if why_not:
            row.note += f" ({why_not})"
    return row


def not_judged(row: Row, why: str) -> Row:
    """A row the data cannot judge at all: inconclusive, saying why."""
    row.verdict, row.note = "inconclusive", f"not judged: {why}"
    return row


# --- the verdict ------------------------------------------------------------------------------------


@dataclass
class Verdict:
    rows: list[Row]
    #: Lines that must be seen before the table (different torch, another machine, ...).
    header: list[str] = field(default_factory=list)
    #: How the rows were judged, one sentence (the rule, the interval, the thresholds' source).
    rule: str = ""
    #: What was judged (stored_numbers.ONLY_CHOICES), for the stored-numbers verdict.
    only: str = "all"
    #: How many rows were judged each way (stored numbers, side by side, not reached), when a
    #: verdict mixes them (paired/settle.py); shown in its first line.
    judged: str = ""

    @property
    def regressed(self) -> bool:
        return any(row.verdict == "regressed" for row in self.rows)

    @property
    def inconclusive(self) -> bool:
        return any(row.verdict == "inconclusive" for row in self.rows)

    def exit_code(self, strict: bool = False) -> int:
        """1 on a regression; with ``strict``, 3 when rows are inconclusive; else 0."""
        if self.regressed:
            return EXIT_REGRESSION
        return EXIT_INCONCLUSIVE if strict and self.inconclusive else EXIT_OK

    def counts(self) -> dict[str, int]:
        return {v: sum(row.verdict == v for row in self.rows) for v in VERDICTS}

    def summary(self) -> str:
        """Regressed and inconclusive counts first: what the reader must act on."""
        counts = ", ".join(f"{n} {v}" for v, n in self.counts().items())
        judged = f"; {self.judged}" if self.judged else ""
        return f"{counts}{judged}" + (f" ({self.rule})" if self.rule else "")

    def result(self) -> str:
        if self.regressed:
            return "REGRESSED"
        return "no regression" + (", some rows inconclusive" if self.inconclusive else "")

    def ordered_rows(self) -> list[Row]:
        return sorted(self.rows, key=lambda row: VERDICTS.index(row.verdict))

    def as_dict(self) -> dict:
        return {
            "result": self.result(),
            "counts": self.counts(),
            "rule": self.rule,
            "header": list(self.header),
            "only": self.only,
            "judged": self.judged,
            "rows": [row.as_dict() for row in self.ordered_rows()],
        }
