"""The `loaderbench` command. Exit codes: 0 fine, 1 regression, 2 unusable input (errors.py).

One module per command in this package registers its options and turns them into typed values
and keyword arguments of a library function; option groups several commands share are in
``options``. Building the parser imports no torch, scipy or matplotlib (a test keeps it so):
``--help``, ``table``, ``report`` and ``gate`` start in well under a second, and torch is
imported where a loader is built.
"""

from __future__ import annotations

import argparse
import sys

from loaderbench.cli import ab, baseline, gate, ratios, report, sensitivity, table, tune
from loaderbench.errors import EXIT_INTERRUPTED, EXIT_USAGE, InputError

#: In the order ``--help`` lists them.
COMMANDS = (table, gate, baseline, ab, sensitivity, ratios, report, tune)


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
    for command in COMMANDS:
        command.register(commands)
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
