"""``torchrun ... -m loaderbench.cli.distributed``: one DataLoader per rank over a
DistributedSampler (measuring/distributed.py), rank 0 writing the world's samples/s as JSON.

Exit codes (errors.py): 0 fine, 2 unusable input (an unknown profile, a bad count, not started
under torchrun).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bench_datasets
from loaderbench.errors import EXIT_OK, EXIT_USAGE, InputError
from loaderbench.grid import DEFAULT_BATCH_SIZE, Case
from loaderbench.measuring.distributed import DEFAULT_TIMEOUT_S, Job, under_torchrun


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m loaderbench.cli.distributed",
        description="One DataLoader per rank over a DistributedSampler; run under torchrun. "
        "Rank 0 writes samples/s of the world and of each rank as JSON.",
        epilog="exit codes: 0 fine, 2 unusable input",
    )
    parser.add_argument("--profile", default="cpu", help="dataset profile. Default: cpu")
    parser.add_argument("--length", type=int, help="samples in the dataset. Default: the profile's")
    parser.add_argument("--workers", type=int, default=0, help="num_workers per rank. Default: 0")
    parser.add_argument(
        "--start-method", default="fork", help="workers' start method. Default: fork"
    )
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"Default: {DEFAULT_BATCH_SIZE}"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=6,
        help="epochs to load; the first is a warm-up, left out. Default: 6",
    )
    parser.add_argument(
        "--backend",
        default="gloo",
        choices=("gloo", "nccl"),
        help="process group backend (nccl: one GPU per rank). Default: gloo",
    )
    parser.add_argument("--drop-last", action="store_true", help="DistributedSampler drop_last")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds any collective or batch may take. Default: {DEFAULT_TIMEOUT_S:g}",
    )
    parser.add_argument(
        "--out",
        default="results/distributed.json",
        help="where rank 0 writes the summary. Default: results/distributed.json",
    )
    return parser.parse_args(argv)


def _job_from(args) -> Job:
    if args.profile not in bench_datasets.PROFILES:
        raise InputError(
            f"--profile {args.profile!r} is unknown; valid: {', '.join(bench_datasets.PROFILES)}"
        )
    if args.workers < 0 or args.batch_size < 1 or args.epochs < 1 or args.timeout <= 0:
        raise InputError("--workers must be >= 0, --batch-size and --epochs >= 1, --timeout > 0")
    method = args.start_method if args.workers else None
    return Job(
        args.profile,
        Case(args.profile, args.workers, method, batch_size=args.batch_size),
        length=args.length,
        drop_last=args.drop_last,
        keep_content=False,
        timeout_s=args.timeout,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        job = _job_from(args)
        under_torchrun(
            job,
            backend=args.backend,
            epochs=args.epochs,
            timeout_s=args.timeout,
            out=Path(args.out),
        )
    except InputError as exc:
        print(f"loaderbench.cli.distributed: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
