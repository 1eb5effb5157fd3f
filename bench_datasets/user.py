"""A user's own dataset, named ``package.module:callable``, measured as profile ``user``."""

from __future__ import annotations

import importlib
from typing import Callable

from torch.utils.data import Dataset, IterableDataset


class UserDatasetError(ValueError):
    """The user's dataset spec cannot be turned into a Dataset; the message says why and what to do."""


def resolve_factory(spec: str) -> Callable[[], object]:
    """Import ``package.module:callable`` and return the callable (imported only when named)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UserDatasetError(
            f"--lb-dataset={spec!r} is not of the form package.module:callable "
            "(e.g. mypkg.data:make_dataset)")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of user code is reported, not raised raw
        raise UserDatasetError(
            f"--lb-dataset: cannot import module {module_name!r}: {type(exc).__name__}: {exc} "
            "(is it installed or on PYTHONPATH?)") from exc
    target = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UserDatasetError(
                f"--lb-dataset: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise UserDatasetError(f"--lb-dataset: {spec!r} is not callable (got {type(target).__name__})")
    return target


def make_user_dataset(spec: str) -> Dataset:
    """Call the user's factory and check that it returned a Dataset."""
    factory = resolve_factory(spec)
    try:
        dataset = factory()
    except Exception as exc:
        raise UserDatasetError(
            f"--lb-dataset: {spec}() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(dataset, (Dataset, IterableDataset)):
        raise UserDatasetError(
            f"--lb-dataset: {spec}() returned {type(dataset).__name__}, not a "
            "torch.utils.data.Dataset or IterableDataset")
    if not isinstance(dataset, IterableDataset):
        try:
            len(dataset)
        except TypeError:
            raise UserDatasetError(
                f"--lb-dataset: {spec}() returned a map-style dataset without __len__; "
                "add __len__ or return an IterableDataset") from None
    return dataset
