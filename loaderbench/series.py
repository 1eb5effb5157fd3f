"""One number per grid case, per measure, read out of a results file: what reports plot and rank.

Only the main grid is read (default batch size, prefetch factor and ordering): variants answer other
questions and would put two points at one (num_workers, start method) position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable

from .derived import STARTUP, THROUGHPUT
from .grid import START_METHODS, Case

MEMORY, OVERLAP = "memory", "overlap"  # the `measure` names of the memory and overlap benchmarks


@dataclass(frozen=True)
class Point:
    profile: str
    num_workers: int
    start_method: str | None  # None at num_workers=0
    value: float
    benchmark: str  # the benchmark's name, so a reader can find its raw rounds

    @property
    def label(self) -> str:
        return f"{self.num_workers} workers, {self.start_method}" if self.num_workers \
            else "0 workers (main process)"


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _samples_per_s(bench: dict) -> float | None:
    info = bench["extra_info"]
    rate = _number(info.get("samples_per_s"))
    if rate is None:  # older files: recompute from the epoch size and the median epoch
        samples, median = _number(info.get("samples_per_epoch")), _number(bench["stats"]["median"])
        rate = samples / median if samples and median else None
    return rate


def _first_batch_ms(bench: dict) -> float | None:
    median = _number(bench["stats"]["median"])
    return None if median is None else median * 1e3


#: How each measure's headline number is read from a benchmark entry.
VALUES: dict[str, Callable[[dict], float | None]] = {
    THROUGHPUT: _samples_per_s,
    STARTUP: _first_batch_ms,
    MEMORY: lambda bench: _number(bench["extra_info"].get("peak_pss_mb")),
    OVERLAP: lambda bench: _number(bench["extra_info"].get("overlap_efficiency")),
}


def _main_grid_case(stored) -> Case | None:
    """The Case ``extra_info["case"]`` describes, or None if it is malformed or a variant."""
    if not isinstance(stored, dict):
        return None
    try:
        case = Case(**{f.name: stored[f.name] for f in fields(Case)})
    except (KeyError, TypeError, ValueError):
        return None
    return None if case.is_variant else case


def _order(point: Point) -> tuple:
    method = point.start_method
    return (point.num_workers, START_METHODS.index(method) if method in START_METHODS else -1,
            method or "")


def series(results: dict, measure: str) -> dict[str, list[Point]]:
    """{profile: points sorted by (num_workers, start method)} for ``measure``, profiles in run order."""
    value_of = VALUES[measure]
    out: dict[str, list[Point]] = {}
    for bench in results["benchmarks"]:
        info = bench.get("extra_info") or {}
        if info.get("measure") != measure:
            continue
        case = _main_grid_case(info.get("case"))
        value = value_of(bench) if case else None
        if value is None:
            continue
        out.setdefault(case.profile, []).append(
            Point(case.profile, case.num_workers, case.start_method, value, bench["name"]))
    return {profile: sorted(points, key=_order) for profile, points in out.items()}


def at(points: list[Point], num_workers: int, start_method: str | None) -> Point | None:
    """The point at one grid position, or None when that case was not measured."""
    for point in points:
        if point.num_workers == num_workers and point.start_method == start_method:
            return point
    return None
