"""`loaderbench ab`: how its sides are built (interpreter, spec venv, git ref, settings), what the
selection after -- means, and one line with exit 2 for every side that cannot be used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loaderbench.cli import main
from loaderbench.config import parse_selection
from loaderbench.errors import InputError
from loaderbench.paired import ab, environments


def test_a_sides_own_settings_come_after_the_common_ones_and_are_checked():
    selection = parse_selection(["--lb-dataset=pkg.mod:make", "--lb-cost-scale=1.1"])
    assert ab.side_settings("B", selection, ["--lb-cost-scale=1.25"]) == (
        "--lb-cost-scale=1.25",
        "--lb-dataset=pkg.mod:make",
    )
    with pytest.raises(InputError, match="side B: '--lb-nonsense=1' is not a setting of a side"):
        ab.side_settings("B", selection, ["--lb-nonsense=1"])
    with pytest.raises(InputError, match="side A: --lb-cost-scale must be > 0"):
        ab.side_settings("A", selection, ["--lb-cost-scale=0"])
    with pytest.raises(InputError, match="side A: --lb-cost-scale: 'fast' is not a number"):
        ab.side_settings("A", selection, ["--lb-cost-scale=fast"])


def test_a_spec_side_gets_a_venv_with_its_requirement_first_then_the_project(tmp_path):
    calls = []

    def run(command):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0)

    side = environments.spec_side(
        "B", "torch==2.12.0 --index-url https://x/cpu", tmp_path, tmp_path / "project", run=run
    )
    venv = Path(side.python).parent.parent
    assert calls[0][1:] == ["-m", "venv", "--clear", str(venv)]
    assert calls[1][-3:] == ["torch==2.12.0", "--index-url", "https://x/cpu"]
    assert calls[2][-2:] == ["-e", str(tmp_path / "project")]
    assert all(c[0] == side.python for c in calls[1:])
    environments.spec_side(
        "B", "torch==2.12.0 --index-url https://x/cpu", tmp_path, tmp_path / "project", run=run
    )
    assert len(calls) == 3  # stamped: reused, not rebuilt

    def failing(command):
        return subprocess.CompletedProcess(command, 1)

    with pytest.raises(InputError, match="side A: pip 'torch==9.9': could not be installed"):
        environments.spec_side("A", "torch==9.9", tmp_path, tmp_path, run=failing)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository with two commits of a module ``userdata``."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    for version in ("1", "2"):
        (root / "userdata.py").write_text(f"VERSION = {version}\n")
        git(root, "add", "userdata.py")
        git(root, "commit", "-q", "-m", version)
    return root


@pytest.mark.processes
def test_a_git_ref_side_runs_the_code_of_that_commit_first_on_its_path(repo, tmp_path):
    base = environments.SideSpec("B", sys.executable, ("--lb-cost-scale=1.1",))
    side = environments.ref_side(base, "HEAD~1", repo, tmp_path / "cache", project=tmp_path)
    checkout = Path(side.pythonpath[0])
    assert (checkout / "userdata.py").read_text() == "VERSION = 1\n"
    assert side.settings == ("--lb-cost-scale=1.1",) and "of " + str(repo) in side.what
    again = environments.ref_side(
        base, git(repo, "rev-parse", "HEAD~1"), repo, tmp_path / "cache", project=tmp_path
    )
    assert again.pythonpath == side.pythonpath  # the same commit's checkout is reused
    env = side.environment()
    assert env["PYTHONPATH"].split(":")[0] == str(checkout)


@pytest.mark.processes
def test_a_git_ref_that_does_not_exist_is_one_line(repo, tmp_path):
    base = environments.SideSpec("A", sys.executable)
    with pytest.raises(InputError, match="side A: git ref 'no-such-branch' does not exist in"):
        environments.ref_side(base, "no-such-branch", repo, tmp_path, project=tmp_path)


def test_an_isolated_side_gets_none_of_this_shells_python_or_loaderbench_variables(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/leaks")
    monkeypatch.setenv("PYTHONHASHSEED", "3")
    monkeypatch.setenv("LOADERBENCH_RUNNER", "gpu")
    isolated = environments.SideSpec(
        "A", sys.executable, pythonpath=("/checkout",), isolated=True
    ).environment()
    assert isolated["PYTHONPATH"] == "/checkout"
    assert "PYTHONHASHSEED" not in isolated and "LOADERBENCH_RUNNER" not in isolated
    assert "LOADERBENCH_LAYOUT_PAD" in isolated  # its own, drawn for this start
    shared = environments.SideSpec("B", sys.executable, pythonpath=("/checkout",)).environment()
    assert shared["PYTHONPATH"] == "/checkout:/leaks" and shared["LOADERBENCH_RUNNER"] == "gpu"


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--a-python", "/no/such/python"], "side A: interpreter /no/such/python does not exist"),
        (["--a-python", sys.executable, "--a-spec", "torch==2.13.0"], "not both"),
        (["--b-repo", "."], "--b-repo needs --b-ref"),
        (["--b-args=--lb-cost-scale=-1"], "side B: --lb-cost-scale must be > 0"),
        (["--seconds-per-row", "0"], "the budget must be > 0"),
        (["--measures", "latency"], "--measures: unknown measure latency"),
        (["--", "--lb-profiles=nope"], "unknown profile nope"),
        (["--", "-k", "throughput"], "not a grid selection"),
    ],
)
def test_unusable_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, problem):
    out = tmp_path / "ab"
    assert main(["ab", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and "\n" not in err
    assert not out.exists()
