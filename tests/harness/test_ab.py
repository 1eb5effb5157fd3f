"""`loaderbench ab`: interleaving, per-side interpreters and arguments, spec virtualenvs, the
verdict of B against A and its exit codes."""

from __future__ import annotations

import json
import sys

import pytest

from loaderbench import ab
from loaderbench.ab import Side, prepare, run_pairs, schedule, setup_commands, venv_for
from loaderbench.cli import main
from loaderbench.errors import InputError

from synthetic_results import CPU_W0, CPU_W2, JITTER, results, scaled


def side_of(command: list[str]) -> str:
    out = next(a for a in command if a.startswith("--benchmark-json="))
    return out.rsplit("/", 1)[1].split("-")[0]


def fake_grid(calls: list, b_factor: float, slots: list | None = None):
    """Runs as pytest would return them: B's rounds ``b_factor`` times A's, a little drift."""
    slots = [] if slots is None else slots
    def run(command, label, slot):
        calls.append(command)
        slots.append((side_of(command), slot))
        drift = 1 + 0.01 * len(calls)
        factor = drift * (b_factor if side_of(command) == "B" else 1.0)
        return results({CPU_W0: scaled(JITTER, factor), CPU_W2: scaled(JITTER, 0.5 * factor)})
    return run


def test_runs_alternate_a_b_for_every_pair():
    assert schedule(3) == [(0, "A"), (0, "B"), (1, "A"), (1, "B"), (2, "A"), (2, "B")]


def test_each_side_runs_its_own_interpreter_with_its_own_arguments(tmp_path):
    calls, slots = [], []
    a = Side("A", "/env-a/bin/python")
    b = Side("B", "/env-b/bin/python", args=["--lb-cost-scale=1.25"])
    runs_a, runs_b = run_pairs(a, b, pairs=2, runner="cpu", common=["--lb-profiles=cpu"],
                               out=tmp_path, run=fake_grid(calls, 1.0, slots))
    # Pair k's A and B each draw a layout from slice k (layout.py): B's longer command line
    # cannot put it in another layout mode than A systematically.
    assert slots == [("A", (0, 2)), ("B", (0, 2)), ("A", (1, 2)), ("B", (1, 2))]
    assert [c[0] for c in calls] == ["/env-a/bin/python", "/env-b/bin/python"] * 2
    assert [side_of(c) for c in calls] == ["A", "B", "A", "B"]
    assert all("--lb-profiles=cpu" in c and "--lb-runner=cpu" in c for c in calls)
    assert ["--lb-cost-scale=1.25" in c for c in calls] == [False, True, False, True]
    assert len(runs_a) == len(runs_b) == 2


def test_a_spec_gets_a_venv_with_torch_first_then_the_project(tmp_path):
    venv = venv_for("torch==2.12.0", tmp_path)
    assert venv == venv_for("torch==2.12.0", tmp_path) != venv_for("torch==2.11.0", tmp_path)
    commands = setup_commands("torch==2.12.0", venv, tmp_path / "project", "python3")
    assert commands[0] == ["python3", "-m", "venv", str(venv)]
    assert commands[1][-1] == "torch==2.12.0"
    with_index = setup_commands("torch==2.12.0 --index-url https://download.pytorch.org/whl/cpu",
                                venv, tmp_path, "python3")
    assert with_index[1][-3:] == ["torch==2.12.0", "--index-url",
                                  "https://download.pytorch.org/whl/cpu"]
    assert commands[2][-2:] == ["-e", str(tmp_path / "project")]
    assert all(c[0] == str(venv / "bin" / "python") for c in commands[1:])


def test_a_prepared_venv_is_reused_and_a_failed_install_is_an_input_error(tmp_path):
    calls = []

    def ok(command):
        calls.append(command)
        if command[1:3] == ["-m", "venv"]:
            (tmp_path / "v").mkdir(exist_ok=True)
            venv_for("torch==2.12.0", tmp_path / "v").mkdir(exist_ok=True)
        return type("Done", (), {"returncode": 0})()
    side = Side("B", spec="torch==2.12.0")
    prepare(side, tmp_path / "v", tmp_path, "python3", run=ok)
    assert side.python == str(venv_for("torch==2.12.0", tmp_path / "v") / "bin" / "python")
    assert len(calls) == 3
    prepare(Side("B", spec="torch==2.12.0"), tmp_path / "v", tmp_path, "python3", run=ok)
    assert len(calls) == 3  # the stamp says it is done

    def failing(command):
        return type("Failed", (), {"returncode": 1})()
    with pytest.raises(InputError, match="could not install 'torch==9.9'"):
        prepare(Side("A", spec="torch==9.9"), tmp_path / "v", tmp_path, "python3", run=failing)


def ab_main(tmp_path, monkeypatch, b_factor, *extra):
    calls = []
    monkeypatch.setattr(ab, "run_grid", fake_grid(calls, b_factor))
    code = main(["ab", "--pairs", "3", "--runner", "cpu", "--out", str(tmp_path / "ab"), *extra])
    return code, calls


def test_a_slower_b_exits_1_with_the_verdict_and_pooled_files(tmp_path, monkeypatch, capsys):
    code, calls = ab_main(tmp_path, monkeypatch, 1.3, "--b-args=--lb-cost-scale=1.3")
    assert code == 1 and len(calls) == 6
    assert ["--lb-cost-scale=1.3" in c for c in calls] == [False, True] * 3
    out = capsys.readouterr().out
    assert "pair 3 of 3: B" in out and "REGRESSED" in out
    verdict = (tmp_path / "ab" / "verdict.md").read_text()
    assert "| test_throughput[cpu-w0] |" in verdict and "regressed" in verdict
    pooled_b = json.loads((tmp_path / "ab" / "B.json").read_text())
    assert len(pooled_b["benchmarks"][0]["stats"]["data"]) == 3 * len(JITTER)
    assert pooled_b["loaderbench"]["baseline"]["band_rule"].startswith("largest ratio between "
                                                                       "the medians of two consecutive")


def test_the_same_environment_twice_is_an_a_a_run_without_regression(tmp_path, monkeypatch, capsys):
    code, _ = ab_main(tmp_path, monkeypatch, 1.0)
    assert code == 0
    assert "A/A run" in capsys.readouterr().out


@pytest.mark.parametrize("args, problem", [
    (["--a-python", "/no/such/python"], "does not exist"),
    (["--a-python", sys.executable, "--a-spec", "torch==2.13.0"], "not both"),
    (["--pairs", "1"], "--pairs must be >= 2"),
])
def test_unusable_sides_exit_2_with_one_line(tmp_path, monkeypatch, capsys, args, problem):
    code, calls = ab_main(tmp_path, monkeypatch, 1.0, *args)
    assert code == 2 and calls == []
    err = capsys.readouterr().err.strip()
    assert problem in err and "\n" not in err
