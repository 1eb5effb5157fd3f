"""Example user datasets that each show one diagnosis of ``loaderbench tune``:

    loaderbench tune bench_datasets.misbehaving:make_copied_generator

=======================  =====================  ==============================================
factory                  diagnosis              what is wrong
=======================  =====================  ==============================================
make_copied_generator    copied-random-state    noise drawn from a numpy generator made in
                                                ``__init__``: every worker gets a copy of its
                                                state and repeats the others' augmentations
make_global_generator    copied-random-state    the same with a numpy generator at module level
                                                (``NOISE``): no attribute holds it
make_copied_random       copied-random-state    crop offsets from a ``random.Random`` made in
                                                ``__init__``
make_captured_generator  copied-random-state    a transform (a closure) capturing a generator
make_nondeterministic    nondeterministic       a salt from ``os.urandom`` in every sample: no
                                                two fetches agree, with workers or without
make_unsharded_stream    unsharded-iterable     an IterableDataset that ignores
                                                ``get_worker_info()``: with N workers every
                                                sample comes N times
make_unpicklable         unpicklable            an open file handle as an attribute: spawn and
                                                forkserver workers cannot receive the dataset
make_growing_list        copy-on-read           200,000 small Python dicts read each epoch:
                                                the refcount writes copy their pages into every
                                                fork worker
make_hanging             worker-hang            blocks at index 37, inside a worker only
make_crashing            worker-crash           the worker fetching index 21 is killed
make_raising             worker-error           index 40 raises (bench_datasets.faulty's)
=======================  =====================  ==============================================

The clean counterparts are bench_datasets.examples' ``make_dataset`` and ``make_iterable``, for
which ``loaderbench tune`` diagnoses nothing, and ``make_augmented`` (augmentation from torch's
global generator, which DataLoader reseeds per worker), which gets only the random-augmentation
note. Classes live at module level so that spawn and
forkserver workers can unpickle them (all but make_unpicklable's, on purpose). The deadly and
hanging ones act only inside a DataLoader worker, so inspecting them in one process is safe.
"""

from __future__ import annotations

import os
import random
import signal
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from .examples import make_dataset, make_iterable  # noqa: F401  (the clean examples, re-exported)
from .faulty import HangingDataset, SelfKillingDataset, make_raising  # noqa: F401


class NoisyImages(Dataset):
    """4x4 "images" that are a pure function of the index, plus noise from ``self.rng``: a
    generator created once, in ``__init__``. The classic bug: each fork or spawn worker starts
    from a copy of the same generator state, so the workers add the same noise sequence."""

    def __init__(self, length: int = 64, seed: int = 0):
        self.length = length
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        image = torch.arange(16, dtype=torch.float32).reshape(4, 4) + index
        noise = torch.from_numpy(self.rng.normal(size=(4, 4)).astype(np.float32))
        return image + noise, index


#: A generator at module level, as scripts often make one: copied into every worker unchanged.
NOISE = np.random.default_rng(0)


class GlobalNoiseImages(NoisyImages):
    """NoisyImages drawing its noise from the module-level ``NOISE`` (no attribute holds it)."""

    def __getitem__(self, index: int):
        image = torch.arange(16, dtype=torch.float32).reshape(4, 4) + index
        noise = torch.from_numpy(NOISE.normal(size=(4, 4)).astype(np.float32))
        return image + noise, index


class RandomCrops(Dataset):
    """8x8 "images" cropped to 4x4 at an offset, and brightened, by draws from ``self.rng``, a
    ``random.Random`` made in ``__init__``: copied into every worker."""

    def __init__(self, length: int = 64, seed: int = 0):
        self.length = length
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        image = torch.arange(64, dtype=torch.float32).reshape(8, 8) + index
        top, left = self.rng.randrange(5), self.rng.randrange(5)
        # and a brightness: two workers' draws differ for sure once reseeded (offsets alone
        # coincide one time in 25)
        return image[top : top + 4, left : left + 4] * self.rng.uniform(0.8, 1.2)


def jitter(seed: int):
    """A transform adding noise from a generator that only its closure holds."""
    rng = np.random.default_rng(seed)

    def add_noise(image: torch.Tensor) -> torch.Tensor:
        return image + torch.from_numpy(rng.normal(size=image.shape).astype(np.float32))

    return add_noise


class TransformedImages(Dataset):
    """4x4 "images" through ``self.transform``, a closure made by ``jitter``."""

    def __init__(self, length: int = 64, seed: int = 0):
        self.length = length
        self.transform = jitter(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(torch.arange(16, dtype=torch.float32).reshape(4, 4) + index)


class SaltedTokens(Dataset):
    """Token ids of the index plus a fresh salt from ``os.urandom``: no two fetches agree."""

    def __init__(self, length: int = 64):
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        salt = int.from_bytes(os.urandom(4), "little")
        return torch.tensor([index, salt], dtype=torch.int64)


class UnshardedStream(IterableDataset):
    """``length`` samples streamed by every worker in full: ``__iter__`` never asks
    ``get_worker_info()`` which part is its own."""

    def __init__(self, length: int = 48):
        self.length = length

    def __iter__(self):
        for index in range(self.length):
            yield torch.tensor([index, index * index], dtype=torch.int64)


class RecordFile(Dataset):
    """Fixed-size records read with ``os.pread`` from a file opened in ``__init__``. Fork workers
    inherit the open descriptor and work; spawn and forkserver workers must receive the dataset
    pickled, and an open file cannot be. ``close()`` it when done."""

    RECORD_BYTES = 16

    def __init__(self, path: str = __file__):
        self.path = path
        self.handle = open(path, "rb")
        self.length = os.fstat(self.handle.fileno()).st_size // self.RECORD_BYTES

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        # pread, not seek + read: forked workers share the descriptor's file offset.
        record = os.pread(self.handle.fileno(), self.RECORD_BYTES, index * self.RECORD_BYTES)
        return torch.frombuffer(bytearray(record), dtype=torch.uint8)

    def close(self) -> None:
        self.handle.close()


class _Record(TypedDict):
    id: int
    label: int
    score: float


class RecordList(Dataset):
    """``records`` small Python dicts in one list, each sample read from one of them. Reading a
    dict writes its reference count (and its values'), which un-shares the memory page it lives
    on: every fork worker ends the epoch with its own copy of most of the list."""

    def __init__(self, records: int = 200_000):
        self.records: list[_Record] = [
            {"id": j, "label": j % 10, "score": j / records} for j in range(records)
        ]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[int, int, float]:
        record = self.records[index]
        return record["id"], record["label"], record["score"]


class WorkerHangingDataset(HangingDataset):
    """Hangs at the chosen indices inside a DataLoader worker only (as a lock or connection that
    does not survive fork would); in the main process every index loads."""

    def fault(self, index: int) -> None:
        if get_worker_info() is not None:
            super().fault(index)


def make_copied_generator() -> NoisyImages:
    """64 noisy images whose noise generator is copied into every worker."""
    return NoisyImages()


def make_global_generator() -> GlobalNoiseImages:
    """64 noisy images whose noise comes from the module-level generator NOISE."""
    return GlobalNoiseImages()


def make_copied_random() -> RandomCrops:
    """64 random crops whose offsets come from a random.Random made in __init__."""
    return RandomCrops()


def make_captured_generator() -> TransformedImages:
    """64 images through a transform whose closure holds a numpy generator."""
    return TransformedImages()


def make_nondeterministic() -> SaltedTokens:
    """64 samples, each fetch salted from os.urandom."""
    return SaltedTokens()


def make_unsharded_stream() -> UnshardedStream:
    """48 samples, each yielded by every worker."""
    return UnshardedStream()


def make_unpicklable() -> RecordFile:
    """This module's source as 16-byte records, read from a file handle opened in __init__."""
    return RecordFile()


def make_growing_list() -> RecordList:
    """200,000 records as Python dicts in one list (about 50 MB of objects)."""
    return RecordList()


def make_hanging() -> WorkerHangingDataset:
    """64 samples; a worker fetching index 37 blocks for an hour."""
    return WorkerHangingDataset(64, at=37)


def make_crashing() -> SelfKillingDataset:
    """64 samples; the worker fetching index 21 kills itself (SIGKILL)."""
    return SelfKillingDataset(64, at=21, signum=signal.SIGKILL)
