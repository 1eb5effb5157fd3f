"""The side protocol's messages: each request and answer survives the wire as itself, the wire
keeps the form older sides speak, and a line that is not the message expected is refused in one
line naming what is wrong."""

from __future__ import annotations

import pytest

from loaderbench.machine import Fingerprint
from loaderbench.paired import protocol
from loaderbench.paired.protocol import (
    LEGACY_MEASURES,
    Done,
    Failed,
    Hello,
    Malformed,
    Quit,
    Round,
    Setup,
    Teardown,
    Timed,
    Warmed,
)

REQUESTS = [
    Setup("a", {"profile": "cpu", "num_workers": 0, "id": "cpu-w0"}, "throughput", cpu=1),
    Round("b", repeat=7),
    Teardown("a"),
    Teardown(),
    Quit(),
]
ANSWERS = [
    Warmed(0.25),
    Warmed(None),
    Timed(2),  # an int stays one
    Done(),
    Hello(1, ("throughput",), 42, "python", "/x", Fingerprint(torch="2.13.0"), {"a": 1}),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=repr)
def test_every_request_reads_back_as_itself(request_):
    assert protocol.decode_request(protocol.encode(request_)) == request_


@pytest.mark.parametrize("answer", ANSWERS, ids=repr)
def test_every_answer_reads_back_as_itself(answer):
    assert protocol.decode_answer(protocol.encode(answer), type(answer)) == answer


def test_the_wire_is_the_one_older_sides_speak():
    assert protocol.encode(Round("a", 3)) == b'{"op":"round","slot":"a","repeat":3}\n'
    assert protocol.encode(Warmed(None)) == b'{"ok":true,"warm_s":null}\n'
    assert protocol.encode(Failed("E: x")) == b'{"ok":false,"error":"E: x"}\n'


def test_a_hello_that_lists_no_measures_offers_the_legacy_ones():
    said = b'{"op":"hello","ok":true,"protocol":1}'
    assert protocol.decode_answer(said, Hello).measures == LEGACY_MEASURES


def test_a_failed_answer_is_failed_whatever_was_expected():
    assert protocol.decode_answer(b'{"ok":false,"error":"E: x"}', Timed) == Failed("E: x")


@pytest.mark.parametrize(
    "line, problem",
    [
        (b'{"op":"fly"}', "unknown request 'fly'; valid: setup, round, teardown, quit"),
        (b'{"op":"setup","slot":"a","measure":"epoch"}', "the setup request has no case"),
        (b'{"op":"round","repeat":"3"}', "the round request's repeat is str '3', expected int"),
        (b'{"op":"round","repeat":true}', "the round request's repeat is bool True, expected int"),
        (b"[1]", "expected a JSON object, got list"),
        (b"Traceback (most", "not JSON: b'Traceback (most'"),
    ],
)
def test_a_malformed_request_is_refused_naming_what_is_wrong(line, problem):
    with pytest.raises(Malformed) as refused:
        protocol.decode_request(line)
    assert str(refused.value) == problem


@pytest.mark.parametrize(
    "line, expected, problem",
    [
        (b'{"ok":true,"warm_s":0.1}', Timed, "the timed answer has no seconds"),
        (b'{"ok":true,"seconds":NaN}', Timed, "the timed answer's seconds is float nan"),
        (b'{"warm_s":0.1}', Warmed, "an answer without 'ok'"),
        (b'{"ok":true,"protocol":"1"}', Hello, "the hello answer's protocol is str '1'"),
    ],
)
def test_an_unexpected_answer_is_refused_naming_what_is_wrong(line, expected, problem):
    with pytest.raises(Malformed, match=problem):
        protocol.decode_answer(line, expected)
