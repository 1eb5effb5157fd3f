"""The type of a map-style dataset that knows its length."""

from __future__ import annotations

from typing import Any, Protocol


class SizedDataset(Protocol):
    """A map-style dataset with ``__len__``. torch's ``Dataset`` declares no ``__len__`` (a
    subclass may or may not define one), so code that takes ``len(dataset)`` asks for this."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...
