"""How a span of seconds reads in every progress line: ``42s``, ``5m07s`` (whole seconds, cut
down, as a clock shows them)."""

from __future__ import annotations


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
