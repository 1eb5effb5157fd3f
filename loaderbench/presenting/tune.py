"""`tune`'s answer shown: the terminal text and its table, report.md, tune.png, and the three
files written together (tune.json is the result's ``as_dict``).

Every function takes the result object (tuning.result.TuneResult) and reads its fields and
methods; it is not imported, because tuning builds on this layer, not the other way round.
matplotlib is imported only when the picture is drawn.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from loaderbench.storage import write_atomic

#: Files written by ``write``.
FILES = ("tune.json", "report.md", "tune.png")


def table(result) -> str:
    """Every contest's settings, one row each: ratio to the first, interval, speed, memory."""
    header = (
        "contest",
        "setting",
        "time vs first",
        "interval",
        "samples/s",
        "first batch",
        "peak PSS",
        "growth/worker",
    )
    cells = [header]
    for contest in result.contests:
        for i, entry in enumerate(contest.entries):
            row = entry.as_dict(result.alpha)
            interval = "-" if row["low"] is None else f"[{row['low']:.3f}, {row['high']:.3f}]"
            cells.append(
                (
                    contest.title if i == 0 else "",
                    row["label"],
                    "1 (reference)" if i == 0 else f"{row['time_ratio']:.3f}",
                    "" if i == 0 else interval,
                    _num(row["samples_per_s"], "{:,.0f}"),
                    _num(row["first_batch_s"], "{:.3f} s"),
                    _num(row["peak_pss_mb"], "{:,.0f} MB"),
                    _num(row["growth_per_worker_mb"], "{:+.1f} MB"),
                )
            )
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def text(result) -> str:
    """What the command prints: headline, the call, diagnoses, notes, the evidence."""
    parts = [result.headline(), "", result.snippet()]
    if result.defects():
        parts += ["", "Diagnoses:"] + [f"- {d.message()}" for d in result.defects()]
    if result.notes or result.diagnosis_notes():
        parts += ["", *[f"Note: {n}" for n in result.diagnosis_notes() + result.notes]]
    if result.contests:
        parts += [
            "",
            "Measured side by side (time of a round relative to the contest's first "
            "setting; below 1 is faster; 95% interval over blocks of fresh loaders):",
            "",
            table(result),
        ]
    parts += ["", f"{result.seconds:.0f} s{' (interrupted)' if result.interrupted else ''}"]
    return "\n".join(parts)


def markdown(result) -> str:
    """report.md: the same answer and evidence, with the machine it was measured on."""
    lines = [
        f"# loaderbench tune: {result.dataset}",
        "",
        result.headline(),
        "",
        "```python",
        result.snippet(),
        "```",
        "",
    ]
    if result.defects():
        lines += (
            ["## Diagnoses", ""]
            + [f"- **{d.code}**: {d.message()}" for d in result.defects()]
            + [""]
        )
    if result.notes or result.diagnosis_notes():
        lines += (
            ["## Notes", ""] + [f"- {n}" for n in result.diagnosis_notes() + result.notes] + [""]
        )
    lines += [
        "## Evidence",
        "",
        "Each contest measured its settings side by side, round by "
        "round in random order, in blocks of fresh loaders; the ratio is the time of a "
        "round over the contest's first setting, with its 95% interval.",
        "",
        "```",
        table(result),
        "```",
        "",
        f"batch size {result.batch_size}, device {result.device}, "
        f"{result.seconds:.0f} s{', interrupted' if result.interrupted else ''}; machine: "
        + ", ".join(f"{k} {v}" for k, v in result.machine.items()),
        "",
    ]
    return "\n".join(lines)


def plot(result, path: Path) -> None:
    """One panel per contest: each setting's round time relative to the first, with its
    interval."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # 1 s: only when drawing
    from matplotlib.figure import Figure

    panels = max(len(result.contests), 1)
    figure = Figure(
        figsize=(4.6 * min(panels, 3), 3.0 * ((panels + 2) // 3) + 0.9), layout="constrained"
    )
    FigureCanvasAgg(figure)
    columns = min(panels, 3)
    figure.suptitle(_wrapped(title(result.dataset), width=int(42 * columns)), fontsize=10)
    for i, contest in enumerate(result.contests):
        axes = figure.add_subplot((panels + 2) // 3, min(panels, 3), i + 1)
        rows = [e.as_dict(result.alpha) for e in contest.entries]
        y = list(range(len(rows)))
        values = [r["time_ratio"] for r in rows]
        errors = [
            [r["time_ratio"] - (r["low"] or r["time_ratio"]) for r in rows],
            [(r["high"] or r["time_ratio"]) - r["time_ratio"] for r in rows],
        ]
        axes.errorbar(values, y, xerr=errors, fmt="o", capsize=3)
        axes.axvline(1.0, color="0.6", linewidth=0.8)
        axes.set_yticks(y, [r["label"] for r in rows])
        axes.margins(y=0.3)
        axes.invert_yaxis()
        axes.set_title(_wrapped(contest.title, width=44), fontsize=8)
        axes.set_xlabel("time per round (x first)")
    figure.savefig(path, dpi=100)


def title(dataset: str) -> str:
    return f"loaderbench tune: {dataset} (time relative to the first setting)"


def write(result, folder: Path) -> list[Path]:
    """tune.json, report.md and tune.png in ``folder`` (made if missing); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "tune.json", json.dumps(result.as_dict(), indent=1) + "\n")
    write_atomic(folder / "report.md", markdown(result))
    plot(result, folder / "tune.png")
    return [folder / name for name in FILES]


def _wrapped(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` characters (a long name breaks at its own marks)."""
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=True)) or text


def _num(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
