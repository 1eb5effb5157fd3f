"""The oracle and the checks built on the exact comparisons of loaderbench.measuring.exact.

The reference for a batch is a recomputation: the collation of ``planned_sample(seed, i)`` over
the indices the sampler drew for that batch. Comparisons are exact: same nested structure and
types, same dtypes and shapes, ``torch.equal`` values (NaN equal to NaN at the same places, so a
dataset that yields NaN is not reported as changed). Every failure message carries the
configuration, the first differing batch and both values, so it can be reproduced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import default_collate, default_convert

from bench_datasets.planned import planned_sample
from loaderbench.measuring.exact import describe, fingerprint, first_difference


class LoaderMismatch(AssertionError):
    """A loader delivered something other than what its oracle expects."""


def unbatch(batch: Any) -> list[Any]:
    """The samples of a default-collated batch, each in the form ``default_collate([s])`` would
    give after unbatching: tensor rows, dicts and lists of fields, strings as they were."""
    if isinstance(batch, torch.Tensor):
        return [batch[i] for i in range(batch.shape[0])]
    if isinstance(batch, Mapping):
        columns = {key: unbatch(value) for key, value in batch.items()}
        size = _common_size(columns.values())
        return [
            type(batch)({key: column[i] for key, column in columns.items()}) for i in range(size)
        ]
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


def oracle_batches(
    drawn: Sequence,
    seed: int,
    collate: Callable = default_collate,
    convert: Callable = default_convert,
) -> list:
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
                f"  delivered: {describe(got)}\n  expected:  {describe(want)}"
            )
    if len(delivered) != len(expected):
        k = min(len(delivered), len(expected))
        extra = delivered[k] if len(delivered) > k else expected[k]
        which = "delivered an extra" if len(delivered) > k else "is missing"
        raise LoaderMismatch(
            f"{context}\n{len(delivered)} batches delivered, {len(expected)} expected: the loader "
            f"{which} batch {k}: {describe(extra)}"
        )


def check_same_multiset(
    delivered: list, expected: list, context: str, *, units: str = "batches"
) -> None:
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


def check_samples_exactly_once(
    batches: list, expected_samples: list, context: str, *, collate: Callable = default_collate
) -> None:
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
        check_same_multiset(
            delivered, [loader.collate_fn(s) for s in expected_samples], context, units="samples"
        )
    else:
        check_samples_exactly_once(delivered, expected_samples, context, collate=loader.collate_fn)
