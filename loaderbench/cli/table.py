"""`loaderbench table`: the compact grid table of a results file (presenting/table.py)."""

from __future__ import annotations

from loaderbench.errors import EXIT_OK
from loaderbench.presenting.table import format_table
from loaderbench.results import load_results


def cmd_table(args) -> int:
    print(format_table(load_results(args.results)))
    return EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser("table", help="print the compact grid table of a results file")
    parser.add_argument("results", help="pytest-benchmark JSON, e.g. results/latest.json")
    parser.set_defaults(run=cmd_table)
