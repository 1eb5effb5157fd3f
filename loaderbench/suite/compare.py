"""loaderbench's verdict at the end of ``pytest --benchmark-compare[=NNNN]``.

pytest-benchmark's own comparison prints the change of every statistic against the saved run, and
when the saved run's machine differs it warns with both machines' info dumped as JSON (pages of
it), however small the difference. Seconds from another machine kind, or from the same machine
hours ago, cannot tell 10%: the table may say "4x faster" of an unchanged loader.

So, with ``--benchmark-compare``, the terminal summary ends with the verdict of
``loaderbench gate`` against each compared file (judging/stored_numbers.py: regressed, improved, unchanged
or inconclusive, with intervals, from the saved run's recorded noise); its first lines say in a
sentence when the saved run is of another machine kind and what is therefore not judged, in place
of pytest-benchmark's JSON warning. ``--benchmark-compare-fail`` keeps pytest-benchmark's meaning,
and the exit status stays pytest's: where loaderbench's verdict would fail the run, the summary
says so and names the command that does (``loaderbench gate``, side by side with
``--side-by-side``).
"""

from __future__ import annotations

from contextlib import contextmanager

from loaderbench.errors import InputError
from loaderbench.judging.stored_numbers import judge
from loaderbench.presenting import verdict as shown
from loaderbench.results import Results

#: The start of pytest-benchmark's warning when a saved run's machine_info differs.
MACHINE_WARNING = "Benchmark machine_info is different"


class _QuietMachineWarning:
    """pytest-benchmark's logger, without its machine-info JSON warning (the verdict says it in
    one line); every other message passes through."""

    def __init__(self, logger):
        self._logger = logger

    def warning(self, text, *args, **kwargs):
        if not str(text).startswith(MACHINE_WARNING):
            return self._logger.warning(text, *args, **kwargs)
        return None

    def __getattr__(self, name):
        return getattr(self._logger, name)


@contextmanager
def machine_warning_in_one_line(benchmarksession):
    """Around pytest-benchmark's machine-info check: its JSON dump is left out."""
    logger = benchmarksession.logger
    benchmarksession.logger = _QuietMachineWarning(logger)
    try:
        yield
    finally:
        benchmarksession.logger = logger


def current_results(config, benchmarksession) -> Results:
    """This run as the JSON pytest-benchmark would write with ``--benchmark-json`` (raw rounds
    and loaderbench's section included)."""
    output = config.hook.pytest_benchmark_generate_json(
        config=config,
        benchmarks=benchmarksession.benchmarks,
        include_data=True,
        machine_info=benchmarksession.get_machine_info(),
        commit_info={},
    )
    config.hook.pytest_benchmark_update_json(
        config=config, benchmarks=benchmarksession.benchmarks, output_json=output
    )
    return Results.from_json(output)


def verdict_lines(path, saved: dict, current: Results) -> list[str]:
    """The summary's lines for one compared file."""
    title = f"loaderbench verdict against {path}"
    try:
        baseline = Results.from_json(saved)
    except InputError as exc:
        return [title, f"not judged: {exc}"]
    verdict = judge(baseline, current)
    # A narrowed run (-k, --lb-profiles) leaves most of a saved grid out: one line, not a row each.
    missing = [row for row in verdict.rows if row.verdict == "missing"]
    verdict.rows = [row for row in verdict.rows if row.verdict != "missing"]
    lines = [title, shown.text(verdict)]
    if missing:
        lines.append(f"({len(missing)} rows of the saved run were not run here and are left out)")
    if verdict.regressed:
        lines.append(
            "loaderbench's verdict would fail this run (pytest's exit status is its own): "
            f"`loaderbench gate {path} RESULTS.json` judges it with an exit code, and "
            "`--side-by-side SECONDS` measures the regressed rows again beside the baseline's "
            "recipe (write RESULTS.json with --benchmark-json)"
        )
    return lines
