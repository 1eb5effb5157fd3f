"""The run configuration: every ``--lb-*`` option, parsed and checked once, as typed values.

A benchmark run (suite/plugin.py registers ``OPTIONS`` with pytest), a side process of a
side-by-side comparison (paired/side.py), the commands that set both sides (what follows ``--``
in ``ab``, ``gate --remeasure``, ``ratios`` and ``sensitivity``), a baseline's recipe and a
confirming rerun all go through the types here. No other module spells an ``--lb-`` option.

- ``GridChoice``: the named grid and the axes replaced in it (``--lb-grid``, ``--lb-profiles``,
  ``--lb-workers``, ``--lb-start-methods``);
- ``SideSettings``: what a measuring process builds (``--lb-cost-scale``, ``--lb-dataset``,
  ``--lb-inject``, ``--lb-worker-ballast-mb``, ``--lb-loader``);
- ``Selection``: the two together, what follows ``--`` in the side-by-side commands;
- ``RunConfig``: a benchmark run's whole configuration, with ``--lb-rounds``, ``--lb-runner``
  and ``--lb-rerun``.

Each comes from arguments (``from_args``, or the plugin's parsed values) and goes back to them
(``args``: only what differs from the defaults, in one order), so what a side process or a recipe
is given is what it reads back. Torch-free: a command that only reads results imports this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from loaderbench import runner as runners
from loaderbench.errors import InputError
from loaderbench.grid import Grid, GridError, select
from loaderbench.results import DEFAULT_LOADER

DEFAULT_ROUNDS = 5

#: The slowdowns ``--lb-inject=NAME=VALUE`` puts into DataLoader itself (measuring/inject.py).
INJECTIONS = {
    "worker-batch-delay": "each worker waits this long before handing a batch to the main process",
    "worker-start-delay": "each worker waits this long as it starts",
    "main-batch-delay": "the main process waits this long for every batch",
    "epoch-end-delay": "a loader waits this long as it stops its workers (each epoch's end "
    "without persistent workers)",
    "fetch-work": "every batch fetch does this fraction more work, busy on the CPU (0.1: 10%)",
}
#: Injections whose value is a fraction of the work, not seconds.
FRACTIONS = ("fetch-work",)


class ConfigError(InputError, ValueError):
    """An ``--lb-*`` value that cannot be used, in one line naming the option."""


@dataclass(frozen=True)
class Option:
    """One ``--lb-*`` option: its name, the field it sets, of which part, and how pytest shows it."""

    name: str
    field: str
    part: str  # "grid", "side" or "run": GridChoice, SideSettings or RunConfig's own
    metavar: str
    help: str
    default: Any = None
    type: Callable[[str], Any] = str
    repeatable: bool = False

    def pytest_kwargs(self) -> dict:
        """Keyword arguments of pytest's ``addoption`` (argparse's, with ``%`` escaped)."""
        kwargs: dict[str, Any] = {"metavar": self.metavar, "help": self.help.replace("%", "%%")}
        if self.repeatable:
            return {**kwargs, "action": "append", "default": []}
        if self.type is not str:
            kwargs["type"] = self.type
        return {**kwargs, "default": self.default}


OPTIONS: tuple[Option, ...] = (
    Option(
        "--lb-grid",
        "grid",
        "grid",
        "NAME",
        "named grid to run: quick or full. Default: quick",
        default="quick",
    ),
    Option(
        "--lb-profiles",
        "profiles",
        "grid",
        "LIST",
        "comma-separated profiles to run instead of the grid's "
        "(noop,cpu,io,disk,jpeg,large,pyobj; user with --lb-dataset)",
    ),
    Option(
        "--lb-workers",
        "workers",
        "grid",
        "LIST",
        "comma-separated num_workers values instead of the grid's, e.g. 0,1,2,4",
    ),
    Option(
        "--lb-start-methods",
        "start_methods",
        "grid",
        "LIST",
        "comma-separated start methods instead of the grid's: fork,spawn,forkserver",
    ),
    Option(
        "--lb-dataset",
        "dataset",
        "side",
        "MODULE:CALLABLE",
        "your own dataset: package.module:callable returning a Dataset; runs the grid as "
        "profile 'user'",
    ),
    Option(
        "--lb-loader",
        "loader",
        "side",
        "MODULE:CLASS",
        "the loader class every benchmark and property builds, one that takes DataLoader's "
        "arguments, e.g. torchdata.stateful_dataloader:StatefulDataLoader. "
        f"Default: {DEFAULT_LOADER}",
        default=DEFAULT_LOADER,
    ),
    Option(
        "--lb-cost-scale",
        "cost_scale",
        "side",
        "FACTOR",
        "multiply every profile's cost knob, e.g. 1.1 for 10% more work per sample (to check "
        "that a slowdown is caught). Default: 1.0",
        default=1.0,
        type=float,
    ),
    Option(
        "--lb-inject",
        "inject",
        "side",
        "NAME=VALUE",
        "slow DataLoader itself down, to check that the verdict catches it: "
        + "; ".join(f"{name}: {what}" for name, what in INJECTIONS.items())
        + " (repeatable)",
        default=(),
        repeatable=True,
    ),
    Option(
        "--lb-worker-ballast-mb",
        "worker_ballast_mb",
        "side",
        "MB",
        "every worker process allocates and holds MB more (to check that the memory verdict "
        "catches it). Default: 0",
        default=0.0,
        type=float,
    ),
    Option(
        "--lb-rounds",
        "rounds",
        "run",
        "N",
        f"timed rounds per benchmark. Default: {DEFAULT_ROUNDS}",
        default=DEFAULT_ROUNDS,
        type=int,
    ),
    Option(
        "--lb-rerun",
        "rerun",
        "run",
        "FILE",
        "run only the tests whose node ids FILE lists, one per line (how `loaderbench gate "
        "--confirm` reruns the benchmarks of a regression)",
    ),
    Option(
        "--lb-runner",
        "runner",
        "run",
        "CLASS",
        "runner class recorded in the results; picks baselines/<CLASS>/ for the verdict. "
        f"Default: ${runners.ENV_VAR}, else gpu when CUDA is available, else cpu",
    ),
)
_BY_NAME = {option.name: option for option in OPTIONS}
_BY_FIELD = {option.field: option for option in OPTIONS}


def option(field: str) -> str:
    """The command-line name of the option that sets ``field`` (for messages and drop lists)."""
    return _BY_FIELD[field].name


def args_for(**values: Any) -> list[str]:
    """``--lb-*`` arguments setting the given fields, e.g. ``args_for(runner="cpu")``."""
    found = []
    for field, value in values.items():
        chosen = _BY_FIELD[field]
        for one in value if chosen.repeatable else (value,):
            found.append(f"{chosen.name}={one}")  # str(float) reads back exactly
    return found


# --- reading arguments ------------------------------------------------------------------------


def _pairs(
    args: Iterable[str], parts: tuple[str, ...], *, where: str | None = None
) -> list[tuple[Option, str]]:
    """(option, value) of every argument in ``args`` that sets a field of ``parts``, in order,
    in both the ``--name=value`` and the ``--name value`` form. With ``where`` (what takes the
    arguments), anything else is a ConfigError listing what it takes; without, it is skipped (a
    recorded pytest invocation holds ``-k`` and pytest-benchmark's options too)."""
    found, items = [], list(args)
    while items:
        arg = items.pop(0)
        name, sep, value = arg.partition("=")
        chosen = _BY_NAME.get(name)
        if chosen is None or chosen.part not in parts:
            if where is not None:
                taken = ", ".join(o.name for o in OPTIONS if o.part in parts)
                raise ConfigError(f"{arg!r} {where}; it takes {taken}")
            if chosen is None:
                continue
        if not sep:
            if not items:
                raise ConfigError(f"{name} needs a value")
            value = items.pop(0)
        if chosen.part in parts:
            found.append((chosen, value))
    return found


def _values(pairs: Iterable[tuple[Option, str]]) -> dict[str, Any]:
    """Field -> typed value; a repeated option's values add up, any other's last one wins."""
    values: dict[str, Any] = {}
    for chosen, text in pairs:
        try:
            value = chosen.type(text)
        except ValueError:
            raise ConfigError(f"{chosen.name}: {text!r} is not a number") from None
        if chosen.repeatable:
            values[chosen.field] = (*values.get(chosen.field, ()), value)
        else:
            values[chosen.field] = value
    return values


def _within(part: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if _BY_FIELD[k].part == part}


_SIDE = ("side",)
_SELECTION = ("grid", "side")
_NOT_A_SETTING = "is not a setting of a side"
_NOT_A_SELECTION = "is not a grid selection or a setting of both sides"


# --- the types --------------------------------------------------------------------------------


def parse_injections(values: Iterable[str]) -> dict[str, float]:
    """``["NAME=VALUE", ...]`` as a dict; a ConfigError naming the valid names on bad input."""
    chosen: dict[str, float] = {}
    for value in values:
        name, sep, given = value.partition("=")
        if name not in INJECTIONS or not sep:
            raise ConfigError(
                f"{option('inject')}: {value!r} is not NAME=VALUE with NAME one of "
                f"{', '.join(INJECTIONS)}"
            )
        try:
            amount = float(given)
        except ValueError:
            amount = -1.0
        if not 0 <= amount < (100 if name in FRACTIONS else 3600):
            unit, example = ("a fraction", "0.1") if name in FRACTIONS else ("seconds", "0.002")
            raise ConfigError(
                f"{option('inject')}: {value!r}: VALUE must be a number >= 0 ({unit}), e.g. "
                f"{name}={example}"
            )
        chosen[name] = amount
    return chosen


@dataclass(frozen=True)
class GridChoice:
    """The named grid and any of its axes replaced (comma-separated lists, checked by ``grid``)."""

    grid: str = "quick"
    profiles: str | None = None
    workers: str | None = None
    start_methods: str | None = None

    def select(self, *, user_dataset: bool = False) -> Grid:
        """The grid it names; a ConfigError naming the option whose value cannot be used."""
        try:
            return select(
                self.grid,
                profiles=self.profiles,
                workers=self.workers,
                start_methods=self.start_methods,
                user_dataset=user_dataset,
            )
        except GridError as exc:
            hint = (
                f" ('user' needs {option('dataset')}=package.module:callable)"
                if exc.axis == "profiles" and not user_dataset
                else ""
            )
            where = f"{option(exc.axis)}: " if exc.axis else ""
            raise ConfigError(f"{where}{exc}{hint}") from None

    def args(self) -> list[str]:
        return _changed_args(self)


@dataclass(frozen=True)
class SideSettings:
    """What a measuring process builds, as a benchmark run with the same options would."""

    cost_scale: float = 1.0
    dataset: str | None = None
    inject: tuple[str, ...] = ()
    worker_ballast_mb: float = 0.0
    loader: str = DEFAULT_LOADER

    def __post_init__(self):
        if not self.cost_scale > 0:
            raise ConfigError(f"{option('cost_scale')} must be > 0, got {self.cost_scale:g}")
        if not self.worker_ballast_mb >= 0:
            raise ConfigError(
                f"{option('worker_ballast_mb')} must be >= 0, got {self.worker_ballast_mb:g}"
            )
        parse_injections(self.inject)

    @property
    def injected(self) -> dict[str, float]:
        """The injected slowdowns by name (measuring/inject.py installs them)."""
        return parse_injections(self.inject)

    @classmethod
    def from_args(cls, args: Iterable[str]) -> SideSettings:
        """A side's settings from its arguments; a ConfigError on anything else."""
        return cls(**_values(_pairs(args, _SIDE, where=_NOT_A_SETTING)))

    def args(self) -> list[str]:
        return _changed_args(self)


@dataclass(frozen=True)
class Selection:
    """What the side-by-side commands take after ``--``: the grid, and both sides' settings."""

    choice: GridChoice = GridChoice()
    settings: SideSettings = SideSettings()

    def grid(self) -> Grid:
        return self.choice.select(user_dataset=self.settings.dataset is not None)

    def side(self, own: Iterable[str] = ()) -> SideSettings:
        """Both sides' settings with one side's own ``--lb-*`` arguments on top (they win; a
        repeatable option adds to the common ones)."""
        common = _values(_pairs(self.settings.args(), _SIDE))
        for field, value in _values(_pairs(own, _SIDE, where=_NOT_A_SETTING)).items():
            repeatable = _BY_FIELD[field].repeatable
            common[field] = (*common.get(field, ()), *value) if repeatable else value
        return SideSettings(**common)


def parse_selection(args: Iterable[str]) -> Selection:
    """The arguments after ``--``: grid selection and settings of both sides; a ConfigError on
    anything else (pytest's own options have no side-by-side meaning)."""
    values = _values(_pairs(args, _SELECTION, where=_NOT_A_SELECTION))
    return Selection(GridChoice(**_within("grid", values)), SideSettings(**_within("side", values)))


def recorded_selection(args: Iterable[str], given: Iterable[str] = ()) -> Selection:
    """The selection a recorded pytest invocation ran with (its other options left out), with
    the ``given`` arguments on top: an option given replaces every recorded value of it."""
    given_pairs = _pairs(given, _SELECTION, where=_NOT_A_SELECTION)
    replaced = {chosen.name for chosen, _ in given_pairs}
    kept = [(c, v) for c, v in _pairs(args, _SELECTION) if c.name not in replaced]
    values = _values(kept + given_pairs)
    return Selection(GridChoice(**_within("grid", values)), SideSettings(**_within("side", values)))


def recorded_value(args: Iterable[str], field: str) -> Any:
    """The value of ``field`` a recorded pytest invocation ran with (its default when unset),
    without checking the invocation's other options."""
    pairs = [(c, v) for c, v in _pairs(args, (_BY_FIELD[field].part,)) if c.field == field]
    return _values(pairs).get(field, _BY_FIELD[field].default)


@dataclass(frozen=True)
class RunConfig:
    """A benchmark run's configuration, as the plugin's options give it."""

    choice: GridChoice
    settings: SideSettings
    rounds: int = DEFAULT_ROUNDS
    runner: str | None = None  # None: runner.default_runner() (which imports torch)
    rerun: str | None = None

    def __post_init__(self):
        if self.rounds < 1:
            raise ConfigError(f"{option('rounds')} must be >= 1, got {self.rounds}")
        if self.runner is not None:
            try:
                runners.parse_runner(self.runner)
            except ValueError as exc:
                raise ConfigError(f"{option('runner')}: {exc}") from None

    @classmethod
    def from_values(cls, getvalue: Callable[[str], Any]) -> RunConfig:
        """From ``getvalue(option name)``: pytest's ``config.getoption``, each value typed."""
        values = {o.field: getvalue(o.name) for o in OPTIONS}
        values["inject"] = tuple(values["inject"] or ())
        return cls(
            GridChoice(**_within("grid", values)),
            SideSettings(**_within("side", values)),
            **_within("run", values),
        )

    def grid(self) -> Grid:
        return self.choice.select(user_dataset=self.settings.dataset is not None)


def _changed_args(value) -> list[str]:
    """``value``'s fields that differ from their defaults, as arguments, in the fields' order."""
    default = type(value)()
    return args_for(
        **{
            f.name: getattr(value, f.name)
            for f in fields(value)
            if getattr(value, f.name) != getattr(default, f.name)
        }
    )
