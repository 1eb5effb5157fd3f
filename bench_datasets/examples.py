"""Example user datasets, in the form ``--lb-dataset=package.module:callable`` expects:

    pytest tests/properties --lb-dataset=bench_datasets.examples:make_dataset
    pytest tests/properties --lb-dataset=bench_datasets.examples:make_iterable
    loaderbench tune bench_datasets.examples:make_light --step-ms 20

A factory takes no arguments and returns a Dataset or IterableDataset. Classes live at module
level so that spawn and forkserver workers can unpickle them.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info


class TokenizedText(Dataset):
    """A stand-in for a tokenised text corpus: token ids, a label, a weight and the source text,
    each a pure function of the index."""

    def __init__(self, lines: int = 200, seq_len: int = 16, seed: int = 0):
        self.lines, self.seq_len, self.seed = lines, seq_len, seed

    def __len__(self) -> int:
        return self.lines

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.lines:
            raise IndexError(f"line {index} out of range for {self.lines} lines")
        rng = np.random.default_rng([self.seed, index])
        return {
            "tokens": torch.from_numpy(rng.integers(0, 32000, size=self.seq_len)),
            "label": int(rng.integers(0, 5)),
            "weight": float(rng.random()),
            "text": f"line {index}",
        }


class TokenStream(IterableDataset):
    """The same corpus streamed, each worker taking every n-th line (sharded by worker info)."""

    def __init__(self, corpus: TokenizedText):
        self.corpus = corpus

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for index in range(start, len(self.corpus), step):
            yield self.corpus[index]


def make_dataset() -> TokenizedText:
    return TokenizedText()


def make_iterable() -> TokenStream:
    return TokenStream(TokenizedText(lines=120))


class LightBatches(Dataset):
    """A dataset that is cheap to load: a batch of 64 takes about 2 ms (a wait of ``wait_ms`` per
    batch, fetched through ``__getitems__``, plus indexing and collation), as a small
    preprocessed dataset would. Beside a longer training step, loading it is not the
    bottleneck."""

    def __init__(self, length: int = 6400, wait_ms: float = 1.5):
        self.rows = torch.arange(length * 16, dtype=torch.int64).reshape(length, 16)
        self.batch_s = wait_ms / 1000

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.rows[index]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        time.sleep(self.batch_s)
        return [self[i] for i in indices]


def make_light() -> LightBatches:
    return LightBatches()
