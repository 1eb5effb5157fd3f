"""Finding worker processes and file descriptors that outlived the code that started them."""

from __future__ import annotations

import gc
import os
import re
import sys
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import psutil

# Long-lived helpers that multiprocessing starts once per session on purpose; not leaks.
_INFRASTRUCTURE = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


def _is_infrastructure(proc: psutil.Process) -> bool:
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return any(marker in cmdline for marker in _INFRASTRUCTURE)


def child_processes() -> list[psutil.Process]:
    """Descendants of this process that are not multiprocessing's own long-lived helpers."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if not _is_infrastructure(p)]


def survivors(procs: list[psutil.Process], grace_s: float = 10.0) -> list[psutil.Process]:
    """Those of ``procs`` still running after ``grace_s`` (workers may be mid-way through exiting)."""
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    return alive


def describe(procs: list[psutil.Process]) -> str:
    parts = []
    for p in procs:
        try:
            parts.append(f"pid {p.pid} ({p.name()}, {p.status()})")
        except psutil.Error:
            parts.append(f"pid {p.pid}")
    return ", ".join(parts)


def kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    try:
        psutil.wait_procs(procs, timeout=5)
    except RuntimeError:
        # A live DataLoader's SIGCHLD handler reports the kill we just did as a worker failure.
        pass


#: How many more descriptors a test may end with than it began with, besides those that are the
#: CUDA runtime's or torch's (below). Some are kept for the rest of the session on purpose: with no
#: tolerance, the whole suite had exactly one test grow, the first spawn loader, by 2
#: (multiprocessing's resource-tracker pipe and a torch shared-memory file); a first forkserver
#: loader adds its socket the same way. A leaked DataLoader iterator holds 6 descriptors with one
#: worker and 10 with two (measured), so it is always caught.
FD_TOLERANCE = 3

#: Device nodes only the NVIDIA driver opens; a CUDA context keeps them until the process ends.
#: Whenever they appear, they are the runtime's, never a test's.
CUDA_DEVICE_NODE = re.compile(r"/dev/nvidia(\d+|ctl|-uvm|-uvm-tools|-modeset|-caps/.+)")

#: What else the CUDA runtime opens once per process, when it first initialises: the anon inodes
#: and the pipe of its own threads (seen on an H200, driver 580.159.04, torch 2.11.0+cu130:
#: "/dev/nvidia0 x16, anon_inode x2, pipe x2" after the first CUDA test). Allowed only to the
#: test during which CUDA initialised; a pipe beyond these counts as the test's.
CUDA_INIT_ALLOWANCE = {"anon_inode": 2, "pipe": 2}


@dataclass(frozen=True)
class FdSnapshot:
    """A test's starting point: its open descriptors and whether CUDA was initialised yet."""

    fds: dict[int, str]
    cuda_initialised: bool


def snapshot() -> FdSnapshot:
    return FdSnapshot(open_fds(), cuda_initialised())


def cuda_initialised() -> bool:
    """Whether this process has initialised CUDA; never initialises it (nor imports torch)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def open_fds() -> dict[int, str]:
    """This process's open descriptors and what each points to (Linux: /proc/self/fd).

    Sets, not psutil's num_fds() count: a test that releases descriptors an earlier test held
    (pytest drops the previous failure's traceback when the next test starts) would otherwise
    hide as many new ones.
    """
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the descriptor listdir itself used, closed by now
    return fds


def added(before: Mapping[int, str], after: Mapping[int, str]) -> dict[int, str]:
    """The descriptors of ``after`` that ``before`` did not have (or had pointing elsewhere)."""
    return {fd: target for fd, target in after.items() if before.get(fd) != target}


def kind(target: str) -> str:
    """``pipe`` for ``pipe:[123]``, ``anon_inode`` for ``anon_inode:[eventfd]``; else the path."""
    return target.split(":")[0] if ":" in target else target


def not_the_tests(
    new: Mapping[int, str], *, cuda_initialised: bool, kept_for_workers: Collection[int] = ()
) -> dict[int, str]:
    """Which of the ``new`` descriptors (fd: /proc/self/fd target) are not the test's own, and
    whose they are. Pure, so that descriptor lists seen on a GPU machine can be judged anywhere.

    - The CUDA device nodes, always.
    - When CUDA initialised during the test (``cuda_initialised``): up to CUDA_INIT_ALLOWANCE
      anon inodes and pipes, once per process, since CUDA initialises only once.
    - ``kept_for_workers``: pipe ends that exited DataLoader workers' Popen objects still hold
      because torch keeps those objects until the interpreter exits (kept_worker_pipes()).
    """
    owners = {}
    allowance = dict(CUDA_INIT_ALLOWANCE) if cuda_initialised else {}
    for fd, target in sorted(new.items()):
        if CUDA_DEVICE_NODE.fullmatch(target):
            owners[fd] = "the CUDA runtime"
        elif fd in kept_for_workers and kind(target) == "pipe":
            owners[fd] = "torch (exited persistent pinned workers, pytorch/pytorch#91252)"
        elif allowance.get(kind(target), 0) > 0:
            allowance[kind(target)] -= 1
            owners[fd] = "the CUDA runtime (initialised in this test)"
    return owners


def judge_fds(
    new: Mapping[int, str],
    *,
    cuda_initialised: bool = False,
    kept_for_workers: Collection[int] = (),
    tolerance: int = FD_TOLERANCE,
) -> str | None:
    """None when at most ``tolerance`` of the ``new`` descriptors are the test's own; else a
    description of those."""
    others = not_the_tests(
        new, cuda_initialised=cuda_initialised, kept_for_workers=kept_for_workers
    )
    own = [target for fd, target in new.items() if fd not in others]
    if len(own) <= tolerance:
        return None
    kinds = Counter(kind(target) for target in own)
    listed = ", ".join(f"{k} x{n}" if n > 1 else k for k, n in kinds.most_common(6))
    return f"{len(own)} new descriptors still open (tolerance {tolerance}): {listed}"


def fd_growth(before: FdSnapshot, tolerance: int = FD_TOLERANCE) -> str | None:
    """judge_fds() of the descriptors opened since ``before`` (a snapshot()) and still open.
    Garbage is collected first when needed, because a dropped DataLoader iterator sits in
    reference cycles and only closes its pipes when collected; the workers' kept pipes are only
    looked for when the rest does not pass."""
    initialised = cuda_initialised() and not before.cuda_initialised
    verdict = judge_fds(
        added(before.fds, open_fds()), cuda_initialised=initialised, tolerance=tolerance
    )
    if verdict is None:
        return None
    gc.collect()
    new = added(before.fds, open_fds())
    verdict = judge_fds(new, cuda_initialised=initialised, tolerance=tolerance)
    if verdict is None or not torch_keeps_exited_workers():
        return verdict
    kept = kept_worker_pipes()
    return judge_fds(new, cuda_initialised=initialised, kept_for_workers=kept, tolerance=tolerance)


def torch_keeps_exited_workers() -> bool:
    """Whether this torch keeps every persistent, pinned DataLoader worker's Process object until
    the interpreter exits (pytorch/pytorch#91252): with pin_memory (which only acts on an
    accelerator) and persistent_workers, each iterator registered one atexit hook per worker,
    bound to the worker, so each worker's two pipe ends stay open. torch 2.13 registers one hook
    over a WeakSet of iterators instead (``_persistent_workers_atexit`` in
    torch/utils/data/dataloader.py). The pipes left after the CUDA worker tests on an H200 with
    torch 2.11 (4, 5, 12) fit 2 per worker of such loaders (5: with the resource tracker's, which
    the first spawn loader opens)."""
    dataloader = sys.modules.get("torch.utils.data.dataloader")
    if dataloader is None:
        return False
    iterator = getattr(dataloader, "_MultiProcessingDataLoaderIter", None)
    return hasattr(iterator, "_clean_up_worker") and not hasattr(
        dataloader, "_persistent_workers_atexit"
    )


def kept_worker_pipes() -> set[int]:
    """The pipe ends still held by the Popen objects of child processes that have exited: what
    multiprocessing closes once such an object is garbage (util.Finalize of close_fds over the
    process's sentinel and its start pipe)."""
    from multiprocessing import popen_fork  # every POSIX start method's Popen derives from it

    kept: set[int] = set()
    for obj in gc.get_objects():
        # type(), not isinstance(): a few torch objects warn when their __class__ is read.
        if issubclass(type(obj), popen_fork.Popen) and obj.returncode is not None:
            fds = getattr(getattr(obj, "finalizer", None), "_args", None) or ()
            kept.update(fd for fd in fds if isinstance(fd, int))
    return kept


def tagged_processes(key: str, value: str) -> list[psutil.Process]:
    """Every process of this user whose environment holds ``key=value``.

    Children inherit the environment whatever their start method, and keep it when their parent
    dies and they are re-parented: so a tag set on a command finds its orphans too.
    """
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(key) == value:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
