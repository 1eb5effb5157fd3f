"""Recording baselines: pooling runs, noise bands, pytest-benchmark's storage, atomic writes,
refusing to overwrite, progress, and `loaderbench baseline` exit codes."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_benchmark.stats import Stats
from pytest_benchmark.storage.file import FileStorage
from pytest_benchmark.utils import get_machine_id
from synthetic_results import CPU_W0, CPU_W2, FINGERPRINT, merged, results, scaled

from loaderbench import machine
from loaderbench.cli import main
from loaderbench.errors import InputError
from loaderbench.grid import Case
from loaderbench.judging import record as record_module
from loaderbench.judging.baseline import (
    baseline_files,
    locate_baseline,
    noise_band,
    recording,
    sittings,
)
from loaderbench.judging.record import Progress, record
from loaderbench.machine import Fingerprint
from loaderbench.results import Results, Sitting
from loaderbench.storage import write_json_atomic

#: The synthetic results' machine, as the model reads it.
KIND = Fingerprint.from_dict(FINGERPRINT)


def noise_of(baseline: dict) -> dict:
    """The noise section of a baseline file as written."""
    return baseline["loaderbench"]["baseline"]["noise"]


KIND_FILE = "0001_test-2cpu.json"  # the first baseline of synthetic_results' machine kind

RUN_ROUNDS = [[1.0, 1.1, 0.9], [1.2, 1.3, 1.1], [1.1, 1.0, 1.2]]


def three_runs() -> list[dict]:
    return [results({CPU_W0: r, CPU_W2: scaled(r[::-1], 0.5)}) for r in RUN_ROUNDS]


def test_noise_band_is_the_largest_move_between_run_medians():
    assert noise_band([1.0, 1.2, 1.1]) == pytest.approx(0.2)
    assert noise_band([1.0, 1.1, 1.3]) == pytest.approx(0.3)
    assert noise_band([1.0]) is None  # one run shows no noise


def test_merged_runs_pool_rounds_in_run_order_with_pytest_benchmarks_own_stats():
    pooled_file = merged(three_runs())
    (w0,) = [b for b in pooled_file["benchmarks"] if b["name"] == "test_throughput[cpu-w0]"]
    pooled = [v for r in RUN_ROUNDS for v in r]
    assert w0["stats"]["data"] == pooled
    reference = Stats()
    for value in pooled:
        reference.update(value)
    assert {k: w0["stats"][k] for k in Stats.fields} == reference.as_dict()
    noise = noise_of(pooled_file)
    assert noise["test_throughput[cpu-w0]"]["run_medians"] == [1.0, 1.2, 1.1]
    assert noise["test_throughput[cpu-w0]"]["band"] == pytest.approx(0.2)
    # derived ratios get a band from each run's per-round ratios (here 2.0 and ~2.0 per run)
    assert noise["speedup[cpu-w2-fork]"]["band"] is not None
    assert pooled_file["loaderbench"]["baseline"]["runs"] == 3
    assert pooled_file["loaderbench"]["runner"] == "cpu"


def test_pytest_benchmark_storage_reads_a_recorded_baseline(tmp_path):
    """The layout is pytest-benchmark's own: its FileStorage finds and loads the file."""
    write_json_atomic(tmp_path / "cpu" / get_machine_id() / KIND_FILE, merged(three_runs()))
    warnings = []
    logger = type("Logger", (), {"warning": lambda self, text: warnings.append(text)})()
    storage = FileStorage(tmp_path / "cpu", logger, default_machine_id=get_machine_id())
    loaded = list(storage.load())
    assert [str(path) for path, _ in loaded] == [f"{get_machine_id()}/{KIND_FILE}"]
    assert not warnings
    assert {b["name"] for b in loaded[0][1]["benchmarks"]} == {
        "test_throughput[cpu-w0]",
        "test_throughput[cpu-w2-fork]",
    }


def test_writes_are_diff_friendly(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"b": 1, "a": {"d": 2, "c": 3}})
    text = path.read_text()
    assert text == json.dumps({"a": {"c": 3, "d": 2}, "b": 1}, indent=2) + "\n"


@pytest.mark.parametrize("failure", ["replace", "serialise"])
def test_a_failed_write_leaves_the_old_file_whole_and_no_debris(tmp_path, monkeypatch, failure):
    path = tmp_path / "baseline.json"
    write_json_atomic(path, {"old": True})
    if failure == "replace":

        def broken_replace(src, dst):
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", broken_replace)
        data, expected = {"new": True}, OSError
    else:
        data, expected = {"new": float("nan")}, ValueError
    with pytest.raises(expected):
        write_json_atomic(path, data)
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json"]


def fake_runs(calls: list, slots: list | None = None):
    """A stand-in for running pytest: records the command and layout slot, returns the next
    synthetic run."""
    slots = [] if slots is None else slots
    runs = iter(three_runs() * 3)

    def run(command, label, slot):
        calls.append(command)
        slots.append(slot)
        return Results.from_json(next(runs))

    return run


def test_record_runs_the_grid_n_times_and_stores_one_pooled_file(tmp_path, capsys):
    calls, slots = [], []
    path = record(
        runner="cpu",
        runs=3,
        pytest_args=["--lb-profiles=cpu"],
        root=tmp_path,
        force=False,
        python="py",
        run=fake_runs(calls, slots),
        fingerprint=KIND,
    )
    assert slots == [(0, 3), (1, 3), (2, 3)]  # each run its own slice of layouts (layout.py)
    assert path == tmp_path / "cpu" / get_machine_id() / KIND_FILE
    assert len(calls) == 3 and all(c[:3] == ["py", "-m", "pytest"] for c in calls)
    assert all("--lb-runner=cpu" in c and c[-1] == "--lb-profiles=cpu" for c in calls)
    assert len({c[c.index("-p") + 2] for c in calls}) == 3  # each run its own JSON file
    out = capsys.readouterr().out
    for k in (1, 2, 3):
        assert f"run {k} of 3 (elapsed" in out
    assert noise_of(json.loads(path.read_text()))["test_throughput[cpu-w0]"]["band"] > 0


def stored(folder, name: str, **fingerprint) -> Path:
    """A baseline file of the given machine kind in ``folder``."""
    path = folder / name
    write_json_atomic(path, merged([results({CPU_W0: [1.0, 1.1]}, **fingerprint)] * 2))
    return path


def test_an_existing_baseline_is_kept_without_force_and_replaced_with_it(tmp_path):
    first = record(
        runner="cpu",
        runs=2,
        pytest_args=[],
        root=tmp_path,
        force=False,
        run=fake_runs([]),
        fingerprint=KIND,
    )
    before = first.read_text()
    stale = stored(tmp_path / "cpu" / "Other-CPython-3.9-64bit", "0002_test-2cpu.json")
    other_kind = stored(tmp_path / "cpu" / get_machine_id(), "0003_amd-2cpu.json", cpu_model="AMD")
    other_before = other_kind.read_text()
    calls = []
    with pytest.raises(InputError, match="--force"):
        record(
            runner="cpu",
            runs=3,
            pytest_args=[],
            root=tmp_path,
            force=False,
            run=fake_runs(calls),
            fingerprint=KIND,
        )
    assert calls == []  # refused before spending any time on runs
    assert first.read_text() == before
    new = record(
        runner="cpu",
        runs=3,
        pytest_args=[],
        root=tmp_path,
        force=True,
        run=fake_runs([]),
        fingerprint=KIND,
    )
    assert new.name == "0004_test-2cpu.json"  # pytest-benchmark's next number: the latest
    assert json.loads(new.read_text())["loaderbench"]["baseline"]["runs"] == 3
    assert not first.exists() and not stale.exists()  # one baseline per machine kind
    assert other_kind.read_text() == other_before  # another kind's is kept, byte for byte


def test_a_baseline_of_another_machine_kind_needs_no_force(tmp_path):
    amd = stored(tmp_path / "cpu" / get_machine_id(), "0001_amd-2cpu.json", cpu_model="AMD")
    path = record(
        runner="cpu",
        runs=2,
        pytest_args=[],
        root=tmp_path,
        force=False,
        run=fake_runs([]),
        fingerprint=KIND,
    )
    assert path.name == "0002_test-2cpu.json" and amd.exists()


def test_the_candidates_machine_kind_picks_the_baseline(tmp_path):
    """Among several kinds' baselines the candidate's own kind wins, even when older; with none of
    its kind, the latest of any (the verdict then judges ratios only)."""
    folder = tmp_path / "cpu"
    own = stored(folder / get_machine_id(), "0001_test-2cpu.json")
    stored(folder / get_machine_id(), "0002_amd-2cpu.json", cpu_model="AMD")
    latest = stored(
        folder / get_machine_id(), "0003_intel-4cpu.json", cpu_model="Intel", usable_cores=4
    )
    assert locate_baseline(folder, "cpu", fingerprint=KIND) == own
    assert (
        locate_baseline(folder, "cpu", fingerprint=replace(KIND, usable_cores=4, cpu_model="Intel"))
        == latest
    )
    assert locate_baseline(folder, "cpu", fingerprint=replace(KIND, cpu_model="ARM")) == latest
    # memory and driver are shown when they differ, but do not make another kind
    assert locate_baseline(folder, "cpu", fingerprint=replace(KIND, memory_gb=23.4)) == own


def test_an_unreadable_baseline_of_unknown_kind_stops_a_recording(tmp_path):
    """Its kind cannot be told, so a forced recording could replace it or keep a second one of
    this kind beside it: the recording refuses, naming the file, and leaves it alone."""
    broken = tmp_path / "cpu" / get_machine_id() / "0001_test-2cpu.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    calls = []
    with pytest.raises(InputError, match="0001_test-2cpu.json: not JSON"):
        record(
            runner="cpu",
            runs=2,
            pytest_args=[],
            root=tmp_path,
            force=True,
            run=fake_runs(calls),
            fingerprint=KIND,
        )
    assert calls == [] and broken.read_text() == "{not json"


def test_runs_that_record_another_runner_class_are_not_stored(tmp_path):
    def gpu_run(command, label, slot):
        return Results.from_json(results({CPU_W0: [1.0, 1.1]}, runner="gpu"))

    with pytest.raises(InputError, match="runner class"):
        record(runner="cpu", runs=2, pytest_args=[], root=tmp_path, force=False, run=gpu_run)
    assert not (tmp_path / "cpu").exists()


def test_progress_estimates_the_time_left_from_the_runs_done():
    now = [100.0]
    progress = Progress(3, clock=lambda: now[0])
    assert (
        progress.line(0, "run 1 of 3")
        == "run 1 of 3 (elapsed 0s, no estimate before the first run ends)"
    )
    now[0] += 70
    assert progress.line(1, "run 2 of 3") == "run 2 of 3 (elapsed 1m10s, about 2m20s left)"
    now[0] += 70
    assert progress.line(3, "3 runs done") == "3 runs done (took 2m20s)"


@pytest.mark.processes
def test_the_command_exits_2_on_a_second_recording_and_on_one_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(record_module, "run_grid", fake_runs([]))
    monkeypatch.setattr(machine, "fingerprint", lambda: KIND)
    root = str(tmp_path)
    assert main(["baseline", "--runner", "cpu", "--runs", "2", "--baselines", root]) == 0
    assert (
        "baseline of runner class 'cpu' for this machine kind (test-2cpu) written to"
        in capsys.readouterr().out
    )
    assert main(["baseline", "--runner", "cpu", "--runs", "2", "--baselines", root]) == 2
    assert "already holds" in capsys.readouterr().err
    assert main(["baseline", "--runner", "cpu", "--runs", "1", "--baselines", root, "--force"]) == 2
    assert "--runs must be >= 2" in capsys.readouterr().err
    assert main(["baseline", "--runner", "CPU!", "--baselines", root]) == 2
    assert "not a plain lower-case name" in capsys.readouterr().err


@pytest.mark.processes
def test_arguments_after_a_double_dash_reach_pytest(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(record_module, "run_grid", fake_runs(calls))
    assert (
        main(
            [
                "baseline",
                "--runner",
                "cpu",
                "--runs",
                "2",
                "--baselines",
                str(tmp_path),
                "--",
                "--lb-profiles=noop",
                "-k",
                "w0 and not spawn",
            ]
        )
        == 0
    )
    assert calls[0][-3:] == ["--lb-profiles=noop", "-k", "w0 and not spawn"]


@pytest.mark.processes
def test_a_failing_pytest_run_stores_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tests" / "benchmarks").mkdir(parents=True)
    failing = ["python3", "-c", "raise SystemExit(1)", "--benchmark-json=x.json"]
    with pytest.raises(InputError, match="pytest exited with code 1"):
        record_module.run_grid(failing, "run 1 of 2")


# --- extending a baseline with runs from another sitting -----------------------------------------


def test_extending_a_baseline_pools_the_new_runs_after_the_old_ones(tmp_path):
    path = record(
        runner="cpu",
        runs=2,
        pytest_args=[],
        root=tmp_path,
        force=False,
        run=fake_runs([]),
        fingerprint=KIND,
    )
    before = json.loads(path.read_text())
    slower = [
        results({CPU_W0: scaled(r, 1.5), CPU_W2: scaled(r[::-1], 0.5)}, speed_probe=0.05)
        for r in RUN_ROUNDS
    ]
    runs = iter(slower)
    extended = record(
        runner="cpu",
        runs=3,
        pytest_args=[],
        root=tmp_path,
        force=False,
        extend=True,
        run=lambda command, label, slot: Results.from_json(next(runs)),
        fingerprint=KIND,
    )
    assert extended == path and len(baseline_files(tmp_path / "cpu")) == 1
    after = json.loads(path.read_text())
    old_w0, new_w0 = (
        next(b for b in d["benchmarks"] if b["name"] == "test_throughput[cpu-w0]")
        for d in (before, after)
    )
    assert new_w0["stats"]["data"] == old_w0["stats"]["data"] + [
        v for r in RUN_ROUNDS for v in scaled(r, 1.5)
    ]
    noise = noise_of(after)["test_throughput[cpu-w0]"]
    assert noise["run_medians"] == pytest.approx([1.0, 1.2, 1.5, 1.8, 1.65])
    assert noise["band"] == pytest.approx(0.8)  # the slower sitting widened it from 20%
    assert len(noise_of(after)["speedup[cpu-w2-fork]"]["run_medians"]) == 5
    info = after["loaderbench"]["baseline"]
    assert info["runs"] == 5 and [s["runs"] for s in info["sittings"]] == [2, 3]
    assert info["speed_probes"] == [0.05] * 6  # the first sitting's runs recorded none


def test_a_baseline_written_before_sittings_were_kept_counts_as_one(tmp_path):
    old = merged(three_runs())
    del old["loaderbench"]["baseline"]["sittings"]
    assert sittings(Results.from_json(old)) == (Sitting(old["datetime"], 3),)
    assert [
        s["runs"]
        for s in merged(three_runs()[:1], prior=old)["loaderbench"]["baseline"]["sittings"]
    ] == [3, 1]


def test_extending_needs_a_baseline_of_this_machine_kind(tmp_path):
    amd = stored(tmp_path / "cpu" / get_machine_id(), "0001_amd-2cpu.json", cpu_model="AMD")
    calls = []
    with pytest.raises(
        InputError, match=r"no baseline for this machine \(test-2cpu\).*make baseline"
    ):
        record(
            runner="cpu",
            runs=2,
            pytest_args=[],
            root=tmp_path,
            force=False,
            extend=True,
            run=fake_runs(calls),
            fingerprint=KIND,
        )
    assert calls == [] and len(baseline_files(tmp_path / "cpu")) == 1 and amd.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"torch": "2.14.1"}, "torch 2.14.1 vs 2.13.0"),
        ({"cost_scale": 1.25}, "cost_scale 1.0, the new runs with 1.25"),
        ({"case": Case("noop", 0)}, r"only in the baseline: test_throughput\[cpu-w0\]"),
    ],
)
def test_runs_unlike_the_baseline_do_not_extend_it(tmp_path, change, message):
    """Rounds of another torch, cost or selection would pool into bands they do not belong to:
    refused after the runs, naming the difference, the file left byte for byte."""
    path = record(
        runner="cpu",
        runs=2,
        pytest_args=[],
        root=tmp_path,
        force=False,
        run=fake_runs([]),
        fingerprint=KIND,
    )
    before = path.read_text()
    case = change.pop("case", CPU_W0)
    unlike = results({case: [1.0, 1.1], CPU_W2: [0.5, 0.6]}, **change)
    with pytest.raises(InputError, match=message):
        record(
            runner="cpu",
            runs=1,
            pytest_args=[],
            root=tmp_path,
            force=False,
            extend=True,
            run=lambda command, label, slot: Results.from_json(unlike),
            fingerprint=KIND,
        )
    assert path.read_text() == before


def without_rounds() -> dict:
    pooled = merged(three_runs())
    pooled["benchmarks"][0]["stats"].pop("data")  # saved without --benchmark-save-data
    return pooled


@pytest.mark.parametrize(
    "stored_file, message",
    [
        (lambda: results({CPU_W0: [1.0, 1.1]}), "records no noise bands"),
        (without_rounds, r"benchmark 'test_throughput\[cpu-w0\]' has no raw rounds"),
    ],
)
def test_a_file_without_noise_bands_or_raw_rounds_is_not_extended(tmp_path, stored_file, message):
    path = tmp_path / "cpu" / get_machine_id() / KIND_FILE
    write_json_atomic(path, stored_file())
    calls = []
    with pytest.raises(InputError, match=message):
        record(
            runner="cpu",
            runs=1,
            pytest_args=[],
            root=tmp_path,
            force=False,
            extend=True,
            run=fake_runs(calls),
            fingerprint=KIND,
        )
    assert calls == []


@pytest.mark.processes
def test_the_command_extends_and_refuses_force_with_extend(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(record_module, "run_grid", fake_runs([]))
    monkeypatch.setattr(machine, "fingerprint", lambda: KIND)
    root = str(tmp_path)
    assert main(["baseline", "--runner", "cpu", "--runs", "2", "--baselines", root]) == 0
    capsys.readouterr()
    assert (
        main(["baseline", "--runner", "cpu", "--runs", "1", "--baselines", root, "--extend"]) == 0
    )
    out = capsys.readouterr().out
    assert "extended by 1 runs in" in out and "(3 runs in 2 sittings, " in out
    assert (
        main(
            [
                "baseline",
                "--runner",
                "cpu",
                "--runs",
                "1",
                "--baselines",
                root,
                "--extend",
                "--force",
            ]
        )
        == 2
    )
    assert "pass one of them" in capsys.readouterr().err


def test_the_verdict_names_how_a_baseline_was_recorded():
    base = merged(three_runs())
    base["loaderbench"]["baseline"]["sittings"] = [
        {"date": "2026-11-25T21:29:00", "runs": 2},
        {"date": "2026-11-26T00:14:00", "runs": 1},
    ]
    assert (
        recording(Results.from_json(base))
        == " (3 runs in 2 sittings: 2026-11-25 x2, 2026-11-26 x1)"
    )
    assert (
        recording(Results.from_json(three_runs()[0])) == ""
    )  # a plain results file records no runs
