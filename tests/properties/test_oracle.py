"""The exact comparison the properties rely on: what it calls equal and what it does not."""

import math

import pytest
import torch
from torch.utils.data import default_collate

from bench_datasets.planned import planned_sample

from .oracle import (
    LoaderMismatch,
    check_samples_exactly_once,
    fingerprint,
    first_difference,
    normalised,
    unbatch,
)


@pytest.mark.parametrize(
    "got,expected,where",
    [
        (torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64), "dtype"),
        (torch.tensor([1, 2]), torch.tensor([[1, 2]]), "shape"),
        (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-6]), "values differ"),
        ((1, 2), [1, 2], "type tuple != list"),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, "keys"),
        ({"a": (1.0, "x")}, {"a": (1.0, "y")}, "['a'][1]"),
        (1, 1.0, "type int != float"),
    ],
)
def test_near_misses_are_differences(got, expected, where):
    """Dtype, shape, a 1e-6 value change, container and key order, and int against float all
    count: nothing is compared approximately."""
    difference = first_difference(got, expected)
    assert difference is not None and where in difference, difference
    assert fingerprint(got) != fingerprint(expected)


def test_nan_at_the_same_place_is_equal():
    a = torch.tensor([1.0, float("nan")])
    assert first_difference(a, a.clone()) is None
    assert first_difference(math.nan, math.nan) is None
    assert fingerprint(a) == fingerprint(a.clone())
    assert first_difference(a, torch.tensor([float("nan"), 1.0])) is not None


def test_unbatching_a_collated_batch_gives_back_each_normalised_sample():
    samples = [planned_sample(3, i) for i in range(5)]
    assert [fingerprint(s) for s in unbatch(default_collate(samples))] == [
        fingerprint(normalised(s)) for s in samples
    ]


def test_duplicates_and_omissions_are_named_by_sample():
    samples = [planned_sample(1, i) for i in range(4)]
    delivered = [default_collate([samples[0], samples[1]]), default_collate([samples[1]])]
    with pytest.raises(LoaderMismatch) as caught:
        check_samples_exactly_once(delivered, samples, "demo")
    message = str(caught.value)
    assert "duplicated (1x extra): {'index': tensor(1" in message
    assert "omitted (1x): {'index': tensor(2" in message
    assert "omitted (1x): {'index': tensor(3" in message
