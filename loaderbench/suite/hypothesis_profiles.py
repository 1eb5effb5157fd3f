"""Hypothesis profiles, registered in one place and chosen by HYPOTHESIS_PROFILE or
--hypothesis-profile: ``ci`` (make test), ``dev`` (the default), ``thorough`` (nightly, 10x dev).

Loader examples cost milliseconds to seconds each (worker processes), so no profile has a
deadline, and every failure prints the blob that reproduces it.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

# settings(...) keyword arguments per profile.
PROFILES: dict[str, dict[str, Any]] = {
    "ci": dict(max_examples=20),
    "dev": dict(max_examples=50),
    "thorough": dict(max_examples=500),
}
DEFAULT_PROFILE = "dev"


def register() -> None:
    """Register every profile (at import, before any --hypothesis-profile is looked up)."""
    common: dict[str, Any] = dict(
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    for name, overrides in PROFILES.items():
        settings.register_profile(name, **{**common, **overrides})


def load_from_environment() -> None:
    """Load HYPOTHESIS_PROFILE (default ``dev``); raises ValueError naming the valid ones."""
    name = os.environ.get("HYPOTHESIS_PROFILE") or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(
            f"HYPOTHESIS_PROFILE={name!r} is not a profile; valid: {', '.join(PROFILES)}"
        )
    settings.load_profile(name)
