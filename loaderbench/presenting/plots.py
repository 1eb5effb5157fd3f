"""PNG plots of one run: one panel per profile (and per extra benchmark of a measure, such as the
copy-on-read pair), one colour per start method in every figure.

Figures are drawn on matplotlib's Agg canvas directly, without pyplot, so nothing here depends on
(or changes) the process-wide backend: reports render the same on a headless runner and inside a
notebook.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from loaderbench.grid import START_METHODS
from loaderbench.presenting.series import Point

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Colour and marker per start method, shared by every figure so that spawn is spawn everywhere.
STYLE = {method: (f"C{i}", marker) for i, (method, marker) in enumerate(zip(START_METHODS, "os^"))}
SERIAL_COLOUR = "0.35"  # num_workers=0: no start method, drawn in grey
PANEL_COLUMNS = 4


def line_style(line: str | None, others: list[str]) -> tuple[str, str]:
    """Start methods keep their colours everywhere; other lines (a dataset setting) take the next
    colours of the cycle; the shared num_workers=0 point is grey."""
    if line is None:
        return SERIAL_COLOUR, "o"
    if line in STYLE:
        return STYLE[line]
    return f"C{len(STYLE) + others.index(line)}", "D"


def _figure(title: str, panels: int) -> tuple[Figure, list]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # 1 s: only when drawing
    from matplotlib.figure import Figure

    columns = min(panels, PANEL_COLUMNS)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(3.6 * columns, 3.0 * rows + 0.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for unused in axes[panels:]:
        unused.set_visible(False)
    figure.suptitle(title)
    return figure, axes[:panels]


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png", dpi=100)
    return path


def workers_lines(
    by_panel: dict[str, list[Point]],
    path: Path,
    *,
    title: str,
    ylabel: str,
    reference: tuple[float, str] | None = None,
) -> Path:
    """``value`` against num_workers, one line per start method (each starting from the shared
    num_workers=0 point) or per dataset setting; ``reference`` draws a dashed horizontal line
    (value, label)."""
    figure, axes = _figure(title, len(by_panel))
    for ax, (panel, points) in zip(axes, by_panel.items()):
        shared = [p for p in points if p.line is None]
        lines = list(dict.fromkeys(p.line for p in points if p.line is not None))
        others = [line for line in lines if line not in STYLE]
        for name in lines:
            line = shared + [p for p in points if p.line == name]
            colour, marker = line_style(name, others)
            ax.plot(
                [p.num_workers for p in line],
                [p.value for p in line],
                color=colour,
                marker=marker,
                label=name,
            )
        if shared:
            ax.plot(
                [p.num_workers for p in shared],
                [p.value for p in shared],
                color=SERIAL_COLOUR,
                marker="o",
                linestyle="none",
                label="0 workers",
                zorder=3,
            )
        if reference:
            ax.axhline(reference[0], color="0.5", linestyle="--", linewidth=1, label=reference[1])
        ax.set_title(panel)
        ax.set_xlabel("num_workers")
        ax.set_ylabel(ylabel)
        ax.set_xticks(sorted({p.num_workers for p in points}))
        ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], (reference[0] * 1.1) if reference else 0))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(figure, path)


def startup_bars(by_panel: dict[str, list[Point]], path: Path) -> Path:
    """Time to first batch per case, bars coloured by start method, log scale (spawn is often
    tens of times slower than fork)."""
    figure, axes = _figure("Time to first batch (median, worker start-up included)", len(by_panel))
    for ax, (panel, points) in zip(axes, by_panel.items()):
        labels = [f"w{p.num_workers}" + (f"\n{p.line}" if p.line else "") for p in points]
        others = list(dict.fromkeys(p.line for p in points if p.line and p.line not in STYLE))
        bars = ax.bar(
            range(len(points)),
            [p.value for p in points],
            color=[line_style(p.line, others)[0] for p in points],
        )
        ax.bar_label(
            bars,
            labels=[f"{p.value:,.0f}" if p.value >= 10 else f"{p.value:.1f}" for p in points],
            fontsize="small",
        )
        ax.set_xticks(range(len(points)), labels)
        ax.set_yscale("log")
        ax.margins(y=0.15)
        ax.set_title(panel)
        ax.set_ylabel("ms to first batch (log)")
        ax.grid(axis="y", alpha=0.3)
    return _save(figure, path)
