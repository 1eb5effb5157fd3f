"""The run configuration (config.py): every ``--lb-*`` option parsed and checked once, written
back in one form, and the same options for a benchmark run, a side process and the side-by-side
commands."""

from __future__ import annotations

import pytest

from loaderbench import config
from loaderbench.config import (
    OPTIONS,
    ConfigError,
    GridChoice,
    RunConfig,
    SideSettings,
    args_for,
    parse_selection,
    recorded_selection,
    recorded_value,
)
from loaderbench.results import DEFAULT_LOADER


def test_settings_written_back_read_back_the_same():
    settings = SideSettings(
        cost_scale=1.1,
        dataset="pkg.mod:make",
        inject=("main-batch-delay=0.001", "fetch-work=0.25"),
        worker_ballast_mb=12.5,
        loader="torchdata.stateful_dataloader:StatefulDataLoader",
    )
    assert SideSettings.from_args(settings.args()) == settings
    assert SideSettings().args() == []  # the defaults are not written: A/A sides look the same
    assert SideSettings.from_args(["--lb-loader", DEFAULT_LOADER]).args() == []
    choice = GridChoice("full", profiles="cpu", workers="0,2", start_methods="fork")
    assert parse_selection(choice.args()).choice == choice


def test_both_argument_forms_and_the_last_value_win_but_injections_add_up():
    chosen = parse_selection(
        [
            "--lb-profiles=cpu,io",
            "--lb-workers",
            "0,2",
            "--lb-cost-scale=1.1",
            "--lb-cost-scale",
            "1.2",
            "--lb-inject=main-batch-delay=0.001",
            "--lb-inject",
            "fetch-work=0.1",
        ]
    )
    assert (chosen.choice.profiles, chosen.choice.workers) == ("cpu,io", "0,2")
    assert chosen.settings.cost_scale == 1.2
    assert chosen.settings.injected == {"main-batch-delay": 0.001, "fetch-work": 0.1}
    assert chosen.side(["--lb-cost-scale=1.5", "--lb-inject=epoch-end-delay=0.5"]).args() == [
        "--lb-cost-scale=1.5",
        "--lb-inject=main-batch-delay=0.001",
        "--lb-inject=fetch-work=0.1",
        "--lb-inject=epoch-end-delay=0.5",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["-k", "throughput"],
            "'-k' is not a grid selection or a setting of both sides; it takes --lb-grid",
        ),
        (["--lb-rounds=3"], "'--lb-rounds=3' is not a grid selection"),
        (["--lb-workers"], "--lb-workers needs a value"),
        (["--lb-cost-scale=fast"], "--lb-cost-scale: 'fast' is not a number"),
        (["--lb-cost-scale=0"], "--lb-cost-scale must be > 0, got 0"),
        (["--lb-worker-ballast-mb=-1"], "--lb-worker-ballast-mb must be >= 0"),
        (["--lb-inject=soon=1"], "--lb-inject: 'soon=1' is not NAME=VALUE"),
        (["--lb-inject=fetch-work=-1"], r"VALUE must be a number >= 0 \(a fraction\)"),
        (["--lb-grid=huge"], "--lb-grid: unknown grid 'huge'; valid: quick, full"),
        (["--lb-profiles=user"], "--lb-profiles: unknown profile user.*'user' needs --lb-dataset"),
        (["--lb-workers=two"], "--lb-workers: 'two' is not a comma-separated list"),
        (["--lb-start-methods=thread"], "--lb-start-methods: unknown start method thread"),
    ],
)
def test_a_value_that_cannot_be_used_is_one_line_naming_its_option(args, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_selection(args).grid()
    assert "\n" not in str(caught.value)


def test_a_user_dataset_makes_the_user_profile_valid():
    selection = parse_selection(["--lb-dataset=pkg.mod:make", "--lb-profiles=cpu,user"])
    assert selection.grid().profiles == ("cpu", "user")
    assert parse_selection(["--lb-dataset=pkg.mod:make"]).grid().profiles == ("user",)


def test_a_recorded_invocation_keeps_its_selection_and_skips_the_rest():
    recorded = [
        "tests/benchmarks",
        "-k",
        "cpu",
        "--benchmark-json",
        "out.json",
        "--lb-workers",
        "0,4",
        "--lb-loader=a:B",
        "--lb-runner=cpu",
        "--lb-loader",
        "c:D",
    ]
    selection = recorded_selection(recorded)
    assert selection.choice.workers == "0,4"
    assert selection.settings.loader == "c:D"
    assert recorded_value(recorded, "loader") == "c:D"
    assert recorded_value(recorded, "runner") == "cpu"
    assert recorded_value(["-q"], "loader") == DEFAULT_LOADER
    with pytest.raises(ConfigError, match="'--lb-rounds=2' is not a grid selection"):
        recorded_selection(recorded, ["--lb-rounds=2"])


def test_a_run_configuration_comes_from_the_plugins_values():
    defaults = {o.name: o.pytest_kwargs()["default"] for o in OPTIONS}
    given = {**defaults, "--lb-workers": "0,1", "--lb-inject": ["fetch-work=0.1"]}
    run = RunConfig.from_values(given.__getitem__)
    assert run.grid().workers == (0, 1)
    assert run.settings.injected == {"fetch-work": 0.1}
    assert (run.rounds, run.runner, run.rerun) == (config.DEFAULT_ROUNDS, None, None)
    with pytest.raises(ConfigError, match="--lb-rounds must be >= 1, got 0"):
        RunConfig.from_values({**defaults, "--lb-rounds": 0}.__getitem__)
    with pytest.raises(ConfigError, match="--lb-runner: runner class 'GPU!'"):
        RunConfig.from_values({**defaults, "--lb-runner": "GPU!"}.__getitem__)


def test_arguments_for_the_fields_a_command_writes():
    assert args_for(runner="cpu", rerun="ids.txt") == ["--lb-runner=cpu", "--lb-rerun=ids.txt"]
    assert args_for(inject=("fetch-work=0.1", "main-batch-delay=0")) == [
        "--lb-inject=fetch-work=0.1",
        "--lb-inject=main-batch-delay=0",
    ]
    assert args_for(cost_scale=1.1) == ["--lb-cost-scale=1.1"]
    assert config.option("rerun") == "--lb-rerun"


def test_every_option_is_registered_with_pytest_with_its_type(pytestconfig):
    """getoption raises ValueError for an option the plugin did not register."""
    for each in OPTIONS:
        value = pytestconfig.getoption(each.name)
        if each.repeatable:
            assert isinstance(value, list), each.name
        elif value is not None:
            assert isinstance(value, each.type), each.name
    assert len({o.name for o in OPTIONS}) == len({o.field for o in OPTIONS}) == len(OPTIONS)
