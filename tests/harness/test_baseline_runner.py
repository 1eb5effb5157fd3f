"""The runner class: chosen by --lb-runner or $LOADERBENCH_RUNNER, checked, recorded in the JSON
(with the speed probe that every results file carries)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from loaderbench.results import Results
from loaderbench.runner import ENV_VAR, default_runner, parse_runner


def pytest_run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/benchmarks", "-p", "no:cacheprovider", "-q", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.processes
def test_the_runner_class_is_recorded_in_the_results(tmp_path):
    out = tmp_path / "run.json"
    done = pytest_run(
        "--benchmark-only",
        "-k",
        "test_throughput",
        "--lb-profiles=noop",
        "--lb-workers=0",
        "--lb-rounds=1",
        f"--benchmark-json={out}",
        env={ENV_VAR: "gpu"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = json.loads(out.read_text())
    assert Results.from_json(recorded).runner == "gpu"
    # and the machine's speed as the run began and ended (speed.py)
    assert set(recorded["loaderbench"]["speed_probe"]) == {"start", "end"}
    assert all(0 < s < 5 for s in recorded["loaderbench"]["speed_probe"].values())


@pytest.mark.processes
def test_a_bad_runner_class_is_a_usage_error():
    done = pytest_run("--co", "--lb-runner=../cpu")
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
