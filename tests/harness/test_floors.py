"""The lowest-versions environment (.ci/floors.txt, `make floors`) is exactly the floors that
pyproject.toml declares: a floor raised or added in one place and not the other fails here."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
FLOORS = ROOT / ".ci" / "floors.txt"


def declared() -> list[Requirement]:
    """The direct dependencies, and those of the `test` extra that `make test` needs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]
    ]


def floor_of(requirement: Requirement) -> str | None:
    """The version a lowest-versions install takes: the lower bound (>=) or the pin (==)."""
    bounds = [s.version for s in requirement.specifier if s.operator in (">=", "==")]
    return bounds[0] if len(bounds) == 1 else None


def pinned(text: str) -> dict[str, Requirement]:
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return {canonicalize_name(r.name): r for r in map(Requirement, filter(None, lines))}


def floor_problems(requirements: list[Requirement], floors: dict[str, Requirement]) -> list[str]:
    problems = []
    for requirement in requirements:
        name, floor = canonicalize_name(requirement.name), floor_of(requirement)
        pin = floors.pop(name, None)
        if floor is None:
            problems.append(f"{requirement}: no single floor (>= or ==) to test")
        elif pin is None:
            problems.append(f"{requirement}: missing from .ci/floors.txt")
        elif str(pin.specifier) != f"=={floor}" or pin.marker != requirement.marker:
            problems.append(f"{requirement}: .ci/floors.txt has {pin}, expected {name}=={floor}")
    return problems + [
        f"{pin}: in .ci/floors.txt, not in pyproject.toml" for pin in floors.values()
    ]


def test_the_floors_environment_pins_every_declared_floor():
    assert floor_problems(declared(), pinned(FLOORS.read_text())) == []


def test_a_floor_raised_in_one_place_only_is_caught():
    floors = FLOORS.read_text().replace("numpy==1.24", "numpy==1.26")
    assert floor_problems(declared(), pinned(floors)) == [
        "numpy>=1.24: .ci/floors.txt has numpy==1.26, expected numpy==1.24"
    ]


def test_a_dependency_missing_from_either_side_is_caught():
    floors = pinned(FLOORS.read_text() + "\nrich==13.0\n")
    del floors["scipy"]
    assert floor_problems(declared(), floors) == [
        "scipy>=1.10: missing from .ci/floors.txt",
        "rich==13.0: in .ci/floors.txt, not in pyproject.toml",
    ]


def test_a_requirement_without_a_floor_is_caught():
    assert floor_problems([Requirement("numpy<3")], {}) == [
        "numpy<3: no single floor (>= or ==) to test"
    ]
