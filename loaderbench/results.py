"""The results model: pytest-benchmark JSON read here, once, into typed objects.

Results and baselines stay pytest-benchmark files on disk, so its own ``compare`` reads them. This
module is the only one that knows their nesting: pytest-benchmark's ``benchmarks[].stats`` and
``machine_info``, and what loaderbench adds to them (``extra_info`` per benchmark, written by
``measuring.measure``; ``machine_info.loaderbench``, the machine's fingerprint; the top-level
``loaderbench`` section, written by ``suite.plugin``, and its ``baseline`` part, written by
``judging.baseline``). Everything else takes a ``Results`` and asks it.

Only JSON is read, never pickle, and a malformed file is an ``InputError`` naming what is wrong.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loaderbench import typed
from loaderbench.errors import InputError
from loaderbench.machine import Fingerprint

#: What a benchmark measured (``extra_info.measure``).
THROUGHPUT = "throughput"
STARTUP = "startup"
#: A default (non-persistent) loader's whole epoch: from ``iter()`` to its last batch with its
#: workers stopped (start, steady part and shutdown in ``extra_info.epoch_phases``).
EPOCH = "epoch"
MEMORY = "memory"
OVERLAP = "overlap"
TRANSFER = "transfer"
DISTRIBUTED = "distributed"


def number(value: Any) -> float | None:
    """``value`` when it is a finite JSON number (not a bool), else None. An integer stays one, so
    that a file read and written again is the same file."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return value if math.isfinite(value) else None
    except OverflowError:  # an integer too large for a float
        return None


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- one benchmark --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """One entry of ``benchmarks``: its name, timings and what loaderbench recorded beside it."""

    name: str
    median: float
    rounds: tuple[float, ...] = ()  #: raw rounds (``stats.data``); () when saved without them
    group: str | None = None
    fullname: str | None = None  #: the pytest node id
    info: Mapping[str, Any] = field(default_factory=dict)  #: ``extra_info``
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, entry: dict) -> Benchmark:
        stats = entry["stats"]
        return cls(
            name=entry["name"],
            median=float(stats["median"]),
            rounds=tuple(float(x) for x in stats.get("data") or ()),
            group=_text(entry.get("group")),
            fullname=_text(entry.get("fullname")),
            info=dict(_mapping(entry.get("extra_info"))),
            raw=entry,
        )

    def to_json(self) -> dict:
        stats = dict(_mapping(self.raw.get("stats")))
        stats.setdefault("median", self.median)
        if self.rounds:
            stats["data"] = list(self.rounds)
        return {
            **self.raw,
            "name": self.name,
            "group": self.group,
            "stats": stats,
            "extra_info": dict(self.info),
        }

    @property
    def measure(self) -> str | None:
        return self.info.get("measure")

    @property
    def case(self) -> dict | None:
        """The grid case as stored (``Case.as_dict``), or None."""
        case = self.info.get("case")
        return case if isinstance(case, dict) else None

    @property
    def case_id(self) -> str | None:
        return (self.case or {}).get("id")

    @property
    def num_workers(self) -> int:
        return int((self.case or {}).get("num_workers") or 0)

    @property
    def test(self) -> str:
        """The test function's name: ``test_throughput`` of ``test_throughput[cpu-w0]``."""
        return self.name.split("[")[0]

    @property
    def seconds(self) -> float:
        """The median of the raw rounds when kept, else the stored median."""
        return statistics.median(self.rounds) if self.rounds else self.median

    def value(self, key: str) -> float | None:
        """A number recorded beside the benchmark (``extra_info[key]``), or None."""
        return number(self.info.get(key))

    @property
    def samples_per_s(self) -> float | None:
        """The recorded rate, or for older files the epoch size over the median epoch."""
        rate = self.value("samples_per_s")
        samples = self.value("samples_per_epoch")
        if rate is None and samples and self.median:
            rate = samples / self.median
        return rate

    @property
    def device(self) -> str:
        return str(self.info.get("device") or "cpu")

    @property
    def transfer(self) -> dict | None:
        """{device, batch_size, non_blocking, pinned} of a host-to-device copy benchmark."""
        setting = self.info.get("transfer")
        return setting if isinstance(setting, dict) else None

    @property
    def world_size(self) -> int | None:
        size = self.info.get("world_size")
        return size if isinstance(size, int) and not isinstance(size, bool) else None

    @property
    def settings(self) -> dict:
        """The dataset's settings as recorded (``extra_info.dataset``)."""
        return _mapping(self.info.get("dataset"))

    def pooled(self, rounds: list[float]) -> Benchmark:
        """This benchmark with ``rounds`` as its rounds: every statistic recomputed by
        pytest-benchmark's own Stats (so each field it reads is there and means the same), and the
        rates of the pooled median (measure.record_rates' definition)."""
        from pytest_benchmark.stats import Stats

        stats = Stats()
        for value in rounds:
            stats.update(value)
        iterations = _mapping(self.raw.get("stats")).get("iterations", 1)
        info = dict(self.info)
        if rounds and "samples_per_s" in info and "samples_per_epoch" in info:
            Recorder(info).rates(statistics.median(rounds))
        raw = {**self.raw, "stats": {**stats.as_dict(), "data": rounds, "iterations": iterations}}
        return replace(self, median=stats.median, rounds=tuple(rounds), info=info, raw=raw)


# --- derived ratios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Derived:
    """A ratio derived from benchmarks of one run (judging.derived says which and how)."""

    name: str
    kind: str
    case: str
    value: float
    higher_is_better: bool
    inputs: tuple[str, ...] = ()  #: the benchmarks it was computed from
    ideal: float | None = None  #: efficiency: the ideal speed-up it is measured against
    world_size: int | None = None

    @classmethod
    def from_json(cls, entry: dict) -> Derived | None:
        value = number(entry.get("value"))
        if not isinstance(entry.get("name"), str) or value is None:
            return None
        return cls(
            name=entry["name"],
            kind=str(entry.get("kind")),
            case=str(entry.get("case") or ""),
            value=value,
            higher_is_better=bool(entry.get("higher_is_better")),
            inputs=tuple(i for i in _list(entry.get("inputs")) if isinstance(i, str)),
            ideal=number(entry.get("ideal")),
            world_size=_count(entry.get("world_size")),
        )

    def to_json(self) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "case": self.case,
            "value": self.value,
            "higher_is_better": self.higher_is_better,
            "statistic": "median",
            "inputs": list(self.inputs),
        }
        if self.ideal is not None:
            out["ideal"] = self.ideal
        if self.world_size is not None:
            out["world_size"] = self.world_size
        return out


# --- what a baseline keeps ------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    """How a baseline's runs moved for one row: each run's median (times, ratios) or value
    (memory), and for medians the band (largest ratio between two runs, minus 1)."""

    band: float | None = None
    run_medians: tuple[float, ...] = ()
    run_values: tuple[float, ...] = ()

    @classmethod
    def from_json(cls, entry: Any) -> Noise:
        entry = _mapping(entry)
        return cls(
            band=number(entry.get("band")),
            run_medians=_numbers(entry.get("run_medians")),
            run_values=_numbers(entry.get("run_values")),
        )

    def to_json(self) -> dict:
        if self.run_values:
            return {"run_values": list(self.run_values)}
        return {"band": self.band, "run_medians": list(self.run_medians)}

    @property
    def runs(self) -> list[float]:
        """One value per baseline run: run values when kept (memory), else run medians."""
        return list(self.run_values or self.run_medians)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _numbers(values: Any) -> tuple[float, ...]:
    found = (number(v) for v in _list(values))
    return tuple(v for v in found if v is not None)


@dataclass(frozen=True)
class Sitting:
    date: str | None
    runs: int


@dataclass(frozen=True)
class Recipe:
    """How to rebuild the environment a baseline measured (paired.recipe captures and rebuilds
    it): its Python version, torch requirement, every other package frozen, the project's commit
    (None outside git) and whether the tree was dirty, and the pytest arguments of its runs."""

    python: str
    torch: str
    packages: tuple[str, ...]
    commit: str | None
    args: tuple[str, ...]
    dirty: bool = False

    @classmethod
    def from_json(cls, entry: Any) -> Recipe:
        """The stored recipe; a typed.Malformed naming the field when it is not one."""
        return typed.read(cls, entry, "the baseline's recipe")

    def to_json(self) -> dict:
        return typed.write(self)


@dataclass(frozen=True)
class BaselineRecord:
    """The ``loaderbench.baseline`` section of a file ``loaderbench baseline`` wrote."""

    runs: int
    noise: Mapping[str, Noise]
    #: When its runs were recorded; None in a file written before sittings were kept
    #: (judging.baseline.sittings counts it as one, dated by the file).
    sittings: tuple[Sitting, ...] | None = None
    #: Each run's speed probes; None in a file written before they were kept.
    speed_probes: tuple[float, ...] | None = None
    recipe: Recipe | None = None
    band_rule: str = ""

    @classmethod
    def from_json(cls, entry: Any) -> BaselineRecord | None:
        entry = _mapping(entry)
        noise = entry.get("noise")
        if not isinstance(noise, dict):
            return None
        sittings = entry.get("sittings")
        probes = entry.get("speed_probes")
        recipe = entry.get("recipe")
        return cls(
            runs=_count(entry.get("runs")) or 0,
            noise={str(name): Noise.from_json(n) for name, n in noise.items()},
            sittings=None if sittings is None else _records(Sitting, sittings, "a sitting"),
            speed_probes=None if probes is None else tuple(p for p in _numbers(probes) if p > 0),
            recipe=None if recipe is None else Recipe.from_json(recipe),
            band_rule=str(entry.get("band_rule") or ""),
        )

    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "runs": self.runs,
            "band_rule": self.band_rule,
            "noise": {name: n.to_json() for name, n in self.noise.items()},
        }
        if self.sittings is not None:
            out["sittings"] = [typed.write(s) for s in self.sittings]
        if self.speed_probes is not None:
            out["speed_probes"] = list(self.speed_probes)
        if self.recipe is not None:
            out["recipe"] = self.recipe.to_json()
        return out


def _records(cls: type, entries: Any, what: str) -> tuple:
    if not isinstance(entries, list):
        raise typed.Malformed(f"{what}s entry is not a list")
    return tuple(typed.read(cls, entry, what) for entry in entries)


@dataclass(frozen=True)
class Invocation:
    """How a results file was produced: enough to start the same pytest again."""

    python: str
    directory: str
    args: tuple[str, ...]

    def to_json(self) -> dict:
        return typed.write(self)


# --- a whole file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    """A results file or a baseline: its benchmarks, derived ratios, the machine and run settings
    it records, and (a baseline) its runs' noise."""

    benchmarks: tuple[Benchmark, ...]
    derived: tuple[Derived, ...] = ()
    fingerprint: Fingerprint | None = None  #: machine_info.loaderbench
    runner: str | None = None
    #: The run's settings as the plugin wrote them: grid, cost_scale, injected, worker_ballast_mb,
    #: loader ({"class": MODULE:CLASS, "package": ..., "version": ...}).
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: The speed probe at the run's start and end, in seconds ({"start": ..., "end": ...}).
    run_probes: Mapping[str, float] = field(default_factory=dict)
    invocation: Invocation | None = None
    baseline: BaselineRecord | None = None
    datetime: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict) -> Results:
        """The model of parsed pytest-benchmark JSON (checked first: schema_problem)."""
        problem = schema_problem(data)
        if problem:
            raise InputError(f"not a pytest-benchmark results file: {problem}")
        try:
            return cls._from_json(data)
        except typed.Malformed as exc:
            raise InputError(f"not a loaderbench results file: {exc}") from None

    @classmethod
    def _from_json(cls, data: dict) -> Results:
        section = _mapping(data.get("loaderbench"))
        derived = tuple(
            d
            for d in (
                Derived.from_json(e) for e in _list(section.get("derived")) if isinstance(e, dict)
            )
            if d is not None
        )
        probes = _mapping(section.get("speed_probe"))
        runner = section.get("runner")
        fingerprint = _mapping(data.get("machine_info")).get("loaderbench")
        return cls(
            benchmarks=tuple(Benchmark.from_json(b) for b in data["benchmarks"]),
            derived=derived,
            fingerprint=None if fingerprint is None else Fingerprint.from_dict(fingerprint),
            runner=runner if isinstance(runner, str) and runner else None,
            settings={k: section[k] for k in _SETTINGS if k in section},
            run_probes={str(k): p for k, v in probes.items() if (p := number(v)) and p > 0},
            invocation=_invocation(section.get("invocation")),
            baseline=BaselineRecord.from_json(section.get("baseline")),
            datetime=_text(data.get("datetime")),
            raw=data,
        )

    def to_json(self) -> dict:
        """pytest-benchmark JSON: the file as read, with this model's parts written over it (in
        the places they were read from, so that a file read and written is the same file)."""
        modelled: dict[str, Any] = {**self.settings}
        modelled["derived"] = [d.to_json() for d in self.derived]
        if self.runner is not None:
            modelled["runner"] = self.runner
        if self.run_probes and self.baseline is None:  # a baseline keeps its runs' instead
            modelled["speed_probe"] = dict(self.run_probes)
        if self.invocation is not None:
            modelled["invocation"] = self.invocation.to_json()
        if self.baseline is not None:
            modelled["baseline"] = self.baseline.to_json()
        read = _mapping(self.raw.get("loaderbench"))
        section = {
            **{
                k: modelled.get(k, v)
                for k, v in read.items()
                if k not in _MODELLED or k in modelled
            },
            **modelled,
        }
        machine_info = dict(_mapping(self.raw.get("machine_info")))
        if self.fingerprint is not None:
            machine_info["loaderbench"] = self.fingerprint.to_dict()
        return {
            **self.raw,
            "machine_info": machine_info,
            "datetime": self.datetime,
            "benchmarks": [b.to_json() for b in self.benchmarks],
            "loaderbench": section,
        }

    # --- questions everyone asks ---

    def by_name(self) -> dict[str, Benchmark]:
        return {b.name: b for b in self.benchmarks}

    def derived_by_name(self) -> dict[str, Derived]:
        return {d.name: d for d in self.derived}

    def rounds_by_name(self) -> dict[str, list[float]]:
        """Each benchmark's raw rounds; benchmarks saved without them are absent."""
        return {b.name: list(b.rounds) for b in self.benchmarks if b.rounds}

    def measured(self, measure: str) -> list[Benchmark]:
        """The benchmarks of ``measure`` that record their grid case, in run order."""
        return [b for b in self.benchmarks if b.measure == measure and b.case is not None]

    @property
    def speed_probes(self) -> list[float]:
        """Every speed probe the file carries: a baseline's runs', else the run's start and end."""
        if self.baseline is not None and self.baseline.speed_probes:
            return list(self.baseline.speed_probes)
        return list(self.run_probes.values())

    @property
    def noise(self) -> Mapping[str, Noise] | None:
        """A recorded baseline's noise per row, or None for a plain results file."""
        return self.baseline.noise if self.baseline is not None else None

    @property
    def loader_class(self) -> str:
        """The loader class the run measured, MODULE:CLASS (torch's DataLoader when unrecorded:
        runs before ``--lb-loader`` existed measured nothing else)."""
        recorded = _mapping(self.settings.get("loader"))
        found = recorded.get("class")
        return found if isinstance(found, str) else DEFAULT_LOADER

    @property
    def recipe(self) -> Recipe | None:
        return self.baseline.recipe if self.baseline is not None else None

    def missing_rounds(self) -> str | None:
        """The first benchmark without raw rounds, or None: the verdict's rank test and a
        baseline's noise bands need every round."""
        return next((b.name for b in self.benchmarks if not b.rounds), None)


#: The loader class a run measures unless it names another (``--lb-loader``).
DEFAULT_LOADER = "torch.utils.data:DataLoader"
#: The run settings of the ``loaderbench`` section (Results.settings).
_SETTINGS = ("grid", "cost_scale", "injected", "worker_ballast_mb", "layout_pad", "loader")
#: Parts of the ``loaderbench`` section the model holds as fields.
_MODELLED = ("derived", "runner", "speed_probe", "invocation", "baseline", *_SETTINGS)


def _invocation(recorded: Any) -> Invocation | None:
    """How the run was started, or None when not recorded as one (a confirming rerun then
    cannot start it again, and says so)."""
    try:
        return typed.read(Invocation, recorded, "the invocation")
    except typed.Malformed:
        return None


def benchmarks_of(entries: Iterable[dict]) -> list[Benchmark]:
    """The model of pytest-benchmark's benchmark entries as its hooks see them (suite.plugin)."""
    return [Benchmark.from_json(e) for e in entries if isinstance(_mapping(e).get("stats"), dict)]


# --- writing what a run records ------------------------------------------------------------------


class Recorder:
    """Writes what a benchmark records beside its timing into its ``extra_info`` (the keys
    Benchmark reads back): the benchmarks under tests/benchmarks and measuring.measure write
    through it, never a key by hand."""

    def __init__(self, extra_info: dict[str, Any]):
        self.info = extra_info

    @classmethod
    def of(cls, benchmark) -> Recorder:
        """The recorder of a pytest-benchmark fixture."""
        return cls(benchmark.extra_info)

    def case(self, measure: str, case: Mapping[str, Any], dataset: Mapping[str, Any]) -> None:
        """What was measured: the measure, the grid case (Case.as_dict), the dataset's settings."""
        self.info.update(measure=measure, case=dict(case), dataset=dict(dataset))

    def epoch(self, batches: int, samples: int) -> None:
        """One epoch's size, which the rates and their recomputation (Benchmark.pooled) divide."""
        self.info.update(batches_per_epoch=batches, samples_per_epoch=samples)

    def rates(self, median: float) -> None:
        """Samples/s and batches/s of the recorded epoch at ``median`` seconds per epoch."""
        self.info.update(
            samples_per_s=self.info["samples_per_epoch"] / median,
            batches_per_s=self.info["batches_per_epoch"] / median,
        )

    def phases(self, phases: Mapping[str, float]) -> None:
        """A whole epoch's start, steady part and shutdown (``epoch_phases``), in seconds."""
        self.info["epoch_phases"] = dict(phases)

    def numbers(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """Anything else a benchmark measured or set beside its timing (memory's PSS, overlap's
        efficiency, a transfer's setting and GB/s, a world's ranks), under its own names."""
        self.info.update(values or {}, **more)


# --- writing what a run records (suite.plugin's pytest-benchmark hooks) ----------------------------


def write_fingerprint(machine_info: dict, fingerprint: Fingerprint) -> None:
    """Put the machine's fingerprint into pytest-benchmark's ``machine_info``, in place."""
    machine_info["loaderbench"] = fingerprint.to_dict()


def write_run(
    output_json: dict,
    *,
    derive: Callable[[list[Benchmark]], list[Derived]],
    runner: str,
    settings: Mapping[str, Any],
    speed_probe: Mapping[str, float],
    invocation: Invocation,
) -> None:
    """Add loaderbench's section to the JSON pytest-benchmark is about to write, in place: the
    ratios ``derive`` finds among its benchmarks, the runner class, the run ``settings`` (as
    Results.settings reads them), the speed probe at the run's start and end, and how the run
    was started (for confirming reruns)."""
    benchmarks = benchmarks_of(_list(output_json.get("benchmarks")))
    output_json["loaderbench"] = {
        "derived": [entry.to_json() for entry in derive(benchmarks)],
        **{key: value for key, value in settings.items() if key in _SETTINGS},
        "runner": runner,
        "speed_probe": dict(speed_probe),
        "invocation": invocation.to_json(),
    }


# --- reading a file -------------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def load_results(path: str | Path) -> Results:
    """The file's model, checked to be pytest-benchmark JSON with at least one benchmark."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (run `make bench` to produce results)") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a pytest-benchmark JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: not a results file: JSON nested too deeply to be one") from None
    problem = schema_problem(data)
    if problem:
        raise InputError(f"{path}: not a pytest-benchmark results file: {problem}")
    if not data["benchmarks"]:
        raise InputError(
            f"{path}: holds no benchmarks (was the run narrowed to nothing, or "
            "run without --benchmark-only?)"
        )
    try:
        return Results.from_json(data)
    except InputError as exc:  # a part loaderbench wrote, malformed
        raise InputError(f"{path}: {exc}") from None


def schema_problem(data) -> str | None:
    """What makes ``data`` unusable as pytest-benchmark JSON, or None."""
    if not isinstance(data, dict):
        return f"top level is {type(data).__name__}, expected an object"
    benchmarks = data.get("benchmarks")
    if not isinstance(benchmarks, list):
        return "no 'benchmarks' list"
    for i, bench in enumerate(benchmarks):
        if not isinstance(bench, dict):
            return f"benchmarks[{i}] is {type(bench).__name__}, expected an object"
        name = bench.get("name")
        if not isinstance(name, str) or not name:
            return f"benchmarks[{i}] has no 'name'"
        stats = bench.get("stats")
        if not isinstance(stats, dict):
            return f"benchmark {name!r} has no 'stats' object"
        for key in ("median", "min"):
            value = number(stats.get(key))
            if value is None or value < 0:
                return f"benchmark {name!r} has no valid stats.{key}"
        data_points = stats.get("data")
        if data_points is not None and (
            not isinstance(data_points, list) or any(number(x) is None for x in data_points)
        ):
            return f"benchmark {name!r} has a malformed stats.data (expected a list of numbers)"
        if "extra_info" in bench and not isinstance(bench["extra_info"], dict):
            return f"benchmark {name!r} has a malformed extra_info"
    return None
