"""The one-command GPU check (.ci/gpu-check) on a machine without CUDA: its steps as a dry run
prints them, and its step logic (time limits, logs, summaries, exit codes) run against a stand-in
interpreter that answers as a CUDA machine's python3 would, in milliseconds."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "gpu-check"
pytestmark = pytest.mark.processes

#: A python3 for the script: the environment report of an H200 (or of a machine without CUDA,
#: STUB_CUDA=False), and a pytest that records its arguments, sleeps 20 s when they contain
#: STUB_SLOW (leaving at once on Ctrl-C, as pytest does) and exits STUB_EXIT.
STUB = r"""#!/usr/bin/env bash
if [ "$1" = - ]; then
  cat > /dev/null
  echo "python 3.12.3 x86_64 cores 16"
  echo "torch 2.11.0+cu130 cuda 13.0 available ${STUB_CUDA:-True}"
  exit 0
fi
case "$2" in
  pytest)
    echo "$*" >> "$STUB_CALLS"
    trap 'echo "========== 1 passed in 0.50s (interrupted) =========="; exit 2' INT
    case "$*" in *"${STUB_SLOW:-never}"*) sleep 20 & wait ;; esac
    echo "========== 3 passed, 1 skipped in 0.01s =========="
    exit "${STUB_EXIT:-0}" ;;
  loaderbench.measuring.layout) echo 0 ;;
  loaderbench) echo "a table" ;;
esac
"""


@pytest.fixture
def check(tmp_path):
    """Runs .ci/gpu-check with the stand-in python3; returns (exit status, output, pytest calls)."""
    stub = tmp_path / "python3"
    stub.write_text(STUB)
    stub.chmod(0o755)
    calls = tmp_path / "calls"

    def run(*args, **env):
        done = subprocess.run(
            [str(SCRIPT), *args],
            env={
                **os.environ,
                "PYTHON": str(stub),
                "STUB_CALLS": str(calls),
                "GPU_CHECK_OUT": str(tmp_path / "out"),
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        made = calls.read_text().splitlines() if calls.exists() else []
        return done.returncode, done.stdout + done.stderr, made

    return run


def test_the_dry_run_names_the_folder_and_every_step_with_its_limit(check, tmp_path):
    status, output, calls = check("--dry-run")
    assert status == 0 and calls == []
    assert f"would write to {tmp_path / 'out'}" in output
    steps = re.findall(r"^step (\w+) \(limit (\d+) s\): (.*)$", output, re.M)
    assert [name for name, _, _ in steps] == ["gpu", "grid", "suite"]
    assert sum(int(limit) for _, limit, _ in steps) < 8 * 60
    gpu, grid, suite = (command for _, _, command in steps)
    assert all("--durations=20" in c and "env PYTHONPATH=." in c for c in (gpu, grid, suite))
    assert "tests -m gpu" in gpu and "/gpu.json" in gpu
    # The quick grid as .github/workflows/gpu.yml runs it.
    assert "LOADERBENCH_RUNNER=gpu LOADERBENCH_LAYOUT_PAD=" in grid
    assert "tests/benchmarks --benchmark-only --benchmark-quiet -q --lb-grid=quick" in grid
    assert "--benchmark-disable" in suite and "-m 'not gpu' --ignore=tests/benchmarks" in suite


def test_every_step_runs_and_passes_on_a_cuda_machine(check, tmp_path):
    status, output, calls = check()
    assert status == 0, output
    assert re.findall(
        r"^step (\w+): passed in \d+ s: 3 passed, 1 skipped in 0.01s$", output, re.M
    ) == [
        "gpu",
        "grid",
        "suite",
    ]
    assert len(calls) == 3 and all("--durations=20" in call for call in calls)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {
        "environment.txt",
        "gpu.log",
        "grid.log",
        "suite.log",
    }
    assert "torch 2.11.0+cu130" in (out / "environment.txt").read_text()
    assert output.rstrip().endswith("gpu-check: every step passed")


def test_a_step_past_its_limit_is_interrupted_reported_and_fails_the_check(check):
    status, output, calls = check("--steps", "grid,suite", GRID_S="1", STUB_SLOW="--lb-grid")
    assert status == 1
    assert re.search(
        r"step grid: OUT OF TIME after [12] s \(limit 1 s\): 1 passed in 0.50s", output
    )
    assert re.search(r"^step suite: passed", output, re.M)  # the next step still runs
    assert output.rstrip().endswith("gpu-check: failed: grid") and len(calls) == 2


def test_a_failing_step_is_reported_with_its_log(check, tmp_path):
    status, output, _ = check("--steps", "gpu", STUB_EXIT="1")
    assert status == 1
    assert (
        f"step gpu: FAILED (pytest exit 1) in 0 s: 3 passed, 1 skipped in 0.01s; see {tmp_path / 'out'}/gpu.log"
        in output
    )


def test_without_cuda_the_steps_pass_yet_the_check_says_nothing_was_checked_on_a_gpu(check):
    status, output, _ = check("--steps", "gpu", STUB_CUDA="False")
    assert status == 2
    assert "no CUDA device: the GPU tests skipped themselves" in output


@pytest.mark.parametrize(
    "args, env, message",
    [
        (
            ["--steps", "gpu,bench"],
            {},
            "unknown step 'bench' in --steps; the steps are gpu, grid, suite",
        ),
        (["--fast"], {}, "unknown argument '--fast'"),
        ([], {"GRID_S": "3m"}, "must be whole seconds, got '3m'"),
        ([], {"SUITE_S": "400"}, "the limits add up to 730 s, more than the 480 s"),
    ],
)
def test_bad_usage_is_one_line_and_exit_64(check, args, env, message):
    status, output, calls = check(*args, **env)
    assert status == 64 and message in output and calls == []
