"""The pytest plugin: grid options, parametrisation, shared fixtures and pytest-benchmark hooks.

Wired in by the root conftest.py. Options are validated once, in pytest_configure, so that a bad
value is a one-line usage error (pytest exit code 4) before anything runs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import bench_datasets
from bench_datasets import USER_PROFILE, UserDatasetError
from loaderbench import machine, results, runner
from loaderbench.grid import Grid, GridError, select
from loaderbench.judging import derived
from loaderbench.measuring import inject, layout, leaks, loaders, sharing, speed
from loaderbench.suite import compare, hypothesis_profiles, publish

# Registered at import, before Hypothesis' own plugin loads the profile named on the command line.
hypothesis_profiles.register()

_STATE = pytest.StashKey["LoaderbenchState"]()
_CALL_OUTCOME = pytest.StashKey[str]()
_PREEXISTING = pytest.StashKey[set]()
_RERUN = pytest.StashKey[set]()
_SPEED_AT_START = pytest.StashKey[float]()
_COMPARED = pytest.StashKey[list]()  # the saved runs --benchmark-compare loaded, in its order

DEFAULT_ROUNDS = 5


@dataclass
class LoaderbenchState:
    grid: Grid
    rounds: int
    datasets: bench_datasets.DatasetCache
    runner: str = "cpu"  # the baselines/<runner>/ folder results are judged against
    injected: dict = field(default_factory=dict)  # slowdowns put into DataLoader (inject.py)

    @property
    def cost_scale(self) -> float:
        return self.datasets.cost_scale

    @property
    def user_dataset(self) -> str | None:
        return self.datasets.user_dataset

    def dataset(self, profile: str):
        """The dataset of ``profile``, built once per session (set-up stays out of every timing)."""
        return self.datasets.get(profile)

    def close(self) -> None:
        self.datasets.close()


def pytest_addoption(parser):
    group = parser.getgroup("loaderbench", "loaderbench: the DataLoader grid")
    group.addoption(
        "--lb-grid",
        default="quick",
        metavar="NAME",
        help="named grid to run: quick or full. Default: quick",
    )
    group.addoption(
        "--lb-profiles",
        metavar="LIST",
        help="comma-separated profiles to run instead of the grid's "
        "(noop,cpu,io,disk,jpeg,large,pyobj; user with --lb-dataset)",
    )
    group.addoption(
        "--lb-workers",
        metavar="LIST",
        help="comma-separated num_workers values instead of the grid's, e.g. 0,1,2,4",
    )
    group.addoption(
        "--lb-start-methods",
        metavar="LIST",
        help="comma-separated start methods instead of the grid's: fork,spawn,forkserver",
    )
    group.addoption(
        "--lb-dataset",
        metavar="MODULE:CALLABLE",
        help="your own dataset: package.module:callable returning a Dataset; runs the "
        "grid as profile 'user'",
    )
    group.addoption(
        "--lb-loader",
        default=results.DEFAULT_LOADER,
        metavar="MODULE:CLASS",
        help="the loader class every benchmark and property builds, one that takes "
        "DataLoader's arguments, e.g. torchdata.stateful_dataloader:StatefulDataLoader. "
        f"Default: {results.DEFAULT_LOADER}",
    )
    group.addoption(
        "--lb-rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        metavar="N",
        help=f"timed rounds per benchmark. Default: {DEFAULT_ROUNDS}",
    )
    group.addoption(
        "--lb-cost-scale",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="multiply every profile's cost knob, e.g. 1.1 for 10%% more work per "
        "sample (to check that a slowdown is caught). Default: 1.0",
    )
    group.addoption(
        "--lb-inject",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="slow DataLoader itself down, to check that the verdict catches it: "
        + "; ".join(f"{name}: {what}" for name, what in inject.INJECTIONS.items())
        + " (repeatable)",
    )
    group.addoption(
        "--lb-worker-ballast-mb",
        type=float,
        default=0.0,
        metavar="MB",
        help="every worker process allocates and holds MB more (to check that the "
        "memory verdict catches it). Default: 0",
    )
    group.addoption(
        "--lb-rerun",
        metavar="FILE",
        help="run only the tests whose node ids FILE lists, one per line (how "
        "`loaderbench gate --confirm` reruns the benchmarks of a regression)",
    )
    group.addoption(
        "--lb-runner",
        metavar="CLASS",
        help="runner class recorded in the results; picks baselines/<CLASS>/ for the "
        "verdict. Default: $LOADERBENCH_RUNNER, else gpu when CUDA is available, "
        "else cpu",
    )


@pytest.hookimpl(tryfirst=True)  # before Hypothesis' plugin applies any --hypothesis-profile
def pytest_configure(config):
    try:
        hypothesis_profiles.load_from_environment()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    publish.stage(config)
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one")
    config.addinivalue_line("markers", "distributed: starts a torch.distributed process group")
    user_dataset = config.getoption("--lb-dataset")
    try:
        grid = select(
            config.getoption("--lb-grid"),
            profiles=config.getoption("--lb-profiles"),
            workers=config.getoption("--lb-workers"),
            start_methods=config.getoption("--lb-start-methods"),
            user_dataset=bool(user_dataset),
        )
    except GridError as exc:
        raise pytest.UsageError(str(exc)) from None
    rounds, scale = config.getoption("--lb-rounds"), config.getoption("--lb-cost-scale")
    if rounds < 1:
        raise pytest.UsageError(f"--lb-rounds must be >= 1, got {rounds}")
    if not scale > 0:
        raise pytest.UsageError(f"--lb-cost-scale must be > 0, got {scale}")
    ballast = config.getoption("--lb-worker-ballast-mb")
    if not ballast >= 0:
        raise pytest.UsageError(f"--lb-worker-ballast-mb must be >= 0, got {ballast}")
    try:
        injected = inject.parse(config.getoption("--lb-inject"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        chosen = config.getoption("--lb-runner")
        runner_class = runner.parse_runner(chosen) if chosen else runner.default_runner()
    except ValueError as exc:
        raise pytest.UsageError(f"--lb-runner / ${runner.ENV_VAR}: {exc}") from None
    try:
        loaders.use_loader(loaders.resolve_loader(config.getoption("--lb-loader")))
    except loaders.LoaderClassError as exc:
        raise pytest.UsageError(str(exc)) from None
    rerun = config.getoption("--lb-rerun")
    if rerun:
        try:
            config.stash[_RERUN] = {
                line.strip() for line in Path(rerun).read_text().splitlines() if line.strip()
            }
        except OSError as exc:
            raise pytest.UsageError(f"--lb-rerun: cannot read {rerun}: {exc.strerror}") from None
    datasets = bench_datasets.DatasetCache(
        cost_scale=scale, user_dataset=user_dataset, worker_ballast_mb=ballast
    )
    state = LoaderbenchState(grid, rounds, datasets, runner=runner_class, injected=injected)
    inject.install(injected)
    if user_dataset:
        try:  # import and build it now: a broken dataset is a usage error, not 40 failed tests
            state.dataset(USER_PROFILE)
        except UserDatasetError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[_STATE] = state


def pytest_unconfigure(config):
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()
    publish.publish(config)


def lb_state(config) -> LoaderbenchState:
    return config.stash[_STATE]


def pytest_collection_modifyitems(config, items):
    """--lb-rerun: keep only the listed node ids (a confirming rerun of flagged benchmarks)."""
    wanted = config.stash.get(_RERUN, None)
    if wanted is None:
        return
    keep = [item for item in items if item.nodeid in wanted]
    dropped = [item for item in items if item.nodeid not in wanted]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_generate_tests(metafunc):
    """``lb_case`` runs a test on every case of the selected grid; ``lb_startup_case`` on every
    case without variants (start-up does not depend on batch size or ordering)."""
    grid = lb_state(metafunc.config).grid
    for name, variants in (("lb_case", True), ("lb_startup_case", False)):
        if name in metafunc.fixturenames:
            cases = grid.cases(variants=variants)
            metafunc.parametrize(name, cases, ids=[c.id for c in cases])


@pytest.fixture(scope="session")
def lb_settings(request) -> LoaderbenchState:
    """The session's loaderbench options (grid, rounds, cost scale) and dataset cache."""
    return lb_state(request.config)


@pytest.fixture
def lb_dataset_for(lb_settings):
    """``lb_dataset_for(case)``: the session-cached dataset of the case's profile."""
    return lambda case: lb_settings.dataset(case.profile)


@pytest.fixture(autouse=True)
def _lb_no_orphan_workers(request):
    """No worker process or file descriptor may outlive the test that started it, in any mode."""
    before = {p.pid for p in leaks.child_processes()}
    fds_before = leaks.snapshot()
    yield
    new = [p for p in leaks.child_processes() if p.pid not in before]
    left = leaks.survivors(new) if new else []
    # No outcome: the test was interrupted (Ctrl-C) or never ran; clean up without a second
    # failure on top of the interruption.
    outcome = request.node.stash.get(_CALL_OUTCOME, None)
    if left:
        message = f"{request.node.nodeid} left worker processes alive: {leaks.describe(left)}"
        leaks.kill(left)
        if outcome is not None:
            pytest.fail(message, pytrace=False)
    # A failed test's traceback keeps its locals (and their descriptors) alive on purpose.
    grown = leaks.fd_growth(fds_before) if outcome == "passed" else None
    if grown:
        pytest.fail(f"{request.node.nodeid} leaked file descriptors: {grown}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_CALL_OUTCOME] = report.outcome
    return report


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Running out of descriptors reads as advice about the sharing strategy, in every test."""
    with sharing.explain_fd_exhaustion():
        return (yield)


def pytest_sessionstart(session):
    # A session run inside another one (pytest.main in a test) must not judge the outer
    # session's processes.
    session.config.stash[_PREEXISTING] = {p.pid for p in leaks.child_processes()}
    config = session.config
    if any(
        config.getoption(o, None)
        for o in ("benchmark_json", "benchmark_save", "benchmark_autosave")
    ):
        config.stash[_SPEED_AT_START] = speed.probe()  # how fast the machine is as the run begins


def pytest_sessionfinish(session, exitstatus):
    """Whatever the per-test guard could not see (processes started at collection or by session
    fixtures) is reported here with its pids, killed, and fails the run."""
    publish.session_ended(session, exitstatus)
    preexisting = session.config.stash.get(_PREEXISTING, set())
    left = [p for p in leaks.child_processes() if p.pid not in preexisting]
    # Every fixture has been torn down (shutting its loaders' workers down, joined): a short
    # grace only covers a worker still between exit and reaping.
    left = leaks.survivors(left, grace_s=2.0) if left else []
    if not left:
        return
    message = f"loaderbench: processes left over at session end: {leaks.describe(left)}"
    leaks.kill(left)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True)
    else:
        print(message, file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- pytest-benchmark hooks -------------------------------------------------------------------


def pytest_benchmark_update_machine_info(config, machine_info):
    machine.scrub(machine_info)
    results.write_fingerprint(machine_info, machine.fingerprint())


@pytest.hookimpl(wrapper=True)
def pytest_benchmark_compare_machine_info(
    config, benchmarksession, machine_info, compared_benchmark
):
    """Keep each saved run --benchmark-compare loads, for the verdict of the terminal summary,
    which says in one line what pytest-benchmark's machine-info warning dumps as JSON."""
    config.stash.setdefault(_COMPARED, []).append(compared_benchmark)
    with compare.machine_warning_in_one_line(benchmarksession):
        return (yield)


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own table
def pytest_terminal_summary(terminalreporter, config):
    saved = config.stash.get(_COMPARED, [])
    session = getattr(config, "_benchmarksession", None)
    if not saved or session is None or not session.benchmarks:
        return
    current = compare.current_results(config, session)
    for path, data in zip(session.compared_mapping or {}, saved):
        terminalreporter.section("loaderbench", sep="-", bold=True)
        shown = os.path.relpath(Path(session.storage.path) / path)
        for line in compare.verdict_lines(shown, data, current):
            terminalreporter.write_line(line)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    state = config.stash.get(_STATE, None)
    cores = machine.usable_cores()
    settings = {
        "grid": state.grid.name if state else None,
        "cost_scale": state.cost_scale if state else 1.0,
        **({"injected": state.injected} if state and state.injected else {}),
        **(
            {"worker_ballast_mb": state.datasets.worker_ballast_mb}
            if state and state.datasets.worker_ballast_mb
            else {}
        ),
        "layout_pad": layout.recorded_pad(),
        "loader": loaders.current_loader().record(),
    }
    results.write_run(
        output_json,
        derive=lambda found: derived.derive(found, cores),
        runner=state.runner if state else runner.default_runner(),
        settings=settings,
        # The machine's speed as the run began and as it ended (speed.py): a verdict judges
        # seconds only against a baseline whose machine ran the same probe about as fast.
        speed_probe={
            **({"start": config.stash[_SPEED_AT_START]} if _SPEED_AT_START in config.stash else {}),
            "end": speed.probe(),
        },
        # What `loaderbench gate --confirm` needs to start this same run again, narrowed.
        invocation=results.Invocation(
            sys.executable,
            str(config.invocation_params.dir),
            tuple(str(a) for a in config.invocation_params.args),
        ),
    )
