"""The runner class: chosen by --lb-runner or $LOADERBENCH_RUNNER, checked, recorded in the JSON
(with the speed probe that every results file carries)."""

from __future__ import annotations

import json

import pytest

from loaderbench.results import Results
from loaderbench.runner import ENV_VAR, default_runner, parse_runner


@pytest.mark.processes
def test_the_runner_class_is_recorded_in_the_results(real_runs):
    """The real benchmark run of conftest.py, started with $LOADERBENCH_RUNNER=gpu."""
    done = real_runs.done["benchmark"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert real_runs.env[ENV_VAR] == "gpu"
    recorded = json.loads(real_runs.results.read_text())
    assert Results.from_json(recorded).runner == "gpu"
    # and the machine's speed as the run began and ended (speed.py)
    assert set(recorded["loaderbench"]["speed_probe"]) == {"start", "end"}
    assert all(0 < s < 5 for s in recorded["loaderbench"]["speed_probe"].values())


@pytest.mark.processes
def test_a_bad_runner_class_is_a_usage_error(real_runs):
    done = real_runs.done["bad-runner"]  # --lb-runner=../cpu
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--lb-runner" in done.stderr and "plain lower-case name" in done.stderr


def test_the_environment_variable_wins_over_detection(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "a100")
    assert default_runner() == "a100"
    monkeypatch.delenv(ENV_VAR)
    import torch

    assert default_runner() == ("gpu" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        parse_runner("Has Space")
