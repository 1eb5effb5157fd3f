"""A user's own dataset, named ``package.module:callable``, measured as profile ``user``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sized
from typing import cast

from torch.utils.data import Dataset, IterableDataset


class UserDatasetError(ValueError):
    """The user's dataset spec cannot be turned into a Dataset; the message says why and what to do."""


def resolve_factory(spec: str, option: str = "--lb-dataset") -> Callable[..., object]:
    """Import ``package.module:callable`` and return the callable (imported only when named);
    errors name ``option``, the setting the spec came from."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UserDatasetError(
            f"{option}={spec!r} is not of the form package.module:callable "
            "(e.g. mypkg.data:make_dataset)"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of user code is reported, not raised raw
        raise UserDatasetError(
            f"{option}: cannot import module {module_name!r}: {type(exc).__name__}: {exc} "
            "(is it installed or on PYTHONPATH?)"
        ) from exc
    target = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UserDatasetError(
                f"{option}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(target):
        raise UserDatasetError(f"{option}: {spec!r} is not callable (got {type(target).__name__})")
    return target


def make_user_dataset(spec: str, option: str = "--lb-dataset") -> Dataset:
    """Call the user's factory and check that it returned a Dataset; errors name ``option``."""
    factory = resolve_factory(spec, option)
    try:
        dataset = factory()
    except Exception as exc:
        raise UserDatasetError(f"{option}: {spec}() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(dataset, (Dataset, IterableDataset)):
        raise UserDatasetError(
            f"{option}: {spec}() returned {type(dataset).__name__}, not a "
            "torch.utils.data.Dataset or IterableDataset"
        )
    if not isinstance(dataset, IterableDataset):
        try:
            len(cast(Sized, dataset))  # a probe: Dataset declares no __len__
        except TypeError:
            raise UserDatasetError(
                f"{option}: {spec}() returned a map-style dataset without __len__; "
                "add __len__ or return an IterableDataset"
            ) from None
    return dataset
