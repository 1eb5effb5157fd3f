"""The grid is data: its cases, ids and option parsing."""

import pytest

from bench_datasets import PROFILES
from loaderbench.grid import GRIDS, Case, Grid, GridError, available_start_methods, select


def test_case_ids_name_only_what_differs_from_the_defaults():
    assert Case("cpu", 2, "spawn").id == "cpu-w2-spawn"
    assert Case("io", 4, "forkserver", prefetch_factor=8).id == "io-w4-forkserver-p8"
    assert Case("jpeg", 1, "fork", batch_size=8, in_order=False).id == "jpeg-w1-fork-b8-unordered"
    assert Case("cpu", 0, None, batch_size=128).id == "cpu-w0-b128"


def test_zero_workers_normalises_away_worker_only_settings():
    case = Case("cpu", 0, "spawn", prefetch_factor=8, in_order=False)
    assert (case.start_method, case.prefetch_factor, case.in_order) == (None, None, True)
    assert case.id == "cpu-w0"


def test_workers_without_a_start_method_are_refused():
    with pytest.raises(GridError, match="needs a start method"):
        Case("cpu", 2, None)


@pytest.mark.parametrize("name", list(GRIDS))
def test_every_grid_has_unique_ids(name):
    ids = [case.id for case in GRIDS[name].cases()]
    assert len(ids) == len(set(ids))


def test_quick_grid_covers_every_profile_zero_and_two_workers_fork_and_spawn():
    cases = GRIDS["quick"].cases()
    assert {c.profile for c in cases} == set(PROFILES)
    for profile in PROFILES:
        got = {(c.num_workers, c.start_method) for c in cases if c.profile == profile}
        assert got == {(0, None), (2, "fork"), (2, "spawn")}


def test_quick_ids_are_a_subset_of_full_ids():
    quick = {c.id for c in GRIDS["quick"].cases()}
    full = {c.id for c in GRIDS["full"].cases()}
    assert quick <= full


def test_variants_are_varied_one_at_a_time():
    grid = Grid(
        "g", ("cpu",), (2,), ("fork",), variants=({}, {"batch_size": 8}, {"in_order": False})
    )
    assert [c.id for c in grid.cases()] == [
        "cpu-w2-fork",
        "cpu-w2-fork-b8",
        "cpu-w2-fork-unordered",
    ]
    assert [c.id for c in grid.cases(variants=False)] == ["cpu-w2-fork"]


def test_select_replaces_axes():
    grid = select("quick", profiles="io,cpu", workers="4,0", start_methods="fork")
    assert grid.profiles == ("io", "cpu")
    assert grid.workers == (0, 4)
    assert grid.start_methods == ("fork",)


def test_a_user_dataset_runs_alone_unless_profiles_are_named():
    assert select("quick", user_dataset=True).profiles == ("user",)
    assert select("quick", profiles="cpu,user", user_dataset=True).profiles == ("cpu", "user")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"grid": "huge"}, "unknown grid 'huge'; valid: quick, full"),
        ({"profiles": "cpu,gpuu"}, "unknown profile gpuu; valid: noop, cpu, io"),
        ({"profiles": "user"}, "unknown profile user"),
        ({"workers": "two"}, "not a comma-separated list of integers"),
        ({"workers": "-1"}, "integers >= 0"),
        (
            {"start_methods": "thread"},
            "unknown start method thread; valid: fork, spawn, forkserver",
        ),
    ],
)
def test_unknown_values_are_errors_that_list_the_valid_ones(kwargs, message):
    with pytest.raises(GridError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select(**kwargs)


def test_grid_start_methods_are_those_the_platform_offers():
    offered = available_start_methods()
    assert set(select("full").start_methods) == set(offered)
