"""The IterableDataset form of any profile, sharded correctly across workers."""

from __future__ import annotations

from torch.utils.data import IterableDataset, get_worker_info

from .sized import SizedDataset


class ShardedIterable(IterableDataset):
    """Streams ``dataset[i]`` for i in order; worker k of n yields only the indices i with i % n == k.

    Without that split, every worker would replay the whole stream (see tests/properties for the
    check that catches it).
    """

    def __init__(self, dataset: SizedDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def indices(self) -> range:
        info = get_worker_info()
        if info is None:
            return range(len(self.dataset))
        return range(info.id, len(self.dataset), info.num_workers)

    def __iter__(self):
        for index in self.indices():
            yield self.dataset[index]
