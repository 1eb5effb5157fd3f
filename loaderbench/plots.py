"""PNG plots of one run: one panel per profile, one colour per start method in every figure.

Figures are drawn on matplotlib's Agg canvas directly, without pyplot, so nothing here depends on
(or changes) the process-wide backend: reports render the same on a headless runner and inside a
notebook.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .grid import START_METHODS
from .series import Point

#: Colour and marker per start method, shared by every figure so that spawn is spawn everywhere.
STYLE = {method: (f"C{i}", marker) for i, (method, marker) in enumerate(zip(START_METHODS, "os^"))}
SERIAL_COLOUR = "0.35"  # num_workers=0: no start method, drawn in grey
PANEL_COLUMNS = 4


def _style(method: str | None) -> tuple[str, str]:
    return STYLE.get(method, ("C7", "D")) if method else (SERIAL_COLOUR, "o")


def _figure(title: str, panels: int) -> tuple[Figure, list]:
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


def workers_lines(by_profile: dict[str, list[Point]], path: Path, *, title: str, ylabel: str,
                  reference: tuple[float, str] | None = None) -> Path:
    """``value`` against num_workers, one line per start method, each starting from the shared
    num_workers=0 point; ``reference`` draws a dashed horizontal line (value, label)."""
    figure, axes = _figure(title, len(by_profile))
    for ax, (profile, points) in zip(axes, by_profile.items()):
        serial = [p for p in points if p.num_workers == 0]
        methods = list(dict.fromkeys(p.start_method for p in points if p.start_method))
        for method in methods:
            line = serial + [p for p in points if p.start_method == method]
            colour, marker = _style(method)
            ax.plot([p.num_workers for p in line], [p.value for p in line], color=colour,
                    marker=marker, label=method)
        if serial:
            ax.plot([0], [serial[0].value], color=SERIAL_COLOUR, marker="o", linestyle="none",
                    label="0 workers", zorder=3)
        if reference:
            ax.axhline(reference[0], color="0.5", linestyle="--", linewidth=1, label=reference[1])
        ax.set_title(profile)
        ax.set_xlabel("num_workers")
        ax.set_ylabel(ylabel)
        ax.set_xticks(sorted({p.num_workers for p in points}))
        ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], (reference[0] * 1.1) if reference else 0))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(figure, path)


def startup_bars(by_profile: dict[str, list[Point]], path: Path) -> Path:
    """Time to first batch per case, bars coloured by start method, log scale (spawn is often
    tens of times slower than fork)."""
    figure, axes = _figure("Time to first batch (median, worker start-up included)",
                           len(by_profile))
    for ax, (profile, points) in zip(axes, by_profile.items()):
        labels = [f"w{p.num_workers}" + (f"\n{p.start_method}" if p.start_method else "")
                  for p in points]
        bars = ax.bar(range(len(points)), [p.value for p in points],
                      color=[_style(p.start_method)[0] for p in points])
        ax.bar_label(bars, labels=[f"{p.value:,.0f}" if p.value >= 10 else f"{p.value:.1f}"
                                   for p in points], fontsize="small")
        ax.set_xticks(range(len(points)), labels)
        ax.set_yscale("log")
        ax.margins(y=0.15)
        ax.set_title(profile)
        ax.set_ylabel("ms to first batch (log)")
        ax.grid(axis="y", alpha=0.3)
    return _save(figure, path)
