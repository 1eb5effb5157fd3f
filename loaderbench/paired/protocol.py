"""What the controller and a side process say to each other: one JSON object per line.

The controller writes requests to the side's standard input; the side answers on its own
standard output, which it keeps for this alone (anything else it prints goes to its standard
error). Every side says ``hello`` first, with the protocol version it speaks: a side built from
another version of loaderbench (a git ref, a baseline's recipe) must speak the same one.

Requests: ``setup`` (a case and a measure: build the loader, warm it), ``round`` (time one
round), ``teardown`` (stop the loader's workers), ``quit``. ``hello`` lists the measures the side
offers (``measures``); a side that lists none offers ``LEGACY_MEASURES``. Every answer has ``ok``; a failed
request answers ``{"ok": false, "error": "<one line>"}``.
"""

from __future__ import annotations

import json

PROTOCOL = 1
MEASURES = ("throughput", "epoch", "startup", "overlap")
#: What a side measures when its ``hello`` does not say (loaderbench before ``epoch`` existed):
#: a request for anything else is refused by such a side.
LEGACY_MEASURES = ("throughput", "startup", "overlap")


def measures_of(hello: dict) -> tuple[str, ...]:
    """The measures a side offers, from its ``hello``."""
    offered = hello.get("measures")
    return tuple(offered) if isinstance(offered, list) else LEGACY_MEASURES


def encode(message: dict) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"expected a JSON object, got {type(message).__name__}")
    return message
