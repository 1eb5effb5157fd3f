"""Where a side's interpreter and code come from.

- this interpreter, or another one (``--b-python``);
- a pip requirement installed into a virtualenv made here and reused (``--b-spec``);
- a git ref of this project, or of the repository that holds the user's dataset (``--b-ref``,
  ``--b-repo``): checked out once with ``git worktree`` into a cache folder and put first on the
  side's import path;
- a baseline's recipe (recipe.py): its Python, its packages, the project at its commit.

Everything made here lives under one cache folder (``.venv-ab/`` by default) and is reused when
asked for again.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from loaderbench.errors import InputError
from loaderbench.paired.control import SideSpec

DEFAULT_CACHE = Path(".venv-ab")

#: How a command is run (subprocess.run; the tests give stand-ins).
RunCommand = Callable[..., subprocess.CompletedProcess]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def venv_python(venv: Path) -> str:
    return str(venv / "bin" / "python")


def install_venv(
    venv: Path,
    steps: list[list[str]],
    stamp_text: str,
    base_python: str,
    what: str,
    run: RunCommand = subprocess.run,
) -> str:
    """Make ``venv`` with ``base_python`` and run ``steps`` (pip installs, each a list of
    arguments after ``python -m pip install``) unless a finished one with the same ``stamp_text``
    is there; its interpreter. A step that fails is an InputError naming it; the half-made venv
    is not stamped, so the next attempt starts it again."""
    stamp = venv / ".loaderbench-stamp"
    if stamp.is_file() and stamp.read_text() == stamp_text:
        return venv_python(venv)
    print(f"loaderbench: setting up {venv} for {what}", file=sys.stderr, flush=True)
    pip = [venv_python(venv), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    commands = [[base_python, "-m", "venv", "--clear", str(venv)]] + [[*pip, *s] for s in steps]
    for command in commands:
        try:
            code = run(command).returncode
        except OSError as exc:
            raise InputError(f"{what}: cannot run {command[0]}: {exc.strerror}") from None
        if code != 0:
            raise InputError(
                f"{what}: could not be installed ({shlex.join(command)} exited "
                f"with {code}); check the requirement"
            )
    venv.mkdir(parents=True, exist_ok=True)
    stamp.write_text(stamp_text)
    return venv_python(venv)


def spec_side(
    label: str, spec: str, cache: Path, project: Path, *, run: RunCommand = subprocess.run
) -> SideSpec:
    """A virtualenv holding ``spec`` (torch first, as the Makefile installs) and this project."""
    venv = cache / _digest("spec", spec, str(project.resolve()))
    # A spec may carry pip options: 'torch==2.12.0 --index-url https://download.pytorch.org/whl/cpu'
    python = install_venv(
        venv,
        [shlex.split(spec), ["-e", str(project)]],
        spec,
        sys.executable,
        f"side {label}: pip {spec!r}",
        run,
    )
    return SideSpec(label, python, what=f"pip {spec!r}")


def checkout(
    repo: Path, ref: str, cache: Path, *, label: str = "", run: RunCommand = subprocess.run
) -> tuple[str, Path]:
    """(commit, folder) of ``ref`` of the git repository ``repo``, checked out (detached) with
    ``git worktree`` into ``cache`` unless it is there already."""
    what = f"side {label}: " if label else ""
    found = run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    commit = found.stdout.strip()
    if found.returncode != 0 or not commit:
        raise InputError(
            f"{what}git ref {ref!r} does not exist in {repo} (a branch, tag or "
            "commit of that repository; fetch it first if it is remote)"
        )
    folder = cache / "refs" / f"{_digest(str(repo.resolve()))}-{commit[:12]}"
    if (folder / ".git").exists():
        return commit, folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    made = run(
        ["git", "-C", str(repo), "worktree", "add", "--force", "--detach", str(folder), commit],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        last = (made.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(f"{what}cannot check out {ref!r} of {repo} into {folder}: {last}")
    return commit, folder


def import_paths(folder: Path) -> tuple[str, ...]:
    """What to put on the import path for a checkout: its root, and its src/ when it has one."""
    return (str(folder), *([str(folder / "src")] if (folder / "src").is_dir() else []))


def ref_side(
    base: SideSpec,
    ref: str,
    repo: Path,
    cache: Path,
    project: Path,
    *,
    run: RunCommand = subprocess.run,
) -> SideSpec:
    """``base`` running the code of ``ref``: this project's own (loaderbench, bench_datasets) when
    ``repo`` is the project's repository, else the user's dataset code from ``repo``."""
    commit, folder = checkout(repo, ref, cache, label=base.label, run=run)
    own = repo.resolve() == project.resolve()
    what = f"git ref {ref} ({commit[:12]}){'' if own else f' of {repo}'}"
    return SideSpec(
        base.label,
        base.python,
        base.settings,
        pythonpath=import_paths(folder) + base.pythonpath,
        cwd=base.cwd,
        isolated=base.isolated,
        what=f"{base.what}, {what}",
    )
