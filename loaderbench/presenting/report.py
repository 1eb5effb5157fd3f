"""A markdown report with PNG plots of one results file (`loaderbench report`, cli/report.py).

Writes ``<out>/report.md`` and one PNG per measure present in the run; with ``--baseline`` the
verdict table comes first. When ``GITHUB_STEP_SUMMARY`` is set the report is appended to it too
(images replaced by their file names: a job summary cannot show files from the workspace). The
report presents; it exits 0 whatever the verdict (``loaderbench gate`` is what fails a build).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loaderbench.errors import InputError
from loaderbench.judging import stored_numbers
from loaderbench.judging.baseline import locate_baseline, recording
from loaderbench.judging.thresholds import Thresholds, load_thresholds
from loaderbench.machine import Fingerprint
from loaderbench.presenting import plots
from loaderbench.presenting import verdict as shown
from loaderbench.presenting.recommend import TIE, recommend
from loaderbench.presenting.series import (
    EPOCH,
    MEMORY,
    OVERLAP,
    STARTUP,
    THROUGHPUT,
    Point,
    at,
    serial_of,
    series,
)
from loaderbench.results import Benchmark, Results, load_results, number
from loaderbench.storage import write_atomic

REPORT_NAME = "report.md"
NOT_MEASURED = "_Not measured in this run._"
OWN_RUNNER = "<own runner class>"  # a bare --baseline: look in baselines/<the results' class>/


@dataclass(frozen=True)
class Section:
    measure: str
    title: str
    plot_file: str
    explains: str
    value_column: str
    value_format: str
    draw: Callable[[dict[str, list[Point]], Path], Path]
    compare_column: str | None = None
    compare: Callable[[Point, list[Point]], str] | None = None
    #: One more column, read from the point's benchmark (where an epoch's time went).
    detail_column: str | None = None
    detail: Callable[[Benchmark], str] | None = None


def _speedup(point: Point, points: list[Point]) -> str:
    serial = serial_of(point, points)
    return f"{point.value / serial.value:.2f}×" if serial and point.num_workers else "-"


def _epoch_speedup(point: Point, points: list[Point]) -> str:
    serial = serial_of(point, points)
    return f"{serial.value / point.value:.2f}×" if serial and point.num_workers else "-"


def _phases(bench: Benchmark) -> str:
    phases = bench.info.get("epoch_phases")
    if not isinstance(phases, dict):
        return "-"
    values = [number(phases.get(name)) for name in ("start_s", "steady_s", "shutdown_s")]
    if any(v is None for v in values):
        return "-"
    return " / ".join(f"{v * 1e3:,.1f}" for v in values if v is not None)


def _versus_fork(point: Point, points: list[Point]) -> str:
    fork = at(points, point.num_workers, "fork")
    return (
        f"{point.value / fork.value:.1f}×"
        if fork and point.start_method not in (None, "fork")
        else "-"
    )


def _extra_memory(point: Point, points: list[Point]) -> str:
    serial = serial_of(point, points)
    return f"{point.value - serial.value:+,.0f} MB" if serial and point.num_workers else "-"


def _lines(title: str, ylabel: str, reference=None):
    return lambda by_panel, path: plots.workers_lines(
        by_panel, path, title=title, ylabel=ylabel, reference=reference
    )


SECTIONS = (
    Section(
        THROUGHPUT,
        "Throughput",
        "throughput.png",
        "Steady-state samples per second (median epoch, persistent workers, after a warm "
        "epoch) against `num_workers`, one line per start method.",
        "samples/s",
        ",.0f",
        _lines("Steady-state throughput", "samples/s"),
        "speed-up over 0",
        _speedup,
    ),
    Section(
        EPOCH,
        "Whole epoch of a default loader",
        "epoch.png",
        "Median time of one epoch with `persistent_workers=False` (the default), from "
        "`iter(loader)` to the last batch with the workers stopped: what most training loops pay "
        "every epoch. Its parts: the start (to the first batch, workers started), the steady "
        "part and the shutdown (the last batch until the workers are stopped).",
        "epoch ms",
        ",.1f",
        _lines("Whole epoch, default loader", "ms"),
        "speed-up over 0",
        _epoch_speedup,
        "start / steady / shutdown ms",
        _phases,
    ),
    Section(
        STARTUP,
        "Time to first batch",
        "startup.png",
        "Median time from `iter(loader)` to the first batch, worker start-up included: what "
        "spawn and forkserver pay for importing torch in every worker.",
        "ms",
        ",.1f",
        plots.startup_bars,
        "vs fork",
        _versus_fork,
    ),
    Section(
        MEMORY,
        "Peak memory",
        "memory.png",
        "Peak PSS summed over the main process and its workers during a steady-state epoch "
        "(PSS, not RSS: pages that fork shares are counted once).",
        "peak PSS MB",
        ",.0f",
        _lines("Peak memory (PSS, main + workers)", "MB"),
        "over 0 workers",
        _extra_memory,
    ),
    Section(
        OVERLAP,
        "Overlap with the training step",
        "overlap.png",
        "max(load-only, step-only) / measured epoch with a simulated step per batch: 1.0 is "
        "perfect overlap, `num_workers=0` shows the serial sum.",
        "overlap efficiency",
        ".2f",
        _lines("Overlap efficiency", "max(load, step) / epoch", (1.0, "perfect overlap")),
    ),
)


def _heading(results: Results, source: str) -> list[str]:
    fingerprint, meta = results.fingerprint or Fingerprint(), results.settings
    facts = [f"`{source}`"]
    if meta.get("grid"):
        facts.append(f"grid `{meta['grid']}`")
    for version, label in ((fingerprint.torch, "torch"), (fingerprint.python, "Python")):
        if version:
            facts.append(f"{label} {version}")
    if fingerprint.cpu_model:
        cores = "?" if fingerprint.usable_cores is None else fingerprint.usable_cores
        facts.append(f"{fingerprint.cpu_model}, {cores} usable cores")
    if fingerprint.gpu:
        facts.append(f"GPU {fingerprint.gpu}")
    if results.datetime:
        facts.append(str(results.datetime)[:16].replace("T", " ") + " UTC")
    return ["# loaderbench report", "", " · ".join(facts), ""]


def _baseline_path(
    baseline: str, current: Results, current_path: str, baselines: Path
) -> Path | str:
    """The baseline file to judge against, or (with a bare --baseline and no baseline to be found)
    the reason there is none: the report is still worth writing without a verdict."""
    if baseline != OWN_RUNNER:
        return locate_baseline(Path(baseline))
    runner = current.runner
    if runner is None:
        return (
            f"{current_path} records no runner class, so a bare --baseline cannot find its "
            "baseline: pass one, e.g. --baseline baselines/cpu"
        )
    try:
        return locate_baseline(
            baselines / runner,
            runner=runner,
            fingerprint=current.fingerprint,
            loader=current.loader_class,
        )
    except InputError as exc:
        return str(exc)


def _verdict(
    current: Results,
    current_path: str,
    *,
    baseline: str,
    baselines: Path,
    thresholds: Thresholds,
    only: str | None,
) -> list[str]:
    """The gate's verdict table, judged exactly as `loaderbench gate` would, headings one level down."""
    baseline_path = _baseline_path(baseline, current, current_path, baselines)
    if isinstance(baseline_path, str):
        return ["## Regression verdict", "", f"_Not judged: {baseline_path}._", ""]
    stored = stored_numbers.load_judgeable(baseline_path)
    stored_numbers.check_same_runner(stored, current, baseline_path, current_path)
    verdict = stored_numbers.judge(stored, current, thresholds, only=only)
    heading, *body = shown.markdown(verdict).rstrip().splitlines()
    judged = f"baseline: `{baseline_path}`{recording(stored)}"
    if verdict.only != "all":
        judged += f", judging {verdict.only} only"
    return [f"#{heading}", "", judged, *body, ""]


def _verdict_from(path: Path) -> list[str]:
    """A verdict `loaderbench gate` already wrote (confirmed by reruns, perhaps), headings one
    level down. Missing: the gate stopped with an error before judging, and said why."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [
            "## Regression verdict",
            "",
            f"_Not judged: no verdict at `{path}` (`loaderbench gate` stopped with an error "
            "before judging; its message is in the log)._",
            "",
        ]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--verdict {path}: cannot read it: {exc}") from None
    heading, *body = text.rstrip().splitlines() or [""]
    if heading != "# Regression verdict":
        raise InputError(
            f"--verdict {path}: not a verdict written by `loaderbench gate` "
            f"(first line {heading[:60]!r})"
        )
    return [f"#{heading}", *body, ""]


def _recommendations(results: Results) -> list[str]:
    picks = recommend(results)
    lines = ["## Recommendations", ""]
    if not picks:
        return lines + [NOT_MEASURED, ""]
    lines += [f"- {pick.sentence()}" for pick in picks]
    return lines + [
        "",
        f"The cheapest case (fewest workers, then fastest start-up) within {TIE:.0%} "
        "of the best throughput measured on this machine; memory is peak PSS over "
        "0 workers.",
        "",
    ]


def _table(section: Section, by_panel: dict[str, list[Point]], results: Results) -> list[str]:
    header = ["profile", "case", section.value_column]
    if section.compare and section.compare_column:
        header.append(section.compare_column)
    if section.detail and section.detail_column:
        header.append(section.detail_column)
    benches = results.by_name()
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for panel, points in by_panel.items():
        for point in points:
            cells = [panel, point.label, f"{point.value:{section.value_format}}"]
            if section.compare:
                cells.append(section.compare(point, points))
            if section.detail:
                cells.append(section.detail(benches[point.benchmark]))
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def _section(section: Section, results: Results, out: Path, image: Callable[[str, str], str]):
    """(markdown lines, the plot written or None)."""
    by_panel = series(results, section.measure)
    lines = [f"## {section.title}", ""]
    if not by_panel:
        return lines + [NOT_MEASURED, ""], None
    plot = section.draw(by_panel, out / section.plot_file)
    return lines + [
        section.explains,
        "",
        image(section.title, plot.name),
        "",
        *_table(section, by_panel, results),
        "",
    ], plot


@dataclass(frozen=True)
class Report:
    markdown: str
    summary: str  # the same report for GITHUB_STEP_SUMMARY, images named instead of embedded
    plots: list[Path]


def build(results: Results, out: Path, *, source: str, verdict: Sequence[str] = ()) -> Report:
    """Render the report for ``results`` (``verdict``: its markdown lines, first) and write its
    plots into ``out`` (which must exist)."""
    top = _heading(results, source) + list(verdict)
    top += _recommendations(results)
    embedded, named, written = list(top), list(top), []
    for section in SECTIONS:
        lines, plot = _section(section, results, out, lambda alt, name: f"![{alt}]({name})")
        embedded += lines
        named += [
            line if not line.startswith("![") else f"_Plot: `{plot.name}` in the uploaded results._"
            for line in lines
        ]
        if plot is not None:
            written.append(plot)
        else:  # never leave an earlier run's picture beside a report that says "not measured"
            (out / section.plot_file).unlink(missing_ok=True)
    return Report("\n".join(embedded), "\n".join(named), written)


def _output_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"--out {out}: is a file, expected a directory for the report") from None
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create the directory: {exc.strerror}") from None
    return out


def write_report(
    results_path: str,
    *,
    out: str,
    baseline: str | None = None,
    baselines: Path = Path("baselines"),
    verdict_path: str | None = None,
    thresholds: Thresholds | None = None,
    only: str | None = None,
) -> Report:
    """report.md and its plots for the results at ``results_path``, written into ``out``; first
    the verdict `loaderbench gate` wrote (``verdict_path``), or one judged here against
    ``baseline`` (a file, a folder, or OWN_RUNNER for the results' own runner class under
    ``baselines``) with ``thresholds``. Appended to $GITHUB_STEP_SUMMARY when it is set."""
    results = (
        stored_numbers.load_judgeable(results_path) if baseline else load_results(results_path)
    )
    if verdict_path and baseline:
        raise InputError(
            "--verdict and --baseline both given: show the gate's verdict file, or "
            "judge again, not both"
        )
    if verdict_path:
        verdict = _verdict_from(Path(verdict_path))
    elif baseline:
        verdict = _verdict(
            results,
            results_path,
            baseline=baseline,
            baselines=baselines,
            thresholds=thresholds or load_thresholds(),
            only=only,
        )
    else:
        verdict = []
    folder = _output_dir(out)
    report = build(results, folder, source=results_path, verdict=verdict)
    try:
        write_atomic(folder / REPORT_NAME, report.markdown + "\n")
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as stream:
                stream.write(report.summary + "\n")
    except OSError as exc:
        raise InputError(f"cannot write the report: {exc}") from None
    print(
        f"wrote {folder / REPORT_NAME} and {len(report.plots)} plots: "
        + ", ".join(p.name for p in report.plots)
    )
    return report
