"""`pytest --benchmark-compare` ends with loaderbench's verdict (suite/compare.py): the four
labels with intervals, the saved run's other machine kind said in a line instead of
pytest-benchmark's JSON dump, and a pointer to `loaderbench gate` where the verdict would fail."""

from __future__ import annotations

import pytest
from synthetic_results import CPU_W0, CPU_W2, JITTER, quiet_baseline, results, scaled

from loaderbench.results import Results
from loaderbench.suite import compare


@pytest.mark.processes
def test_a_real_compare_run_ends_with_the_verdict_and_no_machine_dump(real_runs):
    done = real_runs.done["compare"]
    assert done.returncode == 0, done.stderr[-2000:]
    summary = done.stdout.split("- loaderbench -", 1)[1]
    assert "loaderbench verdict against baselines/cpu/" in summary
    first = summary.splitlines()[2]
    assert first.startswith(("no regression", "REGRESSED")) and "unchanged" in first
    header = next(line for line in summary.splitlines() if line.startswith("benchmark "))
    assert header.split()[:4] == ["benchmark", "baseline", "current", "change"]
    assert "rows of the saved run were not run here and are left out" in summary
    assert compare.MACHINE_WARNING not in done.stdout + done.stderr


def test_another_machine_kind_is_one_line_and_a_regression_names_the_gate():
    baseline = Results.from_json(quiet_baseline())
    slower = results({CPU_W0: JITTER, CPU_W2: scaled(JITTER, 0.9)}, cpu_model="Another CPU")
    lines = compare.verdict_lines("saved.json", baseline.to_json(), Results.from_json(slower))
    text = "\n".join(lines)
    assert lines[0] == "loaderbench verdict against saved.json"
    assert "!! only what holds across machines is judged" in text
    assert "the baseline was recorded on another machine kind" in text
    assert "speedup[cpu-w2-fork]" in text and "regressed" in text
    assert lines[-1].startswith("loaderbench's verdict would fail this run")
    assert "`loaderbench gate saved.json RESULTS.json`" in lines[-1]


def test_only_the_machine_info_warning_is_left_out():
    said = []

    class Logger:
        def warning(self, text, **kwargs):
            said.append(text)

    class Session:
        logger = Logger()

    session = Session()
    with compare.machine_warning_in_one_line(session):
        session.logger.warning(f"{compare.MACHINE_WARNING}. Current: {{...}} VS saved: {{...}}")
        session.logger.warning("Can't compare. No benchmark files")
    assert said == ["Can't compare. No benchmark files"]
    assert isinstance(session.logger, Logger)
