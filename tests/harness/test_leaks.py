"""The descriptor guard (loaderbench/measuring/leaks.py) on what a CUDA process keeps open.

The lists are those seen on an H200 (torch 2.11.0+cu130, driver 580.159.04, the issue of
2026-12-04): after the first CUDA test 16 /dev/nvidia0, 2 anon inodes and 2 pipes; after later
worker tests on CUDA 4, 5 and 12 pipes. Judged here from the lists, as on a machine without CUDA.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from types import SimpleNamespace

import pytest

from loaderbench.measuring import leaks

#: What a test begins with, in every case below (pytest's own descriptors and the session's).
BEFORE = {0: "/dev/null", 1: "pipe:[100]", 2: "pipe:[100]", 3: "/tmp/session.log"}


def opened(*targets: str, first: int = 20) -> dict[int, str]:
    """``BEFORE`` plus ``targets`` on the next free descriptors."""
    return {**BEFORE, **{first + i: target for i, target in enumerate(targets)}}


def pipes(count: int, inode: int = 500) -> list[str]:
    return [f"pipe:[{inode + i // 2}]" for i in range(count)]


CUDA_INIT = ["/dev/nvidia0"] * 16 + ["anon_inode:[eventfd]"] * 2 + pipes(2, inode=900)


def judged(after: dict[int, str], **known) -> str | None:
    return leaks.judge_fds(leaks.added(BEFORE, after), **known)


def test_the_first_cuda_test_of_a_process_leaks_nothing():
    assert judged(opened(*CUDA_INIT), cuda_initialised=True) is None


def test_without_cuda_initialising_the_same_list_is_a_leak_of_its_anon_inodes_and_pipes():
    """The allowance is CUDA's initialisation: a test that starts with CUDA initialised gets none
    (the device nodes stay the driver's)."""
    assert judged(opened(*CUDA_INIT)) == (
        "4 new descriptors still open (tolerance 3): anon_inode x2, pipe x2"
    )


def test_a_pipe_leak_planted_in_the_first_cuda_test_still_fails():
    """Two os.pipe() kept open beside CUDA's own: the allowance covers CUDA's pipe, not these."""
    planted = opened(*CUDA_INIT, *pipes(4, inode=700))
    assert judged(planted, cuda_initialised=True) == (
        "4 new descriptors still open (tolerance 3): pipe x4"
    )


def test_the_device_nodes_are_the_drivers_in_any_test():
    nodes = ["/dev/nvidia0"] * 6 + ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
    assert judged(opened(*nodes)) is None
    assert judged(opened("/dev/nvidia0-fake", "/dev/nvidiaX", "/tmp/nvidia0", "/dev/null")) == (
        "4 new descriptors still open (tolerance 3): /dev/nvidia0-fake, /dev/nvidiaX, "
        "/tmp/nvidia0, /dev/null"
    )


@pytest.mark.parametrize("count", [4, 5, 12], ids=lambda n: f"pipe x{n}")
def test_later_cuda_worker_tests_pass_when_their_pipes_are_kept_for_exited_workers(count):
    """Each of these lists passes only when the guard finds those pipe ends held by exited
    workers' Popen objects (torch before 2.13 keeps them until exit); given no such fds, the
    same pipes are the test's and fail it."""
    after = opened(*pipes(count))
    kept_ends = sorted(fd for fd in after if fd >= 20)[: count - count % 2]
    assert judged(after, kept_for_workers=kept_ends) is None
    assert judged(after) == f"{count} new descriptors still open (tolerance 3): pipe x{count}"


def test_only_pipes_are_excused_as_kept_for_workers():
    after = opened(*["/dev/shm/torch_1"] * 4)
    assert judged(after, kept_for_workers=[20, 21, 22, 23]) is not None


def test_a_pipe_leak_planted_beside_kept_worker_pipes_still_fails():
    after = opened(*pipes(4), *pipes(4, inode=700))
    assert judged(after, kept_for_workers=[20, 21, 22, 23]) == (
        "4 new descriptors still open (tolerance 3): pipe x4"
    )


def test_a_descriptor_reused_for_another_file_counts_as_new():
    assert leaks.added({5: "pipe:[1]"}, {5: "pipe:[2]", 6: "/x"}) == {5: "pipe:[2]", 6: "/x"}


def test_cuda_initialised_never_imports_torch(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert leaks.cuda_initialised() is False
    assert "torch" not in sys.modules
    fake = SimpleNamespace(cuda=SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert leaks.cuda_initialised() is True


def test_which_torch_keeps_exited_workers_is_read_from_its_dataloader(monkeypatch):
    """torch 2.13 (installed here) keeps a WeakSet of iterators: no; the per-worker atexit
    registration before it: yes."""
    import torch.utils.data.dataloader as dataloader

    assert leaks.torch_keeps_exited_workers() is False
    monkeypatch.delattr(dataloader, "_persistent_workers_atexit")
    monkeypatch.setattr(
        dataloader._MultiProcessingDataLoaderIter,
        "_clean_up_worker",
        staticmethod(print),
        raising=False,
    )
    assert leaks.torch_keeps_exited_workers() is True


def _exit_at_once():
    pass


@pytest.mark.processes
def test_the_pipes_of_an_exited_worker_whose_process_object_is_kept_are_found():
    """A joined fork child whose Process object stays referenced (as torch's atexit hook keeps
    each persistent pinned worker) holds two pipe ends; kept_worker_pipes() names exactly those,
    and the guard's verdict on them depends on it."""
    before = leaks.open_fds()
    kept = multiprocessing.get_context("fork").Process(target=_exit_at_once)
    kept.start()
    kept.join()
    new = leaks.added(before, leaks.open_fds())
    found = leaks.kept_worker_pipes() & set(new)
    assert len(found) == 2 and all(new[fd].startswith("pipe:") for fd in found)
    planted = os.pipe()
    try:
        new = leaks.added(before, leaks.open_fds())
        assert leaks.judge_fds(new, kept_for_workers=found, tolerance=1) == (
            "2 new descriptors still open (tolerance 1): pipe x2"
        )
        assert leaks.judge_fds(new, kept_for_workers=found, tolerance=2) is None
    finally:
        for fd in planted:
            os.close(fd)
        kept.close()
    assert leaks.kept_worker_pipes().isdisjoint(found)


@pytest.mark.processes
@pytest.mark.parametrize("torch_keeps_them", [True, False])
def test_the_guard_excuses_kept_worker_pipes_only_where_torch_keeps_them(
    monkeypatch, torch_keeps_them
):
    """fd_growth() as the autouse guard calls it: two exited children kept referenced (4 pipe
    ends) pass where torch keeps its workers until exit, and fail the test where it does not."""
    monkeypatch.setattr(leaks, "torch_keeps_exited_workers", lambda: torch_keeps_them)
    start = leaks.snapshot()
    kept = [multiprocessing.get_context("fork").Process(target=_exit_at_once) for _ in range(2)]
    for process in kept:
        process.start()
        process.join()
    try:
        verdict = leaks.fd_growth(start)
    finally:
        for process in kept:
            process.close()
    if torch_keeps_them:
        assert verdict is None
    else:
        assert verdict == "4 new descriptors still open (tolerance 3): pipe x4"
