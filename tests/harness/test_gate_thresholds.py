"""Thresholds: defaults, [tool.loaderbench] in pyproject.toml, group overrides, bad values."""

from __future__ import annotations

import pytest

from loaderbench.errors import InputError
from loaderbench.judging.thresholds import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_EFFECT,
    Rule,
    Thresholds,
    load_thresholds,
)


def pyproject(tmp_path, body: str):
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n' + body)
    return path


def test_without_a_table_the_defaults_hold(tmp_path):
    thresholds = load_thresholds(pyproject(tmp_path, ""))
    assert thresholds.for_group("throughput-cpu") == Rule(DEFAULT_MIN_EFFECT, DEFAULT_ALPHA)


def test_the_longest_matching_group_prefix_wins(tmp_path):
    thresholds = load_thresholds(
        pyproject(
            tmp_path,
            """
[tool.loaderbench]
min_effect = 0.15
alpha = 0.005
other_tools_key = "left alone"

[tool.loaderbench.groups]
startup = { min_effect = 0.3 }
throughput = { alpha = 0.02 }
throughput-io = { min_effect = 0.05 }
""",
        )
    )
    assert thresholds.for_group("memory-cpu") == Rule(0.15, 0.005)
    assert thresholds.for_group("startup-noop") == Rule(0.3, 0.005)
    assert thresholds.for_group("startupx-noop") == Rule(0.15, 0.005)  # a prefix ends at a dash
    assert thresholds.for_group("throughput-cpu") == Rule(0.15, 0.02)
    assert thresholds.for_group("throughput-io") == Rule(0.05, 0.005)


def test_command_line_values_replace_defaults_and_groups():
    thresholds = Thresholds(Rule(), {"startup": Rule(0.3, 0.01)}).overridden(min_effect=0.02)
    assert thresholds.for_group("startup-cpu").min_effect == 0.02
    assert thresholds.for_group("throughput-cpu").min_effect == 0.02


@pytest.mark.parametrize(
    "body, problem",
    [
        ("[tool.loaderbench]\nalpha = 0\n", "alpha must be between 0 and 1"),
        ("[tool.loaderbench]\nmin_effect = -0.1\n", "min_effect must be >= 0"),
        ("[tool.loaderbench]\nmin_effect = 'ten'\n", "min_effect must be a number"),
        (
            "[tool.loaderbench.groups]\nstartup = { min_efect = 0.2 }\n",
            "unknown threshold 'min_efect'",
        ),
        ("[tool.loaderbench]\ngroups = 3\n", "must be a table"),
        ("[tool.loaderbench\n", "not valid TOML"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_file(tmp_path, body, problem):
    path = pyproject(tmp_path, body)
    with pytest.raises(InputError) as caught:
        load_thresholds(path)
    assert problem in str(caught.value) and str(path) in str(caught.value)


def test_the_nearest_pyproject_above_the_working_directory_is_used(tmp_path, monkeypatch):
    pyproject(tmp_path, "[tool.loaderbench]\nmin_effect = 0.25\n")
    (tmp_path / "deeper").mkdir()
    monkeypatch.chdir(tmp_path / "deeper")
    assert load_thresholds().default.min_effect == 0.25
