"""Baselines as stored: N runs of the grid (recorded by record.py) pooled into one
pytest-benchmark file per runner class, with a noise band per benchmark; where they are kept, which
one judges a run, and what runs may extend one.

Layout (pytest-benchmark's own storage, so ``pytest --benchmark-storage=baselines/cpu
--benchmark-compare`` and ``pytest-benchmark compare`` read it)::

    baselines/<runner class>/<machine id>/NNNN_<machine kind>.json

The machine id is pytest-benchmark's (OS-implementation-Python version-bits); the runner class
folder above it is what tells a CPU runner from a GPU runner. A runner class may hold one baseline
per machine kind (CPU model, cores, GPU: machine.MACHINE_KIND_FIELDS), because a pool of runners
of one class can mix kinds and seconds do not compare across them: the verdict judges against the
baseline of the candidate's own kind, or, when there is none, only the ratios that hold across
machines (stored_numbers.py). The file is a normal pytest-benchmark JSON whose ``stats`` are recomputed over
the pooled rounds of every run (``stats.data`` holds them run after run), plus
``loaderbench.baseline``: the run count, every run's speed probes (speed.py), per benchmark and
derived ratio the median of each run (``run_medians``) and their noise band, per memory quantity
(``<benchmark>.peak_anon_pss_mb``, ``.anon_pss_per_worker_mb``) each run's value (``run_values``),
and the **recipe** (recipe.py): the torch requirement, the frozen package list, the Python
version, the project commit and the arguments, so that ``loaderbench gate --remeasure`` can
rebuild what was measured and measure it side by side with the current environment.

Noise band = the largest ratio between two runs' medians, minus 1: the biggest move the baseline
itself showed between unchanged processes. The verdict (stored_numbers.py) judges against the run values
themselves, with a prediction interval.

A baseline can only be as broad as the moves its runs saw. Runs recorded back to back share the
hour's machine state: on the 2-core AMD EPYC machine of 2026-11-25 the five runs of one sitting
put ``test_time_to_first_batch[pyobj-w2-fork]`` at 61-67 ms, six unchanged ``make bench`` runs in
the hour after it at 62-84 ms. ``--extend`` adds runs recorded later to the same baseline
(the file's ``loaderbench.baseline.sittings`` section says when, and how many runs each time;
``sittings()`` below reads it), so its runs cover the drift between sittings too.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from pytest_benchmark.utils import get_machine_id

from loaderbench import machine
from loaderbench.config import args_for, option
from loaderbench.errors import InputError
from loaderbench.judging import derived
from loaderbench.machine import Fingerprint
from loaderbench.results import (
    DEFAULT_LOADER,
    MEMORY,
    BaselineRecord,
    Benchmark,
    Noise,
    Recipe,
    Results,
    Sitting,
    load_results,
)
from loaderbench.runner import default_runner, parse_runner

BASELINES_ROOT = Path("baselines")
BAND_RULE = "largest ratio between the medians of any two runs, minus 1"
#: What a memory benchmark records that the verdict judges, in MB (memory.summarise): the
#: anonymous PSS, which other processes mapping torch's libraries do not move (memory.py).
MEMORY_QUANTITIES = ("peak_anon_pss_mb", "anon_pss_per_worker_mb")
#: What runs added to a baseline (--extend) must share with it, beyond the machine kind: the
#: software measured (fingerprint fields) and the grid settings (loaderbench section).
EXTEND_SAME_FIELDS = ("torch", "python", "cuda")
EXTEND_SAME_SETTINGS = ("grid", "cost_scale", "runner", "loader")


# --- noise ----------------------------------------------------------------------------------------


def noise_band(medians: list[float]) -> float | None:
    """The largest relative move between run medians; None with fewer than two runs (one run
    cannot show how far a process may move)."""
    values = [m for m in medians if m is not None and m > 0]
    if len(values) < 2:
        return None
    return max(values) / min(values) - 1


# --- pooling runs ---------------------------------------------------------------------------------


def merge_runs(
    runs: list[Results], *, prior: Results | None = None, recipe: Recipe | None = None
) -> Results:
    """One baseline from several runs of the same selection, with what the verdict needs of each
    run (run medians, memory values) and, given, the ``recipe`` to rebuild it.

    ``prior``: a baseline this function wrote earlier, which ``runs`` extend (``baseline
    --extend``, after check_extendable): its pooled rounds, run values and speed probes come
    first, as if its runs had been the first of ``runs``, and its recipe is kept.
    """
    if not runs:
        raise ValueError("no runs to merge")
    prior_rounds = prior.rounds_by_name() if prior else {}
    prior_noise = (prior.noise or {}) if prior else {}

    def before(name: str) -> Noise:
        return prior_noise.get(name) or Noise()

    firsts: dict[str, Benchmark] = {}
    per_run: dict[str, list[list[float]]] = {}
    for run in runs:
        for bench in run.benchmarks:
            firsts.setdefault(bench.name, bench)
            per_run.setdefault(bench.name, []).append(list(bench.rounds))
    benchmarks, noise = [], {}
    for name, first in firsts.items():
        pooled = prior_rounds.get(name, []) + [
            value for rounds in per_run[name] for value in rounds
        ]
        benchmarks.append(first.pooled(pooled))
        medians = [*before(name).run_medians] + [statistics.median(r) for r in per_run[name] if r]
        noise[name] = Noise(band=noise_band(medians), run_medians=tuple(medians))
    for name, quantity, values in _memory_values(runs):
        key = f"{name}.{quantity}"
        noise[key] = Noise(run_values=(*before(key).run_values, *values))

    last = runs[-1]
    cores = (last.fingerprint and last.fingerprint.usable_cores) or 1
    pooled_derived = derived.derive(benchmarks, cores)
    per_run_entries = [
        {e.name: e for e in derived.derive(list(run.benchmarks), cores)} for run in runs
    ]
    for entry in pooled_derived:
        medians = [*before(entry.name).run_medians]
        for run, own in zip(runs, per_run_entries):
            samples = derived.per_round(entry, run.rounds_by_name())
            if samples:
                medians.append(statistics.median(samples))
            elif entry.name in own:  # a kind without a per-round form: the run's own value
                medians.append(own[entry.name].value)
        noise[entry.name] = Noise(band=noise_band(medians), run_medians=tuple(medians))
    now = datetime.now(timezone.utc).isoformat()
    kept_recipe = prior.recipe if prior else None
    record = BaselineRecord(
        runs=(prior.baseline.runs if prior and prior.baseline else 0) + len(runs),
        band_rule=BAND_RULE,
        noise=noise,
        sittings=(*sittings(prior), Sitting(now, len(runs))),
        speed_probes=(
            *(prior.speed_probes if prior else []),
            *(p for run in runs for p in run.speed_probes),
        ),
        recipe=kept_recipe or recipe,
    )
    # One run's invocation names its temporary paths: a pooled file cannot be rerun as one.
    return replace(
        last,
        benchmarks=tuple(benchmarks),
        derived=tuple(pooled_derived),
        baseline=record,
        invocation=None,
        datetime=now,
    )


def _memory_values(runs: list[Results]):
    """(benchmark, quantity, [one value per run]) for every memory benchmark of the runs."""
    found: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for bench in run.benchmarks:
            if bench.measure != MEMORY:
                continue
            for quantity in MEMORY_QUANTITIES:
                value = bench.value(quantity)
                if value is not None:
                    found.setdefault((bench.name, quantity), []).append(value)
    return [(name, quantity, values) for (name, quantity), values in found.items()]


def sittings(baseline: Results | None) -> tuple[Sitting, ...]:
    """When a baseline's runs were recorded, one entry per recording session (a baseline written
    before sittings were kept counts as one, dated by the file)."""
    if baseline is None or baseline.baseline is None:
        return ()
    record = baseline.baseline
    return (
        record.sittings
        if record.sittings is not None
        else (Sitting(baseline.datetime, record.runs),)
    )


def recording(baseline: Results) -> str:
    """ " (N runs in K sittings: DATE xN, ...)" for a recorded baseline, "" for a plain results
    file: how much of the machine's drift its noise bands can have seen."""
    if baseline.baseline is None:
        return ""
    held = sittings(baseline)
    dates = ", ".join(f"{str(s.date)[:10]} x{s.runs}" for s in held)
    return (
        f" ({baseline.baseline.runs} runs in {len(held)} "
        f"sitting{'s' if len(held) > 1 else ''}: {dates})"
    )


EXTEND_ADVICE = "record a new baseline with --force (make baseline FORCE=1) instead"


def check_same_code(prior: Results, path: Path, recipe: Recipe | None) -> None:
    """An InputError unless runs with ``recipe`` measure the project code the baseline at
    ``path`` measured: one recipe must rebuild every run of a baseline."""
    before = prior.recipe
    if before and before.commit and recipe and recipe.commit != before.commit:
        raise InputError(
            f"cannot extend {path}: it measured the project at commit "
            f"{before.commit[:12]}, this checkout is at "
            f"{str(recipe.commit)[:12]}; {EXTEND_ADVICE}"
        )


def check_extendable(prior: Results, path: Path, runs: list[Results]) -> None:
    """An InputError (nothing written) unless ``runs`` measured what the baseline at ``path``
    measured, with the same software on the same machine kind: only then do their rounds pool."""
    advice = EXTEND_ADVICE
    before, now = prior.fingerprint or Fingerprint(), runs[-1].fingerprint or Fingerprint()
    moved = machine.kind_differences(before, now) + [
        f"{key} {getattr(now, key)} vs {getattr(before, key)}"
        for key in EXTEND_SAME_FIELDS
        if getattr(before, key) != getattr(now, key)
    ]
    if moved:
        raise InputError(
            f"cannot extend {path}: the new runs differ from it ({'; '.join(moved)}); {advice}"
        )
    old_info = {**prior.settings, "runner": prior.runner}
    new_info = {**runs[-1].settings, "runner": runs[-1].runner}
    for key in EXTEND_SAME_SETTINGS:
        if old_info.get(key) != new_info.get(key):
            raise InputError(
                f"cannot extend {path}: it was recorded with {key} {old_info.get(key)}, "
                f"the new runs with {new_info.get(key)}; {advice}"
            )
    old_names = {b.name for b in prior.benchmarks}
    new_names = {b.name for run in runs for b in run.benchmarks}
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


# --- storage --------------------------------------------------------------------------------------


def baseline_files(folder: Path) -> list[Path]:
    """pytest-benchmark storage files (NNNN_*.json) in ``folder`` and its machine-id folders."""
    pattern = "[0-9][0-9][0-9][0-9]_*.json"
    return sorted([*folder.glob(pattern), *folder.glob(f"*/{pattern}")])


def _kind(path: Path) -> Fingerprint:
    """The fingerprint a stored baseline carries; an InputError naming the file if unreadable."""
    return load_results(path).fingerprint or Fingerprint()


def locate_baseline(
    path: Path,
    runner: str | None = None,
    fingerprint: Fingerprint | None = None,
    loader: str | None = None,
) -> Path:
    """``path`` itself when a file. In a folder: of the baselines that measured the loader class
    ``loader`` (when given), the latest recorded on ``fingerprint``'s machine kind (this Python's
    machine id first), else the latest of any kind (the verdict then judges ratios only, and
    says why)."""
    if path.is_file():
        return path
    files = baseline_files(path) if path.is_dir() else []
    if files and loader:
        files = [f for f in files if load_results(f).loader_class == loader]
        if not files:
            raise InputError(
                f"no baseline in {path}/ measured the loader class {loader}: record one with "
                f"`make baseline ARGS='{args_for(loader=loader)[0]}'`, or judge this run "
                f"against another with the same {option('loader')}"
            )
    if not files:
        if runner:
            raise InputError(
                f"no baseline for runner class {runner!r} in {path}/: record one with "
                f"`make baseline` (or `loaderbench baseline --runner {runner}`) on a "
                "quiet machine"
            )
        raise InputError(f"{path}: no such file, and no baseline folder (NNNN_*.json) either")
    if fingerprint:
        files = same_kind_baselines(path, fingerprint, loader) or files
    own = [f for f in files if f.parent.name == get_machine_id()]
    return max(own or files, key=lambda f: f.name)


def same_kind_baselines(
    folder: Path, fingerprint: Fingerprint, loader: str | None = None
) -> list[Path]:
    """The baselines in ``folder`` recorded on ``fingerprint``'s machine kind (and, when given,
    measuring the loader class ``loader``)."""
    return [
        f
        for f in baseline_files(folder)
        if not machine.kind_differences(_kind(f), fingerprint)
        and (loader is None or load_results(f).loader_class == loader)
    ]


def refuse_overwrite(
    folder: Path, fingerprint: Fingerprint, force: bool, loader: str = DEFAULT_LOADER
) -> list[Path]:
    """This machine kind's baselines of the loader class ``loader`` in ``folder``; an InputError
    when there are some and ``force`` is off. Other kinds' and other loaders' baselines are
    neither returned nor touched."""
    existing = same_kind_baselines(folder, fingerprint, loader)
    if existing and not force:
        raise InputError(
            f"{existing[0]} already holds this runner class's baseline for this machine "
            f"({machine.kind_slug(fingerprint)}); pass --force (make baseline "
            "FORCE=1) to replace it"
        )
    return existing


def baseline_target(folder: Path, fingerprint: Fingerprint) -> Path:
    """Where a new baseline of this machine kind goes: the next pytest-benchmark number in the
    folder (so `--benchmark-compare` without a number takes it), named after the kind."""
    numbers = [int(f.name[:4]) for f in baseline_files(folder)]
    number = max(numbers, default=0) + 1
    return folder / get_machine_id() / f"{number:04d}_{machine.kind_slug(fingerprint)}.json"


def extendable_baseline(
    folder: Path, fingerprint: Fingerprint, loader: str = DEFAULT_LOADER
) -> tuple[Path, Results]:
    """This machine kind's baseline of the loader class ``loader`` in ``folder`` and its
    contents; an InputError when there is none, or when it is not one ``loaderbench baseline``
    wrote (no noise bands or raw rounds)."""
    existing = same_kind_baselines(folder, fingerprint, loader)
    if not existing:
        raise InputError(
            f"no baseline for this machine ({machine.kind_slug(fingerprint)}) in "
            f"{folder}/ to extend: record one first with `make baseline`"
        )
    path = max(existing, key=lambda f: f.name)
    prior = load_results(path)
    lacking = prior.missing_rounds()
    if prior.noise is None or lacking:
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
