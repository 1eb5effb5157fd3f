"""`loaderbench gate`: judge a results file against stored numbers (judging.stored_numbers), then with
``--side-by-side SECONDS`` measure what they leave open side by side with the baseline's recipe
(paired.settle); or, with ``--remeasure``, the whole grid side by side (paired.remeasure)."""

from __future__ import annotations

import sys
from pathlib import Path

from loaderbench.cli import options
from loaderbench.errors import EXIT_USAGE, InputError
from loaderbench.judging.baseline import locate_baseline, recording
from loaderbench.judging.confirm import confirm
from loaderbench.judging.stored_numbers import check_same_runner, judge, load_judgeable
from loaderbench.paired import environments
from loaderbench.presenting import verdict as shown


def cmd_gate(args) -> int:
    if args.remeasure:
        from loaderbench.paired.remeasure import remeasure

        verdict, preamble = remeasure(
            args.files,
            baselines=Path(args.baselines),
            schedule=options.schedule(args),
            measures=options.measures(args),
            rule=options.pair_rule(args),
            venvs=Path(args.venvs),
            out=Path(args.out),
            duet=args.mode == "auto",
        )
        shown.write(verdict, Path(args.out) / "verdict.md", preamble)
        return verdict.exit_code(args.strict)
    if not 1 <= len(args.files) <= 2:
        raise InputError(f"expected [BASELINE] CURRENT, got {len(args.files)} paths")
    current_path = Path(args.files[-1])
    current = load_judgeable(current_path)
    if len(args.files) == 2:
        baseline_path = locate_baseline(Path(args.files[0]))
    else:
        runner = current.runner
        if runner is None:
            raise InputError(
                f"{current_path} records no runner class (not written by this "
                "version's plugin): pass the baseline explicitly: "
                "loaderbench gate BASELINE CURRENT"
            )
        baseline_path = locate_baseline(
            Path(args.baselines) / runner,
            runner=runner,
            fingerprint=current.fingerprint,
            loader=current.loader_class,
        )
    baseline = load_judgeable(baseline_path)
    check_same_runner(baseline, current, baseline_path, current_path)
    thresholds = options.stored_thresholds(args)
    if args.confirm < 0:
        raise InputError(
            f"--confirm must be >= 0 (fresh reruns of a regression), got {args.confirm}"
        )
    if not args.side_by_side >= 0:
        raise InputError(
            f"--side-by-side must be >= 0 seconds (0: stored numbers only), got {args.side_by_side}"
        )
    verdict = judge(baseline, current, thresholds, only=args.only)
    failure = ""
    if args.side_by_side:
        from loaderbench.paired.settle import settle  # the engine, only when it measures

        failure = settle(
            verdict,
            baseline,
            current,
            budget_s=args.side_by_side,
            rule=options.pair_rule(args),
            venvs=Path(args.venvs),
            out=Path(args.out),
            duet=args.mode == "auto",
        )
    confirm(
        verdict,
        baseline,
        current,
        current_path,
        runs=args.confirm,
        rejudge=lambda base, rerun: judge(base, rerun, thresholds, only=verdict.only),
    )
    markdown = Path(args.markdown) if args.markdown else current_path.parent / "verdict.md"
    shown.write(
        verdict,
        markdown,
        [f"baseline: {baseline_path}{recording(baseline)}", f"current:  {current_path}"],
    )
    if failure and not verdict.regressed:
        print(f"loaderbench gate: side by side not done: {failure}", file=sys.stderr)
        return EXIT_USAGE
    return verdict.exit_code(args.strict)


def register(commands) -> None:
    gate = commands.add_parser(
        "gate",
        help="judge results against a baseline (exit 1 on a regression)",
        description="Judge CURRENT against BASELINE (a file or a baselines/<class>/ folder); with "
        "CURRENT alone, against baselines/<its runner class>/. With --remeasure, "
        "rebuild the baseline's environment from its recipe and measure it side by "
        "side with this one instead (no CURRENT file; anything after -- narrows the "
        "grid, e.g. -- --lb-profiles=cpu).",
    )
    gate.add_argument(
        "files",
        nargs="*",
        metavar="[BASELINE] CURRENT",
        help="pytest-benchmark JSON files (raw rounds included)",
    )
    options.add_baselines(gate)
    gate.add_argument(
        "--confirm",
        type=int,
        default=0,
        metavar="N",
        help="rerun each regression's benchmarks in N fresh pytest processes (same "
        "interpreter, directory and arguments as CURRENT's run); it stands only "
        "if every rerun regresses too. Default: 0 (make bench: 2)",
    )
    gate.add_argument(
        "--markdown",
        metavar="PATH",
        help="where to write the verdict table. Default: verdict.md beside CURRENT",
    )
    options.add_stored_thresholds(gate)
    options.add_strict(gate)
    remeasure = gate.add_argument_group("side by side with the baseline's recipe (--remeasure)")
    remeasure.add_argument(
        "--remeasure",
        action="store_true",
        help="rebuild the environment the baseline records (its Python, "
        "packages, project commit; a cached virtualenv) and measure it "
        "side by side with this one",
    )
    remeasure.add_argument(
        "--side-by-side",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after the stored verdict, measure every time row it leaves open (inconclusive, "
        "not judged, new) or flags (regressed) side by side with the baseline's recipe, "
        "regressions first, then the headline rows, within this many seconds; each row then "
        "says how it was judged. A side that cannot start exits 2 with the stored verdict "
        "written. Default: 0 (stored numbers only; make bench: REMEASURE_BUDGET)",
    )
    options.add_out(remeasure, "results/remeasure", "where the remeasured verdict goes")
    options.add_venvs(remeasure, environments.DEFAULT_CACHE)
    options.add_budget(remeasure)
    options.add_two_sides(remeasure)
    options.add_pair_alpha(remeasure)
    gate.set_defaults(run=cmd_gate)
