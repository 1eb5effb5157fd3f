"""Recording baselines: the grid run N times, each in a fresh pytest process, pooled into one
pytest-benchmark file per runner class, with a noise band per benchmark.

Layout (pytest-benchmark's own storage, so ``pytest --benchmark-storage=baselines/cpu
--benchmark-compare`` and ``pytest-benchmark compare`` read it)::

    baselines/<runner class>/<machine id>/NNNN_<machine kind>.json

The machine id is pytest-benchmark's (OS-implementation-Python version-bits); the runner class
folder above it is what tells a CPU runner from a GPU runner. A runner class may hold one baseline
per machine kind (CPU model, cores, GPU: machine.MACHINE_KIND_FIELDS), because a pool of runners
of one class can mix kinds and seconds do not compare across them: the verdict judges against the
baseline of the candidate's own kind, or, when there is none, only the ratios that hold across
machines (gate.py). The file is a normal pytest-benchmark JSON whose ``stats`` are recomputed over
the pooled rounds of every run (``stats.data`` holds them run after run), plus
``loaderbench.judging.baseline``: the run count, every run's speed probes (speed.py), per benchmark and
derived ratio the median of each run (``run_medians``) and their noise band, per memory quantity
(``<benchmark>.peak_anon_pss_mb``, ``.anon_pss_per_worker_mb``) each run's value (``run_values``),
and the **recipe** (recipe.py): the torch requirement, the frozen package list, the Python
version, the project commit and the arguments, so that ``loaderbench gate --remeasure`` can
rebuild what was measured and measure it side by side with the current environment.

Noise band = the largest ratio between two runs' medians, minus 1: the biggest move the baseline
itself showed between unchanged processes. The verdict (gate.py) judges against the run values
themselves, with a prediction interval.

A baseline can only be as broad as the moves its runs saw. Runs recorded back to back share the
hour's machine state: on the 2-core AMD EPYC machine of 2026-11-25 the five runs of one sitting
put ``test_time_to_first_batch[pyobj-w2-fork]`` at 61-67 ms, six unchanged ``make bench`` runs in
the hour after it at 62-84 ms. ``--extend`` adds runs recorded later to the same baseline
(``loaderbench.judging.baseline.sittings`` says when, and how many runs each time), so its runs cover
the drift between sittings too.
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from pytest_benchmark.stats import Stats
from pytest_benchmark.utils import get_machine_id

from loaderbench import machine
from loaderbench.errors import EXIT_OK, InputError
from loaderbench.judging import derived
from loaderbench.measuring import layout, speed
from loaderbench.results import load_results, missing_rounds
from loaderbench.runner import default_runner, parse_runner, runner_of
from loaderbench.storage import write_json_atomic

BASELINES_ROOT = Path("baselines")
DEFAULT_RUNS = 3
BAND_RULE = "largest ratio between the medians of any two runs, minus 1"
#: What a memory benchmark records that the verdict judges, in MB (memory.summarise): the
#: anonymous PSS, which other processes mapping torch's libraries do not move (memory.py).
MEMORY_QUANTITIES = ("peak_anon_pss_mb", "anon_pss_per_worker_mb")
#: What runs added to a baseline (--extend) must share with it, beyond the machine kind: the
#: software measured (fingerprint fields) and the grid settings (loaderbench section).
EXTEND_SAME_FIELDS = ("torch", "python", "cuda")
EXTEND_SAME_SETTINGS = ("grid", "cost_scale", "runner")


# --- noise ----------------------------------------------------------------------------------------


def noise_band(medians: list[float]) -> float | None:
    """The largest relative move between run medians; None with fewer than two runs (one run
    cannot show how far a process may move)."""
    values = [m for m in medians if m is not None and m > 0]
    if len(values) < 2:
        return None
    return max(values) / min(values) - 1


def recorded_noise(results: dict) -> dict | None:
    """{name: {"band": ..., "run_medians": [...]}} of a recorded baseline, or None."""
    info = results.get("loaderbench")
    recorded = info.get("baseline") if isinstance(info, dict) else None
    noise = recorded.get("noise") if isinstance(recorded, dict) else None
    return noise if isinstance(noise, dict) else None


# --- pooling runs ---------------------------------------------------------------------------------


def _rounds(results: dict) -> dict[str, list[float]]:
    return {b["name"]: list(b["stats"].get("data") or []) for b in results["benchmarks"]}


def _pooled_stats(data: list[float], iterations: int) -> dict:
    stats = Stats()  # pytest-benchmark's own, so every field it reads is there and means the same
    for value in data:
        stats.update(value)
    return {**stats.as_dict(), "data": data, "iterations": iterations}


def merge_runs(runs: list[dict], *, prior: dict | None = None, recipe: dict | None = None) -> dict:
    """One pytest-benchmark JSON from several runs of the same selection, with what the verdict
    needs of each run (run medians, memory values) and, given, the ``recipe`` to rebuild it.

    ``prior``: a baseline this function wrote earlier, which ``runs`` extend (``baseline
    --extend``, after check_extendable): its pooled rounds, run values and speed probes come
    first, as if its runs had been the first of ``runs``, and its recipe is kept.
    """
    if not runs:
        raise ValueError("no runs to merge")
    prior_rounds = _rounds(prior) if prior else {}
    prior_noise = (recorded_noise(prior) or {}) if prior else {}

    def before(name: str, key: str) -> list[float]:
        return list((prior_noise.get(name) or {}).get(key) or [])

    entries: dict[str, dict] = {}
    per_run: dict[str, list[list[float]]] = {}
    for run in runs:
        for bench in run["benchmarks"]:
            entries.setdefault(bench["name"], bench)
            per_run.setdefault(bench["name"], []).append(list(bench["stats"].get("data") or []))
    benchmarks, noise = [], {}
    for name, first in entries.items():
        pooled = prior_rounds.get(name, []) + [
            value for rounds in per_run[name] for value in rounds
        ]
        bench = {
            **first,
            "stats": _pooled_stats(pooled, first["stats"].get("iterations", 1)),
            "extra_info": _rates_for(dict(first.get("extra_info") or {}), pooled),
        }
        benchmarks.append(bench)
        medians = before(name, "run_medians") + [statistics.median(r) for r in per_run[name] if r]
        noise[name] = {"band": noise_band(medians), "run_medians": medians}
    for name, quantity, values in _memory_values(runs):
        key = f"{name}.{quantity}"
        noise[key] = {"run_values": before(key, "run_values") + values}

    last = runs[-1]
    info = dict(last.get("loaderbench") or {})
    info.pop("invocation", None)  # one run's temporary paths; a pooled file cannot be rerun as one
    cores = ((last.get("machine_info") or {}).get("loaderbench") or {}).get("usable_cores", 1)
    info["derived"] = derived.derive(benchmarks, cores)
    per_run_entries = [
        {e["name"]: e for e in derived.derive(run["benchmarks"], cores)} for run in runs
    ]
    for entry in info["derived"]:
        medians = before(entry["name"], "run_medians")
        for run, own in zip(runs, per_run_entries):
            samples = derived.per_round(entry, _rounds(run))
            if samples:
                medians.append(statistics.median(samples))
            elif entry["name"] in own:  # a kind without a per-round form: the run's own value
                medians.append(own[entry["name"]]["value"])
        noise[entry["name"]] = {"band": noise_band(medians), "run_medians": medians}
    info.pop("speed_probe", None)  # one run's; the pooled file keeps every run's instead
    now = datetime.now(timezone.utc).isoformat()
    kept_recipe = (((prior or {}).get("loaderbench") or {}).get("baseline") or {}).get("recipe")
    info["baseline"] = {
        "runs": _recorded_runs(prior) + len(runs),
        "band_rule": BAND_RULE,
        "noise": noise,
        "sittings": [*sittings(prior), {"date": now, "runs": len(runs)}],
        "speed_probes": [
            *(speed.recorded(prior) if prior else []),
            *(p for run in runs for p in speed.recorded(run)),
        ],
    }
    if kept_recipe or recipe:
        info["baseline"]["recipe"] = kept_recipe or recipe
    return {**last, "benchmarks": benchmarks, "loaderbench": info, "datetime": now}


def _memory_values(runs: list[dict]):
    """(benchmark, quantity, [one value per run]) for every memory benchmark of the runs."""
    found: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for bench in run["benchmarks"]:
            info = bench.get("extra_info") or {}
            if info.get("measure") != derived.MEMORY:
                continue
            for quantity in MEMORY_QUANTITIES:
                value = info.get(quantity)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    found.setdefault((bench["name"], quantity), []).append(float(value))
    return [(name, quantity, values) for (name, quantity), values in found.items()]


def _recorded_runs(baseline: dict | None) -> int:
    info = ((baseline or {}).get("loaderbench") or {}).get("baseline") or {}
    runs = info.get("runs")
    return runs if isinstance(runs, int) and not isinstance(runs, bool) else 0


def sittings(baseline: dict | None) -> list[dict]:
    """When a baseline's runs were recorded: [{"date", "runs"}], one entry per recording session
    (a baseline written before sittings were kept counts as one, dated by the file)."""
    if baseline is None:
        return []
    info = (baseline.get("loaderbench") or {}).get("baseline") or {}
    recorded = info.get("sittings")
    if isinstance(recorded, list) and recorded:
        return [dict(s) for s in recorded if isinstance(s, dict)]
    return [{"date": baseline.get("datetime"), "runs": _recorded_runs(baseline)}]


def recording(baseline: dict) -> str:
    """ " (N runs in K sittings: DATE xN, ...)" for a recorded baseline, "" for a plain results
    file: how much of the machine's drift its noise bands can have seen."""
    if recorded_noise(baseline) is None:
        return ""
    held = sittings(baseline)
    dates = ", ".join(f"{str(s.get('date'))[:10]} x{s.get('runs')}" for s in held)
    return (
        f" ({_recorded_runs(baseline)} runs in {len(held)} "
        f"sitting{'s' if len(held) > 1 else ''}: {dates})"
    )


EXTEND_ADVICE = "record a new baseline with --force (make baseline FORCE=1) instead"


def check_same_code(prior: dict, path: Path, recipe: dict | None) -> None:
    """An InputError unless runs with ``recipe`` measure the project code the baseline at
    ``path`` measured: one recipe must rebuild every run of a baseline."""
    before = ((prior.get("loaderbench") or {}).get("baseline") or {}).get("recipe") or {}
    if before.get("commit") and recipe and recipe.get("commit") != before.get("commit"):
        raise InputError(
            f"cannot extend {path}: it measured the project at commit "
            f"{str(before['commit'])[:12]}, this checkout is at "
            f"{str(recipe.get('commit'))[:12]}; {EXTEND_ADVICE}"
        )


def check_extendable(prior: dict, path: Path, runs: list[dict]) -> None:
    """An InputError (nothing written) unless ``runs`` measured what the baseline at ``path``
    measured, with the same software on the same machine kind: only then do their rounds pool."""
    advice = EXTEND_ADVICE
    before, now = machine.recorded(prior), machine.recorded(runs[-1])
    moved = machine.kind_differences(before, now) + [
        f"{key} {now.get(key)} vs {before.get(key)}"
        for key in EXTEND_SAME_FIELDS
        if before.get(key) != now.get(key)
    ]
    if moved:
        raise InputError(
            f"cannot extend {path}: the new runs differ from it ({'; '.join(moved)}); {advice}"
        )
    old_info, new_info = prior.get("loaderbench") or {}, runs[-1].get("loaderbench") or {}
    for key in EXTEND_SAME_SETTINGS:
        if old_info.get(key) != new_info.get(key):
            raise InputError(
                f"cannot extend {path}: it was recorded with {key} {old_info.get(key)}, "
                f"the new runs with {new_info.get(key)}; {advice}"
            )
    old_names = {b["name"] for b in prior["benchmarks"]}
    new_names = {b["name"] for run in runs for b in run["benchmarks"]}
    if old_names != new_names:
        only_old, only_new = sorted(old_names - new_names), sorted(new_names - old_names)
        raise InputError(
            f"cannot extend {path}: the new runs measured other benchmarks (only in "
            f"the baseline: {_few(only_old)}; only in the new runs: {_few(only_new)}); "
            f"pass the pytest arguments the baseline was recorded with, or {advice}"
        )


def _few(names: list[str], shown: int = 3) -> str:
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _rates_for(extra_info: dict, pooled: list[float]) -> dict:
    """Samples/s and batches/s of the pooled median (measure.record_rates' definition)."""
    if pooled and "samples_per_s" in extra_info and "samples_per_epoch" in extra_info:
        median = statistics.median(pooled)
        extra_info.update(
            samples_per_s=extra_info["samples_per_epoch"] / median,
            batches_per_s=extra_info["batches_per_epoch"] / median,
        )
    return extra_info


# --- storage --------------------------------------------------------------------------------------


def baseline_files(folder: Path) -> list[Path]:
    """pytest-benchmark storage files (NNNN_*.json) in ``folder`` and its machine-id folders."""
    pattern = "[0-9][0-9][0-9][0-9]_*.json"
    return sorted([*folder.glob(pattern), *folder.glob(f"*/{pattern}")])


def _kind(path: Path) -> dict:
    """The fingerprint a stored baseline carries; an InputError naming the file if unreadable."""
    return machine.recorded(load_results(path))


def locate_baseline(path: Path, runner: str | None = None, fingerprint: dict | None = None) -> Path:
    """``path`` itself when a file. In a folder: the latest baseline recorded on ``fingerprint``'s
    machine kind (this Python's machine id first), else the latest of any kind (the verdict then
    judges ratios only, and says why)."""
    if path.is_file():
        return path
    files = baseline_files(path) if path.is_dir() else []
    if not files:
        if runner:
            raise InputError(
                f"no baseline for runner class {runner!r} in {path}/: record one with "
                f"`make baseline` (or `loaderbench baseline --runner {runner}`) on a "
                "quiet machine"
            )
        raise InputError(f"{path}: no such file, and no baseline folder (NNNN_*.json) either")
    if fingerprint:
        files = same_kind_baselines(path, fingerprint) or files
    own = [f for f in files if f.parent.name == get_machine_id()]
    return max(own or files, key=lambda f: f.name)


def same_kind_baselines(folder: Path, fingerprint: dict) -> list[Path]:
    """The baselines in ``folder`` recorded on ``fingerprint``'s machine kind."""
    return [
        f for f in baseline_files(folder) if not machine.kind_differences(_kind(f), fingerprint)
    ]


def refuse_overwrite(folder: Path, fingerprint: dict, force: bool) -> list[Path]:
    """This machine kind's baselines in ``folder``; an InputError when there are some and ``force``
    is off. Other kinds' baselines are neither returned nor touched."""
    existing = same_kind_baselines(folder, fingerprint)
    if existing and not force:
        raise InputError(
            f"{existing[0]} already holds this runner class's baseline for this machine "
            f"({machine.kind_slug(fingerprint)}); pass --force (make baseline "
            "FORCE=1) to replace it"
        )
    return existing


def baseline_target(folder: Path, fingerprint: dict) -> Path:
    """Where a new baseline of this machine kind goes: the next pytest-benchmark number in the
    folder (so `--benchmark-compare` without a number takes it), named after the kind."""
    numbers = [int(f.name[:4]) for f in baseline_files(folder)]
    number = max(numbers, default=0) + 1
    return folder / get_machine_id() / f"{number:04d}_{machine.kind_slug(fingerprint)}.json"


# --- running the grid -----------------------------------------------------------------------------


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
        f"--lb-runner={runner}",
        *args,
    ]


def run_grid(command: list[str], label: str, *, slot: tuple[int, int] = (0, 1)) -> dict:
    """Run ``command`` (output passes through) as run ``slot`` = (k, n) of a series, its memory
    layout randomised (layout.py); its results, or an InputError saying what failed."""
    if not Path("tests/benchmarks").is_dir():
        raise InputError("tests/benchmarks not found: run from the loaderbench project root")
    out = Path(next(a.split("=", 1)[1] for a in command if a.startswith("--benchmark-json=")))
    code = subprocess.run(command, env=layout.environment(*slot)).returncode
    if code != 0:
        raise InputError(
            f"{label}: pytest exited with code {code} ({shlex.join(command)}); nothing was written"
        )
    return load_results(out)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    """ "run k of n, elapsed, estimate" lines for a sequence of equally long runs."""

    def __init__(self, total: int, clock=time.monotonic):
        self.total, self.clock, self.start = total, clock, clock()

    def line(self, done: int, what: str) -> str:
        elapsed = self.clock() - self.start
        if done >= self.total:
            return f"{what} (took {_duration(elapsed)})"
        estimate = (
            f"about {_duration(elapsed / done * (self.total - done))} left"
            if done
            else "no estimate before the first run ends"
        )
        return f"{what} (elapsed {_duration(elapsed)}, {estimate})"

    def show(self, done: int, what: str) -> None:
        print(f"loaderbench: {self.line(done, what)}", flush=True)


# --- the `loaderbench baseline` command ------------------------------------------------------------


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
    fingerprint: dict | None = None,
    recipe: dict | None = None,
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
    # Before spending minutes on runs that could not be stored.
    if extend:
        prior_path, prior = extendable_baseline(folder, fingerprint)
        check_same_code(prior, prior_path, recipe)
    else:
        refuse_overwrite(folder, fingerprint, force)
    progress = Progress(runs)
    results = []
    with tempfile.TemporaryDirectory(prefix="loaderbench-baseline-") as tmp:
        for k in range(runs):
            progress.show(k, f"run {k + 1} of {runs}")
            command = pytest_command(python, Path(tmp) / f"run-{k + 1}.json", runner, pytest_args)
            results.append(run(command, f"run {k + 1} of {runs}", slot=(k, runs)))
    progress.show(runs, f"{runs} runs done")
    recorded = {runner_of(r) for r in results}
    if recorded != {runner}:
        raise InputError(
            f"the runs recorded runner class {sorted(map(str, recorded))}, expected "
            f"{runner!r}; nothing was written"
        )
    if extend:
        check_extendable(prior, prior_path, results)
        write_json_atomic(prior_path, merge_runs(results, prior=prior))
        return prior_path
    merged = merge_runs(results, recipe=recipe)
    kind = machine.recorded(merged)
    existing = refuse_overwrite(folder, kind, force)
    target = baseline_target(folder, kind)
    write_json_atomic(target, merged)
    for old in existing:
        old.unlink()  # one baseline per machine kind: the verdict must not pick a stale one
    return target


def extendable_baseline(folder: Path, fingerprint: dict) -> tuple[Path, dict]:
    """This machine kind's baseline in ``folder`` and its contents; an InputError when there is
    none, or when it is not one ``loaderbench baseline`` wrote (no noise bands or raw rounds)."""
    existing = same_kind_baselines(folder, fingerprint)
    if not existing:
        raise InputError(
            f"no baseline for this machine ({machine.kind_slug(fingerprint)}) in "
            f"{folder}/ to extend: record one first with `make baseline`"
        )
    path = max(existing, key=lambda f: f.name)
    prior = load_results(path)
    lacking = missing_rounds(prior)
    if recorded_noise(prior) is None or lacking:
        what = (
            f"benchmark {lacking!r} has no raw rounds" if lacking else "it records no noise bands"
        )
        raise InputError(
            f"cannot extend {path}: {what} (not written by `loaderbench baseline`); "
            "record a new baseline with --force (make baseline FORCE=1) instead"
        )
    return path, prior


def resolve_runner(chosen: str | None) -> str:
    """The runner class given on the command line, else the default; InputError when unusable."""
    try:
        return parse_runner(chosen) if chosen else default_runner()
    except ValueError as exc:
        raise InputError(str(exc)) from None


def cmd_baseline(args) -> int:
    from loaderbench.paired import recipe

    runner = resolve_runner(args.runner)
    check_run_count(args.runs, extend=args.extend, force=args.force)
    how = recipe.capture(sys.executable, args.pytest_args, Path.cwd(), torch=args.torch)
    if how["dirty"]:
        print(
            "loaderbench: warning: the project has uncommitted changes; the recipe records "
            f"commit {str(how['commit'])[:12]}, which --remeasure will rebuild without them",
            file=sys.stderr,
            flush=True,
        )
    path = record(
        runner=runner,
        runs=args.runs,
        pytest_args=args.pytest_args,
        root=Path(args.baselines),
        force=args.force,
        extend=args.extend,
        recipe=how,
    )
    merged = load_results(path)
    bands = sorted(
        ((v["band"], k) for k, v in recorded_noise(merged).items() if v.get("band") is not None),
        reverse=True,
    )[:5]
    held = sittings(merged)
    print(
        f"loaderbench: baseline of runner class {runner!r} for this machine kind "
        f"({machine.kind_slug(machine.recorded(merged))}) "
        f"{f'extended by {args.runs} runs in' if args.extend else 'written to'} {path} "
        f"({_recorded_runs(merged)} runs in {len(held)} sitting{'s' if len(held) > 1 else ''}, "
        f"{len(merged['benchmarks'])} benchmarks)"
    )
    if bands:
        print("widest noise bands: " + ", ".join(f"{name} {band:.0%}" for band, name in bands))
    return EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser(
        "baseline",
        help="record the baseline of this runner class (the grid, N fresh runs)",
        description="Run the benchmark grid N times, each in a fresh pytest process, and store "
        "the pooled rounds and noise bands in baselines/<runner class>/. Anything "
        "after -- goes to pytest (e.g. -- --lb-grid=quick --lb-profiles=cpu).",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        metavar="N",
        help=f"grid runs to pool (>= 2). Default: {DEFAULT_RUNS}",
    )
    parser.add_argument(
        "--runner",
        metavar="CLASS",
        help="runner class (folder under baselines/). Default: $LOADERBENCH_RUNNER, "
        "else gpu when CUDA is available, else cpu",
    )
    parser.add_argument(
        "--baselines",
        default=str(BASELINES_ROOT),
        metavar="DIR",
        help="root of the baseline folders. Default: baselines",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace this machine kind's existing baseline of this runner class "
        "(other machine kinds' baselines are kept)",
    )
    parser.add_argument(
        "--extend",
        action="store_true",
        help="add the runs to this machine kind's baseline (same file, its runs "
        "kept) instead of writing a new one: a baseline recorded in sittings "
        "hours apart sees how far the machine drifts, and its noise bands "
        "say so. The runs must measure the same benchmarks with the same "
        "torch, Python and grid settings",
    )
    parser.add_argument(
        "--torch",
        metavar="REQUIREMENT",
        help="the pip requirement that installed this torch, kept in the recipe "
        "(make baseline passes its TORCH). Default: torch==<installed "
        "version>",
    )
    parser.add_argument(
        "pytest_args", nargs="*", metavar="-- PYTEST_ARGS", help="passed to every pytest run"
    )
    parser.set_defaults(run=cmd_baseline)
