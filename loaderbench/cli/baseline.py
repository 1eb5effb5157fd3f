"""`loaderbench baseline`: record this runner class's baseline (judging.baseline), with the
recipe that rebuilds it (paired.recipe)."""

from __future__ import annotations

import sys
from pathlib import Path

from loaderbench import machine
from loaderbench.errors import EXIT_OK
from loaderbench.judging.baseline import BASELINES_ROOT, resolve_runner, sittings
from loaderbench.judging.record import DEFAULT_RUNS, check_run_count, record
from loaderbench.paired import recipe
from loaderbench.results import load_results


def cmd_baseline(args) -> int:
    runner = resolve_runner(args.runner)
    check_run_count(args.runs, extend=args.extend, force=args.force)
    how = recipe.capture(sys.executable, args.pytest_args, Path.cwd(), torch=args.torch)
    if how.dirty:
        print(
            "loaderbench: warning: the project has uncommitted changes; the recipe records "
            f"commit {str(how.commit)[:12]}, which --remeasure will rebuild without them",
            file=sys.stderr,
            flush=True,
        )
    path = record(
        runner=runner,
        runs=args.runs,
        pytest_args=args.pytest_args,
        root=Path(args.baselines),
        force=args.force,
        extend=args.extend,
        recipe=how,
    )
    merged = load_results(path)
    bands = sorted(
        ((v.band, k) for k, v in (merged.noise or {}).items() if v.band is not None),
        reverse=True,
    )[:5]
    held = sittings(merged)
    print(
        f"loaderbench: baseline of runner class {runner!r} for this machine kind "
        f"({machine.kind_slug(merged.fingerprint or machine.Fingerprint())}) "
        f"{f'extended by {args.runs} runs in' if args.extend else 'written to'} {path} "
        f"({merged.baseline.runs if merged.baseline else 0} runs in {len(held)} sitting{'s' if len(held) > 1 else ''}, "
        f"{len(merged.benchmarks)} benchmarks)"
    )
    if bands:
        print("widest noise bands: " + ", ".join(f"{name} {band:.0%}" for band, name in bands))
    return EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser(
        "baseline",
        help="record the baseline of this runner class (the grid, N fresh runs)",
        description="Run the benchmark grid N times, each in a fresh pytest process, and store "
        "the pooled rounds and noise bands in baselines/<runner class>/. Anything "
        "after -- goes to pytest (e.g. -- --lb-grid=quick --lb-profiles=cpu).",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        metavar="N",
        help=f"grid runs to pool (>= 2). Default: {DEFAULT_RUNS}",
    )
    parser.add_argument(
        "--runner",
        metavar="CLASS",
        help="runner class (folder under baselines/). Default: $LOADERBENCH_RUNNER, "
        "else gpu when CUDA is available, else cpu",
    )
    parser.add_argument(
        "--baselines",
        default=str(BASELINES_ROOT),
        metavar="DIR",
        help="root of the baseline folders. Default: baselines",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace this machine kind's existing baseline of this runner class "
        "(other machine kinds' baselines are kept)",
    )
    parser.add_argument(
        "--extend",
        action="store_true",
        help="add the runs to this machine kind's baseline (same file, its runs "
        "kept) instead of writing a new one: a baseline recorded in sittings "
        "hours apart sees how far the machine drifts, and its noise bands "
        "say so. The runs must measure the same benchmarks with the same "
        "torch, Python and grid settings",
    )
    parser.add_argument(
        "--torch",
        metavar="REQUIREMENT",
        help="the pip requirement that installed this torch, kept in the recipe "
        "(make baseline passes its TORCH). Default: torch==<installed "
        "version>",
    )
    parser.add_argument(
        "pytest_args", nargs="*", metavar="-- PYTEST_ARGS", help="passed to every pytest run"
    )
    parser.set_defaults(run=cmd_baseline)
