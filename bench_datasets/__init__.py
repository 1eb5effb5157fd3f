"""WHAT is loaded: datasets whose per-sample cost is declared and tunable (see profiles.py)."""

from __future__ import annotations

import inspect

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
    for cls in (NoopDataset, CpuDataset, IoDataset, DiskDataset, JpegDataset, LargeDataset, PyObjDataset)
}

#: The profile name under which a ``--lb-dataset=package.module:callable`` dataset runs.
USER_PROFILE = "user"


def make_dataset(profile: str, *, seed: int = 0, cost_scale: float = 1.0, **overrides) -> ProfiledDataset:
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


__all__ = [
    "PROFILES", "USER_PROFILE", "ProfiledDataset", "ShardedIterable", "UserDatasetError",
    "make_dataset", "make_user_dataset", "resolve_factory",
    "CpuDataset", "DiskDataset", "IoDataset", "JpegDataset", "LargeDataset", "NoopDataset",
    "PyObjDataset",
]
