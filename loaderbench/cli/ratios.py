"""`loaderbench ratios`: ratios between two configurations measured side by side in one
environment, each with its interval (paired/ratios.py)."""

from __future__ import annotations

from pathlib import Path

from loaderbench.cli import options
from loaderbench.errors import EXIT_OK
from loaderbench.paired.engine import RATIO_KINDS
from loaderbench.paired.ratios import measure_ratios
from loaderbench.presenting import ratios as shown

DEFAULT_OUT = Path("results/ratios")


def cmd_ratios(args) -> int:
    selection, rule, out = options.selection(args), options.pair_rule(args), Path(args.out)
    rows = measure_ratios(
        selection,
        options.names_from(args.kinds, RATIO_KINDS, "--kinds", "ratio"),
        schedule=options.schedule(args),
        rule=rule,
        out=out,
    )
    shown.write(rows, selection.grid(), 1 - rule.pair_alpha, out)
    return EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser(
        "ratios",
        help="ratios between configurations (speed-up, start-up ratio, overlap gain), "
        "measured side by side with an interval",
        description="Measure, in this environment, each ratio's two configurations side by side "
        "(alternating rounds in one process, blocks of fresh processes) and print it "
        "with its confidence interval. Anything after -- selects the grid "
        "(--lb-profiles=cpu --lb-workers=0,2,4).",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(RATIO_KINDS),
        metavar="LIST",
        help=f"which ratios: {', '.join(RATIO_KINDS)}. Default: all",
    )
    options.add_budget(parser)
    options.add_pair_thresholds(parser)
    options.add_out(parser, DEFAULT_OUT, "where ratios.json and ratios.txt go")
    options.add_selection(parser, "grid selection and settings")
    parser.set_defaults(run=cmd_ratios)
