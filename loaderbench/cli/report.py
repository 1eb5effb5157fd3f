"""`loaderbench report`: a markdown report with PNG plots of one results file, the verdict first
when asked (presenting/report.py)."""

from __future__ import annotations

from pathlib import Path

from loaderbench.cli import options
from loaderbench.errors import EXIT_OK
from loaderbench.presenting.report import OWN_RUNNER, write_report


def cmd_report(args) -> int:
    write_report(
        args.results,
        out=args.out,
        baseline=args.baseline,
        baselines=Path(args.baselines),
        verdict_path=args.verdict,
        thresholds=options.stored_thresholds(args),
        only=args.only,
    )
    return EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser(
        "report", help="write a markdown report with PNG plots (and the verdict, with --baseline)"
    )
    parser.add_argument("results", help="pytest-benchmark JSON, e.g. results/latest.json")
    parser.add_argument(
        "--baseline",
        metavar="PATH",
        nargs="?",
        const=OWN_RUNNER,
        help="judge the results against this baseline (a file or a "
        "baselines/<class>/ folder) as `loaderbench gate` does; the verdict "
        "comes first. Bare: the baseline of the results' runner class, "
        "if one is recorded",
    )
    options.add_baselines(parser, " (for a bare --baseline)")
    parser.add_argument(
        "--verdict",
        metavar="PATH",
        help="put this verdict.md, written by `loaderbench gate`, first instead of "
        "judging again (how make bench shows the verdict its reruns "
        "confirmed); instead of --baseline",
    )
    options.add_out(parser, "results", "where report.md and the PNGs go")
    options.add_stored_thresholds(parser)
    parser.set_defaults(run=cmd_report)
