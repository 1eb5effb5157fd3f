"""The regression verdict: is the current run slower than the baseline, beyond noise?

A benchmark (or derived ratio) **regressed** only when all three hold:

1. it is worse by more than the minimum effect (default 10%, see thresholds.py),
2. it is worse by more than its noise band: the largest move of its median between the
   baseline's own runs (separate processes), so a shift that the baseline already showed between
   two unchanged runs is never blamed on the candidate,
3. a one-sided Mann-Whitney U test of the raw rounds (baseline runs pooled against the current
   rounds) gives p < alpha (default 0.01).

**Improved** is the mirror image and never fails. Benchmarks are compared on their median
seconds (lower is better); derived ratios on the median of their per-round values (see
``derived.per_round``), in the direction their ``higher_is_better`` says.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from scipy.stats import mannwhitneyu

from . import derived, machine, speed
from .baseline import recorded_noise, recording
from .confirm import confirm
from .errors import EXIT_OK, EXIT_REGRESSION, InputError
from .results import load_results, missing_rounds
from .runner import runner_of
from .storage import write_atomic
from .thresholds import Rule, Thresholds, load_thresholds

VERDICTS = ("regressed", "improved", "missing", "new", "unchanged")
#: What a verdict judges: every row, seconds only, every derived ratio, or only the ratios that
#: hold across machines (derived.PORTABLE_KINDS: what a baseline from another machine can judge).
ONLY_CHOICES = ("all", "benchmarks", "derived", "portable")
#: Fingerprint fields whose difference is expected (a torch upgrade is what we vet) but must be seen.
VERSION_FIELDS = (("torch", "torch"), ("python", "Python"), ("cuda", "CUDA"))
MACHINE_FIELDS = ("cpu_model", "usable_cores", "memory_gb", "platform", "gpu", "gpu_count",
                  "cuda_driver")


@dataclass
class Verdict:
    rows: list[dict]
    header: list[str] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    confirm_runs: int = 0  # fresh-process reruns every regression had to repeat in (confirm.py)
    only: str = "all"  # what was judged: one of ONLY_CHOICES

    @property
    def regressed(self) -> bool:
        return any(row["verdict"] == "regressed" for row in self.rows)

    def counts(self) -> dict[str, int]:
        return {v: sum(row["verdict"] == v for row in self.rows) for v in VERDICTS}

    def summary(self) -> str:
        counts = ", ".join(f"{n} {v}" for v, n in self.counts().items())
        rule, groups = self.thresholds.default, self.thresholds.groups
        overrides = f"; own thresholds for {', '.join(groups)}" if groups else ""
        confirmed = (f", in this run and in {self.confirm_runs} fresh rerun(s)"
                     if self.confirm_runs else "")
        return (f"{counts} (regressed = worse by more than max({rule.min_effect:.0%}, noise band) "
                f"with one-sided Mann-Whitney p < {rule.alpha:g}{confirmed}{overrides}; "
                f"thresholds: {self.thresholds.source})")

    def ordered_rows(self) -> list[dict]:
        """Regressions first, then improvements, missing, new, unchanged; stable within each."""
        return sorted(self.rows, key=lambda row: VERDICTS.index(row["verdict"]))

    def _cells(self) -> list[tuple[str, ...]]:
        return [(row["benchmark"], _fmt_value(row["baseline"], row["kind"]),
                 _fmt_value(row["current"], row["kind"]), _fmt_ratio(row["ratio"]),
                 _fmt_band(row["band"]), _fmt_p(row["p"]), row["verdict"], row["note"])
                for row in self.ordered_rows()]

    def to_markdown(self, preamble: list[str] = ()) -> str:
        lines = ["# Regression verdict", ""]
        lines += [f"- {line}" for line in preamble]
        lines += [f"- **{line}**" for line in self.header]
        lines += ["", f"Result: **{'REGRESSED' if self.regressed else 'no regression'}**. "
                      f"{self.summary()}", ""]
        lines.append("| " + " | ".join(COLUMNS) + " |")
        lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
        for cells in self._cells():
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        """The terminal form: header lines, an aligned table, one summary line."""
        cells = [COLUMNS, *self._cells()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
        out = [f"!! {line}" for line in self.header]
        for i, row in enumerate(cells):
            out.append("  ".join(c.ljust(w) if j in (0, 6, 7) else c.rjust(w)
                                 for j, (c, w) in enumerate(zip(row, widths))).rstrip())
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        out.append(("REGRESSED: " if self.regressed else "no regression: ") + self.summary())
        return "\n".join(out)


COLUMNS = ("benchmark", "baseline", "current", "ratio", "band", "p", "verdict", "note")


def _fmt_value(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "derived":
        return f"{value:.3g}"
    return f"{value * 1e3:,.2f} ms" if value < 10 else f"{value:,.2f} s"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}x"


def _fmt_band(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _fmt_p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


# --- the statistics -----------------------------------------------------------------------------

def _one_sided_p(worse: list[float], better: list[float], higher_is_better: bool) -> float:
    """One-sided Mann-Whitney U p-value (scipy) against "``worse`` is no worse than ``better``"."""
    alternative = "less" if higher_is_better else "greater"
    p = mannwhitneyu(worse, better, alternative=alternative).pvalue
    return 1.0 if math.isnan(p) else float(p)


def compare_samples(base: list[float], current: list[float], *, band: float | None, rule: Rule,
                    higher_is_better: bool = False) -> dict:
    """Judge one quantity: ratio (current / baseline median), p and verdict with its reason."""
    base_median, current_median = statistics.median(base), statistics.median(current)
    row = {"baseline": base_median, "current": current_median, "ratio": None, "band": band,
           "p": None}
    if base_median <= 0 or current_median <= 0:
        return {**row, "verdict": "unchanged", "note": "a zero median has no ratio: not judged"}
    ratio = current_median / base_median
    worse_by = (1 / ratio if higher_is_better else ratio) - 1
    better_by = (ratio if higher_is_better else 1 / ratio) - 1
    needed = max(rule.min_effect, band or 0.0)
    row["ratio"] = ratio
    # The test runs in the direction the medians moved: the other direction cannot pass anyway.
    if worse_by > 0:
        row["p"] = _one_sided_p(current, base, higher_is_better)
        change, direction = worse_by, "worse" if higher_is_better else "slower"
    else:
        row["p"] = _one_sided_p(base, current, higher_is_better)
        change, direction = better_by, "better" if higher_is_better else "faster"
    if change <= rule.min_effect:
        note = f"{change:.1%} {direction}: within the minimum effect {rule.min_effect:.0%}"
    elif change <= needed:
        note = f"{change:.1%} {direction}: within the noise band {band:.0%}"
    elif row["p"] >= rule.alpha:
        note = f"{change:.1%} {direction} but p >= alpha {rule.alpha:g}: could be chance"
    else:
        verdict = "regressed" if worse_by > 0 else "improved"
        return {**row, "verdict": verdict,
                "note": f"{change:.1%} {direction}, beyond max({rule.min_effect:.0%}, band)"}
    return {**row, "verdict": "unchanged", "note": note}


# --- reading both sides -------------------------------------------------------------------------

def rounds_by_name(results: dict) -> dict[str, list[float]]:
    """Each benchmark's raw rounds (``stats.data``); benchmarks saved without them are absent."""
    return {b["name"]: list(b["stats"]["data"]) for b in results.get("benchmarks", [])
            if b.get("stats", {}).get("data")}


def _derived_entries(results: dict) -> dict[str, dict]:
    info = results.get("loaderbench")
    entries = info.get("derived", []) if isinstance(info, dict) else []
    return {e["name"]: e for e in entries if isinstance(e, dict) and "name" in e}


def _derived_group(entry: dict) -> str:
    profile = str(entry.get("case") or "").split("-", 1)[0]
    return f"{entry.get('kind')}-{profile}"


def compare_header(baseline: dict, current: dict, names: tuple[str, str] = ("baseline", "candidate")
                   ) -> list[str]:
    """The prominent lines: different torch/Python/CUDA, machine, cost scale, grid, noise bands."""
    base, cand = names
    lines = []
    base_fp, cur_fp = machine.recorded(baseline), machine.recorded(current)
    for key, label in VERSION_FIELDS:
        if base_fp.get(key) != cur_fp.get(key) and (base_fp.get(key) or cur_fp.get(key)):
            lines.append(f"{cand} {label} {cur_fp.get(key)} vs {base} {label} {base_fp.get(key)}")
    moved = [f"{k} {cur_fp.get(k)} vs {base_fp.get(k)}" for k in MACHINE_FIELDS
             if base_fp.get(k) != cur_fp.get(k)]
    if moved and base_fp and cur_fp:
        lines.append(f"different machine ({cand} vs {base}): " + "; ".join(moved))
    base_lb = baseline.get("loaderbench") if isinstance(baseline.get("loaderbench"), dict) else {}
    cur_lb = current.get("loaderbench") if isinstance(current.get("loaderbench"), dict) else {}
    for key, label in (("cost_scale", "cost scale"), ("grid", "grid")):
        if key in base_lb and key in cur_lb and base_lb[key] != cur_lb[key]:
            lines.append(f"{cand} {label} {cur_lb[key]} vs {base} {label} {base_lb[key]}")
    if recorded_noise(baseline) is None:
        lines.append(f"the {base} records no noise band (not made by `loaderbench baseline`): "
                     "only the minimum effect and the rank test guard against process-to-process noise")
    return lines


def cross_machine_only(baseline: dict, current: dict, header: list[str]) -> str:
    """"portable" when the two results came from different machine kinds or from machines of
    different speed (an explanation is added to ``header``), else "all"."""
    base_fp, cur_fp = machine.recorded(baseline), machine.recorded(current)
    if base_fp and cur_fp and machine.kind_differences(base_fp, cur_fp):
        why = (f"the baseline was recorded on another machine kind ({machine.kind_slug(base_fp)}, "
               f"this is {machine.kind_slug(cur_fp)})")
    else:
        why = speed.mismatch(baseline, current)
        if why is None:
            return "all"
    kinds = ", ".join(derived.PORTABLE_KINDS)
    header.append(f"only the ratios that hold across machines are judged ({kinds}), not seconds: "
                  f"{why}. Record a baseline on this machine with `make baseline` (other kinds' "
                  "are kept), or pass --only all to judge everything anyway")
    return "portable"


def judge(baseline: dict, current: dict, thresholds: Thresholds | None = None, *,
          only: str | None = None) -> Verdict:
    """Judge ``current`` against ``baseline`` (pytest-benchmark JSON as load_results returns it).

    ``only``: one of ONLY_CHOICES. None: every row when both ran on the same machine kind at
    about the same speed (speed.py); otherwise only the derived ratios that travel between
    machines (derived.PORTABLE_KINDS), and the header says why.
    """
    header = compare_header(baseline, current)
    if only is None:
        only = cross_machine_only(baseline, current, header)
    thresholds = thresholds or Thresholds()
    noise = recorded_noise(baseline) or {}
    base_rounds, cur_rounds = rounds_by_name(baseline), rounds_by_name(current)
    rows: list[dict] = []
    if only in ("all", "benchmarks"):
        groups = {b["name"]: b.get("group") for b in [*baseline["benchmarks"], *current["benchmarks"]]}
        in_base = [b["name"] for b in baseline["benchmarks"]]
        in_current = [b["name"] for b in current["benchmarks"]]
        for name in dict.fromkeys(in_base + in_current):
            rows.append(_judge_one(name, "benchmark", base_rounds.get(name), cur_rounds.get(name),
                                   noise.get(name), thresholds.for_group(groups.get(name)),
                                   higher_is_better=False,
                                   present=(name in in_base, name in in_current)))
    if only in ("all", "derived", "portable"):
        base_entries, cur_entries = _derived_entries(baseline), _derived_entries(current)
        for name in dict.fromkeys([*base_entries, *cur_entries]):
            entry = cur_entries.get(name) or base_entries[name]
            if only == "portable" and entry.get("kind") not in derived.PORTABLE_KINDS:
                continue
            base_samples = (derived.per_round(base_entries[name], base_rounds)
                            if name in base_entries else None)
            cur_samples = (derived.per_round(cur_entries[name], cur_rounds)
                           if name in cur_entries else None)
            rows.append(_judge_one(name, "derived", base_samples, cur_samples, noise.get(name),
                                   thresholds.for_group(_derived_group(entry)),
                                   higher_is_better=bool(entry.get("higher_is_better")),
                                   present=(name in base_entries, name in cur_entries),
                                   values=(base_entries.get(name, {}).get("value"),
                                           cur_entries.get(name, {}).get("value"))))
    return Verdict(rows, header, thresholds, only=only)


def _judge_one(name, kind, base_samples, cur_samples, noise, rule, *, higher_is_better, present,
               values=(None, None)) -> dict:
    in_base, in_current = present
    band = noise.get("band") if isinstance(noise, dict) else None
    row = {"benchmark": name, "kind": kind, "baseline": values[0], "current": values[1],
           "ratio": None, "band": band, "p": None}
    if not in_current:
        if base_samples:
            row["baseline"] = statistics.median(base_samples)
        return {**row, "verdict": "missing", "note": "in the baseline, not in this run"}
    if not in_base:
        if cur_samples:
            row["current"] = statistics.median(cur_samples)
        return {**row, "verdict": "new", "note": "not in the baseline"}
    if not base_samples or not cur_samples:
        reason = ("no raw rounds to test (save with --benchmark-save-data)" if kind == "benchmark"
                  else "no per-round values (inputs' raw rounds missing, or a kind without a "
                       "per-round form in derived.per_round)")
        return {**row, "verdict": "unchanged", "note": f"not judged: {reason}"}
    return {"benchmark": name, "kind": kind,
            **compare_samples(base_samples, cur_samples, band=band, rule=rule,
                              higher_is_better=higher_is_better)}


# --- the `loaderbench gate` command ----------------------------------------------------------------

def load_judgeable(path: str | Path) -> dict:
    """load_results, plus the raw rounds every rank test needs."""
    results = load_results(path)
    name = missing_rounds(results)
    if name is not None:
        raise InputError(f"{path}: benchmark {name!r} has no raw rounds (stats.data); write results "
                         "with --benchmark-json, or save them with --benchmark-save-data")
    return results


def check_same_runner(baseline: dict, current: dict, baseline_path, current_path) -> None:
    base_runner, cur_runner = runner_of(baseline), runner_of(current)
    if base_runner and cur_runner and base_runner != cur_runner:
        raise InputError(f"{baseline_path} is a baseline of runner class {base_runner!r} but "
                         f"{current_path} ran on {cur_runner!r}: judge against "
                         f"baselines/{cur_runner}/ (record one with `make baseline`)")


def report(verdict: Verdict, markdown_path: Path, preamble: list[str]) -> None:
    """Print the verdict and write it as markdown."""
    print("\n".join(preamble))
    print(verdict.to_text())
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(markdown_path, verdict.to_markdown(preamble))
    print(f"verdict written to {markdown_path}")


def cmd_gate(args) -> int:
    from .baseline import locate_baseline

    if len(args.files) > 2:
        raise InputError(f"expected [BASELINE] CURRENT, got {len(args.files)} paths")
    current_path = Path(args.files[-1])
    current = load_judgeable(current_path)
    if len(args.files) == 2:
        baseline_path = locate_baseline(Path(args.files[0]))
    else:
        runner = runner_of(current)
        if runner is None:
            raise InputError(f"{current_path} records no runner class (not written by this "
                             "version's plugin): pass the baseline explicitly: "
                             "loaderbench gate BASELINE CURRENT")
        baseline_path = locate_baseline(Path(args.baselines) / runner, runner=runner,
                                        fingerprint=machine.recorded(current))
    baseline = load_judgeable(baseline_path)
    check_same_runner(baseline, current, baseline_path, current_path)
    thresholds = load_thresholds().overridden(min_effect=args.min_effect, alpha=args.alpha)
    if args.confirm < 0:
        raise InputError(f"--confirm must be >= 0 (fresh reruns of a regression), got {args.confirm}")
    verdict = judge(baseline, current, thresholds, only=args.only)
    confirm(verdict, baseline, current, current_path, runs=args.confirm,
            rejudge=lambda base, rerun: judge(base, rerun, thresholds, only=verdict.only))
    markdown = Path(args.markdown) if args.markdown else current_path.parent / "verdict.md"
    report(verdict, markdown, [f"baseline: {baseline_path}{recording(baseline)}",
                               f"current:  {current_path}"])
    return EXIT_REGRESSION if verdict.regressed else EXIT_OK


def add_threshold_options(parser) -> None:
    parser.add_argument("--min-effect", type=float, metavar="FRACTION",
                        help="minimum effect for every group, e.g. 0.05 (default: pyproject "
                             "[tool.loaderbench], else 0.10)")
    parser.add_argument("--alpha", type=float, metavar="P",
                        help="significance level for every group (default: pyproject, else 0.01)")
    parser.add_argument("--only", choices=ONLY_CHOICES,
                        help="judge every row, only raw benchmarks (seconds), only derived "
                             "ratios, or only the ratios that hold across machines ("
                             + ", ".join(derived.PORTABLE_KINDS) + "). Default: all when the "
                             "baseline was recorded on this machine kind at about this speed, "
                             "else portable")


def register(commands) -> None:
    gate = commands.add_parser(
        "gate", help="judge a results file against a baseline (exit 1 on a regression)",
        description="Judge CURRENT against BASELINE (a file or a baselines/<class>/ folder); with "
                    "CURRENT alone, against baselines/<its runner class>/.")
    gate.add_argument("files", nargs="+", metavar="[BASELINE] CURRENT",
                      help="pytest-benchmark JSON files (raw rounds included)")
    gate.add_argument("--baselines", default="baselines", metavar="DIR",
                      help="where baselines/<runner class>/ live. Default: baselines")
    gate.add_argument("--confirm", type=int, default=0, metavar="N",
                      help="rerun each regression's benchmarks in N fresh pytest processes (same "
                           "interpreter, directory and arguments as CURRENT's run); it stands only "
                           "if every rerun regresses too. Default: 0 (make bench: 2)")
    gate.add_argument("--markdown", metavar="PATH",
                      help="where to write the verdict table. Default: verdict.md beside CURRENT")
    add_threshold_options(gate)
    gate.set_defaults(run=cmd_gate)
