"""Frozen records that cross a boundary (a stored file, the pipe to a side process), read from and
written to JSON by their declared field types: one checker instead of one per record.

``read(cls, data, what)`` takes a JSON object as the frozen dataclass ``cls``: every field of its
declared type, a field left out at its default, a key that names no field ignored (a newer
writer's); anything else a ``Malformed`` naming ``what`` and the field. ``write(record)`` gives
every field back in declared order, tuples as lists and nested records as objects.

Numbers keep their JSON spelling: an ``int`` read into a ``float`` field stays an ``int``, so a
file read and written again is the same file (``2`` does not come back as ``2.0``).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class Malformed(ValueError):
    """Data that is not the record it should be; the message is one line naming the field."""


_FIELDS: dict[type, tuple[tuple[dataclasses.Field, Any], ...]] = {}


def _fields(cls: type) -> tuple[tuple[dataclasses.Field, Any], ...]:
    """(field, its resolved type) of every field of ``cls``, worked out once per class."""
    if cls not in _FIELDS:
        hints = typing.get_type_hints(cls)
        _FIELDS[cls] = tuple((f, hints[f.name]) for f in dataclasses.fields(cls) if f.init)
    return _FIELDS[cls]


def read(cls: type[T], data: Any, what: str) -> T:
    """``data`` as ``cls`` (module docstring); a Malformed saying what is wrong otherwise."""
    if not isinstance(data, dict):
        raise Malformed(f"{what} is {_kind(data)}, expected an object")
    given = {}
    for f, hint in _fields(cls):
        if f.name in data:
            given[f.name] = _value(hint, data[f.name], f"{what}'s {f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise Malformed(f"{what} has no {f.name}")
    return cls(**given)


def write(record: Any) -> dict:
    """Every field of ``record``, in declared order, as JSON values."""
    return {f.name: _json(getattr(record, f.name)) for f, _ in _fields(type(record))}


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return write(value)
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    return value


def _value(hint: Any, value: Any, what: str) -> Any:
    """``value`` checked against ``hint``: str, int, float, bool, None, X | Y, tuple[X, ...],
    dict[str, Any], Any or a dataclass."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _value(option, value, what)
            except Malformed:
                continue
        raise Malformed(f"{what} is {_kind(value)}, expected {_name(hint)}")
    if hint is Any:
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise Malformed(f"{what} is {_kind(value)}, expected a list")
        (item, _) = typing.get_args(hint)
        return tuple(_value(item, v, f"{what}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise Malformed(f"{what} is {_kind(value)}, expected an object")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return read(hint, value, what)
    if _fits(hint, value):
        return value
    raise Malformed(f"{what} is {_kind(value)}, expected {_name(hint)}")


def _fits(hint: Any, value: Any) -> bool:
    if hint is type(None):
        return value is None
    if hint is bool or isinstance(value, bool):
        return hint is bool and isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and _finite(value)
    return isinstance(hint, type) and isinstance(value, hint)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:60]


def _name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_name(h) for h in typing.get_args(hint))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))
