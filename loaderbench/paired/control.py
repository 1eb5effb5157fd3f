"""Starting, talking to and stopping side processes (the controller's end of ``protocol``).

Each side process runs in a session of its own, so that it and every process it starts
(DataLoader workers, a forkserver, multiprocessing's resource tracker) form one process group
that ``close`` can end whatever state the side is in: a comparison never leaves a process behind.
What a side prints goes to its log file; when a side fails, the error quotes the log's last line.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loaderbench.errors import InputError
from loaderbench.measuring import layout
from loaderbench.paired import protocol

#: Seconds a side may take to start (importing torch and the project) before it is given up on.
START_TIMEOUT_S = 180.0
#: Seconds a set-up may take (a dataset built, workers started, one warm round).
SETUP_TIMEOUT_S = 600.0
#: Variables of this shell that must not reach a side that describes its own environment (a
#: baseline's recipe): they would change what it imports or how it runs.
LEAKY_PREFIXES = ("PYTHON", "LOADERBENCH_")


class SideError(InputError):
    """A side that cannot be used: it did not start, answered nonsense, failed or went silent."""


@dataclass(frozen=True)
class SideSpec:
    """How to start one side: its interpreter, its settings and where its code comes from."""

    label: str
    python: str
    #: The side's own settings (--lb-cost-scale=..., --lb-dataset=..., --lb-inject=...).
    settings: tuple[str, ...] = ()
    #: Directories put first on the side's import path (a git ref's checkout).
    pythonpath: tuple[str, ...] = ()
    cwd: str | None = None
    #: True for a side that describes its whole environment (a recipe's): no PYTHON* or
    #: LOADERBENCH_* variable of this shell reaches it.
    isolated: bool = False
    what: str = "this interpreter"
    extra_env: dict = field(default_factory=dict)

    def describe(self) -> str:
        settings = f", settings {' '.join(self.settings)}" if self.settings else ""
        return f"{self.label}: {self.what} ({self.python}){settings}"

    def command(self) -> list[str]:
        # Absolute: the side may start in another directory (working_directory).
        python = os.path.abspath(self.python) if os.sep in self.python else self.python
        return [python, "-m", "loaderbench.paired.side", *self.settings]

    @property
    def working_directory(self) -> str | None:
        """Where the side starts. ``python -m`` puts its working directory first on the import
        path, ahead of PYTHONPATH: a side whose code comes from a checkout (a git ref, a
        baseline's recipe) started from this project's folder would import this checkout's
        loaderbench instead. So such a side starts in its checkout; the others here."""
        return self.cwd or (self.pythonpath[0] if self.pythonpath else None)

    def environment(self, slot: tuple[int, int] = (0, 1)) -> dict[str, str]:
        """The side's environment: this one (without PYTHON*/LOADERBENCH_* when isolated), its
        path, a randomised memory layout (layout.py) for start ``slot`` = (k, n)."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not (self.isolated and k.startswith(LEAKY_PREFIXES))
        }
        if self.pythonpath:
            inherited = (
                []
                if self.isolated
                else [p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p]
            )
            own = [os.path.abspath(path) for path in self.pythonpath]
            base["PYTHONPATH"] = os.pathsep.join([*own, *inherited])
        base.update(self.extra_env)
        return layout.environment(*slot, base=base)


class SideProcess:
    """A running side. Use as a context manager, or call ``close``."""

    def __init__(self, spec: SideSpec, log: Path, slot: tuple[int, int] = (0, 1)):
        """Start the process; ``ready`` waits for it to say hello."""
        self.spec, self.log = spec, log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(log, "ab")
        try:
            self.proc = subprocess.Popen(
                spec.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log_file,
                cwd=spec.working_directory,
                env=spec.environment(slot),
                start_new_session=True,
            )
        except OSError as exc:
            self._log_file.close()
            raise SideError(
                f"side {spec.label} ({spec.what}): cannot start {spec.python}: {exc.strerror}"
            ) from None
        # Both are pipes (PIPE above), never None.
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._stdin, self._stdout = self.proc.stdin, self.proc.stdout
        self._buffer = b""
        #: The answer each request sent and not yet answered is owed, oldest first: a side
        #: answers in order, and its first answer is its hello.
        self._owed: deque[type[Any]] = deque([protocol.Hello])
        self.hello = protocol.Hello(protocol.PROTOCOL)

    def ready(self, timeout: float = START_TIMEOUT_S) -> SideProcess:
        """Wait for the side's hello; a SideError (the side stopped) when it cannot serve."""
        try:
            self.hello = self.receive(timeout, doing="starting")
            if self.hello.protocol != protocol.PROTOCOL:
                raise self._error(
                    f"speaks side protocol {self.hello.protocol}, this "
                    f"controller {protocol.PROTOCOL} (it runs the loaderbench of "
                    f"{self.hello.package}; use a version from the same "
                    "release line)"
                )
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def start_all(
        cls, specs: list[tuple[SideSpec, Path]], slot: tuple[int, int] = (0, 1)
    ) -> list[SideProcess]:
        """Start every side at once (they import torch side by side), then wait for each; on
        any failure every one of them is stopped."""
        sides: list[SideProcess] = []
        try:
            for spec, log in specs:
                sides.append(cls(spec, log, slot))
            for side in sides:
                side.ready()
        except BaseException:
            for side in sides:
                side.close()
            raise
        return sides

    # --- talking ------------------------------------------------------------------------------

    def send(self, message: protocol.Request) -> None:
        try:
            self._stdin.write(protocol.encode(message))
            self._stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._error("stopped (its input closed)", exited=True) from None
        self._owed.append(protocol.ANSWER_TO[type(message)])

    def receive(self, timeout: float, doing: str = "measuring") -> Any:
        """The answer owed to the oldest request unanswered (protocol.ANSWER_TO; the hello
        first); a SideError when the side fails it, answers something else, exits or stays
        silent."""
        deadline = time.monotonic() + timeout
        fd = self._stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._error(
                    f"gave no answer within {timeout:.0f} s while {doing}; stopped it"
                )
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise self._error(f"exited while {doing}", exited=True)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        expected = self._owed.popleft()
        try:
            answer = protocol.decode_answer(line, expected)
        except protocol.Malformed as exc:
            raise self._error(
                f"answered something that is not the side protocol while {doing} ({exc})"
            ) from None
        if isinstance(answer, protocol.Failed):
            raise self._error(f"failed while {doing}: {answer.error}")
        return answer

    def request(self, message: protocol.Request, timeout: float, doing: str = "measuring") -> Any:
        self.send(message)
        return self.receive(timeout, doing)

    # --- stopping -----------------------------------------------------------------------------

    def close(self) -> None:
        """Ask the side to quit; whatever is left of its process group is killed."""
        if self.proc.poll() is None:
            try:
                self._stdin.write(protocol.encode(protocol.Quit()))
                self._stdin.flush()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers, forkserver, resource tracker
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self._stdin, self._stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._log_file.close()

    def __enter__(self) -> SideProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _error(self, problem: str, exited: bool = False) -> SideError:
        if exited:
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                problem += f" with code {code}"
        last = last_line(self.log)
        said = f": {last}" if last else ""
        return SideError(
            f"side {self.spec.label} ({self.spec.what}) {problem}{said} (log: {self.log})"
        )


def last_line(path: Path) -> str:
    """The last non-empty line of a log (what a failing Python says last), shortened."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""
