"""Synthetic pytest-benchmark results for the verdict, baseline and A/B tests: the shape the plugin
writes (raw rounds, extra_info case, loaderbench section, fingerprint), numbers chosen by the test."""

from __future__ import annotations

import statistics

from loaderbench.grid import Case
from loaderbench.judging import derived
from loaderbench.judging.baseline import merge_runs
from loaderbench.judging.stored_numbers import judge
from loaderbench.results import Recipe, Results, benchmarks_of

FINGERPRINT = {
    "cpu_model": "Test CPU",
    "usable_cores": 2,
    "memory_gb": 24.0,
    "python": "3.11.7",
    "platform": "Linux-x86_64",
    "torch": "2.13.0",
    "cuda": None,
    "gpu": None,
    "gpu_count": 0,
    "cuda_driver": None,
}

CPU_W0, CPU_W2 = Case("cpu", 0), Case("cpu", 2, "fork")
JITTER = [1.00, 1.01, 0.99, 1.02, 0.98]  # a quiet benchmark's five rounds, relative


def bench(case: Case, rounds: list[float], measure: str = "throughput") -> dict:
    return {
        "name": f"test_{measure}[{case.id}]",
        "group": f"{measure}-{case.profile}",
        "fullname": f"tests/benchmarks/test_grid.py::test_{measure}[{case.id}]",
        "params": None,
        "param": case.id,
        "options": {},
        "extra_info": {"measure": measure, "case": case.as_dict()},
        "stats": {
            "data": list(rounds),
            "median": statistics.median(rounds),
            "min": min(rounds),
            "iterations": 1,
        },
    }


def memory_bench(case: Case, peak_mb: float, per_worker_mb: float = 0.0) -> dict:
    """A memory benchmark as the plugin writes it: epoch rounds and the PSS numbers in MB (the
    whole PSS 100 MB above the anonymous part: torch's libraries)."""
    entry = bench(case, JITTER, measure="memory")
    entry["extra_info"].update(
        peak_anon_pss_mb=peak_mb,
        anon_pss_per_worker_mb=per_worker_mb,
        peak_pss_mb=peak_mb + 100,
        pss_per_worker_mb=per_worker_mb + 50,
    )
    return entry


def results(
    rounds_by_case: dict[Case, list[float]],
    *,
    runner: str = "cpu",
    cost_scale=1.0,
    speed_probe: float | None = None,
    memory: list[dict] = (),
    **fingerprint,
) -> dict:
    """A results file of throughput benchmarks with their derived ratios, plus ``memory``
    benchmarks (memory_bench); ``speed_probe`` seconds as the machine's speed at the run's start
    and end (none recorded when None)."""
    benchmarks = [bench(case, rounds) for case, rounds in rounds_by_case.items()] + list(memory)
    info = {
        "derived": derived_json(benchmarks),
        "grid": "quick",
        "cost_scale": cost_scale,
        "runner": runner,
    }
    if speed_probe is not None:
        info["speed_probe"] = {"start": speed_probe, "end": speed_probe}
    return {
        "machine_info": {"loaderbench": {**FINGERPRINT, **fingerprint}},
        "commit_info": {},
        "datetime": "2026-01-01T00:00:00",
        "version": "5.3.1",
        "benchmarks": benchmarks,
        "loaderbench": info,
    }


def scaled(values: list[float], factor: float) -> list[float]:
    return [v * factor for v in values]


def quiet_baseline(runner: str = "cpu", speed_probes=(None, None, None)) -> dict:
    """A recorded baseline of three quiet runs (medians within 5% of each other), 2 workers twice
    as fast as 0; ``speed_probes``: each run's speed probe (seconds), or None for none."""
    return merged(
        [
            results(
                {CPU_W0: scaled(JITTER, s), CPU_W2: scaled(JITTER, 0.5 * s)},
                runner=runner,
                speed_probe=probe,
            )
            for s, probe in zip((1.0, 1.03, 0.98), speed_probes)
        ]
    )


# The files on disk are JSON; the code under test takes the results model. These read the JSON a
# test built the way load_results does, and give JSON back where the test inspects a file's shape.


def derived_json(benchmarks: list[dict], cores: int = 2) -> list[dict]:
    """The derived entries the plugin would write for these benchmark entries."""
    return [d.to_json() for d in derived.derive(benchmarks_of(benchmarks), cores)]


def merged(runs: list[dict], *, prior: dict | None = None, **options) -> dict:
    """The baseline file merge_runs writes for these runs (and ``prior``); a ``recipe`` given as
    its JSON."""
    if isinstance(options.get("recipe"), dict):
        options["recipe"] = Recipe.from_json(options["recipe"])
    model = merge_runs(
        [Results.from_json(run) for run in runs],
        prior=Results.from_json(prior) if prior is not None else None,
        **options,
    )
    return model.to_json()


def judged(baseline: dict, current: dict, *args, **options):
    """The verdict on two files' contents."""
    return judge(Results.from_json(baseline), Results.from_json(current), *args, **options)
