"""A baseline's recipe (paired/recipe.py): what it records, how it is rebuilt (a cached virtualenv,
the project at its commit, isolated from this shell), and the one-line errors of a recipe that
cannot be used, for `gate --remeasure` and for `make bench`'s side-by-side step (test_settle.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from synthetic_results import CPU_W0, JITTER, merged, results

from loaderbench.cli import main
from loaderbench.config import recorded_selection
from loaderbench.errors import InputError
from loaderbench.paired import recipe
from loaderbench.results import Recipe
from loaderbench.storage import write_json_atomic

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.processes
def test_a_recipe_records_python_torch_the_other_packages_the_commit_and_the_arguments():
    made = recipe.capture(sys.executable, ["--lb-grid=quick"], PROJECT, torch="torch==2.13.0")
    assert made.python == ".".join(map(str, sys.version_info[:3]))
    assert made.torch == "torch==2.13.0" and made.args == ("--lb-grid=quick",)
    names = {req.split("==")[0].lower() for req in made.packages}
    assert {"numpy", "scipy", "pytest-benchmark"} <= names
    assert not names & {"torch", "loaderbench", "pip"}
    assert made.commit is not None and len(made.commit) == 40 and isinstance(made.dirty, bool)
    assert recipe.capture(sys.executable, [], PROJECT).torch.startswith("torch==2.")


@pytest.mark.parametrize(
    "stored, problem",
    [
        (None, "records no recipe"),
        (
            Recipe.from_json(
                {
                    "python": "3.11.7",
                    "torch": "torch==2.13.0",
                    "packages": [],
                    "commit": None,
                    "args": [],
                }
            ),
            "lacks commit",
        ),
    ],
)
def test_a_recipe_that_cannot_be_rebuilt_says_why(stored, problem):
    with pytest.raises(InputError, match=problem):
        recipe.check(stored)


def test_a_malformed_recipe_is_refused_when_the_baseline_is_read(tmp_path, capsys):
    """Its fields are checked once, as the file is loaded: exit 2 with one line naming the field,
    whatever the command (here a verdict by stored numbers, which never rebuilds it)."""
    baseline, current = tmp_path / "base.json", tmp_path / "current.json"
    stored = merged([results({CPU_W0: JITTER})] * 2)
    stored["loaderbench"]["baseline"]["recipe"] = {
        "python": "3.11.7",
        "torch": ["torch==2.13.0"],
        "packages": [],
        "commit": "abc",
        "args": [],
    }
    write_json_atomic(baseline, stored)
    current.write_text(json.dumps(results({CPU_W0: JITTER})))
    assert main(["gate", str(baseline), str(current), "--side-by-side", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith(
        f"{baseline}: not a loaderbench results file: the baseline's recipe's torch is "
        "list ['torch==2.13.0'], expected str"
    )


@pytest.fixture
def stored_recipe() -> Recipe:
    return Recipe(
        python=".".join(map(str, sys.version_info[:3])),
        torch="torch==2.13.0",
        packages=("numpy==2.4.6",),
        commit="HEAD",
        args=("--lb-grid=quick",),
    )


@pytest.fixture
def clone(tmp_path) -> Path:
    """A clone of this project's repository, so checkouts made by a test stay out of it."""
    target = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-checkout", str(PROJECT), str(target)], check=True
    )
    return target


@pytest.mark.processes
def test_a_recipe_is_rebuilt_once_torch_first_and_runs_isolated(tmp_path, clone, stored_recipe):
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        if command[:2] == ["git", "-C"]:
            return subprocess.run(command, **kwargs)  # the real checkout of this project
        return subprocess.CompletedProcess(command, 0)

    side = recipe.rebuild(stored_recipe, tmp_path, clone, run=run)
    installs = [c for c in calls if "install" in c]
    assert installs[0][-1] == "torch==2.13.0" and installs[1][-2] == "-r"
    assert side.isolated and (Path(side.pythonpath[0]) / "loaderbench" / "results.py").is_file()
    assert "commit" in side.what
    again = len(calls)
    recipe.rebuild(stored_recipe, tmp_path, clone, run=run)
    assert not [c for c in calls[again:] if "install" in c]  # the cached venv is reused


@pytest.mark.processes
def test_a_recipe_that_cannot_be_installed_is_one_line(tmp_path, clone, stored_recipe):
    def run(command, **kwargs):
        if command[:2] == ["git", "-C"]:
            return subprocess.run(command, **kwargs)
        return subprocess.CompletedProcess(command, 1 if "install" in command else 0)

    with pytest.raises(InputError, match="side A: the baseline's recipe: could not be installed"):
        recipe.rebuild(stored_recipe, tmp_path, clone, run=run)


@pytest.mark.processes
def test_a_recipe_for_a_python_that_is_not_here_is_refused(tmp_path, clone, stored_recipe):
    with pytest.raises(InputError, match="no python3.99 is on PATH"):
        recipe.rebuild(
            replace(stored_recipe, python="3.99.1"),
            tmp_path,
            clone,
            run=lambda c, **k: subprocess.run(c, **k),
        )


def test_remeasure_without_a_recipe_exits_2_with_one_line(tmp_path, capsys):
    baseline = tmp_path / "base.json"
    write_json_atomic(baseline, merged([results({CPU_W0: JITTER})] * 2))
    assert main(["gate", "--remeasure", str(baseline), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "records no recipe" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_the_recipes_selection_is_kept_unless_given_again():
    recorded = ["--lb-grid=full", "-k", "cpu", "--lb-profiles", "cpu,io", "--lb-cost-scale=1.2"]
    merged = recorded_selection(recorded, ["--lb-profiles=io", "--lb-inject=fetch-work=0.1"])
    assert (merged.choice.grid, merged.choice.profiles) == ("full", "io")
    assert merged.settings.args() == ["--lb-cost-scale=1.2", "--lb-inject=fetch-work=0.1"]
    assert recorded_selection(recorded, ["--lb-cost-scale=1.1"]).settings.cost_scale == 1.1
