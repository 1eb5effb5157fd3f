"""How fast this machine runs right now: a fixed reference workload, timed in every benchmark run.

Two machines that report the same kind (CPU model name, cores) can differ in speed by a factor of
two. On 2026-11-25 a 2-core virtual machine reporting "AMD EPYC" ran the `noop` and `cpu` epochs
at 0 workers 2.14x and 1.92x slower than the 2-core "AMD EPYC" machine the committed baseline of
the day before came from, with nothing changed: 48 rows read as confirmed regressions. A
fingerprint cannot see that; timing a fixed workload can.

The probe is a pure-Python integer loop (the interpreter is what the DataLoader's per-sample and
per-batch overhead runs on), timed ``REPEATS`` times, keeping the fastest: the minimum is the
estimate of how fast the CPU can go that interference inflates least. Each results file records
the probe at the start and at the end of its run (``loaderbench.speed_probe``); a baseline keeps
every run's (the file's ``loaderbench.baseline.speed_probes``). The verdict judges seconds only when
the candidate's probes lie within ``TOLERANCE`` of the baseline's range (judging/stored_numbers.py);
otherwise it judges the derived ratios, which hold across machine speeds, and says why.
"""

from __future__ import annotations

import time

from loaderbench.results import Results

REPEATS = 7
LOOP = 400_000  # 29-51 ms per repeat on the 2-core AMD EPYC machine of 2026-11-25
#: How far outside the baseline's range of probes a candidate's probe may lie before the two are
#: taken for machines of different speed (seconds not judged).
TOLERANCE = 0.25


def _workload(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def probe(repeats: int = REPEATS, loop: int = LOOP, clock=time.perf_counter) -> float:
    """Seconds the fastest of ``repeats`` runs of the reference workload took."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        _workload(loop)
        best = min(best, clock() - start)
    return best


def mismatch(baseline: Results, current: Results, tolerance: float = TOLERANCE) -> str | None:
    """Why ``current`` ran at another speed than ``baseline`` (a phrase), or None when its probes
    lie within ``tolerance`` of the baseline's range, or either side has none to compare."""
    base, cur = baseline.speed_probes, current.speed_probes
    if not base or not cur:
        return None
    low, high = min(base), max(base)
    slowest, fastest = max(cur), min(cur)
    if slowest > high * (1 + tolerance):
        return (
            f"this machine ran the speed probe {slowest / high:.2f}x slower than the "
            f"baseline's slowest run ({slowest * 1e3:.0f} ms vs {low * 1e3:.0f}-"
            f"{high * 1e3:.0f} ms)"
        )
    if fastest < low / (1 + tolerance):
        return (
            f"this machine ran the speed probe {low / fastest:.2f}x faster than the "
            f"baseline's fastest run ({fastest * 1e3:.0f} ms vs {low * 1e3:.0f}-"
            f"{high * 1e3:.0f} ms)"
        )
    return None
