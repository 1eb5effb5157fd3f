"""What the controller and a side process say to each other: one JSON object per line.

The controller writes requests to the side's standard input; the side answers on its own
standard output, which it keeps for this alone (anything else it prints goes to its standard
error). Every side says ``hello`` first, with the protocol version it speaks: a side built from
another version of loaderbench (a git ref, a baseline's recipe) must speak the same one.

Requests: ``setup`` (a case and a measure: build the loader, warm it), ``round`` (time one
round), ``teardown`` (stop the loader's workers), ``quit``. Every answer has ``ok``; a failed
request answers ``{"ok": false, "error": "<one line>"}``.
"""

from __future__ import annotations

import json

PROTOCOL = 1
MEASURES = ("throughput", "startup", "overlap")


def encode(message: dict) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"expected a JSON object, got {type(message).__name__}")
    return message
