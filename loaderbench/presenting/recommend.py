"""Which num_workers and start method to use for each profile, on the machine that produced a run.

The fastest case is not always the one to pick: a second configuration within a few percent of it
is a tie on a noisy machine, and among ties fewer workers cost less memory and a cheaper start
method costs less start-up. So the pick is the fastest case's cheapest near-equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from loaderbench.presenting.series import MEMORY, STARTUP, THROUGHPUT, Point, at, series
from loaderbench.results import Results

#: Throughput within this fraction of the best counts as a tie (medians of one run still move by a
#: few percent between neighbouring cases that do the same work).
TIE = 0.05


@dataclass(frozen=True)
class Recommendation:
    pick: Point
    speedup: float | None  # over num_workers=0; None when 0 workers was not measured
    extra_memory_mb: float | None  # peak PSS over num_workers=0; None when memory was not measured

    def sentence(self) -> str:
        """E.g. ``cpu: 2 workers, fork — 1.9× over 0, +140 MB``."""
        pick = self.pick
        if pick.num_workers == 0:
            return (
                f"{pick.profile}: 0 workers (main process) — no worker configuration was more "
                f"than {TIE:.0%} faster"
            )
        gain = (
            "speed-up over 0 not measured"
            if self.speedup is None
            else f"{self.speedup:.1f}× over 0"
        )
        memory = (
            "memory not measured"
            if self.extra_memory_mb is None
            else f"{self.extra_memory_mb:+,.0f} MB"
        )
        return f"{pick.profile}: {pick.label} — {gain}, {memory}"


def _cost(point: Point, startup: list[Point]) -> tuple:
    """Cheaper first: fewer workers, then faster start-up when it was measured."""
    measured = at(startup, point.num_workers, point.start_method)
    return (point.num_workers, measured.value if measured else float("inf"))


def recommend(results: Results) -> list[Recommendation]:
    """One recommendation per profile with throughput results, in run order."""
    startups, memories = series(results, STARTUP), series(results, MEMORY)
    out = []
    for profile, points in series(results, THROUGHPUT).items():
        if points[0].panel != points[0].profile:
            continue  # not the grid's own benchmark: no like-for-like choice among its cases
        best = max(point.value for point in points)
        ties = [point for point in points if point.value >= best * (1 - TIE)]
        pick = min(ties, key=lambda point: _cost(point, startups.get(profile, [])))
        serial = at(points, 0, None)
        speedup = pick.value / serial.value if serial else None
        memory = memories.get(profile, [])
        picked_mb, serial_mb = at(memory, pick.num_workers, pick.start_method), at(memory, 0, None)
        extra_mb = picked_mb.value - serial_mb.value if picked_mb and serial_mb else None
        out.append(Recommendation(pick, speedup, extra_mb))
    return out
