"""Writing baselines and results so that an interruption never leaves half a file.

A reader (or the next run, after Ctrl-C, a cancelled CI job or a power cut) sees the old file or
the new one, never a mix: the bytes go to a temporary file in the same folder (so the final rename
stays on one filesystem), are flushed to disk, and only then replace the target with os.replace,
which is atomic on POSIX. The folder is synced too, so the rename itself survives a crash.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) all at once; the old file stays intact until then."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: never leave the temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def write_json_atomic(path: str | Path, data) -> None:
    """Diff-friendly JSON (sorted keys, indented, no NaN), written with write_atomic."""
    write_atomic(path, json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n")


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or what a plain open() would give (mkstemp's are 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some filesystems cannot open a folder; the rename is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def staging_path(path: str | Path) -> Path:
    """Where a tool that writes in place (pytest-benchmark's --benchmark-json) writes instead, so
    that ``path`` is only ever replaced whole, by publish()."""
    path = Path(path)
    return path.parent / f".{path.name}.partial"


def publish(staging: Path, path: Path) -> bool:
    """Move a finished ``staging`` file onto ``path`` atomically; False when there is none."""
    try:
        fd = os.open(staging, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(staging, path)
    _sync_folder(path.parent)
    return True
