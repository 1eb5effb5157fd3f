"""`loaderbench sensitivity`: the side-by-side verdict's false alarms and the smallest slowdown it
catches, on this machine now (paired/sensitivity.py)."""

from __future__ import annotations

from pathlib import Path

from loaderbench.cli import options
from loaderbench.errors import EXIT_OK
from loaderbench.paired.sensitivity import load_comparisons, measure_sensitivity, variants
from loaderbench.presenting.sensitivity import markdown
from loaderbench.storage import write_atomic

DEFAULT_OUT = Path("results/sensitivity")


def cmd_sensitivity(args) -> int:
    if args.tabulate:
        print(markdown(load_comparisons(args.tabulate)))
        return EXIT_OK
    selection = options.selection(args)
    schedule, measures, rule = (
        options.schedule(args),
        options.measures(args),
        options.pair_rule(args),
    )
    out = Path(args.out)
    comparisons = measure_sensitivity(
        selection,
        variants(args.aa, args.slowdowns, args.inject),
        runs=args.runs,
        schedule=schedule,
        measures=measures,
        rule=rule,
        out=out,
        duet=args.mode == "auto",
    )
    table = markdown(comparisons)
    write_atomic(out / "sensitivity.md", table)
    print(table)
    return EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser(
        "sensitivity",
        help="measure the side-by-side verdict's false alarms and the smallest "
        "slowdown it catches, on this machine now",
        description="Run A against A and A against injected slowdowns, side by side, RUNS times, "
        "and tabulate per row the false alarms and how often each slowdown was "
        "caught. Anything after -- selects the grid (--lb-profiles=cpu).",
    )
    parser.add_argument(
        "--runs", type=int, default=3, metavar="N", help="comparisons of each kind. Default: 3"
    )
    parser.add_argument(
        "--slowdowns",
        default="1.10,1.25",
        metavar="FACTORS",
        help="cost scales of side B, each a comparison. Default: 1.10,1.25",
    )
    parser.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a slowdown injected into DataLoader on side B (inject.py), each a "
        "comparison; repeatable",
    )
    parser.add_argument(
        "--no-aa", dest="aa", action="store_false", help="skip the A against A comparisons"
    )
    options.add_budget(parser)
    options.add_two_sides(parser)
    options.add_pair_thresholds(parser)
    options.add_out(parser, DEFAULT_OUT, "where sensitivity.json and .md go")
    parser.add_argument(
        "--tabulate",
        nargs="+",
        metavar="JSON",
        help="measure nothing: one table from these sensitivity.json files",
    )
    options.add_selection(parser)
    parser.set_defaults(run=cmd_sensitivity)
