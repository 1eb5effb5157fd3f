"""Real pytest processes that several harness modules check, started by one session fixture:
each imports torch (seconds apiece), so one benchmark run and three checks started at once replace
six processes in a row. The benchmark run runs alone first: its rounds are timed, and the confirm
tests judge a real rerun against them (run beside three other processes it measured 3x slower).

- ``benchmark``: one real benchmark run (noop, 0 workers) writing --benchmark-json, with a layout
  pad (layout.py) and $LOADERBENCH_RUNNER set: what the plugin records (test_layout.py,
  test_baseline_runner.py) and the run confirmed in real reruns (test_confirm.py).
- ``rerun-selects``, ``rerun-unreadable``: collection with --lb-rerun naming one node id, and
  with a file that is not there (test_confirm.py).
- ``bad-runner``: --lb-runner with a class that is not a plain name (test_baseline_runner.py).
- ``compare``: the same benchmark with pytest-benchmark's --benchmark-compare against the
  committed baseline, ending in loaderbench's verdict (test_compare_summary.py; its timing is not
  judged by any test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from loaderbench.measuring import layout
from loaderbench.runner import ENV_VAR as RUNNER_ENV_VAR

PROJECT = Path(__file__).resolve().parents[2]
NOOP_W0 = "tests/benchmarks/test_grid.py::test_throughput[noop-w0]"
CPU_W0 = "tests/benchmarks/test_grid.py::test_throughput[cpu-w0]"
#: The runner class the benchmark run is given through the environment.
RUNNER = "gpu"


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class RealRuns:
    results: Path  # the benchmark run's --benchmark-json
    env: dict  # the benchmark run's environment
    done: dict  # name: Done
    benchmarked: str = NOOP_W0  # the node id the benchmark run ran
    rerun_listed: str = CPU_W0  # the one node id in rerun-selects' --lb-rerun file


def in_pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider"]


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory) -> RealRuns:
    folder = tmp_path_factory.mktemp("real_runs")
    results = folder / "latest.json"
    listing = folder / "ids.txt"
    listing.write_text(f"{CPU_W0}\n")
    benchmark_env = {
        **layout.environment(0, 1, base=dict(os.environ)),
        RUNNER_ENV_VAR: RUNNER,
    }
    commands = {
        "benchmark": (
            in_pytest(NOOP_W0, "--benchmark-only", "-q", f"--benchmark-json={results}"),
            benchmark_env,
        ),
        "rerun-selects": (
            in_pytest("tests/benchmarks", "--collect-only", "-q", f"--lb-rerun={listing}"),
            os.environ,
        ),
        "rerun-unreadable": (
            in_pytest("tests/benchmarks", "--collect-only", f"--lb-rerun={folder / 'none.txt'}"),
            os.environ,
        ),
        "bad-runner": (
            in_pytest("tests/benchmarks", "-q", "--co", "--lb-runner=../cpu"),
            os.environ,
        ),
        "compare": (
            in_pytest(
                NOOP_W0,
                "--benchmark-only",
                "-q",
                "--benchmark-storage=baselines/cpu",
                "--benchmark-compare",
                "--benchmark-columns=median",
            ),
            os.environ,
        ),
    }

    def start(name: str) -> subprocess.Popen:
        command, env = commands[name]
        return subprocess.Popen(
            command,
            cwd=PROJECT,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    done = {}
    for batch in (["benchmark"], [name for name in commands if name != "benchmark"]):
        started = {name: start(name) for name in batch}
        for name, proc in started.items():
            out, err = proc.communicate(timeout=300)
            done[name] = Done(proc.returncode, out, err)
    return RealRuns(results, benchmark_env, done)
