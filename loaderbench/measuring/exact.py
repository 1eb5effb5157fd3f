"""Exact comparison of samples and batches: the one notion of "the same data" the suite uses.

Two values are the same when they have the same nested structure and types (a tuple is not a
list), tensors the same dtype and shape and ``torch.equal`` values (NaN equal to NaN at the same
places, so a dataset that yields NaN is not reported as changed), and Python scalars are equal.
Never a tolerance: a loader must deliver exactly the bytes the dataset returned.

``first_difference`` says where two values differ, ``fingerprint`` gives a hashable key equal for
exactly the values ``first_difference`` calls the same (for multiset comparisons), ``describe``
renders a value for a one-line message. Used by the property tests' oracle and by the diagnoses
of ``loaderbench tune``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

_LEAVES = (int, float, str, bytes, bool, type(None))


def first_difference(got: Any, expected: Any, path: str = "") -> str | None:
    """Where and how ``got`` differs from ``expected``; None when they are exactly equal."""
    if type(got) is not type(expected):
        return f"{path or 'value'}: type {type(got).__name__} != {type(expected).__name__}"
    if isinstance(got, torch.Tensor):
        if got.dtype != expected.dtype:
            return f"{path}: dtype {got.dtype} != {expected.dtype}"
        if got.shape != expected.shape:
            return f"{path}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
        if not _tensors_equal(got, expected):
            return f"{path}: values differ"
        return None
    if isinstance(got, Mapping):
        if list(got.keys()) != list(expected.keys()):
            return f"{path}: keys {list(got.keys())} != {list(expected.keys())}"
        for key in got:
            found = first_difference(got[key], expected[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(got, (list, tuple)):
        if len(got) != len(expected):
            return f"{path}: length {len(got)} != {len(expected)}"
        for position, (g, e) in enumerate(zip(got, expected)):
            found = first_difference(g, e, f"{path}[{position}]")
            if found:
                return found
        return None
    if isinstance(got, float):
        same = got == expected or (got != got and expected != expected)
        return None if same else f"{path}: {got!r} != {expected!r}"
    return None if got == expected else f"{path}: {got!r} != {expected!r}"


def _tensors_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if torch.equal(a, b):
        return True
    if not (a.is_floating_point() or a.is_complex()):
        return False
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
    return torch.equal(nan_a, nan_b) and torch.equal(a[~nan_a], b[~nan_b])


def describe(value: Any, limit: int = 400) -> str:
    """A short readable rendering of a batch or sample for failure messages."""
    text = _render(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def _render(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor({value.tolist()}, dtype={value.dtype})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_render(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def fingerprint(value: Any) -> Any:
    """A hashable key equal for two values exactly when ``first_difference`` finds nothing."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous()
        if data.is_floating_point():
            # One bit pattern per NaN, so NaN-at-the-same-place compares equal, as above.
            data = torch.where(torch.isnan(data), torch.full_like(data, float("nan")), data)
        raw = data.reshape(-1).view(torch.uint8) if data.numel() else data
        return ("tensor", str(value.dtype), tuple(value.shape), bytes(raw.numpy().tobytes()))
    if isinstance(value, Mapping):
        return (type(value).__name__, tuple((k, fingerprint(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(fingerprint(v) for v in value))
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    if isinstance(value, _LEAVES):
        return (type(value).__name__, value)
    raise TypeError(
        f"cannot compare a {type(value).__name__} exactly; return tensors, dicts, "
        "lists, tuples or Python scalars"
    )
