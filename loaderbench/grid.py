"""The benchmark grid, declared once as data: benchmarks, properties and reports all read it.

A grid is the cartesian product of its main axes (profile x num_workers x start method), plus
*variants*: settings (batch size, prefetch factor, in_order) varied one at a time away from the
defaults, so the full grid stays a nightly job instead of a week. A case's id names only what it
sets away from the defaults, so ids stay short, readable and stable: baselines are matched by them.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import asdict, dataclass, field, fields, replace

START_METHODS = ("fork", "spawn", "forkserver")
DEFAULT_BATCH_SIZE = 32
DEFAULT_PREFETCH_FACTOR = 2


class GridError(ValueError):
    """A grid selection names something that does not exist; the message lists what does.

    ``axis`` is the selection's field at fault (grid, profiles, workers, start_methods), which
    config.py turns into the option's name."""

    def __init__(self, message: str, axis: str | None = None):
        super().__init__(message)
        self.axis = axis


@dataclass(frozen=True)
class Case:
    """One point of the grid: everything a DataLoader needs besides the dataset."""

    profile: str
    num_workers: int
    start_method: str | None = None  # None only with num_workers == 0 (no processes start)
    batch_size: int = DEFAULT_BATCH_SIZE
    prefetch_factor: int | None = DEFAULT_PREFETCH_FACTOR
    in_order: bool = True

    def __post_init__(self):
        if self.num_workers == 0:
            # Settings that only mean something with worker processes are normalised away, so
            # that w0 appears once however many variants a grid has.
            object.__setattr__(self, "start_method", None)
            object.__setattr__(self, "prefetch_factor", None)
            object.__setattr__(self, "in_order", True)
        elif self.start_method is None:
            raise GridError(f"{self.profile}: num_workers={self.num_workers} needs a start method")

    @property
    def id(self) -> str:
        parts = [self.profile, f"w{self.num_workers}"]
        if self.start_method:
            parts.append(self.start_method)
        if self.batch_size != DEFAULT_BATCH_SIZE:
            parts.append(f"b{self.batch_size}")
        if self.prefetch_factor not in (None, DEFAULT_PREFETCH_FACTOR):
            parts.append(f"p{self.prefetch_factor}")
        if not self.in_order:
            parts.append("unordered")
        return "-".join(parts)

    @property
    def is_variant(self) -> bool:
        """True when a variant axis is away from its default (start-up is measured without these)."""
        return (
            self.batch_size != DEFAULT_BATCH_SIZE
            or not self.in_order
            or self.prefetch_factor not in (None, DEFAULT_PREFETCH_FACTOR)
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "id": self.id}

    @classmethod
    def from_dict(cls, stored: dict) -> Case:
        """The Case that ``as_dict`` (e.g. a result's ``extra_info["case"]``) describes."""
        return cls(**{f.name: stored[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Grid:
    name: str
    profiles: tuple[str, ...]
    workers: tuple[int, ...]
    start_methods: tuple[str, ...]
    variants: tuple[dict, ...] = field(default=({},))
    summary: str = ""

    def cases(self, *, variants: bool = True) -> list[Case]:
        """Every case in a stable order, w0 once per profile and variant, duplicates removed."""
        seen: dict[str, Case] = {}
        for profile in self.profiles:
            for workers in self.workers:
                methods = self.start_methods if workers else (None,)
                for method in methods:
                    for overrides in self.variants if variants else ({},):
                        case = replace(Case(profile, workers, method), **overrides)
                        seen.setdefault(case.id, case)
        return list(seen.values())


#: The built-in profiles by name, in the order tables show them: bench_datasets.PROFILES' keys,
#: spelled out so that reading a results file needs no torch (a test keeps the two equal).
ALL_PROFILES = ("noop", "cpu", "io", "disk", "jpeg", "large", "pyobj")
#: The profile name under which a user's own dataset (``package.module:callable``) runs.
USER_PROFILE = "user"

#: The named grids. ``quick`` is the default: every profile, 0 and 2 workers, fork and spawn, in
#: well under 10 minutes on a 2-core machine. ``full`` is for nightly runs.
GRIDS: dict[str, Grid] = {
    "quick": Grid(
        "quick",
        ALL_PROFILES,
        workers=(0, 2),
        start_methods=("fork", "spawn"),
        summary="every profile; 0 and 2 workers; fork and spawn",
    ),
    "full": Grid(
        "full",
        ALL_PROFILES,
        workers=(0, 1, 2, 4),
        start_methods=START_METHODS,
        variants=(
            {},
            {"batch_size": 8},
            {"batch_size": 128},
            {"prefetch_factor": 8},
            {"in_order": False},
        ),
        summary="every profile; 0, 1, 2, 4 workers; every start method; batch size 8 and 128, "
        "prefetch factor 8 and in_order=False each varied alone",
    ),
}


def available_start_methods() -> tuple[str, ...]:
    """The start methods this platform offers, in our canonical order."""
    offered = set(multiprocessing.get_all_start_methods())
    return tuple(m for m in START_METHODS if m in offered)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_profiles(value: str, *, user_dataset: bool) -> tuple[str, ...]:
    valid = list(ALL_PROFILES) + ([USER_PROFILE] if user_dataset else [])
    chosen = _split(value)
    unknown = [p for p in chosen if p not in valid]
    if unknown or not chosen:
        raise GridError(
            f"unknown profile {', '.join(unknown) or '(none given)'}; valid: {', '.join(valid)}",
            "profiles",
        )
    return tuple(dict.fromkeys(chosen))


def parse_workers(value: str) -> tuple[int, ...]:
    chosen = _split(value)
    try:
        workers = [int(w) for w in chosen]
    except ValueError:
        workers = [-1]
    if not workers or any(w < 0 for w in workers):
        raise GridError(
            f"{value!r} is not a comma-separated list of integers >= 0 (e.g. 0,1,2,4)", "workers"
        )
    return tuple(sorted(set(workers)))


def parse_start_methods(value: str) -> tuple[str, ...]:
    chosen = _split(value)
    offered = available_start_methods()
    unknown = [m for m in chosen if m not in START_METHODS]
    if unknown or not chosen:
        raise GridError(
            f"unknown start method {', '.join(unknown) or '(none given)'}; "
            f"valid: {', '.join(START_METHODS)}",
            "start_methods",
        )
    missing = [m for m in chosen if m not in offered]
    if missing:
        raise GridError(
            f"{', '.join(missing)} not offered by this platform; it offers: {', '.join(offered)}",
            "start_methods",
        )
    return tuple(dict.fromkeys(chosen))


def select(
    grid: str = "quick",
    *,
    profiles: str | None = None,
    workers: str | None = None,
    start_methods: str | None = None,
    user_dataset: bool = False,
) -> Grid:
    """The named grid with any axis replaced by an explicit choice; raises GridError on bad input.

    With a user dataset and no explicit profiles, the grid runs the user's dataset alone.
    """
    try:
        base = GRIDS[grid]
    except KeyError:
        raise GridError(f"unknown grid {grid!r}; valid: {', '.join(GRIDS)}", "grid") from None
    chosen_profiles = (
        parse_profiles(profiles, user_dataset=user_dataset)
        if profiles
        else (USER_PROFILE,)
        if user_dataset
        else base.profiles
    )
    offered = available_start_methods()
    chosen_methods = (
        parse_start_methods(start_methods)
        if start_methods
        else tuple(m for m in base.start_methods if m in offered)
    )
    return replace(
        base,
        profiles=chosen_profiles,
        workers=parse_workers(workers) if workers else base.workers,
        start_methods=chosen_methods,
    )
