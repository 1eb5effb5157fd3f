"""A dataset setting that makes every worker process hold more memory: how the memory verdict is
shown to catch a worker that starts holding more (``--lb-worker-ballast-mb=50``)."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, get_worker_info

from .sized import SizedDataset

MB = 2**20

#: What this (worker) process holds: allocated once, on its first sample, and written to, so that
#: every page is resident and counted in its PSS.
_HELD: list[np.ndarray] = []


class WorkerBallast(Dataset):
    """``dataset`` unchanged, except that each worker process allocates and keeps ``mb`` MB as it
    loads its first sample. The main process (num_workers=0) holds nothing more."""

    def __init__(self, dataset: SizedDataset, mb: float):
        if mb <= 0:
            raise ValueError(f"worker ballast must be > 0 MB, got {mb}")
        self.dataset, self.mb = dataset, mb

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        if not _HELD and get_worker_info() is not None:
            _HELD.append(np.ones(int(self.mb * MB), dtype=np.uint8))
        return self.dataset[index]

    def __getattr__(self, name):
        # Only reached for what the wrapper lacks (expected, close, profile, ...). Never for
        # "dataset" itself, which an unpickling copy has not set yet.
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def settings(self) -> dict:
        inner = self.dataset.settings() if hasattr(self.dataset, "settings") else {}
        return {**inner, "worker_ballast_mb": self.mb}
