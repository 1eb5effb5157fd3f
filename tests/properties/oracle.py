"""The oracle and its exact comparisons.

The reference for a batch is a recomputation: the collation of ``planned_sample(seed, i)`` over
the indices the sampler drew for that batch. Comparisons are exact: same nested structure and
types, same dtypes and shapes, ``torch.equal`` values (NaN equal to NaN at the same places, so a
dataset that yields NaN is not reported as changed). Every failure message carries the
configuration, the first differing batch and both values, so it can be reproduced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Sequence

import torch
from torch.utils.data import default_collate, default_convert

from bench_datasets.planned import planned_sample

_LEAVES = (int, float, str, bytes, bool, type(None))


class LoaderMismatch(AssertionError):
    """A loader delivered something other than what its oracle expects."""


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
    raise TypeError(f"cannot compare a {type(value).__name__} exactly; return tensors, dicts, "
                    "lists, tuples or Python scalars")


def unbatch(batch: Any) -> list[Any]:
    """The samples of a default-collated batch, each in the form ``default_collate([s])`` would
    give after unbatching: tensor rows, dicts and lists of fields, strings as they were."""
    if isinstance(batch, torch.Tensor):
        return [batch[i] for i in range(batch.shape[0])]
    if isinstance(batch, Mapping):
        columns = {key: unbatch(value) for key, value in batch.items()}
        size = _common_size(columns.values())
        return [type(batch)({key: column[i] for key, column in columns.items()})
                for i in range(size)]
    if isinstance(batch, (list, tuple)):
        if all(isinstance(v, (str, bytes)) for v in batch):
            return list(batch)  # default_collate keeps a batch of strings as a list of them
        columns = [unbatch(value) for value in batch]
        size = _common_size(columns)
        return [list(column[i] for column in columns) for i in range(size)]
    raise TypeError(f"cannot unbatch a {type(batch).__name__}")


def _common_size(columns: Iterable[list]) -> int:
    sizes = {len(column) for column in columns}
    if len(sizes) != 1:
        raise LoaderMismatch(f"batch fields have different sizes {sorted(sizes)}")
    return sizes.pop()


def normalised(sample: Any, collate: Callable = default_collate) -> Any:
    """A single sample in the form ``unbatch`` returns it from a batch."""
    return unbatch(collate([sample]))[0]


# --- the oracle ---------------------------------------------------------------------------------

def oracle_batches(drawn: Sequence, seed: int, collate: Callable = default_collate,
                   convert: Callable = default_convert) -> list:
    """What a loader must deliver for one epoch: each drawn batch of indices collated from the
    recomputed samples; for draws that are single indices (no automatic batching) the sample as
    the default ``collate_fn`` then converts it (which, as torch documents, turns tuples into lists)."""
    expected = []
    for item in drawn:
        if isinstance(item, list):
            expected.append(collate([planned_sample(seed, i) for i in item]))
        else:
            expected.append(convert(planned_sample(seed, item)))
    return expected


def check_in_order(delivered: list, expected: list, context: str) -> None:
    """Batch k delivered must equal batch k expected, for every k, and nothing more or less."""
    for k, (got, want) in enumerate(zip(delivered, expected)):
        difference = first_difference(got, want, f"batch {k}")
        if difference:
            raise LoaderMismatch(
                f"{context}\nfirst differing batch: {k} ({difference})\n"
                f"  delivered: {describe(got)}\n  expected:  {describe(want)}")
    if len(delivered) != len(expected):
        k = min(len(delivered), len(expected))
        extra = delivered[k] if len(delivered) > k else expected[k]
        which = "delivered an extra" if len(delivered) > k else "is missing"
        raise LoaderMismatch(
            f"{context}\n{len(delivered)} batches delivered, {len(expected)} expected: the loader "
            f"{which} batch {k}: {describe(extra)}")


def check_same_multiset(delivered: list, expected: list, context: str, *,
                        units: str = "batches") -> None:
    """Every expected item delivered exactly once, in any order; names what is missing or extra."""
    got, want = Counter(map(fingerprint, delivered)), Counter(map(fingerprint, expected))
    if got == want:
        return
    by_key = {fingerprint(v): v for v in [*expected, *delivered]}
    lines = [f"{context}\n{len(delivered)} {units} delivered, {len(expected)} expected"]
    for key in want:
        if got[key] < want[key]:
            lines.append(f"  omitted ({want[key] - got[key]}x): {describe(by_key[key], 200)}")
    for key in got:
        if got[key] > want[key]:
            kind = "duplicated" if want[key] else "unexpected"
            lines.append(f"  {kind} ({got[key] - want[key]}x extra): {describe(by_key[key], 200)}")
    raise LoaderMismatch("\n".join(lines))


def check_samples_exactly_once(batches: list, expected_samples: list, context: str, *,
                               collate: Callable = default_collate) -> None:
    """For any loader (iterable ones above all): the samples inside the delivered batches are the
    expected samples, each exactly once; duplicates and omissions are reported by sample."""
    delivered = [sample for batch in batches for sample in unbatch(batch)]
    expected = [normalised(sample, collate) for sample in expected_samples]
    check_same_multiset(delivered, expected, context, units="samples")


def check_iterable_loader(loader, expected_samples: list, context: str) -> None:
    """One epoch of any loader (an IterableDataset's above all) holds each expected sample exactly
    once: a duplicate (e.g. a dataset that does not shard across workers) or an omission is
    reported with the samples concerned. Uses the loader's own collate_fn for the expectation."""
    delivered = list(loader)
    if loader.batch_size is None:  # no automatic batching: collate_fn converts single samples
        check_same_multiset(delivered, [loader.collate_fn(s) for s in expected_samples], context,
                            units="samples")
    else:
        check_samples_exactly_once(delivered, expected_samples, context, collate=loader.collate_fn)
