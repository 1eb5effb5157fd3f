"""The side-by-side engine's schedule, with stand-in sides: the order inside each pair is drawn at
random, so is which side starts first; rows without workers of the duet profiles run as duets on
two cores; every row gets its minimum of blocks, settled rows stop, the budget ends the rest."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import pytest

from loaderbench.grid import Case, select
from loaderbench.paired import engine as engine_mod
from loaderbench.paired import protocol
from loaderbench.paired.control import SideSpec
from loaderbench.paired.engine import (
    SCHEDULE,
    Arm,
    Engine,
    Plan,
    ab_plans,
    ratio_plans,
    verdict_rows,
)
from loaderbench.paired.protocol import MEASURES, Done, Hello, Round, Setup, Timed, Warmed
from loaderbench.paired.schedule import Schedule


class World:
    """What the stand-in sides share: the rounds asked for, in order, and a clock of seconds.

    ``factor``: the rounds of arm b (side B's, or a ratio's second configuration) take this many
    times arm a's. ``noise``: each round's own spread.
    ``bias``: each pair of processes (block) its own factor of B over A, drawn from this spread.
    """

    def __init__(self, factor=1.0, noise=0.01, bias=0.0, seed=0, offered=None):
        self.factor, self.noise, self.bias = factor, noise, bias
        #: {side label: the measures its hello lists}; a side not named lists none (legacy).
        self.offered = offered if offered is not None else {"A": MEASURES, "B": MEASURES}
        self.rng = random.Random(seed)
        self.asked: list[tuple[str, dict]] = []
        self.starts: list[list[str]] = []
        self.block_bias = 1.0

    def start_all(self, specs, slot):
        self.starts.append([spec.label for spec, _ in specs])
        self.block_bias = math.exp(self.rng.gauss(0, self.bias))
        return [FakeSide(spec, self) for spec, _ in specs]


class FakeSide:
    """A side that reads each request off the wire (protocol.encode, then decode_request, as a
    real side does) and answers it in kind; ``world.asked`` holds the requests as JSON."""

    def __init__(self, spec: SideSpec, world: World):
        self.spec, self.world, self.pending = spec, world, []
        said = {"protocol": 1, "fingerprint": {"torch": "2.13.0"}, "settings": {"cost_scale": 1.0}}
        if spec.label in world.offered:
            said["measures"] = list(world.offered[spec.label])
        self.hello = protocol.decode_answer(json.dumps({"ok": True, **said}).encode(), Hello)

    def send(self, message):
        line = protocol.encode(message)
        self.world.asked.append((self.spec.label, json.loads(line)))
        request = protocol.decode_request(line)
        answer: protocol.Answer
        if isinstance(request, Setup):
            answer = Warmed(0.05)
        elif isinstance(request, Round):
            factor = self.world.factor * self.world.block_bias if request.slot == "b" else 1.0
            answer = Timed(0.05 * factor * math.exp(self.world.rng.gauss(0, self.world.noise)))
        else:
            answer = Done()
        self.pending.append(answer)

    def receive(self, timeout, doing=""):
        return self.pending.pop(0)

    def request(self, message, timeout, doing=""):
        self.send(message)
        return self.receive(timeout, doing)

    def close(self):
        pass


def schedule(**changes) -> Schedule:
    """The engine's schedule with ``changes``."""
    return dataclasses.replace(SCHEDULE, **changes)


def run(plans, world, budget: Schedule | None = None, seed=1) -> list:
    engine = Engine(
        plans,
        SideSpec("A", "python"),
        SideSpec("B", "python"),
        schedule=budget or schedule(seconds_per_row=5, blocks=4),
        logs=Path("unused"),
        rng=random.Random(seed),
        show=lambda line: None,
        start=world.start_all,
    )
    return engine.run()


def plans_of(profiles="cpu", workers="0,2", methods="fork"):
    return ab_plans(select("quick", profiles=profiles, workers=workers, start_methods=methods))


def test_the_order_inside_each_pair_is_drawn_at_random():
    world = World()
    run(plans_of(workers="2"), world)
    rounds = [label for label, message in world.asked if message["op"] == "round"]
    firsts = rounds[::2]
    assert len(firsts) >= 60
    share = firsts.count("A") / len(firsts)
    assert 0.3 < share < 0.7, f"A went first in {share:.0%} of {len(firsts)} pairs"
    assert all(a != b for a, b in zip(rounds[::2], rounds[1::2]))  # one round of each per pair


def test_which_side_starts_first_is_drawn_for_every_block():
    world = World(noise=0.5)
    run(plans_of(workers="2"), world, schedule(seconds_per_row=5, blocks=12, min_blocks=12))
    firsts = [started[0] for started in world.starts]
    assert len(firsts) == 12 and {"A", "B"} == set(firsts)


def test_which_side_is_asked_to_set_up_first_is_drawn_for_every_row():
    world = World(noise=0.5)
    run(plans_of(workers="2"), world, schedule(seconds_per_row=5, blocks=12, min_blocks=12))
    setups = [label for label, message in world.asked if message["op"] == "setup"]
    firsts = setups[::2]
    assert all(a != b for a, b in zip(setups[::2], setups[1::2]))
    assert len(firsts) == 36 and 0.2 < firsts.count("A") / len(firsts) < 0.8


def test_rows_without_workers_of_duet_profiles_run_as_duets_on_alternating_cores(monkeypatch):
    monkeypatch.setattr(engine_mod, "duet_cores", lambda: [0, 1])
    world = World()
    tallies = run(plans_of(profiles="cpu,noop"), world)
    modes = {t.plan.name: t.mode for t in tallies}
    assert modes["test_throughput[cpu-w0]"] == "duet"
    assert modes["test_throughput[noop-w0]"] == "alternate"  # measured steadier one after the other
    assert modes["test_throughput[cpu-w2-fork]"] == "alternate"
    cores = [
        (label, m["cpu"])
        for label, m in world.asked
        if m["op"] == "setup" and m["case"]["id"] == "cpu-w0" and m["measure"] == "throughput"
    ]
    assert sorted(cores[:2]) == [("A", 0), ("B", 1)] and sorted(cores[2:4]) == [("A", 1), ("B", 0)]
    assert all(
        m["cpu"] is None
        for _, m in world.asked
        if m["op"] == "setup" and m["case"]["id"] != "cpu-w0"
    )


def test_a_slowdown_is_regressed_and_the_same_environment_is_not():
    slower = verdict_rows(
        run(plans_of(), World(factor=1.10, noise=0.02, bias=0.01)), min_effect=0.05, alpha=0.05
    )
    assert {r.verdict for r in slower} == {"regressed"}
    assert all(1.05 < r.change < 1.15 and r.low > 1 for r in slower)
    same = verdict_rows(
        run(plans_of(), World(factor=1.0, noise=0.02, bias=0.01)), min_effect=0.05, alpha=0.05
    )
    assert {r.verdict for r in same} == {"unchanged"}


def test_every_row_gets_its_minimum_of_blocks_then_settled_rows_stop():
    tallies = run(plans_of(), World(noise=0.01), schedule(seconds_per_row=60, blocks=8))
    assert all(len(t.blocks) == 3 and t.stopped == "settled" for t in tallies)


def test_rows_the_noise_keeps_open_use_every_planned_block_and_say_so():
    tallies = run(
        plans_of(workers="2")[:1], World(noise=0.3, seed=4), schedule(seconds_per_row=60, blocks=5)
    )
    assert all(len(t.blocks) == 5 and t.stopped == "budget spent" for t in tallies)
    rows = verdict_rows(tallies, min_effect=0.05, alpha=0.05)
    assert all(r.verdict == "inconclusive" and "budget spent" in r.note for r in rows)


def test_a_spent_budget_stops_after_the_minimum_of_blocks(monkeypatch):
    clock = iter(range(0, 10**6, 7))  # every look at the clock: 7 s later
    monkeypatch.setattr(engine_mod.time, "monotonic", lambda: next(clock))
    tallies = run(
        plans_of(workers="2"), World(noise=0.3), schedule(seconds_per_row=1, blocks=8, min_rounds=2)
    )
    assert all(len(t.blocks) == 3 and t.stopped == "budget spent" for t in tallies)
    # min_rounds, no more: the set-up took one look at the clock (7 s), the pairs as long
    assert all(len(block) == 2 for t in tallies for block in t.blocks)


def test_a_block_measures_a_row_for_at_least_as_long_as_its_set_up_took(monkeypatch):
    """A tiny slice after a long set-up still buys pairs for as long as the set-up took."""
    clock = iter(range(0, 10**6, 1))  # every look at the clock: 1 s later
    monkeypatch.setattr(engine_mod.time, "monotonic", lambda: next(clock))
    slow_setup = World(noise=0.3)
    looks = 20  # the set-up reads the clock 20 times: 20 s
    original = FakeSide.send

    def send(self, message):
        if isinstance(message, Setup) and message.slot == "a":
            for _ in range(looks):
                engine_mod.time.monotonic()
        original(self, message)

    monkeypatch.setattr(FakeSide, "send", send)
    tallies = run(
        plans_of(workers="2")[:1],
        slow_setup,
        schedule(seconds_per_row=1, blocks=3, min_rounds=2, max_rounds=1000),
    )
    # each pair looks at the clock once: about as many pairs as the set-up's seconds
    assert all(looks - 3 <= len(block) <= looks + 3 for block in tallies[0].blocks)


def test_one_block_is_never_judged():
    tallies = run(
        plans_of(workers="0"),
        World(factor=2.0),
        schedule(seconds_per_row=5, blocks=2, min_blocks=2),
    )
    for tally in tallies:
        del tally.blocks[1:]
    rows = verdict_rows(tallies, min_effect=0.05, alpha=0.05)
    assert all(r.verdict == "inconclusive" and "one block" in r.note for r in rows)


def test_a_ratio_row_runs_both_configurations_in_one_side():
    plans = ratio_plans(select("quick", profiles="cpu", workers="0,2", start_methods="fork,spawn"))
    assert [p.name for p in plans] == [
        "speedup[cpu-w2-fork]",
        "speedup[cpu-w2-spawn]",
        "epoch_speedup[cpu-w2-fork]",
        "epoch_speedup[cpu-w2-spawn]",
        "startup_ratio[cpu-w2-spawn]",
        "overlap_gain[cpu-w2-fork]",
        "overlap_gain[cpu-w2-spawn]",
    ]
    speedup = plans[0]
    assert speedup.a == Arm(Case("cpu", 0), "throughput") and speedup.inverted
    assert plans[2].a == Arm(Case("cpu", 0), "epoch") and plans[2].inverted
    world = World()
    engine = Engine(
        [speedup],
        SideSpec("A", "python"),
        None,
        schedule=schedule(seconds_per_row=5, blocks=3),
        logs=Path("unused"),
        show=lambda line: None,
        start=world.start_all,
    )
    engine.run()
    assert all(started == ["A"] for started in world.starts)
    assert {m["slot"] for _, m in world.asked if m["op"] == "round"} == {"a", "b"}


@pytest.mark.parametrize(
    "budget, problem",
    [
        (dict(seconds_per_row=0), "the budget must be > 0"),
        (dict(blocks=1, min_blocks=1), "one block cannot show"),
        (dict(min_rounds=40, max_rounds=30), "min_rounds must be >= 1 and <= max_rounds"),
    ],
)
def test_a_budget_that_cannot_show_the_noise_is_refused(budget, problem):
    with pytest.raises(ValueError, match=problem):
        Schedule(**budget)


def test_plans_are_named_like_the_pytest_benchmarks():
    names = [p.name for p in plans_of(workers="0,2", methods="fork")]
    assert names == [
        "test_throughput[cpu-w0]",
        "test_throughput[cpu-w2-fork]",
        "test_epoch[cpu-w0]",
        "test_epoch[cpu-w2-fork]",
        "test_time_to_first_batch[cpu-w0]",
        "test_time_to_first_batch[cpu-w2-fork]",
    ]
    assert all(isinstance(p, Plan) and p.a == p.b for p in plans_of())


def test_a_speedup_is_reported_as_the_serial_time_over_the_workers_time():
    """B (2 workers) takes half A's (0 workers) time: the speed-up row reads 2.0, its interval
    inverted with it."""
    from loaderbench.paired import ratios
    from loaderbench.presenting import ratios as shown_ratios

    plans = ratio_plans(
        select("quick", profiles="cpu", workers="0,2", start_methods="fork"), ("speedup",)
    )
    world = World(factor=0.5, noise=0.01)
    engine = Engine(
        plans,
        SideSpec("A", "python"),
        None,
        schedule=schedule(seconds_per_row=5, blocks=3),
        logs=Path("unused"),
        show=lambda line: None,
        start=world.start_all,
    )
    (row,) = ratios.rows_of(engine.run(), alpha=0.05)
    assert row["name"] == "speedup[cpu-w2-fork]" and row["value"] == pytest.approx(2.0, rel=0.02)
    assert row["low"] < row["value"] < row["high"]
    name, shown, *_ = shown_ratios.text([row]).splitlines()[2].split()
    assert name == "speedup[cpu-w2-fork]" and float(shown) == pytest.approx(row["value"], abs=5e-4)


def test_ratios_refuse_an_unknown_kind_or_a_grid_without_a_pair(capsys):
    from loaderbench.cli import main

    assert main(["ratios", "--kinds", "slowness"]) == 2
    assert "--kinds: unknown ratio slowness" in capsys.readouterr().err
    assert main(["ratios", "--kinds", "startup_ratio", "--", "--lb-start-methods=fork"]) == 2
    assert "holds no pair of configurations" in capsys.readouterr().err


def test_a_side_older_than_a_measure_leaves_its_rows_unjudged_and_measures_the_rest():
    """A baseline's recipe built before the epoch measure existed says so in its hello (it
    lists no measures): its epoch rows are not judged, saying why; the other rows are."""
    world = World(offered={"B": MEASURES})
    cpu = Case("cpu", 0)
    plans = [Plan(f"{m}[cpu-w0]", Arm(cpu, m), Arm(cpu, m)) for m in ("throughput", "epoch")]
    tallies = run(plans, world)
    rows = {row.name: row for row in verdict_rows(tallies, min_effect=0.05, alpha=0.05)}
    assert rows["epoch[cpu-w0]"].note == (
        "not judged: side A (this interpreter) does not measure epoch: its loaderbench predates it"
    )
    assert rows["throughput[cpu-w0]"].verdict == "unchanged"
    assert not any(m["measure"] == "epoch" for _, m in world.asked if m["op"] == "setup")
