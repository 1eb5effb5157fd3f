"""Faults in loading (hangs, dead workers, exceptions, early exits, descriptor exhaustion) become
failing tests with a message: they never hang the suite, take it down, or leave a process behind.

Deliberate faults come from bench_datasets/faulty.py. Fork keeps most cases cheap; one spawn case
shows the faulty datasets survive pickling into a fresh interpreter.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import textwrap
import uuid
import xml.etree.ElementTree as ET

import psutil
import pytest
import torch
from torch.utils.data import default_collate

from bench_datasets.faulty import (
    FailingCollate,
    FaultyDataset,
    HangingDataset,
    InjectedFault,
    RaisingDataset,
    SegfaultingDataset,
    SelfKillingDataset,
    failing_worker_init,
)
from loaderbench.grid import Case
from loaderbench.measuring import leaks
from loaderbench.measuring.loaders import build_loader, running, shutdown
from loaderbench.measuring.sharing import DescriptorExhaustion, explain_fd_exhaustion

BATCH = 2
LENGTH = 16
# Seconds torch itself gives a worker to exit before terminating it; our wait for exits never
# needs more.
EXIT_WAIT_S = 10.0
WORKER_PID = re.compile(r"DataLoader worker \(pid(?:\(s\))? (\d+)\)")
# Which of torch's two detectors reports a death first (its SIGCHLD handler or the check of
# worker liveness after a queue timeout) is a race; both messages name the pid.
DIED = r"exited unexpectedly|killed by signal: "


def fault_case(workers: int = 2, start_method: str = "fork") -> Case:
    return Case("faulty", workers, start_method, batch_size=BATCH)


def expected_batch(batch_index: int):
    indices = range(batch_index * BATCH, (batch_index + 1) * BATCH)
    return default_collate([(FaultyDataset.expected(i), i) for i in indices])


def assert_batch_equal(got, batch_index: int) -> None:
    want = expected_batch(batch_index)
    assert [t.dtype for t in got] == [t.dtype for t in want]
    assert all(torch.equal(g, w) for g, w in zip(got, want)), f"batch {batch_index} differs"


def assert_all_exited(procs: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(procs, timeout=EXIT_WAIT_S)
    assert not alive, f"workers still alive: {leaks.describe(alive)}"


def collect_epoch(iterator) -> tuple[list, list[Exception]]:
    """Every batch of one epoch, catching per-batch InjectedFaults and carrying on past them."""
    batches, errors = [], []
    while True:
        try:
            batches.append(next(iterator))
        except StopIteration:
            return batches, errors
        except InjectedFault as exc:
            errors.append(exc)


# --- hangs ------------------------------------------------------------------------------------


@pytest.mark.processes
def test_a_hung_worker_becomes_a_timeout_error_and_is_terminated(monkeypatch):
    """A worker stuck in __getitem__ surfaces as the loader's timeout error, not a stuck test,
    and shutting the loader down terminates it (after torch's join, 5 s by default: shortened
    here to 1 s, which changes nothing but the wait)."""
    monkeypatch.setattr(torch.utils.data._utils, "MP_STATUS_CHECK_INTERVAL", 1.0)
    loader = build_loader(HangingDataset(LENGTH, at=2 * BATCH), fault_case(), timeout=1.0)
    iterator = iter(loader)
    workers = leaks.child_processes()
    try:
        assert_batch_equal(next(iterator), 0)
        assert_batch_equal(next(iterator), 1)
        with pytest.raises(RuntimeError, match=r"DataLoader timed out after 1\.0 seconds"):
            next(iterator)
    finally:
        shutdown(iterator)
    assert len(workers) == 2
    assert_all_exited(workers)


# --- dead workers -----------------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.parametrize(
    "dataset, start_method, workers",
    [
        (SelfKillingDataset(LENGTH, at=3 * BATCH), "fork", 2),
        (SegfaultingDataset(LENGTH, at=3 * BATCH), "fork", 2),
        (SegfaultingDataset(LENGTH, at=1 * BATCH), "spawn", 1),
    ],
    ids=["sigkill-fork", "segfault-fork", "segfault-spawn"],
)
def test_a_worker_dying_mid_epoch_is_a_runtime_error_naming_it(dataset, start_method, workers):
    """The main process raises RuntimeError naming the dead worker's pid; batches delivered
    before it are exact; no process is left behind."""
    loader = build_loader(dataset, fault_case(workers, start_method))
    iterator = iter(loader)
    pids = {p.pid: p for p in leaks.child_processes()}
    delivered = []
    try:
        with pytest.raises(RuntimeError, match=DIED) as failure:
            for batch in iterator:
                delivered.append(batch)
    finally:
        shutdown(iterator)
    named = WORKER_PID.search(str(failure.value))
    assert named, f"no worker pid in: {failure.value}"
    assert int(named.group(1)) in pids, f"pid {named.group(1)} is not a worker: {list(pids)}"
    assert len(delivered) < LENGTH // BATCH
    for batch_index, batch in enumerate(delivered):
        assert_batch_equal(batch, batch_index)
    assert_all_exited(list(pids.values()))


# --- exceptions -------------------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.parametrize(
    "bad_index", [2 * BATCH + 1, 3 * BATCH + 1], ids=["batch2-worker0", "batch3-worker1"]
)
@pytest.mark.parametrize("where", ["getitem", "collate"])
def test_an_exception_is_reraised_with_its_type_and_worker_and_the_epoch_continues(
    where, bad_index
):
    """With in-order loading batch k goes to worker k % 2: the error names that worker, keeps its
    type, and iterating on after catching it delivers every other batch, exactly and in order."""
    bad_batch = bad_index // BATCH
    if where == "getitem":
        loader = build_loader(RaisingDataset(LENGTH, at=bad_index), fault_case())
    else:
        loader = build_loader(
            RaisingDataset(LENGTH, at=()), fault_case(), collate_fn=FailingCollate(at=bad_index)
        )
    iterator = iter(loader)
    try:
        batches, errors = collect_epoch(iterator)
    finally:
        shutdown(iterator)
    assert len(errors) == 1
    message = str(errors[0])
    assert f"Caught InjectedFault in DataLoader worker process {bad_batch % 2}" in message
    assert f"{bad_index}" in message
    survivors = [b for b in range(LENGTH // BATCH) if b != bad_batch]
    assert len(batches) == len(survivors)
    for got, batch_index in zip(batches, survivors):
        assert_batch_equal(got, batch_index)


@pytest.mark.processes
def test_a_failing_worker_init_fn_is_reraised_naming_each_worker():
    """worker_init_fn's exception arrives, with its type, in place of each worker's first batch."""
    loader = build_loader(
        RaisingDataset(LENGTH, at=()), fault_case(), worker_init_fn=failing_worker_init
    )
    iterator = iter(loader)
    try:
        for worker_id in (0, 1):
            with pytest.raises(
                InjectedFault,
                match=(
                    rf"(?s)in DataLoader worker process {worker_id}\..*"
                    rf"worker_init_fn failed in worker {worker_id}"
                ),
            ):
                next(iterator)
    finally:
        shutdown(iterator)


# --- early exit -------------------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true:UserWarning")
@pytest.mark.parametrize("persistent", [False, True], ids=["fresh", "persistent"])
@pytest.mark.parametrize("pin_memory", [False, True], ids=["pageable", "pinned"])
def test_breaking_out_of_an_epoch_lets_the_workers_exit(persistent, pin_memory):
    """Leaving an epoch after two batches stops the workers: a fresh iterator when it is dropped,
    persistent workers when the loader leaves ``running``."""
    loader = build_loader(
        RaisingDataset(LENGTH, at=()), fault_case(), persistent=persistent, pin_memory=pin_memory
    )
    workers = []
    with running(loader):
        for batch_index, batch in enumerate(loader):
            workers = workers or leaks.child_processes()
            assert_batch_equal(batch, batch_index)
            if batch_index == 1:
                break
    assert len(workers) == 2
    assert_all_exited(workers)


# --- descriptor exhaustion --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raised",
    [
        RuntimeError("Too many open files. Communication with the workers is no longer possible."),
        RuntimeError("received 0 items of ancdata"),
        OSError(errno.EMFILE, "Too many open files"),
    ],
    ids=["torch-message", "ancdata", "emfile"],
)
def test_descriptor_exhaustion_is_explained_with_the_sharing_strategy(raised):
    """Every form in which running out of descriptors surfaces becomes one piece of advice."""
    with pytest.raises(DescriptorExhaustion) as explained:
        with explain_fd_exhaustion():
            raise raised
    message = str(explained.value)
    assert f"{torch.multiprocessing.get_sharing_strategy()!r} sharing strategy" in message
    assert "set_sharing_strategy('file_system')" in message and "ulimit -n" in message
    assert explained.value.__cause__ is raised


def test_other_errors_pass_through_unexplained():
    with pytest.raises(RuntimeError, match="^DataLoader timed out") as raised:
        with explain_fd_exhaustion():
            raise RuntimeError("DataLoader timed out after 1 seconds")
    assert type(raised.value) is RuntimeError


# --- the suite as a whole, in a real pytest run -----------------------------------------------

FAULTY_SUITE = textwrap.dedent('''
    import os, resource, subprocess

    import pytest

    from bench_datasets.faulty import (HangingDataset, ManyTensorsDataset, RaisingDataset,
                                       SelfKillingDataset)
    from loaderbench.grid import Case
    from loaderbench.measuring.loaders import build_loader, drain, running

    # Started at collection, before any test: only the session-end check can see it.
    LINGERING = subprocess.Popen(["sleep", "300"])
    KEPT_OPEN = []

    def case(workers=2):
        return Case("faulty", workers, "fork", batch_size=2)

    @pytest.mark.timeout(1)
    def test_hang_in_the_main_process():
        drain(build_loader(HangingDataset(16, at=5), Case("faulty", 0, batch_size=2)))

    def test_worker_killed():
        with running(build_loader(SelfKillingDataset(16, at=6), case(), persistent=True)) as loader:
            drain(loader)

    @pytest.fixture
    def low_fd_limit():
        """ulimit -n lowered to what is open now plus 48, restored after the test's report."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 48, hard))
        yield
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    def test_descriptors_exhausted(low_fd_limit):
        kept = []
        loader = build_loader(ManyTensorsDataset(400), case(1), persistent=True, batch_size=None)
        try:
            with running(loader):
                for sample in loader:
                    kept.append(sample)
        finally:
            kept.clear()

    def test_descriptors_leaked():
        KEPT_OPEN.extend(os.pipe() for _ in range(4))

    def test_carries_on():
        with running(build_loader(RaisingDataset(16, at=()), case(), persistent=True)) as loader:
            assert drain(loader) == (8, 16)
''')

TAG = "LOADERBENCH_FAULT_RUN"


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """One pytest process running FAULTY_SUITE; its processes carry a tag to find orphans by."""
    folder = tmp_path_factory.mktemp("faulty_suite")
    (folder / "test_faulty_suite.py").write_text(FAULTY_SUITE)
    report = folder / "report.xml"
    tag = uuid.uuid4().hex
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_faulty_suite.py",
            "-p",
            "loaderbench.suite.plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
        ],
        cwd=folder,
        env={**os.environ, TAG: tag},
        capture_output=True,
        text=True,
        timeout=240,
    )
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problems = [child for child in case if child.tag in ("failure", "error")]
        message = " ".join(p.get("message", "") + (p.text or "") for p in problems)
        outcomes[case.get("name")] = ("passed" if not problems else problems[0].tag, message)
    _, orphans = psutil.wait_procs(leaks.tagged_processes(TAG, tag), timeout=5)
    leaks.kill(orphans)
    return done, outcomes, orphans


@pytest.mark.processes
def test_a_hang_in_the_main_process_is_ended_by_pytest_timeout(faulty_run):
    _, outcomes, _ = faulty_run
    outcome, message = outcomes["test_hang_in_the_main_process"]
    # "Timeout (>1.0s) from pytest-timeout" since pytest-timeout 2.3, "Timeout >1.0s" before.
    assert outcome == "failure" and re.search(r"Timeout \(?>1\.0s", message), message


@pytest.mark.processes
def test_a_killed_worker_fails_only_its_test_naming_the_pid(faulty_run):
    _, outcomes, _ = faulty_run
    outcome, message = outcomes["test_worker_killed"]
    assert outcome == "failure" and WORKER_PID.search(message), message


@pytest.mark.processes
def test_descriptor_exhaustion_fails_with_advice_on_the_sharing_strategy(faulty_run):
    _, outcomes, _ = faulty_run
    outcome, message = outcomes["test_descriptors_exhausted"]
    assert outcome == "failure" and "DescriptorExhaustion" in message
    assert "'file_descriptor' sharing strategy" in message
    assert re.search(r"ulimit -n is \d{2,3}\)", message), "the advice must state the low limit"
    assert "set_sharing_strategy('file_system')" in message


@pytest.mark.processes
def test_the_leak_guard_fails_a_test_that_leaks_descriptors(faulty_run):
    _, outcomes, _ = faulty_run
    outcome, message = outcomes["test_descriptors_leaked"]
    assert outcome == "error" and "leaked file descriptors" in message and "pipe x8" in message


@pytest.mark.processes
def test_the_suite_carries_on_after_every_fault(faulty_run):
    done, outcomes, _ = faulty_run
    assert outcomes["test_carries_on"] == ("passed", "")
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr


@pytest.mark.processes
def test_the_session_end_check_reports_and_stops_leftovers_by_pid(faulty_run):
    done, _, orphans = faulty_run
    leftover = r"processes left over at session end: pid \d+ \(sleep"
    assert re.search(leftover, done.stdout), done.stdout
    assert not orphans, f"left behind by the faulty run: {leaks.describe(orphans)}"
