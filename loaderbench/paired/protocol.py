"""What the controller and a side process say to each other: one JSON object per line, each a
typed message below.

The controller writes requests to the side's standard input; the side answers on its own
standard output, which it keeps for this alone (anything else it prints goes to its standard
error). Every side says ``Hello`` first, with the protocol version it speaks: a side built from
another version of loaderbench (a git ref, a baseline's recipe) must speak the same one.

Requests (``op`` names them): ``Setup`` (a case and a measure: build the loader, warm it; answered
``Warmed``), ``Round`` (time one round; ``Timed``), ``Teardown`` (stop the loader's workers;
``Done``), ``Quit`` (``Done``). Every answer has ``ok``; a failed request answers ``Failed``,
``{"ok": false, "error": "<one line>"}``. ``Hello`` lists the measures the side offers; a side
that lists none offers ``LEGACY_MEASURES``.

``decode_request`` and ``decode_answer`` refuse a line that is not the message expected there
(not JSON, an unknown request, a field missing or of the wrong type) with a ``Malformed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from loaderbench import typed
from loaderbench.machine import Fingerprint
from loaderbench.typed import Malformed

PROTOCOL = 1
MEASURES = ("throughput", "epoch", "startup", "overlap")
#: What a side measures when its ``hello`` does not say (loaderbench before ``epoch`` existed):
#: a request for anything else is refused by such a side.
LEGACY_MEASURES = ("throughput", "startup", "overlap")

__all__ = ["Malformed"]


# --- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """Build the loader of ``case`` (grid.Case.as_dict) for ``measure`` in ``slot`` and warm it;
    ``cpu``: pin the side to that core first (a duet)."""

    op: ClassVar[str] = "setup"
    slot: str
    case: dict[str, Any]
    measure: str
    cpu: int | None = None


@dataclass(frozen=True)
class Round:
    """Time one round of the loader in ``slot``, ``repeat`` times over."""

    op: ClassVar[str] = "round"
    slot: str = "a"
    repeat: int = 1


@dataclass(frozen=True)
class Teardown:
    """Stop the loader in ``slot`` (None: every slot)."""

    op: ClassVar[str] = "teardown"
    slot: str | None = None


@dataclass(frozen=True)
class Quit:
    op: ClassVar[str] = "quit"


Request = Setup | Round | Teardown | Quit
REQUESTS: dict[str, type[Request]] = {r.op: r for r in (Setup, Round, Teardown, Quit)}


# --- answers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """What a side says when it is ready: its protocol, measures, process, code and machine, and
    the settings it runs with (config.SideSettings, the loader described)."""

    protocol: int
    measures: tuple[str, ...] = LEGACY_MEASURES
    pid: int | None = None
    executable: str | None = None
    package: str | None = None
    fingerprint: Fingerprint | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Warmed:
    """Set up; the seconds of the warm round, or None when nothing was warmed."""

    warm_s: float | None


@dataclass(frozen=True)
class Timed:
    """Seconds per repeat of the round."""

    seconds: float


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Failed:
    """The request failed; the side goes on."""

    error: str = "no reason given"


Answer = Hello | Warmed | Timed | Done | Failed
#: The answer each request gets when it succeeds.
ANSWER_TO: dict[type[Request], type[Answer]] = {
    Setup: Warmed,
    Round: Timed,
    Teardown: Done,
    Quit: Done,
}
A = TypeVar("A", Hello, Warmed, Timed, Done)


def encode(message: Request | Answer) -> bytes:
    """One line of the protocol: a request with its ``op`` first, an answer with its ``ok`` (and
    a hello with ``op`` too, so that a line read out of context says what it is)."""
    fields = typed.write(message)
    if isinstance(message, Request):
        head: dict[str, Any] = {"op": message.op}
    elif isinstance(message, Hello):
        head = {"op": "hello", "ok": True}
    else:
        head = {"ok": not isinstance(message, Failed)}
    return (json.dumps({**head, **fields}, separators=(",", ":")) + "\n").encode()


def decode_request(line: bytes) -> Request:
    """The request on ``line``; a Malformed when it is none (an unknown ``op`` included)."""
    message = _object(line)
    op = message.get("op")
    if op not in REQUESTS:
        raise Malformed(f"unknown request {op!r}; valid: {', '.join(REQUESTS)}")
    return typed.read(REQUESTS[op], message, f"the {op} request")


def decode_answer(line: bytes, expected: type[A]) -> A | Failed:
    """The answer on ``line`` as ``expected`` (or Failed, when ``ok`` is false); a Malformed when
    it is neither."""
    message = _object(line)
    ok = message.get("ok")
    if ok is False:
        return typed.read(Failed, message, "a failed answer")
    if ok is not True:
        raise Malformed(f"an answer without 'ok': {_short(line)}")
    return typed.read(expected, message, f"the {expected.__name__.lower()} answer")


def _object(line: bytes) -> dict:
    try:
        message = json.loads(line)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise Malformed(f"not JSON: {_short(line)}") from None
    if not isinstance(message, dict):
        raise Malformed(f"expected a JSON object, got {type(message).__name__}")
    return message


def _short(line: bytes) -> str:
    return repr(line[:80])
