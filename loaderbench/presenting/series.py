"""One number per grid case, per measure, read out of a results file: what reports plot and rank.

Only the main grid is read (default batch size, prefetch factor and ordering): variants answer other
questions and would put two points at one (num_workers, start method) position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from loaderbench.grid import START_METHODS, Case
from loaderbench.results import EPOCH, MEMORY, OVERLAP, STARTUP, THROUGHPUT, Benchmark, Results


@dataclass(frozen=True)
class Point:
    panel: str  # the profile, qualified when the benchmark is not the measure's grid benchmark
    line: str | None  # what tells a panel's lines apart: the start method (None at 0 workers,
    #                   shared by every line), or a dataset setting the panel varies (storage)
    profile: str
    num_workers: int
    start_method: str | None  # None at num_workers=0
    value: float
    benchmark: str  # the benchmark's name, so a reader can find its raw rounds

    @property
    def label(self) -> str:
        label = (
            f"{self.num_workers} workers, {self.start_method}"
            if self.num_workers
            else "0 workers (main process)"
        )
        return label if self.line in (None, self.start_method) else f"{label}, {self.line}"


def _first_batch_ms(bench: Benchmark) -> float | None:
    return bench.median * 1e3


#: How each measure's headline number is read from a benchmark.
VALUES: dict[str, Callable[[Benchmark], float | None]] = {
    THROUGHPUT: lambda bench: bench.samples_per_s,
    EPOCH: lambda bench: bench.median * 1e3,
    STARTUP: _first_batch_ms,
    MEMORY: lambda bench: bench.value("peak_pss_mb"),
    OVERLAP: lambda bench: bench.value("overlap_efficiency"),
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


#: The benchmark that runs each measure over the grid; others of the same measure (the
#: copy-on-read pair, the GPU overlap) get panels of their own, named after them.
GRID_TESTS = {
    THROUGHPUT: "test_throughput",
    EPOCH: "test_epoch",
    STARTUP: "test_time_to_first_batch",
    MEMORY: "test_memory",
    OVERLAP: "test_overlap",
}


def _panel(measure: str, test: str, profile: str) -> str:
    if test == GRID_TESTS.get(measure):
        return profile
    what = test.removeprefix("test_").removeprefix(f"{measure}_").replace("_", " ")
    return f"{profile}, {what}"


def _order(point: Point) -> tuple:
    """A setting's line after line (list, then numpy); within one: workers, then start method."""
    method, line = point.start_method, point.line
    return (
        "" if line in (None, method) else line,
        point.num_workers,
        START_METHODS.index(method) if method in START_METHODS else -1,
        method or "",
    )


def _lines(found: list[tuple[Case, dict, float, str]]) -> list[str | None]:
    """Each point's line: a dataset setting that varies within the panel, else the start method."""
    settings = [dataset for _, dataset, _, _ in found]
    varying = sorted(
        key
        for key in {k for s in settings for k in s}
        if len({repr(s.get(key)) for s in settings}) > 1
    )
    if not varying:
        return [case.start_method for case, _, _, _ in found]
    return [", ".join(str(s.get(key)) for key in varying) for s in settings]


def series(results: Results, measure: str) -> dict[str, list[Point]]:
    """{panel: points} for ``measure``, panels in run order, each panel's points by line, then
    num_workers, then start method."""
    value_of = VALUES[measure]
    found: dict[tuple[str, str], list] = {}
    for bench in results.measured(measure):
        case = _main_grid_case(bench.case)
        value = value_of(bench) if case else None
        if case is None or value is None:
            continue
        panel = _panel(measure, bench.test, case.profile)
        found.setdefault((panel, case.profile), []).append(
            (case, bench.settings, value, bench.name)
        )
    out: dict[str, list[Point]] = {}
    for (panel, profile), rows in found.items():
        points = [
            Point(panel, line, profile, case.num_workers, case.start_method, value, name)
            for (case, _, value, name), line in zip(rows, _lines(rows))
        ]
        out[panel] = sorted(points, key=_order)
    return out


def at(points: list[Point], num_workers: int, line: str | None) -> Point | None:
    """The point at one position of a panel, or None when that case was not measured."""
    for point in points:
        if point.num_workers == num_workers and point.line == line:
            return point
    return None


def serial_of(point: Point, points: list[Point]) -> Point | None:
    """The num_workers=0 point that ``point``'s line starts from, if measured."""
    for other in points:
        if other.num_workers == 0 and other.line in (None, point.line):
            return other
    return None
