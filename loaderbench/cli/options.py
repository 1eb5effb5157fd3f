"""Option groups several commands share, and the typed values each group gives.

One flag means one thing in every command that takes it: ``--min-effect`` the smallest change
worth calling, ``--alpha`` the level of the stored-numbers verdict's prediction interval,
``--pair-alpha`` the level of a side-by-side interval and its Wilcoxon test, ``--seconds-per-row``
the side-by-side measuring time per row (``tune --budget`` is the whole search's duration, a
different thing under a different name). A command adds a group here and reads it back with the
function beside it; no command below ``cli/`` sees the parsed arguments.
"""

from __future__ import annotations

import dataclasses

from loaderbench.config import Selection, parse_selection
from loaderbench.errors import InputError
from loaderbench.judging import derived
from loaderbench.judging.stored_numbers import ONLY_CHOICES
from loaderbench.judging.thresholds import Rule, Thresholds, load_thresholds
from loaderbench.paired.engine import SCHEDULE
from loaderbench.paired.protocol import MEASURES
from loaderbench.paired.schedule import Schedule


def add_min_effect(parser) -> None:
    parser.add_argument(
        "--min-effect",
        type=float,
        metavar="FRACTION",
        help="smallest change worth calling, for every group, e.g. 0.05 (default: pyproject "
        "[tool.loaderbench], else 0.05)",
    )


def add_stored_thresholds(parser) -> None:
    """The stored-numbers verdict's thresholds and which rows it judges (gate, report); the
    minimum effect also rules what gate measures side by side."""
    add_min_effect(parser)
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


def stored_thresholds(args) -> Thresholds:
    return load_thresholds().overridden(
        min_effect=args.min_effect, alpha=args.alpha, memory_min_mb=args.memory_min_mb
    )


def add_pair_alpha(parser) -> None:
    parser.add_argument(
        "--pair-alpha",
        type=float,
        metavar="P",
        help="1 - confidence of a side-by-side interval, and the Wilcoxon level "
        "(default: pyproject pair_alpha, else 0.05)",
    )


def add_pair_thresholds(parser) -> None:
    """The side-by-side verdict's thresholds (ab, ratios, sensitivity)."""
    add_min_effect(parser)
    add_pair_alpha(parser)


def pair_rule(args) -> Rule:
    """The side-by-side rule: --min-effect and --pair-alpha over pyproject's."""
    return (
        load_thresholds().overridden(min_effect=args.min_effect, pair_alpha=args.pair_alpha).default
    )


def add_budget(parser) -> None:
    """How long side-by-side measuring may take (ab, gate --remeasure, ratios, sensitivity)."""
    parser.add_argument(
        "--seconds-per-row",
        type=float,
        default=SCHEDULE.seconds_per_row,
        metavar="SECONDS",
        help="measuring time per row, on average (rows that settle early leave "
        f"theirs to the others). Default: {SCHEDULE.seconds_per_row:g}",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        default=SCHEDULE.blocks,
        metavar="N",
        help="at most this many starts of fresh side processes (at least "
        f"{SCHEDULE.min_blocks}). Default: {SCHEDULE.blocks}",
    )


def schedule(args) -> Schedule:
    try:
        return dataclasses.replace(
            SCHEDULE,
            seconds_per_row=args.seconds_per_row,
            blocks=args.blocks,
            min_blocks=min(SCHEDULE.min_blocks, args.blocks),
        )
    except ValueError as exc:
        raise InputError(f"--seconds-per-row/--blocks: {exc}") from None


def add_two_sides(parser) -> None:
    """What to measure on two sides and how to pair them (ab, gate --remeasure, sensitivity;
    ``--mode`` also gate --side-by-side)."""
    parser.add_argument(
        "--measures",
        default="throughput,startup",
        metavar="LIST",
        help=f"what to measure: {', '.join(MEASURES)}. Default: throughput,startup",
    )
    add_mode(parser)


def add_mode(parser) -> None:
    parser.add_argument(
        "--mode",
        choices=("auto", "alternate"),
        default="auto",
        help="auto: rows without workers of the cpu and io profiles as a duet "
        "(both sides at once, a core each), the rest one after the other "
        "in random order; alternate: every row one after the other",
    )


def measures(args) -> tuple[str, ...]:
    return names_from(args.measures, MEASURES, "--measures", "measure")


def names_from(text: str, valid, option: str, what: str) -> tuple[str, ...]:
    """A comma-separated list of ``valid`` names, each once, in the order given; an InputError
    naming the unknown ones and listing the valid."""
    chosen = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in chosen if m not in valid]
    if unknown or not chosen:
        raise InputError(
            f"{option}: unknown {what} {', '.join(unknown) or '(none given)'}; "
            f"valid: {', '.join(valid)}"
        )
    return chosen


def add_strict(parser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 when no row regressed but some are inconclusive",
    )


def add_out(parser, default, what: str) -> None:
    parser.add_argument(
        "--out", default=str(default), metavar="DIR", help=f"{what}. Default: {default}"
    )


def add_venvs(parser, default) -> None:
    parser.add_argument(
        "--venvs",
        default=str(default),
        metavar="DIR",
        help="where spec virtualenvs, git-ref checkouts and rebuilt recipes are made and "
        f"reused. Default: {default}",
    )


def add_baselines(parser, what: str = "") -> None:
    parser.add_argument(
        "--baselines",
        default="baselines",
        metavar="DIR",
        help=f"where baselines/<runner class>/ live{what}. Default: baselines",
    )


def add_selection(parser, what: str = "grid selection and settings for both sides") -> None:
    """Everything after ``--``: the grid selection and the sides' settings (config.py)."""
    parser.add_argument("pytest_args", nargs="*", metavar="-- SELECTION", help=what)


def selection(args) -> Selection:
    return parse_selection(args.pytest_args)
