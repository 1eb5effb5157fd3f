"""The randomised memory layout of every process loaderbench starts (loaderbench/measuring/layout.py)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loaderbench.judging import record
from loaderbench.measuring import layout

PROJECT = Path(__file__).resolve().parents[2]


@given(
    st.integers(1, 64).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.integers(0, 2**32 - 1),
)
def test_run_k_of_n_draws_from_the_kth_slice_of_a_page(slots_slot, seed):
    slots, slot = slots_slot
    length = layout.pad_length(slot, slots, random.Random(seed))
    assert (
        slot * layout.SPAN // slots
        <= length
        < max((slot + 1) * layout.SPAN // slots, slot * layout.SPAN // slots + 1)
    )
    assert 0 <= length < layout.SPAN


def test_n_runs_cover_the_page_and_two_series_differ():
    lengths = [layout.pad_length(k, 8) for k in range(8)]
    assert lengths == sorted(lengths) and lengths[0] < 512 and lengths[-1] >= 3584
    assert {layout.pad_length(0, 1) for _ in range(20)} != {layout.pad_length(0, 1)}


def test_a_slot_outside_the_series_is_refused():
    with pytest.raises(ValueError, match="not one of 3"):
        layout.pad_length(3, 3)


def test_the_environment_keeps_everything_else():
    env = layout.environment(1, 2, base={"PATH": "/bin"})
    assert env["PATH"] == "/bin" and 2048 <= len(env[layout.ENV_VAR]) < 4096
    assert set(env[layout.ENV_VAR]) == {"x"}


@pytest.mark.parametrize(
    "start",
    [
        lambda command, slot: record.run_grid(command, "run 4 of 4", slot=slot),
        lambda command, slot: record.run_pytest(command, str(PROJECT), slot=slot),
    ],
    ids=["baseline and ab runs", "confirming reruns"],
)
def test_processes_loaderbench_starts_get_their_slots_pad(start, monkeypatch):
    seen = {}

    def fake_run(command, **kwargs):
        seen.update(kwargs)
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.chdir(PROJECT)
    command = ["python", "--benchmark-json=x.json"]
    with pytest.raises(Exception, match="exited with code 1"):
        start(command, (3, 4))
    assert 3072 <= len(seen["env"][layout.ENV_VAR]) < 4096


@pytest.mark.processes
def test_the_plugin_records_the_pad_of_its_process(real_runs):
    """The real benchmark run of conftest.py, started with slot 0 of 1's pad, records its length."""
    assert real_runs.done["benchmark"].returncode == 0, real_runs.done["benchmark"]
    recorded = json.loads(real_runs.results.read_text())["loaderbench"]["layout_pad"]
    assert recorded == len(real_runs.env[layout.ENV_VAR]) > 0
