"""The speed probe: timed in every run, pooled in baselines, and what the verdict does when the
candidate's machine runs it at another speed than the baseline's."""

from __future__ import annotations

import json
from itertools import count

import pytest
from pytest_benchmark.utils import get_machine_id
from synthetic_results import (
    CPU_W0,
    CPU_W2,
    JITTER,
    bench,
    derived_json,
    judged,
    merged,
    quiet_baseline,
    results,
    scaled,
)

from loaderbench.cli import main
from loaderbench.grid import Case
from loaderbench.measuring import speed
from loaderbench.results import Results
from loaderbench.storage import write_json_atomic

PROBES = (0.050, 0.052, 0.049)  # seconds, one per baseline run


def baseline() -> dict:
    return quiet_baseline(speed_probes=PROBES)


def mismatch(baseline: dict, current: dict) -> str | None:
    return speed.mismatch(Results.from_json(baseline), Results.from_json(current))


def test_the_probe_keeps_the_fastest_repeat():
    ticks = count()
    durations = iter([0.9, 0.4, 0.7])
    now = [0.0]

    def clock():
        if next(ticks) % 2:  # an end: the repeat took the next duration
            now[0] += next(durations)
        return now[0]

    assert speed.probe(repeats=3, loop=10, clock=clock) == pytest.approx(0.4)
    assert speed.probe(repeats=2, loop=1000) > 0  # the real workload, timed


def test_a_baseline_keeps_every_runs_probes():
    assert baseline()["loaderbench"]["baseline"]["speed_probes"] == [
        p for p in PROBES for _ in ("start", "end")
    ]
    assert Results.from_json(baseline()).speed_probes == [
        p for p in PROBES for _ in ("start", "end")
    ]


@pytest.mark.parametrize(
    "probe, phrase",
    [
        (0.052 * 1.24, None),  # within the tolerance of the slowest baseline run
        (0.049 / 1.24, None),
        (0.052 * 1.3, "1.30x slower than the baseline's slowest run"),
        (0.049 / 1.3, "1.30x faster than the baseline's fastest run"),
    ],
)
def test_a_probe_beyond_the_tolerance_is_another_speed(probe, phrase):
    found = mismatch(baseline(), results({CPU_W0: JITTER}, speed_probe=probe))
    if phrase is None:
        assert found is None
    else:
        assert phrase in found


def test_without_probes_on_either_side_there_is_nothing_to_compare():
    old = merged([results({CPU_W0: JITTER})] * 2)  # recorded before the probe existed
    assert mismatch(old, results({CPU_W0: JITTER}, speed_probe=1.0)) is None
    assert mismatch(baseline(), results({CPU_W0: JITTER})) is None


def test_a_twice_slower_machine_gets_its_ratios_judged_not_its_seconds():
    """Everything twice as slow, probe included: the seconds say nothing about the code; the
    ratios do, and they are unchanged."""
    slow = results({CPU_W0: scaled(JITTER, 2.0), CPU_W2: scaled(JITTER, 1.0)}, speed_probe=0.1)
    verdict = judged(baseline(), slow)
    assert verdict.only == "portable" and not verdict.regressed
    assert {row.kind for row in verdict.rows} == {"ratio"}
    assert any(
        "not seconds: this machine ran the speed probe 1.92x slower" in line
        for line in verdict.header
    )
    assert judged(baseline(), slow, only="all").regressed  # told to judge seconds anyway
    same_speed = results(
        {CPU_W0: scaled(JITTER, 2.0), CPU_W2: scaled(JITTER, 1.0)}, speed_probe=0.051
    )
    verdict = judged(baseline(), same_speed)  # the machine as fast as ever: the code is slower
    assert verdict.only == "all" and verdict.regressed and not verdict.header


def test_the_gate_command_says_why_seconds_were_not_judged(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_json_atomic(
        tmp_path / "baselines" / "cpu" / get_machine_id() / "0001_test-2cpu.json", baseline()
    )
    current = tmp_path / "latest.json"
    current.write_text(
        json.dumps(results({CPU_W0: scaled(JITTER, 2.0), CPU_W2: JITTER}, speed_probe=0.1))
    )
    assert main(["gate", str(current)]) == 0
    out = capsys.readouterr().out
    assert (
        "!! only what holds across machines is judged (the ratios speedup, efficiency, "
        "pin_gain, world_speedup, and memory), not seconds: this machine ran the speed probe" in out
    )
    assert "or pass --only all to judge everything anyway" in out
    assert main(["gate", "--only", "all", str(current)]) == 1


def with_startup(run: dict, spawn_factor: float) -> dict:
    """``run`` plus time-to-first-batch benchmarks of io at 2 workers, fork and spawn."""
    startup = [
        bench(Case("io", 2, "fork"), JITTER, "startup"),
        bench(Case("io", 2, "spawn"), scaled(JITTER, 3.0 * spawn_factor), "startup"),
    ]
    run["benchmarks"] += startup
    run["loaderbench"]["derived"] = derived_json(run["benchmarks"])
    return run


def test_ratios_of_unlike_work_are_not_judged_across_machines():
    """On a slower machine a spawn start-up (interpreter, imports) slows down while an io batch
    (a sleep) does not: startup_ratio moves with the machine, so only the same-work ratios are
    judged; asked for every derived ratio, it shows."""
    base = merged(
        [
            with_startup(
                results(
                    {CPU_W0: scaled(JITTER, s), CPU_W2: scaled(JITTER, s / 2)}, speed_probe=probe
                ),
                1.0,
            )
            for s, probe in zip((1.0, 1.03, 0.98), PROBES)
        ]
    )  # quiet_baseline's runs
    slow = with_startup(
        results({CPU_W0: scaled(JITTER, 2.0), CPU_W2: JITTER}, speed_probe=0.1), 1.5
    )
    verdict = judged(base, slow)
    names = {row.name for row in verdict.rows}
    assert names == {"speedup[cpu-w2-fork]", "efficiency[cpu-w2-fork]"} and not verdict.regressed
    everything = judged(base, slow, only="derived")
    assert [row.verdict for row in everything.rows if row.name == "startup_ratio[io-w2-spawn]"] == [
        "regressed"
    ]
