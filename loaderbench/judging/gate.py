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
from pathlib import Path

from loaderbench import machine
from loaderbench.errors import InputError
from loaderbench.judging import derived
from loaderbench.judging.baseline import MEMORY_QUANTITIES, recorded_noise, recording
from loaderbench.judging.confirm import confirm
from loaderbench.judging.intervals import prediction
from loaderbench.judging.thresholds import Rule, Thresholds, load_thresholds
from loaderbench.judging.verdict import Row, Verdict, judge_difference, judge_factor, not_judged
from loaderbench.measuring import speed
from loaderbench.results import load_results, missing_rounds
from loaderbench.runner import runner_of
from loaderbench.storage import write_atomic

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


def rounds_by_name(results: dict) -> dict[str, list[float]]:
    """Each benchmark's raw rounds (``stats.data``); benchmarks saved without them are absent."""
    return {
        b["name"]: list(b["stats"]["data"])
        for b in results.get("benchmarks", [])
        if b.get("stats", {}).get("data")
    }


def _derived_entries(results: dict) -> dict[str, dict]:
    info = results.get("loaderbench")
    entries = info.get("derived", []) if isinstance(info, dict) else []
    return {e["name"]: e for e in entries if isinstance(e, dict) and "name" in e}


def _derived_group(entry: dict) -> str:
    profile = str(entry.get("case") or "").split("-", 1)[0]
    return f"{entry.get('kind')}-{profile}"


def compare_header(
    baseline: dict, current: dict, names: tuple[str, str] = ("baseline", "candidate")
) -> list[str]:
    """The prominent lines: different torch/Python/CUDA, machine, cost scale, grid, noise bands."""
    base, cand = names
    lines = []
    base_fp, cur_fp = machine.recorded(baseline), machine.recorded(current)
    for key, label in VERSION_FIELDS:
        if base_fp.get(key) != cur_fp.get(key) and (base_fp.get(key) or cur_fp.get(key)):
            lines.append(f"{cand} {label} {cur_fp.get(key)} vs {base} {label} {base_fp.get(key)}")
    moved = [
        f"{k} {cur_fp.get(k)} vs {base_fp.get(k)}"
        for k in MACHINE_FIELDS
        if base_fp.get(k) != cur_fp.get(k)
    ]
    if moved and base_fp and cur_fp:
        lines.append(f"different machine ({cand} vs {base}): " + "; ".join(moved))
    base_lb = baseline.get("loaderbench") if isinstance(baseline.get("loaderbench"), dict) else {}
    cur_lb = current.get("loaderbench") if isinstance(current.get("loaderbench"), dict) else {}
    for key, label in (("cost_scale", "cost scale"), ("grid", "grid")):
        if key in base_lb and key in cur_lb and base_lb[key] != cur_lb[key]:
            lines.append(f"{cand} {label} {cur_lb[key]} vs {base} {label} {base_lb[key]}")
    for key, label in (
        ("injected", "injected slowdowns"),
        ("worker_ballast_mb", "worker ballast MB"),
    ):
        if base_lb.get(key) != cur_lb.get(key):
            lines.append(f"{cand} {label} {cur_lb.get(key)} vs {base} {label} {base_lb.get(key)}")
    if recorded_noise(baseline) is None:
        lines.append(
            f"the {base} records one run (not made by `loaderbench baseline`): no row "
            "can be judged against it, since one run cannot show how far runs move"
        )
    return lines


def cross_machine_only(baseline: dict, current: dict, header: list[str]) -> str:
    """ "portable" when the two results came from different machine kinds or from machines of
    different speed (an explanation is added to ``header``), else "all"."""
    base_fp, cur_fp = machine.recorded(baseline), machine.recorded(current)
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
    baseline: dict, current: dict, thresholds: Thresholds | None = None, *, only: str | None = None
) -> Verdict:
    """Judge ``current`` against ``baseline`` (pytest-benchmark JSON as load_results returns it).

    ``only``: one of ONLY_CHOICES. None: every row when both ran on the same machine kind at
    about the same speed (speed.py); otherwise what holds across machines (derived ratios of
    derived.PORTABLE_KINDS, and memory), and the header says why.
    """
    header = compare_header(baseline, current)
    if only is None:
        only = cross_machine_only(baseline, current, header)
    thresholds = thresholds or Thresholds()
    noise = recorded_noise(baseline) or {}
    rows: list[Row] = []
    base_benches = {b["name"]: b for b in baseline["benchmarks"]}
    cur_benches = {b["name"]: b for b in current["benchmarks"]}
    for name in dict.fromkeys([*base_benches, *cur_benches]):
        bench = cur_benches.get(name) or base_benches[name]
        rule = thresholds.for_group(bench.get("group"))
        present = (name in base_benches, name in cur_benches)
        if _measure(bench) == derived.MEMORY:
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
                    if quantity in _info(bench) and _worker_quantity_applies(quantity, bench)
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
        base_entries, cur_entries = _derived_entries(baseline), _derived_entries(current)
        cur_rounds = rounds_by_name(current)
        base_rounds = rounds_by_name(baseline)
        for name in dict.fromkeys([*base_entries, *cur_entries]):
            entry = cur_entries.get(name) or base_entries[name]
            if only == "portable" and entry.get("kind") not in derived.PORTABLE_KINDS:
                continue
            row = Row(
                name,
                "ratio",
                higher_is_better=bool(entry.get("higher_is_better")),
                inputs=tuple(entry.get("inputs", ())),
            )
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
    rule = (
        f"regressed = the {1 - default.alpha:.0%} prediction interval from the baseline's "
        f"runs lies beyond no change and the change exceeds {default.min_effect:.0%} (memory: "
        f"{default.memory_min_mb:g} MB); unchanged = the interval within +/- that; "
        f"thresholds: {thresholds.source}"
    )
    return Verdict(rows, header, rule, only=only)


def _info(bench: dict) -> dict:
    info = bench.get("extra_info")
    return info if isinstance(info, dict) else {}


def _measure(bench: dict) -> str | None:
    return _info(bench).get("measure")


def _worker_quantity_applies(quantity: str, bench: dict) -> bool:
    """Per-worker memory means nothing without workers."""
    case = _info(bench).get("case") or {}
    return "per_worker" not in quantity or bool(case.get("num_workers"))


def _seconds(bench: dict | None) -> float | None:
    """A run's median seconds: of its raw rounds when it kept them."""
    if bench is None:
        return None
    stats = bench.get("stats") or {}
    return statistics.median(stats["data"]) if stats.get("data") else stats.get("median")


def _ratio_value(entry: dict | None, rounds: dict[str, list[float]]) -> float | None:
    """A run's value of a derived ratio as its baseline's run medians are taken: the median of its
    per-round values (derived.per_round) when they exist, else the ratio of medians."""
    if entry is None:
        return None
    samples = derived.per_round(entry, rounds)
    return statistics.median(samples) if samples else entry.get("value")


def _run_values(noise: dict, name: str) -> list[float]:
    recorded = noise.get(name) or {}
    values = recorded.get("run_values", recorded.get("run_medians")) or []
    return [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


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
    if found is None:
        return not_judged(row, ONE_RUN)
    row.baseline, row.change, row.low, row.high = found.centre, found.change, found.low, found.high
    judge_factor(row, min_effect=rule.min_effect)
    row.note += f" (against {found.runs} baseline runs)"
    return row


def _memory_row(
    name: str, quantity: str, base: dict | None, cur: dict | None, noise: dict, rule: Rule, present
) -> Row:
    row = Row(f"{name}.{quantity}", "memory", inputs=(name,))
    row.current = _info(cur).get(quantity) if cur else None
    runs = _run_values(noise, row.name)
    row.baseline = (
        statistics.median(runs) if runs else (_info(base).get(quantity) if base else None)
    )
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
    if found is None:
        return not_judged(row, ONE_RUN)
    row.baseline, row.change, row.low, row.high = found.centre, found.change, found.low, found.high
    judge_difference(row, min_mb=rule.memory_min_mb)
    row.note += f" (against {found.runs} baseline runs)"
    return row


# --- the `loaderbench gate` command ----------------------------------------------------------------


def load_judgeable(path: str | Path) -> dict:
    """load_results, plus the raw rounds the derived ratios' per-round values need."""
    results = load_results(path)
    name = missing_rounds(results)
    if name is not None:
        raise InputError(
            f"{path}: benchmark {name!r} has no raw rounds (stats.data); write results "
            "with --benchmark-json, or save them with --benchmark-save-data"
        )
    return results


def check_same_runner(baseline: dict, current: dict, baseline_path, current_path) -> None:
    base_runner, cur_runner = runner_of(baseline), runner_of(current)
    if base_runner and cur_runner and base_runner != cur_runner:
        raise InputError(
            f"{baseline_path} is a baseline of runner class {base_runner!r} but "
            f"{current_path} ran on {cur_runner!r}: judge against "
            f"baselines/{cur_runner}/ (record one with `make baseline`)"
        )


def report(verdict: Verdict, markdown_path: Path, preamble: list[str]) -> None:
    """Print the verdict and write it as markdown."""
    print("\n".join(preamble))
    print(verdict.to_text())
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(markdown_path, verdict.to_markdown(preamble))
    print(f"verdict written to {markdown_path}")


def thresholds_from(args) -> Thresholds:
    return load_thresholds().overridden(
        min_effect=args.min_effect, alpha=args.alpha, memory_min_mb=args.memory_min_mb
    )


def cmd_gate(args) -> int:
    from loaderbench.judging.baseline import locate_baseline

    if args.remeasure:
        from loaderbench.paired.remeasure import remeasure

        return remeasure(args)
    if not 1 <= len(args.files) <= 2:
        raise InputError(f"expected [BASELINE] CURRENT, got {len(args.files)} paths")
    current_path = Path(args.files[-1])
    current = load_judgeable(current_path)
    if len(args.files) == 2:
        baseline_path = locate_baseline(Path(args.files[0]))
    else:
        runner = runner_of(current)
        if runner is None:
            raise InputError(
                f"{current_path} records no runner class (not written by this "
                "version's plugin): pass the baseline explicitly: "
                "loaderbench gate BASELINE CURRENT"
            )
        baseline_path = locate_baseline(
            Path(args.baselines) / runner, runner=runner, fingerprint=machine.recorded(current)
        )
    baseline = load_judgeable(baseline_path)
    check_same_runner(baseline, current, baseline_path, current_path)
    thresholds = thresholds_from(args)
    if args.confirm < 0:
        raise InputError(
            f"--confirm must be >= 0 (fresh reruns of a regression), got {args.confirm}"
        )
    verdict = judge(baseline, current, thresholds, only=args.only)
    if args.confirm_side_by_side:
        from loaderbench.paired.remeasure import confirm_side_by_side

        confirm_side_by_side(verdict, baseline, current, args)
    confirm(
        verdict,
        baseline,
        current,
        current_path,
        runs=args.confirm,
        rejudge=lambda base, rerun: judge(base, rerun, thresholds, only=verdict.only),
    )
    markdown = Path(args.markdown) if args.markdown else current_path.parent / "verdict.md"
    report(
        verdict,
        markdown,
        [f"baseline: {baseline_path}{recording(baseline)}", f"current:  {current_path}"],
    )
    return verdict.exit_code(args.strict)


def add_threshold_options(parser) -> None:
    parser.add_argument(
        "--min-effect",
        type=float,
        metavar="FRACTION",
        help="minimum effect for every group, e.g. 0.05 (default: pyproject "
        "[tool.loaderbench], else 0.05)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        metavar="P",
        help="1 - level of the prediction interval, for every group (default: "
        "pyproject, else 0.01)",
    )
    parser.add_argument(
        "--memory-min-mb",
        type=float,
        metavar="MB",
        help="minimum effect of the memory rows (default: pyproject, else 10)",
    )
    parser.add_argument(
        "--only",
        choices=ONLY_CHOICES,
        help="judge every row, only benchmarks (times and memory), only derived "
        "ratios, or only what holds across machines ("
        + ", ".join(derived.PORTABLE_KINDS)
        + ", memory). Default: all "
        "when the baseline was recorded on this machine kind at about this "
        "speed, else portable",
    )


def register(commands) -> None:
    from loaderbench.paired.ab import add_engine_options

    gate = commands.add_parser(
        "gate",
        help="judge results against a baseline (exit 1 on a regression)",
        description="Judge CURRENT against BASELINE (a file or a baselines/<class>/ folder); with "
        "CURRENT alone, against baselines/<its runner class>/. With --remeasure, "
        "rebuild the baseline's environment from its recipe and measure it side by "
        "side with this one instead (no CURRENT file; anything after -- narrows the "
        "grid, e.g. -- --lb-profiles=cpu).",
    )
    gate.add_argument(
        "files",
        nargs="*",
        metavar="[BASELINE] CURRENT",
        help="pytest-benchmark JSON files (raw rounds included)",
    )
    gate.add_argument(
        "--baselines",
        default="baselines",
        metavar="DIR",
        help="where baselines/<runner class>/ live. Default: baselines",
    )
    gate.add_argument(
        "--confirm",
        type=int,
        default=0,
        metavar="N",
        help="rerun each regression's benchmarks in N fresh pytest processes (same "
        "interpreter, directory and arguments as CURRENT's run); it stands only "
        "if every rerun regresses too. Default: 0 (make bench: 2)",
    )
    gate.add_argument(
        "--markdown",
        metavar="PATH",
        help="where to write the verdict table. Default: verdict.md beside CURRENT",
    )
    add_threshold_options(gate)
    gate.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 when no row regressed but some are inconclusive",
    )
    remeasure = gate.add_argument_group("side by side with the baseline's recipe (--remeasure)")
    remeasure.add_argument(
        "--remeasure",
        action="store_true",
        help="rebuild the environment the baseline records (its Python, "
        "packages, project commit; a cached virtualenv) and measure it "
        "side by side with this one",
    )
    remeasure.add_argument(
        "--confirm-side-by-side",
        action="store_true",
        help="measure the benchmarks of every regressed time row side by "
        "side with the baseline's recipe; the regression stands only if "
        "it repeats there (make bench does; rows the engine cannot "
        "measure are left to --confirm)",
    )
    remeasure.add_argument(
        "--out",
        default="results/remeasure",
        metavar="DIR",
        help="where the remeasured verdict goes. Default: results/remeasure",
    )
    remeasure.add_argument(
        "--venvs",
        default=".venv-ab",
        metavar="DIR",
        help="where rebuilt environments are cached. Default: .venv-ab",
    )
    add_engine_options(remeasure, thresholds=False)
    gate.set_defaults(run=cmd_gate)
