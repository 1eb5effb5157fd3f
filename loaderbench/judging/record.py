"""Recording a baseline: the grid run N times, each in a fresh pytest process with its memory
layout randomised, a progress line per run, the runs pooled and stored as baseline.py lays out
(or added to this machine kind's baseline, --extend). ``run_pytest``, one pytest process and the
results file it wrote, is also what confirm.py's reruns use.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loaderbench import machine
from loaderbench.config import args_for, recorded_value
from loaderbench.durations import duration_text
from loaderbench.errors import InputError
from loaderbench.judging.baseline import (
    baseline_target,
    check_extendable,
    check_same_code,
    extendable_baseline,
    merge_runs,
    refuse_overwrite,
)
from loaderbench.machine import Fingerprint
from loaderbench.measuring import layout
from loaderbench.results import Recipe, Results, load_results
from loaderbench.storage import write_json_atomic

DEFAULT_RUNS = 3


def pytest_command(python: str, out: Path, runner: str, args: list[str]) -> list[str]:
    """One grid run in a fresh interpreter, raw rounds in ``out``."""
    return [
        python,
        "-m",
        "pytest",
        "tests/benchmarks",
        "--benchmark-only",
        "--benchmark-quiet",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={out}",
        *args_for(runner=runner),
        *args,
    ]


class PytestFailed(Exception):
    """A pytest run exited with a non-zero code: the results file it names is not read."""

    def __init__(self, code: int):
        super().__init__(f"pytest exited with code {code}")
        self.code = code


def run_pytest(
    command: list[str], cwd: str | None = None, *, slot: tuple[int, int] = (0, 1)
) -> Results:
    """Run ``command``, a pytest writing ``--benchmark-json=PATH`` (output passes through), in
    ``cwd`` as run ``slot`` = (k, n) of a series, its memory layout randomised (layout.py); the
    results it wrote. PytestFailed when it fails; InputError when the file is unusable."""
    out = Path(next(a.split("=", 1)[1] for a in command if a.startswith("--benchmark-json=")))
    code = subprocess.run(command, cwd=cwd, env=layout.environment(*slot)).returncode
    if code != 0:
        raise PytestFailed(code)
    return load_results(out)


def run_grid(command: list[str], label: str, *, slot: tuple[int, int] = (0, 1)) -> Results:
    """One run of a baseline (run_pytest from the project root); its results, or an InputError
    saying what failed."""
    if not Path("tests/benchmarks").is_dir():
        raise InputError("tests/benchmarks not found: run from the loaderbench project root")
    try:
        return run_pytest(command, slot=slot)
    except PytestFailed as exc:
        raise InputError(
            f"{label}: pytest exited with code {exc.code} ({shlex.join(command)}); "
            "nothing was written"
        ) from None


class Progress:
    """ "run k of n, elapsed, estimate" lines for a sequence of equally long runs."""

    def __init__(self, total: int, clock=time.monotonic):
        self.total, self.clock, self.start = total, clock, clock()

    def line(self, done: int, what: str) -> str:
        elapsed = self.clock() - self.start
        if done >= self.total:
            return f"{what} (took {duration_text(elapsed)})"
        estimate = (
            f"about {duration_text(elapsed / done * (self.total - done))} left"
            if done
            else "no estimate before the first run ends"
        )
        return f"{what} (elapsed {duration_text(elapsed)}, {estimate})"

    def show(self, done: int, what: str) -> None:
        print(f"loaderbench: {self.line(done, what)}", flush=True)


# --- checks of the `loaderbench baseline` command ------------------------------------------------


def check_run_count(runs: int, *, extend: bool, force: bool) -> None:
    if extend and force:
        raise InputError(
            "--force replaces this machine kind's baseline, --extend adds runs to it: "
            "pass one of them"
        )
    if extend and runs < 1:
        raise InputError(f"--runs must be >= 1, got {runs}")
    if not extend and runs < 2:
        raise InputError(f"--runs must be >= 2 to measure the noise between runs, got {runs}")


def record(
    *,
    runner: str,
    runs: int,
    pytest_args: list[str],
    root: Path,
    force: bool,
    extend: bool = False,
    python: str = sys.executable,
    run=None,
    fingerprint: Fingerprint | None = None,
    recipe: Recipe | None = None,
) -> Path:
    """Run the grid ``runs`` times and store the pooled baseline; returns its path.

    ``extend``: add the runs to this machine kind's baseline instead (same file, its runs kept
    first), so that one baseline can pool sittings hours apart. ``fingerprint`` (default: this
    machine's) is checked against stored baselines before any run; the runs' own recorded
    fingerprint decides where the result goes and what it replaces or extends.
    ``recipe``: how to rebuild these runs' environment (recipe.capture), stored with them.
    """
    check_run_count(runs, extend=extend, force=force)
    run = run or run_grid
    folder = root / runner
    fingerprint = fingerprint or machine.fingerprint()
    loader = recorded_value(pytest_args, "loader")
    # Before spending minutes on runs that could not be stored.
    if extend:
        prior_path, prior = extendable_baseline(folder, fingerprint, loader)
        check_same_code(prior, prior_path, recipe)
    else:
        refuse_overwrite(folder, fingerprint, force, loader)
    progress = Progress(runs)
    results = []
    with tempfile.TemporaryDirectory(prefix="loaderbench-baseline-") as tmp:
        for k in range(runs):
            progress.show(k, f"run {k + 1} of {runs}")
            command = pytest_command(python, Path(tmp) / f"run-{k + 1}.json", runner, pytest_args)
            results.append(run(command, f"run {k + 1} of {runs}", slot=(k, runs)))
    progress.show(runs, f"{runs} runs done")
    recorded = {r.runner for r in results}
    if recorded != {runner}:
        raise InputError(
            f"the runs recorded runner class {sorted(map(str, recorded))}, expected "
            f"{runner!r}; nothing was written"
        )
    if extend:
        check_extendable(prior, prior_path, results)
        write_json_atomic(prior_path, merge_runs(results, prior=prior).to_json())
        return prior_path
    merged = merge_runs(results, recipe=recipe)
    kind = merged.fingerprint or Fingerprint()
    existing = refuse_overwrite(folder, kind, force, merged.loader_class)
    target = baseline_target(folder, kind)
    write_json_atomic(target, merged.to_json())
    for old in existing:
        old.unlink()  # one baseline per machine kind: the verdict must not pick a stale one
    return target
