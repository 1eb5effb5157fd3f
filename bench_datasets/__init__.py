"""WHAT is loaded: datasets whose per-sample cost is declared and tunable (see profiles.py)."""

from __future__ import annotations

import inspect

from torch.utils.data import IterableDataset

from .ballast import WorkerBallast
from .iterable import ShardedIterable
from .profiles import (
    CpuDataset,
    DiskDataset,
    IoDataset,
    JpegDataset,
    LargeDataset,
    NoopDataset,
    ProfiledDataset,
    PyObjDataset,
)
from .user import UserDatasetError, make_user_dataset, resolve_factory

#: Every built-in profile by name, in the order tables show them.
PROFILES: dict[str, type[ProfiledDataset]] = {
    cls.profile: cls
    for cls in (
        NoopDataset,
        CpuDataset,
        IoDataset,
        DiskDataset,
        JpegDataset,
        LargeDataset,
        PyObjDataset,
    )
}

#: The profile name under which a ``--lb-dataset=package.module:callable`` dataset runs.
USER_PROFILE = "user"


def make_dataset(
    profile: str, *, seed: int = 0, cost_scale: float = 1.0, **overrides
) -> ProfiledDataset:
    """Build a profile's dataset; ``cost_scale`` multiplies its cost knob (e.g. 1.1 = 10% costlier)."""
    try:
        cls = PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}") from None
    if cost_scale <= 0:
        raise ValueError(f"cost_scale must be > 0, got {cost_scale}")
    if cost_scale != 1.0 and cls.cost_knob not in overrides:
        default = inspect.signature(cls).parameters[cls.cost_knob].default
        scaled = default * cost_scale
        overrides[cls.cost_knob] = round(scaled) if isinstance(default, int) else scaled
    return cls(seed=seed, **overrides)


class DatasetCache:
    """Each profile's dataset built once, with the settings of a run (cost scale, the user's
    dataset, a worker ballast); ``close`` releases what set-up made. Benchmarks and side-by-side
    sides build their datasets through it, so both measure the same thing."""

    def __init__(
        self,
        *,
        cost_scale: float = 1.0,
        user_dataset: str | None = None,
        worker_ballast_mb: float = 0.0,
    ):
        self.cost_scale, self.user_dataset = cost_scale, user_dataset
        self.worker_ballast_mb = worker_ballast_mb
        self._built: dict = {}

    def get(self, profile: str):
        if profile not in self._built:
            if profile == USER_PROFILE:
                if not self.user_dataset:
                    raise UserDatasetError(
                        f"profile {USER_PROFILE!r} needs --lb-dataset=package.module:callable"
                    )
                dataset = make_user_dataset(self.user_dataset)
            else:
                dataset = make_dataset(profile, cost_scale=self.cost_scale)
            self._built[profile] = self.with_ballast(dataset)
        return self._built[profile]

    def with_ballast(self, dataset):
        """``dataset`` wrapped in the worker ballast when one is set."""
        if not self.worker_ballast_mb:
            return dataset
        if isinstance(dataset, IterableDataset):
            raise UserDatasetError(
                "--lb-worker-ballast-mb needs a map-style dataset; "
                f"{type(dataset).__name__} is an IterableDataset"
            )
        return WorkerBallast(dataset, self.worker_ballast_mb)

    def close(self) -> None:
        for dataset in self._built.values():
            close = getattr(dataset, "close", None)
            if close is not None:
                close()
        self._built.clear()


__all__ = [
    "PROFILES",
    "USER_PROFILE",
    "DatasetCache",
    "ProfiledDataset",
    "WorkerBallast",
    "ShardedIterable",
    "UserDatasetError",
    "make_dataset",
    "make_user_dataset",
    "resolve_factory",
    "CpuDataset",
    "DiskDataset",
    "IoDataset",
    "JpegDataset",
    "LargeDataset",
    "NoopDataset",
    "PyObjDataset",
]
