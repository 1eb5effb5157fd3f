"""`loaderbench tune DATASET`: the command around tuning.tune (and, with ``--sweep``,
tuning.compare_with_sweep).

Exit codes (errors.py): 0 an answer was found (diagnoses included: they are part of the answer),
2 unusable input (a dataset, collate function or step that cannot be imported or built, a bad
option), 130 interrupted (what was measured so far is written first, marked interrupted).
"""

from __future__ import annotations

import re
from pathlib import Path

from loaderbench.cli.options import names_from
from loaderbench.errors import EXIT_INTERRUPTED, EXIT_OK, InputError


def parse_duration(text: str) -> float:
    """'300', '300s', '5m', '1m30s' -> seconds."""
    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or not match or not any(match.groups()):
        raise InputError(f"--budget: cannot read {text!r} as a duration; write e.g. 300, 90s or 5m")
    seconds = float(match.group(1) or 0) * 60 + float(match.group(2) or 0)
    if seconds <= 0:
        raise InputError(f"--budget must be more than 0 seconds, got {text!r}")
    return seconds


def _callable(spec: str, option: str):
    from bench_datasets import UserDatasetError, resolve_factory

    try:
        return resolve_factory(spec, option=option)
    except UserDatasetError as exc:
        raise InputError(str(exc)) from None


def _dataset(args):
    import bench_datasets
    from bench_datasets import UserDatasetError, make_user_dataset

    if args.profile:
        if args.dataset:
            raise InputError("give a dataset or --profile, not both")
        try:
            return bench_datasets.make_dataset(args.profile), f"profile {args.profile}"
        except ValueError as exc:
            raise InputError(f"--profile: {exc}") from None
    if not args.dataset:
        raise InputError(
            "name a dataset (package.module:callable, a factory returning it) or a "
            "built-in --profile"
        )
    try:
        return make_user_dataset(args.dataset, "DATASET"), args.dataset
    except UserDatasetError as exc:
        raise InputError(str(exc)) from None


def _methods(text: str | None) -> tuple[str, ...] | None:
    import multiprocessing

    if not text:
        return None
    valid = multiprocessing.get_all_start_methods()
    return names_from(text, valid, "--start-methods", "start method")


def _use_loader(spec: str | None) -> None:
    """Tune the loader class ``spec`` (MODULE:CLASS) names: every loader measured is built with it."""
    if not spec:
        return
    from loaderbench.measuring import loaders

    try:
        loaders.use_loader(loaders.resolve_loader(spec, option="--loader"))
    except loaders.LoaderClassError as exc:
        raise InputError(str(exc)) from None


def cmd_tune(args) -> int:
    from loaderbench.presenting import tune as present
    from loaderbench.tuning import DEFAULT_OUT, compare_with_sweep, tune

    budget = parse_duration(args.budget)
    if args.step and args.step_ms is not None:
        raise InputError("give --step or --step-ms, not both")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_workers is not None and args.max_workers < 0:
        raise InputError(f"--max-workers must be >= 0, got {args.max_workers}")
    if not 0 < args.min_effect < 1:
        raise InputError(f"--min-effect must be between 0 and 1 (0.05 = 5%), got {args.min_effect}")
    if args.device and args.device not in ("cpu", "cuda"):
        raise InputError(f"--device: {args.device!r}; valid: cpu, cuda")
    methods = _methods(args.start_methods)
    _use_loader(args.loader)
    dataset, name = _dataset(args)
    collate = _callable(args.collate, "--collate") if args.collate else None
    step = _callable(args.step, "--step") if args.step else None
    init = _callable(args.worker_init_fn, "--worker-init-fn") if args.worker_init_fn else None
    out = Path(args.out or DEFAULT_OUT)
    try:
        result = tune(
            dataset,
            batch_size=args.batch_size,
            collate_fn=collate,
            step=step,
            step_ms=args.step_ms,
            device=args.device,
            budget_s=budget,
            min_effect=args.min_effect,
            max_workers=args.max_workers,
            start_methods=methods,
            diagnose=not args.no_diagnose,
            name=name,
            prefetch_factors=args.prefetch_factors,
            worker_init_fn=init,
            worker_init_name=args.worker_init_fn,
        )
    except ValueError as exc:
        raise InputError(str(exc).splitlines()[0]) from None
    if args.sweep and not result.interrupted:
        compare_with_sweep(
            result,
            dataset,
            batch_size=args.batch_size,
            collate_fn=collate,
            worker_init_fn=init,
            min_effect=args.min_effect,
        )
    print(present.text(result))
    written = present.write(result, out)
    print(f"written: {', '.join(str(p) for p in written)}")
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


def register(commands) -> None:
    parser = commands.add_parser(
        "tune",
        help="the DataLoader settings for your dataset on this machine, found by "
        "experiment, with the evidence and the usual worker bugs diagnosed",
        description="Diagnose DATASET (determinism, copied random state, sharding, pickling, "
        "worker crashes and hangs, memory per worker), then find the num_workers, "
        "start method and prefetch depth (and pinning with a GPU) that load it "
        "fastest, or the cheapest that keep up with a training step; every decision "
        "from settings measured side by side. Prints a DataLoader(...) call with a "
        "reason per setting; writes report.md, tune.json and tune.png.",
        epilog="exit codes: 0 answered (diagnoses included), 2 unusable input, 130 interrupted "
        "(what was measured is written first)",
    )
    parser.add_argument(
        "dataset",
        nargs="?",
        metavar="DATASET",
        help="package.module:callable, a zero-argument factory returning a "
        "Dataset or IterableDataset (as --lb-dataset)",
    )
    parser.add_argument("--profile", help="a built-in profile instead (cpu, io, ...)")
    parser.add_argument(
        "--loader",
        metavar="MODULE:CLASS",
        help="the loader class to tune, one that takes DataLoader's arguments, e.g. "
        "torchdata.stateful_dataloader:StatefulDataLoader (default: torch.utils.data:DataLoader)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="default: 64")
    parser.add_argument("--collate", metavar="MOD:CALLABLE", help="the collate function")
    parser.add_argument(
        "--worker-init-fn",
        metavar="MOD:CALLABLE",
        help="your worker_init_fn (e.g. the reseed a copied-random-state diagnosis prints), "
        "given to every loader with workers, the diagnoses' included",
    )
    parser.add_argument(
        "--step-ms",
        type=float,
        metavar="MS",
        help="a simulated training step of MS milliseconds per batch",
    )
    parser.add_argument(
        "--step", metavar="MOD:CALLABLE", help="your training step, a callable taking a batch"
    )
    parser.add_argument(
        "--device", help="cpu or cuda (default: cuda when there is one; then pin_memory is tried)"
    )
    parser.add_argument(
        "--budget", default="5m", help="time for the search, e.g. 90s, 5m (default 5m)"
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        help="the largest worker count tried (default: twice the usable cores)",
    )
    parser.add_argument(
        "--start-methods",
        metavar="LIST",
        help="start methods to try (default: all this platform offers)",
    )
    parser.add_argument(
        "--prefetch-factors",
        default="2,4",
        metavar="LIST",
        help="prefetch factors to try at the chosen worker count (default 2,4; '2' tries none)",
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=0.05,
        help="differences smaller than this are ties (default 0.05)",
    )
    parser.add_argument("--no-diagnose", action="store_true", help="skip the diagnoses")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="afterwards, measure every worker count 0-4 side by side and say "
        "how close the search came, in how much of the sweep's time",
    )
    parser.add_argument("--out", metavar="DIR", help="default: results/tune")
    parser.set_defaults(run=cmd_tune)
