"""`loaderbench ab`: two environments compared on one machine in one job, A B A B ...

Each side is an interpreter (``--a-python``), a pip requirement installed into a virtualenv made
here (``--a-spec 'torch==2.12.0'``), or neither (this interpreter); each side may add its own pytest
arguments (``--a-args``), so one interpreter with two settings is an A/B too. Every run is a fresh
pytest process over the same selection. Interleaving puts A and B side by side in time, so the slow
drift of a shared runner hits both alike; the noise band is taken between consecutive A runs, the
neighbours each B run actually competes with. B is judged against A by the same rules as the gate.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .baseline import Progress, merge_runs, pytest_command, resolve_runner, run_grid
from .errors import EXIT_OK, EXIT_REGRESSION, InputError
from .gate import add_threshold_options, compare_header, judge, report
from .storage import write_json_atomic
from .thresholds import load_thresholds

DEFAULT_PAIRS = 5
DEFAULT_OUT = Path("results/ab")
DEFAULT_VENVS = Path(".venv-ab")


@dataclass
class Side:
    label: str
    python: str = sys.executable
    spec: str | None = None
    args: list[str] = field(default_factory=list)

    def describe(self) -> str:
        what = f"pip {self.spec!r}" if self.spec else self.python
        return f"{self.label}: {what}" + (f", pytest args {shlex.join(self.args)}" if self.args else "")


def venv_for(spec: str, venvs: Path) -> Path:
    """A stable folder per requirement spec, so a second A/B with the same spec reuses it."""
    digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
    return venvs / digest


def setup_commands(spec: str, venv: Path, project: Path, base_python: str) -> list[list[str]]:
    """Commands that make ``venv`` hold ``spec`` and this project (torch first, as the Makefile)."""
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # A spec may carry pip options: 'torch==2.12.0 --index-url https://download.pytorch.org/whl/cpu'
    return [[base_python, "-m", "venv", str(venv)], [*pip, *shlex.split(spec)],
            [*pip, "-e", str(project)]]


def prepare(side: Side, venvs: Path, project: Path, base_python: str, run=None) -> None:
    """Give a spec side its own interpreter, installing into its virtualenv unless done before."""
    if side.spec is None:
        return
    run = run or subprocess.run
    venv = venv_for(side.spec, venvs)
    stamp = venv / ".loaderbench-spec"
    side.python = str(venv / "bin" / "python")
    if stamp.is_file() and stamp.read_text() == side.spec:
        return
    print(f"loaderbench ab: setting up {venv} with {side.spec!r}", flush=True)
    for command in setup_commands(side.spec, venv, project, base_python):
        if run(command).returncode != 0:
            raise InputError(f"side {side.label}: could not install {side.spec!r} "
                             f"({shlex.join(command)} failed); check the requirement spec")
    stamp.write_text(side.spec)


def schedule(pairs: int) -> list[tuple[int, str]]:
    """(pair, side) in run order: A B A B ..."""
    return [(k, label) for k in range(pairs) for label in ("A", "B")]


def run_pairs(a: Side, b: Side, *, pairs: int, runner: str, common: list[str], out: Path,
              run=None) -> tuple[list[dict], list[dict]]:
    run = run or run_grid
    sides = {"A": a, "B": b}
    results: dict[str, list[dict]] = {"A": [], "B": []}
    progress = Progress(2 * pairs)
    for done, (k, label) in enumerate(schedule(pairs)):
        side = sides[label]
        progress.show(done, f"pair {k + 1} of {pairs}: {label}")
        command = pytest_command(side.python, out / f"{label}-{k + 1}.json", runner,
                                 [*common, *side.args])
        results[label].append(run(command, f"pair {k + 1} of {pairs}, side {label}",
                                  slot=(k, pairs)))
    progress.show(2 * pairs, f"{pairs} pairs done")
    return results["A"], results["B"]


def cmd_ab(args) -> int:
    if args.pairs < 2:
        raise InputError(f"--pairs must be >= 2 to measure the noise between runs, got {args.pairs}")
    runner = resolve_runner(args.runner)
    a = Side("A", args.a_python or sys.executable, args.a_spec, shlex.split(args.a_args or ""))
    b = Side("B", args.b_python or sys.executable, args.b_spec, shlex.split(args.b_args or ""))
    for side, python in ((a, args.a_python), (b, args.b_python)):
        if python and side.spec:
            raise InputError(f"side {side.label}: give an interpreter or a spec, not both")
        if python and not Path(python).is_file():
            raise InputError(f"side {side.label}: interpreter {python} does not exist")
    if (a.python, a.spec, a.args) == (b.python, b.spec, b.args):
        print("loaderbench ab: A and B are the same environment: this is an A/A run (a check of "
              "the false-alarm rate)", flush=True)
    project = Path.cwd()
    for side in (a, b):
        prepare(side, Path(args.venvs), project, sys.executable)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="loaderbench-ab-") as tmp:
        runs_a, runs_b = run_pairs(a, b, pairs=args.pairs, runner=runner,
                                   common=args.pytest_args, out=Path(tmp))
    merged_a, merged_b = merge_runs(runs_a, adjacent=True), merge_runs(runs_b, adjacent=True)
    write_json_atomic(out / "A.json", merged_a)
    write_json_atomic(out / "B.json", merged_b)
    thresholds = load_thresholds().overridden(min_effect=args.min_effect, alpha=args.alpha)
    # Both sides ran interleaved on this machine: their seconds always compare.
    verdict = judge(merged_a, merged_b, thresholds, only=args.only or "all")
    verdict.header = compare_header(merged_a, merged_b, names=("A", "B"))
    report(verdict, out / "verdict.md",
           [a.describe(), b.describe(), f"{args.pairs} pairs, interleaved A B; pooled rounds in "
                                        f"{out / 'A.json'} and {out / 'B.json'}"])
    return EXIT_REGRESSION if verdict.regressed else EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser(
        "ab", help="compare two environments, interleaved A B A B (exit 1 if B regressed)",
        description="Run the selected benchmarks alternately in two environments, each run a "
                    "fresh pytest process, and judge B against A. Anything after -- goes to every "
                    "run (e.g. -- --lb-profiles=cpu --lb-workers=0,2).")
    for label in ("a", "b"):
        side = label.upper()
        parser.add_argument(f"--{label}-python", metavar="PATH",
                            help=f"interpreter of side {side} (a venv's bin/python). "
                                 "Default: this one")
        parser.add_argument(f"--{label}-spec", metavar="REQUIREMENT",
                            help=f"pip requirement installed into a new virtualenv for side "
                                 f"{side}, e.g. 'torch==2.12.0'")
        parser.add_argument(f"--{label}-args", metavar="ARGS",
                            help=f"extra pytest arguments of side {side} only; write it "
                                 f"with '=': --{label}-args='--lb-cost-scale=1.1'")
    parser.add_argument("--pairs", type=int, default=DEFAULT_PAIRS, metavar="K",
                        help=f"A B pairs to run (>= 2). Default: {DEFAULT_PAIRS}")
    parser.add_argument("--runner", metavar="CLASS",
                        help="runner class recorded in the results. Default: as for baseline")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help=f"where A.json, B.json and verdict.md go. Default: {DEFAULT_OUT}")
    parser.add_argument("--venvs", default=str(DEFAULT_VENVS), metavar="DIR",
                        help=f"where spec virtualenvs are made and reused. Default: {DEFAULT_VENVS}")
    add_threshold_options(parser)
    parser.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                        help="passed to every run of both sides")
    parser.set_defaults(run=cmd_ab)
