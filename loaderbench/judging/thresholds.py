"""How big and how certain a change must be before the verdict calls it: defaults, the
``[tool.loaderbench]`` table of pyproject.toml, and overrides per benchmark group.

    [tool.loaderbench]
    min_effect = 0.05      # smallest change worth calling, as a fraction (5%)
    alpha = 0.01           # against stored numbers: the prediction interval is 1 - alpha
    pair_alpha = 0.05      # side by side: the confidence interval is 1 - pair_alpha
    memory_min_mb = 10     # smallest memory change worth calling, in MB

    [tool.loaderbench.groups]
    startup = { min_effect = 0.20 }          # every startup-* group
    throughput-io = { alpha = 0.001 }        # one group

The minimum effect sits below the smallest slowdown the suite promises to catch (10%), and above
the bias a pair of processes carries on its own (a few percent, intervals.py).

A group key matches a group equal to it or starting with it and a dash; the longest match wins.
Derived ratios belong to the group ``<kind>-<profile>`` (``speedup-cpu``, ``startup_ratio-noop``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from loaderbench.errors import InputError

DEFAULT_MIN_EFFECT = 0.05
DEFAULT_ALPHA = 0.01
DEFAULT_PAIR_ALPHA = 0.05
DEFAULT_MEMORY_MIN_MB = 10.0
RULE_KEYS = ("min_effect", "alpha", "pair_alpha", "memory_min_mb")
ALPHA_KEYS = ("alpha", "pair_alpha")


@dataclass(frozen=True)
class Rule:
    min_effect: float = DEFAULT_MIN_EFFECT
    alpha: float = DEFAULT_ALPHA
    pair_alpha: float = DEFAULT_PAIR_ALPHA
    memory_min_mb: float = DEFAULT_MEMORY_MIN_MB


@dataclass(frozen=True)
class Thresholds:
    default: Rule = Rule()
    groups: dict[str, Rule] = field(default_factory=dict)
    source: str = "built-in defaults"

    def for_group(self, group: str | None) -> Rule:
        """The rule of the longest group key equal to ``group`` or a dash-separated prefix of it."""
        matches = [
            key for key in self.groups if group and (group == key or group.startswith(key + "-"))
        ]
        return self.groups[max(matches, key=len)] if matches else self.default

    def overridden(self, **given: float | None) -> Thresholds:
        """Values given on the command line (None: not given) replace the default and every
        group's."""
        changes = {k: v for k, v in given.items() if v is not None}
        if not changes:
            return self
        _check_rule(changes, "command line")
        return replace(
            self,
            default=replace(self.default, **changes),
            groups={k: replace(r, **changes) for k, r in self.groups.items()},
            source=f"{self.source}, overridden on the command line",
        )


def _check_rule(values: dict, where: str) -> None:
    for key, value in values.items():
        if key not in RULE_KEYS:
            raise InputError(f"{where}: unknown threshold {key!r}; valid: {', '.join(RULE_KEYS)}")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise InputError(f"{where}: {key} must be a number, got {value!r}")
    if "min_effect" in values and values["min_effect"] < 0:
        raise InputError(
            f"{where}: min_effect must be >= 0 (a fraction, 0.05 = 5%), got {values['min_effect']}"
        )
    if "memory_min_mb" in values and values["memory_min_mb"] < 0:
        raise InputError(f"{where}: memory_min_mb must be >= 0, got {values['memory_min_mb']}")
    for key in ALPHA_KEYS:
        if key in values and not 0 < values[key] < 1:
            raise InputError(f"{where}: {key} must be between 0 and 1, got {values[key]}")


def parse_thresholds(table: dict, where: str) -> Thresholds:
    """Thresholds from a ``[tool.loaderbench]`` table; other keys of the table belong to others."""
    if not isinstance(table, dict):
        raise InputError(f"{where}: [tool.loaderbench] must be a table")
    own = {k: table[k] for k in RULE_KEYS if k in table}
    _check_rule(own, f"{where} [tool.loaderbench]")
    default = Rule(**own)
    groups_table = table.get("groups", {})
    if not isinstance(groups_table, dict):
        raise InputError(f"{where}: [tool.loaderbench.groups] must be a table of group = {{ ... }}")
    groups = {}
    for key, values in groups_table.items():
        if not isinstance(values, dict) or not values:
            raise InputError(
                f"{where}: [tool.loaderbench.groups] {key} must be a table such as "
                "{ min_effect = 0.2 }"
            )
        _check_rule(values, f"{where} [tool.loaderbench.groups] {key}")
        groups[key] = replace(default, **values)
    return Thresholds(default, groups, source=f"{where} [tool.loaderbench]")


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml from ``start`` (default: the working directory) upwards."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Thresholds from ``path`` or the nearest pyproject.toml; built-in defaults without either."""
    path = Path(path) if path else find_pyproject()
    if path is None:
        return Thresholds()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    table = document.get("tool", {}).get("loaderbench")
    return Thresholds() if table is None else parse_thresholds(table, _shown(path))


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it, as a reader would type it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
