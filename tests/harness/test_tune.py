"""`loaderbench tune`: the search's decisions (with stand-in contests whose ratios are set), the
answer it prints, the command's errors, and one real run on a small dataset."""

from __future__ import annotations

import random
import time

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from bench_datasets.examples import TokenizedText
from loaderbench.cli import main
from loaderbench.cli.tune import parse_duration
from loaderbench.errors import InputError
from loaderbench.measuring import leaks
from loaderbench.measuring.transfer import NO_CUDA
from loaderbench.presenting import tune as present
from loaderbench.tuning import search as search_mod
from loaderbench.tuning import tune
from loaderbench.tuning.contest import Candidate, Contest, Entry, Workload
from loaderbench.tuning.search import Search, Settings, worker_counts


class Sleepy(Dataset):
    """2 ms of waiting per sample: workers overlap it, even on two cores."""

    def __len__(self):
        return 128

    def __getitem__(self, index):
        time.sleep(0.002)
        return torch.tensor([index])


def staged(times: dict, first_batch: dict | None = None):
    """A stand-in for run_contest: each contestant's round takes ``times[label]`` seconds (the
    first contestant is the reference), three blocks of two cycles each, no noise."""
    first_batch = first_batch or {}
    seen = []

    def run_contest(title, workload, contestants, pace, **_):
        seen.append([c.label for c in contestants])
        entries = [Entry(c) for c in contestants]
        ref = times[contestants[0].label]
        for entry in entries:
            t = times[entry.label]
            entry.round_s = [t] * 6
            entry.first_batch_s = [first_batch.get(entry.label, 0.05)] * 3
            entry.samples = 640
        for entry in entries[1:]:
            entry.blocks = [[(ref, times[entry.label])] * 2 for _ in range(3)]
        return Contest(title, entries, seconds=10.0, blocks=3, stopped="settled")

    return run_contest, seen


def searched(
    monkeypatch, times, *, step=None, load_s=0.01, first_batch=None, device="cpu", **settings
):
    run_contest, seen = staged(times, first_batch)
    monkeypatch.setattr(search_mod, "run_contest", run_contest)
    monkeypatch.setattr(search_mod, "seconds_per_batch", lambda workload: load_s)
    workload = Workload(
        TokenizedText(), batch_size=64, batches=10, step=step, device=torch.device(device)
    )
    options = dict(max_workers=4, start_methods=("fork",), prefetch_factors=(2,))
    options.update(settings)
    outcome = Search(
        workload, Settings(**options), rng=random.Random(0), show=lambda line: None
    ).run()
    return outcome, seen


def test_worker_counts_double_up_to_the_limit_which_is_included():
    assert worker_counts(4) == [0, 1, 2, 4]
    assert worker_counts(6) == [0, 1, 2, 4, 6]
    assert worker_counts(1) == [0, 1]
    assert worker_counts(0) == [0]


def test_workers_grow_while_the_next_count_is_faster_beyond_the_noise(monkeypatch):
    outcome, seen = searched(monkeypatch, {"w0": 1.0, "w2-fork": 0.55, "w4-fork": 0.53})
    assert seen == [["w0", "w2-fork"], ["w2-fork", "w4-fork"]]  # no step: 1 worker is skipped
    assert outcome.pick == Candidate(2, "fork")  # 4 workers: 3% faster, within the noise
    reason = {d.setting: d.reason for d in outcome.decisions}["num_workers"]
    assert "4 workers were not shown faster by more than 5%" in reason


def test_a_dataset_that_workers_do_not_speed_up_stays_at_zero(monkeypatch):
    outcome, seen = searched(monkeypatch, {"w0": 1.0, "w2-fork": 1.02})
    assert seen == [["w0", "w2-fork"]] and outcome.pick == Candidate(0)


def test_among_start_methods_within_the_noise_the_fastest_to_start_wins(monkeypatch):
    outcome, _ = searched(
        monkeypatch,
        {"w0": 1.0, "w2-fork": 0.5, "w4-fork": 0.5, "w2-spawn": 0.49, "w2-forkserver": 0.51},
        first_batch={"w2-fork": 0.04, "w2-spawn": 2.4, "w2-forkserver": 2.2},
        start_methods=("fork", "spawn", "forkserver"),
    )
    assert outcome.pick == Candidate(2, "fork")
    reason = {d.setting: d.reason for d in outcome.decisions}["multiprocessing_context"]
    assert "spawn 2.40 s" in reason and "fork 0.04 s" in reason


def test_a_deeper_prefetch_is_taken_only_when_faster_beyond_the_noise(monkeypatch):
    times = {"w0": 1.0, "w2-fork": 0.5, "w4-fork": 0.5, "w2-fork-p4": 0.40}
    outcome, _ = searched(monkeypatch, times, prefetch_factors=(2, 4))
    assert outcome.pick == Candidate(2, "fork", prefetch_factor=4)
    times["w2-fork-p4"] = 0.49
    outcome, _ = searched(monkeypatch, times, prefetch_factors=(2, 4))
    assert outcome.pick == Candidate(2, "fork")


def test_pinning_is_tried_only_for_a_gpu_and_taken_only_when_faster(monkeypatch):
    """The GPU stage's decisions, on stand-in contests (no GPU needed: the device is a name)."""
    times = {"w0": 1.0, "w2-fork": 0.5, "w4-fork": 0.5, "w2-fork-pin": 0.40}
    _, seen = searched(monkeypatch, times)
    assert ["w2-fork", "w2-fork-pin"] not in seen
    outcome, seen = searched(monkeypatch, times, device="cuda")
    assert seen[-1] == ["w2-fork", "w2-fork-pin"] and outcome.pick.pin_memory
    times["w2-fork-pin"] = 0.49
    outcome, _ = searched(monkeypatch, times, device="cuda")
    assert not outcome.pick.pin_memory
    assert {d.setting: d.value for d in outcome.decisions}["pin_memory"] is False


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_on_a_gpu_batches_go_to_the_device_and_pinning_is_compared(tmp_path):
    result = tune(
        Sleepy(),
        batch_size=16,
        budget_s=30,
        max_workers=2,
        seconds_per_setting=1.5,
        start_methods=("fork",),
        prefetch_factors=(2,),
        diagnose=False,
        device="cuda",
        show=lambda line: None,
    )
    assert result.device.startswith("cuda")
    assert any(c.title.startswith("pin_memory") for c in result.contests)


def test_with_a_long_step_loading_is_not_the_bottleneck_and_one_worker_keeps_up(monkeypatch):
    """20 ms of step per batch, 2 ms of loading: 0 workers add the loading to every step
    (1.10x the step alone), one worker hides it."""
    times = {"step only": 0.20, "w0": 0.22, "w1-fork": 0.201}
    outcome, seen = searched(monkeypatch, times, step=lambda batch: None, load_s=0.002)
    assert seen == [["step only", "w0", "w1-fork"]]
    assert outcome.pick == Candidate(1, "fork") and outcome.bottleneck == "step"
    assert (
        "keeps up with the step" in {d.setting: d.reason for d in outcome.decisions}["num_workers"]
    )


def test_when_no_loader_keeps_up_but_one_worker_loads_faster_than_the_step_it_stops_at_one(
    monkeypatch,
):
    """Each batch handed from a worker to the main process costs the loop time that no number of
    workers removes: 1 worker 1.085x the step alone, 0 workers 1.12x (measured so on the
    reference machine with make_light and a 20 ms step): no growth, the cheaper of the two."""
    times = {"step only": 0.20, "w0": 0.224, "w1-fork": 0.217}
    outcome, seen = searched(monkeypatch, times, step=lambda batch: None, load_s=0.002)
    assert seen == [["step only", "w0", "w1-fork"]] and outcome.bottleneck == "step"
    assert outcome.pick == Candidate(0)  # 1 worker: 3% faster, within the minimum effect
    assert (
        "loading is not the bottleneck"
        in {d.setting: d.reason for d in outcome.decisions}["num_workers"]
    )
    times["w0"] = 0.26  # 0 workers: 1.30x, 1 worker 1.085x: the worker is worth it
    outcome, seen = searched(monkeypatch, times, step=lambda batch: None, load_s=0.002)
    assert outcome.pick == Candidate(1, "fork") and len(seen) == 1


def test_when_loading_is_the_bottleneck_the_search_goes_on_growing(monkeypatch):
    times = {"step only": 0.05, "w0": 0.55, "w1-fork": 0.50, "w2-fork": 0.26, "w4-fork": 0.25}
    outcome, seen = searched(monkeypatch, times, step=lambda batch: None, load_s=0.05)
    assert outcome.bottleneck == "loading" and outcome.pick == Candidate(2, "fork")
    assert seen[0] == ["step only", "w0", "w1-fork"] and ["w1-fork", "w2-fork"] in seen


def test_a_spent_budget_stops_the_search_and_says_what_was_not_tried(monkeypatch):
    outcome, seen = searched(monkeypatch, {"w0": 1.0, "w2-fork": 0.5}, budget_s=1.0)
    assert seen == [] and outcome.pick == Candidate(0)
    assert any("budget was spent" in note for note in outcome.notes)


def test_the_snippet_builds_the_recommended_loader(monkeypatch):
    from loaderbench.tuning.result import TuneResult
    from loaderbench.tuning.search import Decision

    result = TuneResult(
        "toy",
        32,
        "cpu",
        Candidate(2, "fork", prefetch_factor=4),
        True,
        [Decision("num_workers", 2, "1.9x the throughput of w1-fork")],
    )
    namespace = {"DataLoader": DataLoader, "dataset": TokenizedText()}
    loader = eval(result.snippet(), namespace)
    assert (
        loader.num_workers,
        loader.batch_size,
        loader.prefetch_factor,
        loader.persistent_workers,
    ) == (2, 32, 4, True)
    assert loader.multiprocessing_context.get_start_method() == "fork"
    assert "# 1.9x the throughput of w1-fork" in result.snippet()


@pytest.mark.parametrize(
    "text, seconds", [("300", 300), ("90s", 90), ("5m", 300), ("1m30s", 90), ("0.5m", 30)]
)
def test_budgets_read_as_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5h", "m", "0", "-3", "fast"])
def test_a_budget_that_is_not_a_duration_is_refused(text):
    with pytest.raises(InputError, match="--budget"):
        parse_duration(text)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["tune", "nosuchmodule_xyz:make"], "DATASET: cannot import module 'nosuchmodule_xyz'"),
        (
            ["tune", "bench_datasets:make_dataset"],
            "DATASET: bench_datasets:make_dataset() raised TypeError",
        ),
        (["tune", "bench_datasets.examples"], "is not of the form package.module:callable"),
        (["tune", "bench_datasets.examples:nothing"], "has no attribute 'nothing'"),
        (["tune"], "name a dataset"),
        (["tune", "--profile", "nosuch"], "--profile: unknown profile 'nosuch'"),
        (["tune", "--profile", "cpu", "--budget", "soon"], "--budget: cannot read 'soon'"),
        (["tune", "--profile", "cpu", "--step", "a:b", "--step-ms", "3"], "not both"),
        (
            ["tune", "--profile", "cpu", "--start-methods", "thread"],
            "--start-methods: unknown start method thread",
        ),
        (["tune", "--profile", "cpu", "--min-effect", "5"], "--min-effect must be between 0 and 1"),
        (
            ["tune", "--profile", "cpu", "--prefetch-factors", "2,x"],
            "prefetch factors must be whole",
        ),
        (
            ["tune", "--profile", "cpu", "--collate", "nosuchmodule_xyz:f"],
            "--collate: cannot import module",
        ),
    ],
)
def test_unusable_input_exits_2_with_one_line(argv, says, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.processes
def test_a_real_run_answers_and_leaves_no_worker_behind(tmp_path):
    result = tune(
        Sleepy(),
        batch_size=16,
        budget_s=20,
        max_workers=2,
        seconds_per_setting=1.5,
        start_methods=("fork",),
        prefetch_factors=(2,),
        diagnose=False,
        show=lambda line: None,
    )
    assert result.contests and not result.interrupted
    assert [e.label for e in result.contests[0].entries] == ["w0", "w2-fork"]
    for contest in result.contests:
        assert contest.blocks >= 3 and all(len(e.round_s) >= 6 for e in contest.entries)
    written = present.write(result, tmp_path)
    assert [p.name for p in written] == ["tune.json", "report.md", "tune.png"]
    assert all(p.stat().st_size > 0 for p in written)
    assert "DataLoader(" in (tmp_path / "report.md").read_text()
    assert leaks.survivors(leaks.child_processes(), grace_s=5) == []


@pytest.mark.processes
def test_ctrl_c_keeps_what_was_measured_and_stops_every_worker(monkeypatch, tmp_path):
    """Ctrl-C in the middle of the second contest, its workers running."""
    from loaderbench.tuning import contest as contest_mod

    calls = {"contests": 0, "rounds": 0}
    run_contest, round_of = search_mod.run_contest, contest_mod.LoaderRounds.round

    def counted_contest(*args, **kwargs):
        calls["contests"] += 1
        return run_contest(*args, **kwargs)

    def interrupted_round(self):
        if calls["contests"] >= 2:
            calls["rounds"] += 1
            if calls["rounds"] > 3 and self.candidate.num_workers:
                raise KeyboardInterrupt
        return round_of(self)

    monkeypatch.setattr(search_mod, "run_contest", counted_contest)
    monkeypatch.setattr(contest_mod.LoaderRounds, "round", interrupted_round)
    result = tune(
        Sleepy(),
        batch_size=16,
        budget_s=20,
        max_workers=4,
        seconds_per_setting=1.5,
        start_methods=("fork",),
        prefetch_factors=(2,),
        diagnose=False,
        show=lambda line: None,
    )
    assert calls["contests"] == 2 and calls["rounds"] > 3
    assert result.interrupted and any("interrupted" in note for note in result.notes)
    # the finished contest is kept, and the interrupted one with what its blocks measured
    assert [c.stopped for c in result.contests] == ["settled", "interrupted"], [
        (c.title, c.stopped) for c in result.contests
    ]
    assert leaks.survivors(leaks.child_processes(), grace_s=5) == []
    assert result.pick == Candidate(2, "fork")  # the first contest found 2 faster than 0
    present.write(result, tmp_path)
    assert '"interrupted": true' in (tmp_path / "tune.json").read_text()


def test_the_command_writes_an_interrupted_answer_and_exits_130(monkeypatch, tmp_path, capsys):
    import loaderbench.tuning as tuning
    from loaderbench.tuning.result import TuneResult

    def interrupted(dataset, **options):
        return TuneResult(
            "toy",
            64,
            "cpu",
            Candidate(2, "fork"),
            True,
            [],
            interrupted=True,
            notes=["interrupted: the settings shown are the best measured so far"],
        )

    monkeypatch.setattr(tuning, "tune", interrupted)
    assert main(["tune", "bench_datasets.examples:make_dataset", "--out", str(tmp_path)]) == 130
    assert "num_workers=2" in capsys.readouterr().out
    assert '"interrupted": true' in (tmp_path / "tune.json").read_text()


def test_a_jump_of_two_counts_is_bisected_by_the_same_rule(monkeypatch):
    """4 workers shown faster than 2: 3 is tried against 4, and kept when 4 is not shown faster
    than it; taken when it is."""
    times = {"w0": 1.0, "w2-fork": 0.6, "w3-fork": 0.40, "w4-fork": 0.39}
    outcome, seen = searched(monkeypatch, times)
    assert seen == [["w0", "w2-fork"], ["w2-fork", "w4-fork"], ["w3-fork", "w4-fork"]]
    assert outcome.pick == Candidate(3, "fork")
    times["w3-fork"] = 0.5
    outcome, _ = searched(monkeypatch, times)
    assert outcome.pick == Candidate(4, "fork")


def swept(times: dict[int, float], spread: float = 0.0, noisy: int = -1) -> Contest:
    """A sweep contest of 0-4 workers, three blocks of two cycles, each contestant's round
    ``times[n]`` (``noisy``'s times ``1 +- spread`` from block to block)."""
    labels = {n: Candidate(n, "fork" if n else None) for n in times}
    entries = [Entry(c) for c in labels.values()]
    for entry in entries[1:]:
        n = entry.contestant.num_workers
        entry.blocks = [
            [(times[0], times[n] * (1 + spread * k * (n == noisy)))] * 2 for k in (-1, 0, 1)
        ]
    return Contest("sweep", entries, seconds=30.0, blocks=3)


def test_the_sweep_best_is_the_fewest_workers_no_larger_count_is_shown_faster_than():
    from loaderbench.tuning.search import preferred

    near_tie = swept({0: 1.0, 1: 1.0, 2: 0.52, 3: 0.51, 4: 0.50})
    assert preferred(near_tie, 0.05, 0.05).num_workers == 2  # 4 is fastest, by 4%: a tie
    clear = swept({0: 1.0, 1: 1.0, 2: 0.52, 3: 0.51, 4: 0.27})
    assert preferred(clear, 0.05, 0.05).num_workers == 4
    noisy = swept({0: 1.0, 1: 1.0, 2: 0.52, 3: 0.51, 4: 0.46}, spread=0.3, noisy=4)
    assert preferred(noisy, 0.05, 0.05).num_workers == 2  # 12% faster, but not beyond the noise


def test_the_sweep_goes_on_while_its_choice_against_a_larger_count_is_open():
    """preferred_decided: answered when the choice's ratio to every larger count lies wholly on
    one side of the line; open while noise leaves a larger count neither shown faster nor
    shown not faster (then the sweep takes more blocks, up to TIE_BLOCKS)."""
    from loaderbench.tuning.search import preferred_decided

    assert preferred_decided(swept({0: 1.0, 1: 1.0, 2: 0.52, 3: 0.51, 4: 0.50}))
    assert preferred_decided(swept({0: 1.0, 1: 1.0, 2: 0.52, 3: 0.51, 4: 0.27}))
    noisy = swept({0: 1.0, 1: 1.0, 2: 0.52, 3: 0.51, 4: 0.46}, spread=0.3, noisy=4)
    assert not preferred_decided(noisy)


def test_a_sweep_that_cannot_tell_its_best_from_a_larger_count_says_so():
    """compare_with_sweep: the best by the rule, and the larger counts the sweep left open
    (then its best is the rule's default, and the note says it is not a finding)."""
    from loaderbench.tuning.result import TuneResult

    def compared(contest):
        result = TuneResult("d", 64, "cpu", Candidate(2, "fork"), True, [])
        result.compare_with_sweep(contest)
        return result

    settled = compared(swept({0: 1.0, 1: 1.0, 2: 0.52, 3: 0.51, 4: 0.50}))
    assert (settled.sweep["best_workers"], settled.sweep["open_against"]) == (2, [])
    assert "open:" not in settled.notes[-1]
    noisy = compared(swept({0: 1.0, 1: 1.0, 2: 0.52, 3: 0.51, 4: 0.46}, spread=0.3, noisy=4))
    assert (noisy.sweep["best_workers"], noisy.sweep["open_against"]) == (2, [4])
    assert "could not tell 2 from 4 workers either way" in noisy.notes[-1]


def test_an_open_question_gets_more_blocks_once_its_seconds_are_spent(monkeypatch):
    """run_contest: a contest whose question stays open goes on to tie_blocks blocks."""
    from loaderbench.tuning import contest as contest_mod
    from loaderbench.tuning.contest import contest_schedule, run_contest

    def block(contest, *args):  # each block takes a second, the contest has half of one
        contest.blocks += 1
        contest.spent_s += 1.0

    monkeypatch.setattr(contest_mod, "_block", block)
    never = lambda contest: False  # noqa: E731
    workload = Workload(TokenizedText(), batch_size=8, batches=1)
    contestants = [Candidate(0), Candidate(2, "fork")]
    spent = run_contest("t", workload, contestants, contest_schedule(0.5), decided=never)
    assert (spent.blocks, spent.stopped) == (3, "budget spent")
    ties = contest_schedule(0.5, tie_blocks=7)
    assert run_contest("t", workload, contestants, ties, decided=never).blocks == 7


def test_the_picture_shows_every_label_of_a_long_dataset_name(tmp_path):
    """The title wraps to the figure's width: no line longer than the columns allow."""
    title = present.title("lb_user_datasets:dict_records")
    lines = present._wrapped(title, width=42).splitlines()
    assert len(lines) >= 2 and all(len(line) <= 42 for line in lines)
    assert " ".join(lines) == title


@pytest.mark.processes
def test_persistent_workers_follow_from_a_default_loaders_whole_epoch(tmp_path):
    """The recommendation names the start, steady part and shutdown of a default loader's epoch
    and tune.json records them."""
    result = tune(
        Sleepy(),
        batch_size=16,
        budget_s=20,
        max_workers=2,
        seconds_per_setting=1.5,
        start_methods=("fork",),
        prefetch_factors=(2,),
        diagnose=False,
        show=lambda line: None,
    )
    assert result.pick.num_workers == 2
    epoch = result.default_epoch
    assert epoch["samples"] == epoch["dataset_samples"] == 128 and epoch["start_s"] > 0
    reason = {d.setting: d.reason for d in result.decisions}["persistent_workers"]
    assert "a default loader's epoch with 2 workers" in reason and "shutdown" in reason
    present.write(result, tmp_path)
    assert '"default_epoch"' in (tmp_path / "tune.json").read_text()


def test_an_iterable_datasets_workers_are_kept_with_the_restart_its_first_batch_showed():
    """No length to scale a default epoch to: the workers are kept, and the reason gives the
    restart the pick's first batches showed. Without workers there is nothing to keep or say."""
    from types import SimpleNamespace

    from loaderbench.tuning import _persistence

    stream = SimpleNamespace(iterable=True)
    entry = SimpleNamespace(first_batch_s=[0.4, 0.5, 0.9])
    keep, why, epoch = _persistence(Candidate(2, "fork"), entry, stream, dataset=None)
    assert keep and epoch is None
    assert (why.setting, why.value) == ("persistent_workers", True)
    assert why.reason == "restarting the workers costs 0.50 s per epoch"
    assert _persistence(Candidate(0), entry, stream, dataset=None) == (False, None, None)


def test_a_dataset_whose_workers_crash_is_answered_with_no_workers_and_no_search():
    from bench_datasets import misbehaving

    result = tune(misbehaving.make_crashing(), batch_size=4, budget_s=5, show=lambda line: None)
    assert [d.code for d in result.diagnoses if d.blocks_workers] == ["worker-crash"]
    assert result.pick == Candidate(0) and not result.persistent_workers
    assert [(d.setting, d.value) for d in result.decisions] == [("num_workers", 0)]
    assert result.contests == [] and result.seconds > 0
