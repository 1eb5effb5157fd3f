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
from loaderbench.config import OPTIONS, ConfigError, RunConfig, option
from loaderbench.grid import Grid
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
    for each in OPTIONS:
        group.addoption(each.name, **each.pytest_kwargs())


@pytest.hookimpl(tryfirst=True)  # before Hypothesis' plugin applies any --hypothesis-profile
def pytest_configure(config):
    try:
        hypothesis_profiles.load_from_environment()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    publish.stage(config)
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one")
    config.addinivalue_line("markers", "distributed: starts a torch.distributed process group")
    try:
        run = RunConfig.from_values(config.getoption)
        grid = run.grid()
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        runner_class = run.runner or runner.default_runner()
    except ValueError as exc:
        raise pytest.UsageError(f"${runner.ENV_VAR}: {exc}") from None
    settings = run.settings
    try:
        loaders.use_loader(loaders.resolve_loader(settings.loader))
    except loaders.LoaderClassError as exc:
        raise pytest.UsageError(str(exc)) from None
    if run.rerun:
        try:
            config.stash[_RERUN] = {
                line.strip() for line in Path(run.rerun).read_text().splitlines() if line.strip()
            }
        except OSError as exc:
            raise pytest.UsageError(
                f"{option('rerun')}: cannot read {run.rerun}: {exc.strerror}"
            ) from None
    datasets = bench_datasets.DatasetCache(
        cost_scale=settings.cost_scale,
        user_dataset=settings.dataset,
        worker_ballast_mb=settings.worker_ballast_mb,
    )
    injected = settings.injected
    state = LoaderbenchState(grid, run.rounds, datasets, runner=runner_class, injected=injected)
    inject.install(injected)
    if settings.dataset:
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
    """The rerun option: keep only the listed node ids (a confirming rerun of flagged benchmarks)."""
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
