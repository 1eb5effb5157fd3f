"""The verdict against stored numbers: is the current run slower than the baseline, beyond what
the baseline's own runs moved?

A baseline keeps, per benchmark and derived ratio, the median of each of its runs (separate
processes, often hours apart), and per memory quantity each run's value. For each row the change
is the current value against the centre of those runs, and its interval is a prediction interval
(intervals.prediction, level 1 - alpha): how far an unchanged run could land from the baseline,
given how far the baseline's runs landed from each other. The row is then regressed, improved,
unchanged or inconclusive by the one rule of verdict.py. On a machine whose speed moves by tens
of percent between sittings most time rows are honestly inconclusive: measure side by side
(``--remeasure``, ``loaderbench ab``) to tell 10%.

- times (seconds; lower is better) and derived ratios (in the direction their
  ``higher_is_better`` says) are judged as factors, with the minimum effect ``min_effect``;
- memory rows (``<benchmark>.peak_anon_pss_mb``, ``<benchmark>.anon_pss_per_worker_mb``: the
  anonymous PSS, which other processes do not move, memory.py) are judged in MB, with the minimum
  effect ``memory_min_mb``: memory does not move with the machine's speed, so it is judged as
  memory, not by the epoch times of the memory benchmarks (which are not judged);
- with ``--confirm N`` (confirm.py) a regression must repeat in N fresh reruns.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

from loaderbench import machine
from loaderbench.errors import InputError
from loaderbench.judging import derived
from loaderbench.judging.baseline import MEMORY_QUANTITIES
from loaderbench.judging.intervals import Prediction, prediction
from loaderbench.judging.thresholds import Rule, Thresholds
from loaderbench.judging.verdict import Row, Verdict, judge_difference, judge_factor, not_judged
from loaderbench.machine import Fingerprint
from loaderbench.measuring import speed
from loaderbench.results import MEMORY, Benchmark, Derived, Noise, Results, load_results

#: What a verdict judges: every row, times and memory only, derived ratios only, or only what
#: holds across machines (derived.PORTABLE_KINDS and memory: what a baseline recorded on another
#: machine kind, or at another speed, can judge).
ONLY_CHOICES = ("all", "benchmarks", "derived", "portable")
#: Fingerprint fields whose difference is expected (a torch upgrade is what we vet) but must be seen.
VERSION_FIELDS = (("torch", "torch"), ("python", "Python"), ("cuda", "CUDA"))
MACHINE_FIELDS = (
    "cpu_model",
    "usable_cores",
    "memory_gb",
    "platform",
    "gpu",
    "gpu_count",
    "cuda_driver",
)
ONE_RUN = (
    "the baseline records one run, which cannot show how far runs move: record it with "
    "`make baseline`, or compare side by side (`loaderbench ab`, `gate --remeasure`)"
)


# --- reading both sides -------------------------------------------------------------------------


def _derived_group(entry: Derived) -> str:
    profile = entry.case.split("-", 1)[0]
    return f"{entry.kind}-{profile}"


def compare_header(
    baseline: Results, current: Results, names: tuple[str, str] = ("baseline", "candidate")
) -> list[str]:
    """The prominent lines: different torch/Python/CUDA, machine, cost scale, grid, noise bands."""
    base, cand = names
    lines = []
    base_fp = baseline.fingerprint or Fingerprint()
    cur_fp = current.fingerprint or Fingerprint()
    for key, label in VERSION_FIELDS:
        was, now = getattr(base_fp, key), getattr(cur_fp, key)
        if was != now and (was or now):
            lines.append(f"{cand} {label} {now} vs {base} {label} {was}")
    moved = [
        f"{k} {getattr(cur_fp, k)} vs {getattr(base_fp, k)}"
        for k in MACHINE_FIELDS
        if getattr(base_fp, k) != getattr(cur_fp, k)
    ]
    if moved and baseline.fingerprint and current.fingerprint:
        lines.append(f"different machine ({cand} vs {base}): " + "; ".join(moved))
    base_lb, cur_lb = baseline.settings, current.settings
    for key, label in (("cost_scale", "cost scale"), ("grid", "grid")):
        if key in base_lb and key in cur_lb and base_lb[key] != cur_lb[key]:
            lines.append(f"{cand} {label} {cur_lb[key]} vs {base} {label} {base_lb[key]}")
    for key, label in (
        ("injected", "injected slowdowns"),
        ("worker_ballast_mb", "worker ballast MB"),
    ):
        if base_lb.get(key) != cur_lb.get(key):
            lines.append(f"{cand} {label} {cur_lb.get(key)} vs {base} {label} {base_lb.get(key)}")
    if baseline.noise is None:
        lines.append(
            f"the {base} records one run (not made by `loaderbench baseline`): no row "
            "can be judged against it, since one run cannot show how far runs move"
        )
    return lines


def cross_machine_only(baseline: Results, current: Results, header: list[str]) -> str:
    """ "portable" when the two results came from different machine kinds or from machines of
    different speed (an explanation is added to ``header``), else "all"."""
    base_fp, cur_fp = baseline.fingerprint, current.fingerprint
    why: str | None
    if base_fp and cur_fp and machine.kind_differences(base_fp, cur_fp):
        why = (
            f"the baseline was recorded on another machine kind ({machine.kind_slug(base_fp)}, "
            f"this is {machine.kind_slug(cur_fp)})"
        )
    else:
        why = speed.mismatch(baseline, current)
        if why is None:
            return "all"
    kinds = ", ".join(derived.PORTABLE_KINDS)
    header.append(
        f"only what holds across machines is judged (the ratios {kinds}, and memory), "
        f"not seconds: {why}. Record a baseline on this machine with `make baseline` "
        "(other kinds' are kept), or pass --only all to judge everything anyway"
    )
    return "portable"


def judge(
    baseline: Results,
    current: Results,
    thresholds: Thresholds | None = None,
    *,
    only: str | None = None,
) -> Verdict:
    """Judge ``current`` against ``baseline`` (as load_results returns them).

    ``only``: one of ONLY_CHOICES. None: every row when both ran on the same machine kind at
    about the same speed (speed.py); otherwise what holds across machines (derived ratios of
    derived.PORTABLE_KINDS, and memory), and the header says why.
    """
    header = compare_header(baseline, current)
    if only is None:
        only = cross_machine_only(baseline, current, header)
    thresholds = thresholds or Thresholds()
    noise = baseline.noise or {}
    rows: list[Row] = []
    base_benches, cur_benches = baseline.by_name(), current.by_name()
    for name in dict.fromkeys([*base_benches, *cur_benches]):
        bench = cur_benches.get(name) or base_benches[name]
        rule = thresholds.for_group(bench.group)
        present = (name in base_benches, name in cur_benches)
        if bench.measure == MEMORY:
            if only in ("all", "benchmarks", "portable"):
                rows += [
                    _memory_row(
                        name,
                        quantity,
                        base_benches.get(name),
                        cur_benches.get(name),
                        noise,
                        rule,
                        present,
                    )
                    for quantity in MEMORY_QUANTITIES
                    if quantity in bench.info and _worker_quantity_applies(quantity, bench)
                ]
        elif only in ("all", "benchmarks"):
            rows.append(
                _factor_row(
                    Row(name, "seconds", inputs=(name,)),
                    present,
                    _seconds(base_benches.get(name)),
                    _seconds(cur_benches.get(name)),
                    _run_values(noise, name),
                    rule,
                )
            )
    if only in ("all", "derived", "portable"):
        base_entries, cur_entries = baseline.derived_by_name(), current.derived_by_name()
        cur_rounds = current.rounds_by_name()
        base_rounds = baseline.rounds_by_name()
        for name in dict.fromkeys([*base_entries, *cur_entries]):
            entry = cur_entries.get(name) or base_entries[name]
            if only == "portable" and entry.kind not in derived.PORTABLE_KINDS:
                continue
            row = Row(name, "ratio", higher_is_better=entry.higher_is_better, inputs=entry.inputs)
            rows.append(
                _factor_row(
                    row,
                    (name in base_entries, name in cur_entries),
                    _ratio_value(base_entries.get(name), base_rounds),
                    _ratio_value(cur_entries.get(name), cur_rounds),
                    _run_values(noise, name),
                    thresholds.for_group(_derived_group(entry)),
                )
            )
    default = thresholds.default
    rule_text = (
        f"regressed = the {1 - default.alpha:.0%} prediction interval from the baseline's "
        f"runs lies beyond no change and the change exceeds {default.min_effect:.0%} (memory: "
        f"{default.memory_min_mb:g} MB); unchanged = the interval within +/- that; "
        f"thresholds: {thresholds.source}"
    )
    return Verdict(rows, header, rule_text, only=only)


def _worker_quantity_applies(quantity: str, bench: Benchmark) -> bool:
    """Per-worker memory means nothing without workers."""
    return "per_worker" not in quantity or bool(bench.num_workers)


def _seconds(bench: Benchmark | None) -> float | None:
    """A run's median seconds: of its raw rounds when it kept them."""
    return None if bench is None else bench.seconds


def _ratio_value(entry: Derived | None, rounds: dict[str, list[float]]) -> float | None:
    """A run's value of a derived ratio as its baseline's run medians are taken: the median of its
    per-round values (derived.per_round) when they exist, else the ratio of medians."""
    if entry is None:
        return None
    samples = derived.per_round(entry, rounds)
    return statistics.median(samples) if samples else entry.value


def _run_values(noise: Mapping[str, Noise], name: str) -> list[float]:
    recorded = noise.get(name)
    return recorded.runs if recorded is not None else []


def _missing_or_new(row: Row, present: tuple[bool, bool]) -> Row | None:
    in_base, in_current = present
    if not in_current:
        row.verdict, row.note = "missing", "in the baseline, not in this run"
        return row
    if not in_base:
        row.verdict, row.note = "new", "not in the baseline"
        return row
    return None


def _factor_row(row: Row, present, base_value, current, runs: list[float], rule: Rule) -> Row:
    row.current = current
    row.baseline = statistics.median(runs) if runs else base_value
    if _missing_or_new(row, present) is not None:
        return row
    if current is None or current <= 0:
        return not_judged(row, "no value in this run (a zero time has no ratio)")
    found = prediction(runs, current, alpha=rule.alpha, log=True)
    return _against_runs(row, found, lambda: judge_factor(row, min_effect=rule.min_effect))


def _memory_row(
    name: str,
    quantity: str,
    base: Benchmark | None,
    cur: Benchmark | None,
    noise: Mapping[str, Noise],
    rule: Rule,
    present,
) -> Row:
    row = Row(f"{name}.{quantity}", "memory", inputs=(name,))
    row.current = cur.value(quantity) if cur else None
    runs = _run_values(noise, row.name)
    row.baseline = statistics.median(runs) if runs else (base.value(quantity) if base else None)
    if _missing_or_new(row, present) is not None:
        return row
    if not isinstance(row.current, (int, float)):
        return not_judged(row, f"this run records no {quantity}")
    if not runs and noise:
        return not_judged(
            row,
            f"the baseline keeps no per-run {quantity} (recorded before memory "
            "was judged as memory): re-record it with `make baseline FORCE=1`",
        )
    found = prediction(runs, row.current, alpha=rule.alpha, log=False)
    return _against_runs(row, found, lambda: judge_difference(row, min_mb=rule.memory_min_mb))


def _against_runs(row: Row, found: Prediction | None, judge: Callable[[], Row]) -> Row:
    """``row`` judged (by ``judge``) from the prediction interval ``found`` of the baseline's
    runs, or not judged when one run could not give one."""
    if found is None:
        return not_judged(row, ONE_RUN)
    row.baseline, row.change, row.low, row.high = found.centre, found.change, found.low, found.high
    judge()
    row.note += f" (against {found.runs} baseline runs)"
    return row


# --- what the `loaderbench gate` and `report --baseline` commands share ------------------------------


def load_judgeable(path: str | Path) -> Results:
    """load_results, plus the raw rounds the derived ratios' per-round values need."""
    results = load_results(path)
    name = results.missing_rounds()
    if name is not None:
        raise InputError(
            f"{path}: benchmark {name!r} has no raw rounds (stats.data); write results "
            "with --benchmark-json, or save them with --benchmark-save-data"
        )
    return results


def check_same_runner(baseline: Results, current: Results, baseline_path, current_path) -> None:
    """Both of one runner class, and both of one loader class: another loader's seconds are
    not this loader's baseline (`make ab` compares two loaders side by side)."""
    if baseline.loader_class != current.loader_class:
        raise InputError(
            f"{baseline_path} measured the loader class {baseline.loader_class} but "
            f"{current_path} measured {current.loader_class}: judge it against a baseline "
            "recorded with the same --lb-loader (compare two loaders with `make ab`)"
        )
    base_runner, cur_runner = baseline.runner, current.runner
    if base_runner and cur_runner and base_runner != cur_runner:
        raise InputError(
            f"{baseline_path} is a baseline of runner class {base_runner!r} but "
            f"{current_path} ran on {cur_runner!r}: judge against "
            f"baselines/{cur_runner}/ (record one with `make baseline`)"
        )
