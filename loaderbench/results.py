"""Reading pytest-benchmark JSON (results and baselines) defensively: only JSON, never pickle."""

from __future__ import annotations

import json
import math
from pathlib import Path

from loaderbench.errors import InputError


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def load_results(path: str | Path) -> dict:
    """The parsed file, checked to be pytest-benchmark JSON with at least one benchmark."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (run `make bench` to produce results)") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a pytest-benchmark JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: not a results file: JSON nested too deeply to be one") from None
    problem = schema_problem(data)
    if problem:
        raise InputError(f"{path}: not a pytest-benchmark results file: {problem}")
    if not data["benchmarks"]:
        raise InputError(
            f"{path}: holds no benchmarks (was the run narrowed to nothing, or "
            "run without --benchmark-only?)"
        )
    return data


def schema_problem(data) -> str | None:
    """What makes ``data`` unusable as pytest-benchmark JSON, or None."""
    if not isinstance(data, dict):
        return f"top level is {type(data).__name__}, expected an object"
    benchmarks = data.get("benchmarks")
    if not isinstance(benchmarks, list):
        return "no 'benchmarks' list"
    for i, bench in enumerate(benchmarks):
        if not isinstance(bench, dict):
            return f"benchmarks[{i}] is {type(bench).__name__}, expected an object"
        name = bench.get("name")
        if not isinstance(name, str) or not name:
            return f"benchmarks[{i}] has no 'name'"
        stats = bench.get("stats")
        if not isinstance(stats, dict):
            return f"benchmark {name!r} has no 'stats' object"
        for key in ("median", "min"):
            value = stats.get(key)
            if not _finite_number(value) or value < 0:
                return f"benchmark {name!r} has no valid stats.{key}"
        data_points = stats.get("data")
        if data_points is not None and (
            not isinstance(data_points, list) or not all(_finite_number(x) for x in data_points)
        ):
            return f"benchmark {name!r} has a malformed stats.data (expected a list of numbers)"
        if "extra_info" in bench and not isinstance(bench["extra_info"], dict):
            return f"benchmark {name!r} has a malformed extra_info"
    return None


def _finite_number(value) -> bool:
    """A JSON number usable as a float: not a bool, not 1e999 (inf), not an integer too large for
    a float (math.isfinite would raise OverflowError on it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def missing_rounds(results: dict) -> str | None:
    """The first benchmark without raw rounds, or None: the verdict's rank test and a
    baseline's noise bands need every round."""
    for bench in results.get("benchmarks", []):
        if not bench.get("stats", {}).get("data"):
            return bench["name"]
    return None
