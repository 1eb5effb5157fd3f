"""`loaderbench gate` end to end: exit codes 0/1/2, one-line errors, the verdict file."""

from __future__ import annotations

import json

import pytest
from pytest_benchmark.utils import get_machine_id
from synthetic_results import CPU_W0, CPU_W2, JITTER, quiet_baseline, results, scaled

from loaderbench.cli import main
from loaderbench.storage import write_json_atomic


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory with a recorded cpu baseline and no pyproject (built-in thresholds)."""
    monkeypatch.chdir(tmp_path)
    write_json_atomic(
        tmp_path / "baselines" / "cpu" / get_machine_id() / "0001_test-2cpu.json", quiet_baseline()
    )
    (tmp_path / "results").mkdir()
    return tmp_path


def write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_an_unchanged_run_exits_0_and_writes_the_verdict_beside_it(project, capsys):
    current = write(
        project / "results" / "latest.json", results({CPU_W0: JITTER, CPU_W2: scaled(JITTER, 0.5)})
    )
    assert main(["gate", current]) == 0
    out = capsys.readouterr().out
    assert "no regression" in out and "test_throughput[cpu-w0]" in out
    verdict = (project / "results" / "verdict.md").read_text()
    assert "| speedup[cpu-w2-fork] |" in verdict and "no regression" in verdict


def test_a_slower_run_exits_1(project, capsys):
    current = write(
        project / "results" / "latest.json",
        results({CPU_W0: scaled(JITTER, 1.5), CPU_W2: scaled(JITTER, 0.5)}),
    )
    assert main(["gate", current]) == 1
    assert "REGRESSED" in capsys.readouterr().out


def test_only_derived_ignores_seconds_from_another_machine(project):
    """Twice as slow everywhere (another machine): seconds fail, ratios pass."""
    current = write(
        project / "results" / "latest.json",
        results({CPU_W0: scaled(JITTER, 2.0), CPU_W2: scaled(JITTER, 1.0)}),
    )
    assert main(["gate", current]) == 1
    assert main(["gate", "--only", "derived", current]) == 0


def test_another_machine_kind_judges_ratios_only_unless_told(project, capsys):
    """The same run from a machine kind with no baseline of its own: its seconds are not judged,
    its ratios are, and the verdict says why; --only all judges seconds anyway."""
    slower = {CPU_W0: scaled(JITTER, 2.0), CPU_W2: scaled(JITTER, 1.0)}
    current = write(project / "results" / "latest.json", results(slower, cpu_model="Other CPU"))
    assert main(["gate", current]) == 0
    out = capsys.readouterr().out
    assert (
        "not seconds: the baseline was recorded on another machine kind (test-2cpu, this is "
        "other-2cpu)" in out
    )
    assert "speedup[cpu-w2-fork]" in out and "test_throughput[cpu-w0]" not in out
    assert main(["gate", "--only", "all", current]) == 1
    lost_speedup = {CPU_W0: JITTER, CPU_W2: scaled(JITTER, 1.0)}  # 2 workers no faster than 0
    current = write(
        project / "results" / "latest.json", results(lost_speedup, cpu_model="Other CPU")
    )
    assert main(["gate", current]) == 1
    assert "REGRESSED" in capsys.readouterr().out


def test_no_baseline_for_the_runner_class_says_how_to_make_one(project, capsys):
    current = write(project / "gpu.json", results({CPU_W0: JITTER}, runner="gpu"))
    assert main(["gate", current]) == 2
    err = one_line_error(capsys)
    assert "no baseline for runner class 'gpu'" in err and "make baseline" in err


def test_a_baseline_of_another_runner_class_is_refused(project, capsys):
    current = write(project / "gpu.json", results({CPU_W0: JITTER}, runner="gpu"))
    assert main(["gate", "baselines/cpu", current]) == 2
    err = one_line_error(capsys)
    assert "runner class 'cpu'" in err and "'gpu'" in err


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "not JSON"),
        ('{"benchmarks": 3}', "no 'benchmarks' list"),
        ('{"benchmarks": [{"name": "x", "stats": {"median": 1.0, "min": 1.0}}]}', "no raw rounds"),
    ],
)
def test_unusable_current_files_exit_2_naming_file_and_problem(project, capsys, content, problem):
    bad = project / "bad.json"
    bad.write_text(content)
    assert main(["gate", "baselines/cpu", str(bad)]) == 2
    err = one_line_error(capsys)
    assert str(bad) in err and problem in err


def test_an_unusable_baseline_exits_2_naming_it(project, capsys):
    broken = project / "broken.json"
    broken.write_text('{"benchmarks": []}')
    current = write(project / "cur.json", results({CPU_W0: JITTER}))
    assert main(["gate", str(broken), current]) == 2
    assert str(broken) in one_line_error(capsys)


def test_a_bad_threshold_on_the_command_line_exits_2(project, capsys):
    current = write(project / "cur.json", results({CPU_W0: JITTER}))
    assert main(["gate", "--alpha", "1.5", current]) == 2
    assert "alpha must be between 0 and 1" in one_line_error(capsys)


def test_a_different_torch_is_shown_not_refused(project, capsys):
    current = write(
        project / "cur.json", results({CPU_W0: JITTER, CPU_W2: scaled(JITTER, 0.5)}, torch="2.14.1")
    )
    assert main(["gate", current]) == 0
    assert "!! candidate torch 2.14.1 vs baseline torch 2.13.0" in capsys.readouterr().out
