"""Finding worker processes that outlived the code that started them."""

from __future__ import annotations

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
