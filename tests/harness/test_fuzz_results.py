"""Fuzzing the results/baseline loader: whatever bytes a file holds, load_results either returns
usable pytest-benchmark data or raises InputError, never anything else (and never unpickles)."""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loaderbench.errors import InputError
from loaderbench.results import load_results, schema_problem

# JSON values as json.loads produces them; big integers and every float json can spell included.
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


# Each example costs about a millisecond: five times the profile's count (100 under ci).
fuzz = settings(max_examples=settings.default.max_examples * 5)


def valid_results() -> dict:
    """A small, valid pytest-benchmark file, shaped like the suite's own output."""

    def bench(name, median):
        return {
            "name": name,
            "fullname": f"tests/benchmarks/test_grid.py::{name}",
            "group": "throughput-cpu",
            "params": {"lb_case": name},
            "stats": {
                "min": median * 0.9,
                "max": median * 1.2,
                "mean": median,
                "median": median,
                "rounds": 3,
                "iterations": 1,
                "data": [median * 0.9, median, median * 1.2],
            },
            "extra_info": {
                "measure": "throughput",
                "case": {"profile": "cpu", "num_workers": 2, "id": name},
            },
        }

    return {
        "machine_info": {"node": "x", "loaderbench": {"usable_cores": 2}},
        "commit_info": {},
        "version": "5.3.1",
        "datetime": "2026-11-24T00:00:00",
        "benchmarks": [
            bench("test_throughput[cpu-w0]", 0.5),
            bench("test_throughput[cpu-w2-fork]", 0.3),
        ],
        "loaderbench": {"derived": [], "grid": "quick", "cost_scale": 1.0},
    }


# Numbers at the edges of what JSON can spell and a float can hold.
edge_numbers = st.sampled_from([10**400, -(10**400), 2**1024, 1e308, -1, -0.0, 0, True])


def places(node, found=None) -> list[tuple]:
    """Every (container, key) in a JSON document, so each place is equally likely to change."""
    found = [] if found is None else found
    keys = (
        sorted(node)
        if isinstance(node, dict)
        else range(len(node))
        if isinstance(node, list)
        else ()
    )
    for key in keys:
        found.append((node, key))
        places(node[key], found)
    return found


@st.composite
def mutated_results(draw) -> dict:
    """A valid file with one to three places replaced by arbitrary JSON or edge numbers, or
    deleted."""
    data = copy.deepcopy(valid_results())
    for _ in range(draw(st.integers(1, 3))):
        spots = places(data)
        if not spots:
            break
        parent, key = draw(st.sampled_from(spots))
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(json_values | edge_numbers)
    return data


def load_text(tmp_path_factory, text: str | bytes):
    """load_results on a file holding ``text``: its data, or the InputError it raised."""
    path = tmp_path_factory.getbasetemp() / "fuzzed.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        return load_results(path)
    except InputError as exc:
        return exc


def assert_usable_or_input_error(outcome) -> None:
    if isinstance(outcome, InputError):
        message = str(outcome)
        assert message and "\n" not in message, f"not one line: {message!r}"
        return
    assert schema_problem(outcome.raw) is None
    assert outcome.benchmarks, "an empty benchmark list must be refused"
    for bench in outcome.benchmarks:
        assert math.isfinite(bench.median) and all(map(math.isfinite, bench.rounds))


@fuzz
@given(mutated_results())
def test_mutated_results_load_or_raise_input_error(tmp_path_factory, data):
    assert_usable_or_input_error(load_text(tmp_path_factory, json.dumps(data)))


@fuzz
@given(json_values)
def test_arbitrary_json_loads_or_raises_input_error(tmp_path_factory, value):
    assert_usable_or_input_error(load_text(tmp_path_factory, json.dumps(value)))


@fuzz
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")))
def test_arbitrary_bytes_load_or_raise_input_error(tmp_path_factory, raw):
    assert_usable_or_input_error(load_text(tmp_path_factory, raw))


@given(st.integers(0, 2000))
def test_truncated_results_raise_input_error(tmp_path_factory, cut):
    """A file cut short (a crash mid-write by a tool that writes in place) is refused cleanly."""
    text = json.dumps(valid_results(), indent=2)
    outcome = load_text(tmp_path_factory, text[: cut % len(text)])
    assert isinstance(outcome, InputError)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"benchmarks": [{"name": "a", "stats": {"median": 1e999, "min": 1}}]}', "stats.median"),
        ('{"benchmarks": [{"name": "a", "stats": {"median": NaN, "min": 1}}]}', "NaN"),
        (
            '{"benchmarks": [{"name": "a", "stats": {"median": 1' + "0" * 400 + ', "min": 1}}]}',
            "stats.median",
        ),
        ("\ufeff{}", "not JSON"),
    ],
)
def test_pathological_files_raise_input_error(tmp_path_factory, text, problem):
    outcome = load_text(tmp_path_factory, text)
    assert isinstance(outcome, InputError) and problem in str(outcome)
