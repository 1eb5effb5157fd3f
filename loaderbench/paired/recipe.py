"""A baseline's recipe: how to rebuild what was measured, so that it can be measured again side by
side with the current environment instead of trusting numbers taken hours or days ago.

``capture`` (at ``make baseline``) records the torch requirement (``--torch``, which the Makefile
passes as its ``TORCH``; else ``torch==`` the installed version), the frozen list of every other
distribution in the measuring interpreter, its Python version, the project's git commit (and
whether the tree had uncommitted changes) and the pytest arguments of the runs.

``rebuild`` makes, once, a virtualenv under the cache folder for that recipe: the recorded Python
(this interpreter when the versions match, else ``pythonX.Y`` from PATH), the torch requirement
first (as the Makefile installs it), then the frozen list, and the project checked out at its
commit (``git worktree``) first on the side's import path. The side runs isolated: no PYTHON* or
LOADERBENCH_* variable of the current shell reaches it.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from loaderbench.errors import InputError
from loaderbench.paired import environments
from loaderbench.paired.control import SideSpec
from loaderbench.results import Recipe

#: Distributions a venv brings itself, or that the recipe installs otherwise.
NOT_FROZEN = ("loaderbench", "pip", "setuptools", "wheel", "torch")
_FREEZE = (
    "import importlib.metadata as m, json; print(json.dumps(sorted("
    "f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions() "
    "if d.metadata['Name'])))"
)


def frozen_packages(python: str, run=subprocess.run) -> list[str]:
    """``name==version`` of every distribution ``python`` has, but NOT_FROZEN."""
    done = run([python, "-c", _FREEZE], capture_output=True, text=True)
    if done.returncode != 0:
        raise InputError(
            f"cannot list the packages of {python}: "
            f"{(done.stderr.strip().splitlines() or ['no message'])[-1]}"
        )
    names = json.loads(done.stdout)
    return [req for req in names if req.split("==")[0].lower().replace("_", "-") not in NOT_FROZEN]


def git_state(project: Path, run=subprocess.run) -> tuple[str | None, bool]:
    """(commit, dirty) of the project's checkout; (None, False) outside git."""
    head = run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return None, False
    status = run(
        ["git", "-C", str(project), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    )
    return head.stdout.strip(), bool(status.stdout.strip())


def torch_requirement(python: str, given: str | None, run=subprocess.run) -> str:
    if given:
        return given
    done = run(
        [python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise InputError(f"{python} cannot import torch: pass --torch REQUIREMENT")
    return "torch==" + done.stdout.strip().split("+", 1)[0]


def capture(
    python: str, args: list[str], project: Path, torch: str | None = None, run=subprocess.run
) -> Recipe:
    """The recipe of runs made with ``python`` and pytest ``args`` from ``project``."""
    version = (
        run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        or platform.python_version()
    )
    commit, dirty = git_state(project, run)
    return Recipe(
        python=version,
        torch=torch_requirement(python, torch, run),
        packages=tuple(frozen_packages(python, run)),
        commit=commit,
        dirty=dirty,
        args=tuple(args),
    )


def check(recipe: Recipe | None) -> Recipe:
    """``recipe`` if ``rebuild`` can rebuild it; an InputError otherwise. (Its fields' types were
    checked when the baseline was read: results.Recipe.)"""
    if recipe is None:
        raise InputError(
            "the baseline records no recipe (recorded before recipes were kept): "
            "re-record it with `make baseline FORCE=1` to remeasure it"
        )
    if recipe.commit is None:
        raise InputError(
            "the baseline's recipe lacks commit (a commit is only recorded from a git "
            "checkout): re-record it with `make baseline FORCE=1` from one"
        )
    return recipe


def find_python(version: str) -> str:
    """An interpreter of ``version``'s major.minor: this one, else pythonX.Y on PATH."""
    wanted = ".".join(version.split(".")[:2])
    if platform.python_version().startswith(wanted + "."):
        return sys.executable
    found = shutil.which(f"python{wanted}")
    said = (
        subprocess.run(
            [found, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
        )
        if found
        else None
    )
    if (
        found is None
        or said is None
        or said.returncode != 0
        or not said.stdout.startswith(wanted + ".")
    ):
        raise InputError(
            f"the baseline was recorded with Python {version}; no python{wanted} is "
            "on PATH to rebuild it with (install it, or re-record the baseline "
            "with this Python)"
        )
    return found


def rebuild(
    recipe: Recipe | None, cache: Path, project: Path, *, label: str = "A", run=subprocess.run
) -> SideSpec:
    """The side that runs the recipe's environment (built under ``cache`` unless already there)."""
    recipe = check(recipe)
    assert recipe.commit is not None  # check refuses a recipe without one
    commit, folder = environments.checkout(project, recipe.commit, cache, label=label, run=run)
    # The cache key as the recipe's stored fields spell it (venvs built before keep their names).
    stored = recipe.to_json()
    key = json.dumps({k: stored[k] for k in ("python", "torch", "packages")}, sort_keys=True)
    venv = cache / "recipes" / environments._digest("recipe", key)
    requirements = venv.parent / f"{venv.name}-requirements.txt"
    requirements.parent.mkdir(parents=True, exist_ok=True)
    requirements.write_text("\n".join(recipe.packages) + "\n")
    python = environments.install_venv(
        venv,
        [recipe.torch.split(), ["-r", str(requirements)]],
        key,
        find_python(recipe.python),
        f"side {label}: the baseline's recipe",
        run,
    )
    return SideSpec(
        label,
        python,
        pythonpath=environments.import_paths(folder),
        isolated=True,
        what=f"the baseline's recipe (Python {recipe.python}, {recipe.torch}, "
        f"commit {commit[:12]})",
    )
