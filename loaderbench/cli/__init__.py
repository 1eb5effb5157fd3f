"""The `loaderbench` command. Exit codes: 0 fine, 1 regression, 2 unusable input (errors.py).

Each subcommand is registered by the module that runs it: ``gate`` and ``baseline`` here (they
join judging with the side-by-side engine), ``ab``, ``ratios`` and ``sensitivity`` in ``paired``,
``report`` in ``presenting``, ``tune`` in ``tuning.cli``; ``table`` below. Building the parser
imports no torch, scipy or matplotlib (a test keeps it so): ``--help``, ``table``, ``report``
and ``gate`` start in well under a second, and torch is imported where a loader is built.
"""

from __future__ import annotations

import argparse
import sys

from loaderbench.cli import baseline, gate
from loaderbench.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, InputError
from loaderbench.paired import ab, ratios, sensitivity
from loaderbench.presenting import report
from loaderbench.presenting.table import format_table
from loaderbench.results import load_results
from loaderbench.tuning import cli as tune_cli


def cmd_table(args) -> int:
    print(format_table(load_results(args.results)))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loaderbench",
        description="Judge DataLoader speed: against stored numbers (gate), side by side (ab, "
        "gate --remeasure, sensitivity); record baselines; present results; find the "
        "settings for your own dataset (tune).",
        epilog="exit codes: 0 no regression, 1 regression, 2 unusable input, 3 inconclusive "
        "rows (with --strict), 130 interrupted",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    table = commands.add_parser("table", help="print the compact grid table of a results file")
    table.add_argument("results", help="pytest-benchmark JSON, e.g. results/latest.json")
    table.set_defaults(run=cmd_table)
    gate.register(commands)
    baseline.register(commands)
    ab.register(commands)
    sensitivity.register(commands)
    ratios.register(commands)
    report.register(commands)
    tune_cli.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 on a usage error
    try:
        return args.run(args)
    except InputError as exc:
        print(f"loaderbench {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C is not a bug: one line, the shell's code for SIGINT
        print(
            f"loaderbench {args.command}: interrupted; files already in place were left "
            "as they were",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
