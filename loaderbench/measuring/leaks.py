"""Finding worker processes and file descriptors that outlived the code that started them."""

from __future__ import annotations

import gc
import os
from collections import Counter

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


#: How many more descriptors a test may end with than it began with. Some are kept for the rest
#: of the session on purpose: with no tolerance, the whole suite had exactly one test grow, the
#: first spawn loader, by 2 (multiprocessing's resource-tracker pipe and a torch shared-memory
#: file); a first forkserver loader adds its socket the same way. A leaked DataLoader iterator
#: holds 6 descriptors with one worker and 10 with two (measured), so it is always caught.
FD_TOLERANCE = 3


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


def _added(before: dict[int, str]) -> dict[int, str]:
    return {fd: target for fd, target in open_fds().items() if before.get(fd) != target}


def fd_growth(before: dict[int, str], tolerance: int = FD_TOLERANCE) -> str | None:
    """None when at most ``tolerance`` descriptors were opened since ``before`` (an open_fds()
    snapshot) and are still open; else a description of them. Garbage is collected first when
    needed, because a dropped DataLoader iterator sits in reference cycles and only closes its
    pipes when collected."""
    added = _added(before)
    if len(added) > tolerance:
        gc.collect()
        added = _added(before)
    if len(added) <= tolerance:
        return None
    kinds = Counter(target.split(":")[0] if ":" in target else target for target in added.values())
    listed = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in kinds.most_common(6))
    return f"{len(added)} new descriptors still open (tolerance {tolerance}): {listed}"


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
