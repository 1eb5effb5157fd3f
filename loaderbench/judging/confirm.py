"""Confirming a regression in fresh processes before it fails the verdict.

On a shared runner a whole process can land in a slow mode (on a 2-core AMD EPYC machine one
case's epoch sat at about 75, 91 or 110-136 ms depending on the process, minutes apart, nothing
changed).
A stored baseline recorded in a few back-to-back runs may never have seen the slow mode, so one
unlucky process is called a regression. A real slowdown, unlike that, is there in every process.

So a regression found by the verdict is only a candidate: its benchmarks (for a derived ratio, the
benchmarks it is computed from) are run again, ``runs`` times, each time in a fresh pytest process
started with the same interpreter, directory and arguments as the run being judged (the plugin
records them as ``loaderbench.invocation``), and each rerun is judged against the baseline by the
same rule. The regression stands only when every rerun is a regression too; otherwise the row
takes the rerun's verdict (unchanged or inconclusive), with a note saying which rerun cleared it
and how it measured. A rerun that cannot
run (its pytest fails) confirms nothing and clears nothing: the regression stands, and says so.

Memory rows are not rerun. A rerun narrowed to one benchmark starts from a main process that has
not built the session's earlier datasets, and fork workers share the main process's pages, so it
measures less memory for reasons that are not a change (on the reference machine, a worker given
50 MB more measured +45 MB in the whole run and +8 MB in its narrowed rerun). Memory does not move
with the machine's speed: the baseline's whole runs already show how far an unchanged run lands.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from loaderbench.config import args_for, option
from loaderbench.errors import InputError
from loaderbench.judging.record import PytestFailed, run_pytest
from loaderbench.results import Invocation, Results

#: pytest options of the judged run that a rerun must not repeat: it writes its own results file
#: and must not save into, or compare against, pytest-benchmark storage. Value-taking options in
#: ``--name VALUE`` form take their value with them; the rerun option is replaced.
_DROP_WITH_VALUE = ("--benchmark-json", "--benchmark-save", option("rerun"))
_DROP_ALONE = (
    "--benchmark-autosave",
    "--benchmark-compare",
    "--benchmark-compare-fail",
    "--benchmark-histogram",
)


def invocation_of(results: Results, path) -> Invocation:
    """How ``results`` was produced; an InputError when the file does not say."""
    if results.invocation is None:
        raise InputError(
            f"{path} records no pytest invocation to rerun (loaderbench.invocation, "
            "written by this version's plugin): rerun the benchmarks, or judge "
            "without --confirm"
        )
    return results.invocation


def rerun_command(invocation: Invocation, nodeids_file: Path, out: Path) -> list[str]:
    """The same pytest, narrowed to the listed node ids, writing ``out``."""
    return [
        invocation.python,
        "-m",
        "pytest",
        *rerun_args(invocation.args),
        *args_for(rerun=nodeids_file),
        f"--benchmark-json={out}",
    ]


def rerun_args(args: tuple[str, ...]) -> list[str]:
    """``args`` without the options a rerun must not repeat (see _DROP_WITH_VALUE/_DROP_ALONE)."""
    kept, skip_value = [], False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        name = arg.split("=", 1)[0]
        if name in _DROP_WITH_VALUE:
            skip_value = "=" not in arg
            continue
        if name in _DROP_ALONE:
            continue
        kept.append(arg)
    return kept


def confirm(
    verdict,
    baseline: Results,
    current: Results,
    current_path,
    *,
    runs: int,
    rejudge,
    run=run_pytest,
    show=print,
):
    """Rerun every regressed row's benchmarks up to ``runs`` times; clear the rows a rerun clears.

    ``rejudge(baseline, rerun_results)`` is the verdict's own judge (same thresholds). Rows are
    updated in place; returns ``verdict``.
    """
    if runs < 1:
        return verdict
    verdict.rule += f"; a regression must repeat in {runs} fresh rerun{'s' if runs > 1 else ''}"
    # A row already confirmed side by side (paired/settle.py, gate --side-by-side) needs no rerun; a
    # memory row cannot be confirmed by a narrowed rerun (module docstring).
    standing = [
        row
        for row in verdict.rows
        if row.verdict == "regressed" and "side_by_side" not in row.detail and row.kind != "memory"
    ]
    if not standing:
        return verdict
    invocation = invocation_of(current, current_path)
    fullnames = {b.name: b.fullname or b.name for b in current.benchmarks}
    confirmations: dict[int, list[str]] = {id(row): [] for row in standing}
    with tempfile.TemporaryDirectory(prefix="loaderbench-confirm-") as tmp:
        for k in range(1, runs + 1):
            if not standing:
                break
            nodeids = sorted(
                {fullnames[name] for row in standing for name in row.inputs if name in fullnames}
            )
            show(
                f"loaderbench: confirming {len(standing)} regression(s) in fresh process {k} of "
                f"{runs} ({len(nodeids)} benchmark(s))"
            )
            listing = Path(tmp) / f"rerun-{k}.txt"
            listing.write_text("\n".join(nodeids) + "\n")
            try:
                rerun = run(
                    rerun_command(invocation, listing, Path(tmp) / f"rerun-{k}.json"),
                    invocation.directory,
                    slot=(k - 1, runs),
                )
            except (PytestFailed, InputError) as exc:  # no results: it confirms nothing
                show(
                    f"loaderbench: fresh process {k} failed ({exc}): the regressions stand "
                    "unconfirmed"
                )
                for row in standing:
                    row.note += f"; unconfirmed: rerun {k} failed ({exc})"
                return verdict
            again = {row.name: row for row in rejudge(baseline, rerun).rows}
            still = []
            for row in standing:
                seen = again.get(row.name)
                if seen is None or seen.verdict == "missing":
                    # Not rerun (no longer collected): it cannot be cleared, so it stands.
                    confirmations[id(row)].append(f"rerun {k}: not rerun")
                    still.append(row)
                elif seen.verdict == "regressed":
                    confirmations[id(row)].append(_change(seen))
                    still.append(row)
                else:
                    row.verdict = seen.verdict
                    row.note = (
                        f"not confirmed: {_change(seen)} in fresh process {k} "
                        f"({seen.note}); first run: {row.note}"
                    )
            standing = still
    for row in standing:
        row.note += (
            f"; confirmed in {runs} fresh process{'es' if runs > 1 else ''} "
            f"({', '.join(confirmations[id(row)])})"
        )
    return verdict


def _change(row) -> str:
    if row.change is None:
        return "-"
    return f"{row.change:+.1f} MB" if row.kind == "memory" else f"{row.change:.3f}x"
