"""The cost profiles: datasets whose per-sample cost is declared and tunable.

Rule of this file (as in numpy's benchmark factories): results must stay comparable across
versions, so a profile's content and default cost are only ever appended to, never changed. A new
idea is a new profile or a new knob with the old default.

Every sample is ``(data, index)``: ``data`` is a pure function of ``(seed, index)`` and ``index``
says where the sample came from, so any loader output can be checked against
``dataset.expected(index)``. ``__getitem__`` pays the profile's cost; ``expected`` recomputes the
same content (paying only what the content itself needs, e.g. the JPEG decode).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

_MASK64 = 0xFFFFFFFFFFFFFFFF


def sample_values(seed: int, index: int, count: int) -> torch.Tensor:
    """``count`` float32 values drawn from a generator keyed by ``(seed, index)`` alone."""
    rng = np.random.default_rng([seed, index])
    return torch.from_numpy(rng.standard_normal(count, dtype=np.float32))


def spin(seed: int, index: int, iterations: int) -> int:
    """GIL-bound pure-Python work: an LCG chain whose result depends on every step."""
    x = (seed * 1_000_003 + index) & _MASK64
    for _ in range(iterations):
        x = (x * 6364136223846793005 + 1442695040888963407) & _MASK64
    return x


class ProfiledDataset(Dataset):
    """Map-style dataset of ``length`` samples whose cost is one named knob (``cost_knob``)."""

    profile = "base"
    cost_knob = ""
    # What parallel speed-up is ideal: "cores" for work that needs a CPU, "workers" for waiting.
    ideal_parallelism = "cores"

    def __init__(self, length: int, seed: int = 0):
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length = length
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def _check(self, index: int) -> int:
        if not 0 <= index < self.length:
            raise IndexError(f"{self.profile}: index {index} out of range for length {self.length}")
        return index

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = self._check(index)
        self._pay(index)
        return self.expected(index), index

    def _pay(self, index: int) -> None:
        """The cost of one sample beyond computing its content (default: nothing more)."""

    def expected(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The settings in effect, recorded beside every result."""
        return {
            "profile": self.profile,
            "length": self.length,
            "seed": self.seed,
            "cost_knob": self.cost_knob,
            "cost": getattr(self, self.cost_knob, None),
        }

    def close(self) -> None:
        """Release what set-up made (files); safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NoopDataset(ProfiledDataset):
    """Returns a small precomputed tensor: what is left is the loader's own overhead."""

    profile = "noop"
    cost_knob = "features"

    def __init__(self, length: int = 2048, seed: int = 0, features: int = 16):
        super().__init__(length, seed)
        self.features = features
        self._table = (
            torch.stack([sample_values(seed, i, features) for i in range(length)])
            if length
            else torch.empty(0, features)
        )

    def __getitem__(self, index: int):
        # A clone, so a sample never drags the whole table's storage into shared memory.
        return self._table[self._check(index)].clone(), index

    def expected(self, index: int) -> torch.Tensor:
        return sample_values(self.seed, index, self.features)


class CpuDataset(ProfiledDataset):
    """Pure-Python work holding the GIL: the case worker processes exist for."""

    profile = "cpu"
    cost_knob = "iterations"

    def __init__(self, length: int = 512, seed: int = 0, iterations: int = 8000):
        super().__init__(length, seed)
        self.iterations = iterations  # 8000 took ~1 ms per sample on the 2-core reference machine

    def expected(self, index: int) -> torch.Tensor:
        x = spin(self.seed, index, self.iterations)
        return torch.tensor([x >> 32, x & 0xFFFFFFFF], dtype=torch.int64)


class IoDataset(ProfiledDataset):
    """A fixed latency that releases the GIL, like a read from remote storage."""

    profile = "io"
    cost_knob = "latency_ms"
    ideal_parallelism = "workers"

    def __init__(self, length: int = 256, seed: int = 0, latency_ms: float = 2.0):
        super().__init__(length, seed)
        self.latency_ms = latency_ms

    def _pay(self, index: int) -> None:
        time.sleep(self.latency_ms / 1000.0)

    def expected(self, index: int) -> torch.Tensor:
        return sample_values(self.seed, index, 16)


def bytes_for(seed: int, index: int, count: int) -> bytes:
    """``count`` bytes drawn from a generator keyed by ``(seed, index)`` alone."""
    return np.random.default_rng([seed, index]).bytes(count)


class DiskDataset(ProfiledDataset):
    """Reads real files written at set-up into a temporary folder (removed by ``close``)."""

    profile = "disk"
    cost_knob = "sample_bytes"

    def __init__(
        self,
        length: int = 512,
        seed: int = 0,
        sample_bytes: int = 65536,
        shards: int = 8,
        root: str | None = None,
    ):
        super().__init__(length, seed)
        self.sample_bytes = sample_bytes
        self.shards = max(1, shards)
        self._owner_pid = os.getpid()
        self.root = tempfile.mkdtemp(prefix="loaderbench-disk-", dir=root)
        for shard in range(self.shards):
            with open(self._shard_path(shard), "wb") as f:
                for index in range(shard, length, self.shards):
                    f.write(bytes_for(seed, index, sample_bytes))

    def _shard_path(self, shard: int) -> str:
        return os.path.join(self.root, f"shard-{shard:04d}.bin")

    def __getitem__(self, index: int):
        index = self._check(index)
        shard, slot = index % self.shards, index // self.shards
        with open(self._shard_path(shard), "rb") as f:
            f.seek(slot * self.sample_bytes)
            data = f.read(self.sample_bytes)
        if len(data) != self.sample_bytes:
            raise OSError(f"disk: short read of sample {index} from {self._shard_path(shard)}")
        return torch.frombuffer(bytearray(data), dtype=torch.uint8), index

    def expected(self, index: int) -> torch.Tensor:
        data = bytes_for(self.seed, index, self.sample_bytes)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    def close(self) -> None:
        # Only the process that wrote the files removes them: a worker's copy must not.
        if os.getpid() == self._owner_pid:
            shutil.rmtree(self.root, ignore_errors=True)


_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def make_jpeg(seed: int, index: int, side: int, quality: int = 90) -> bytes:
    """A photo-like JPEG: smooth colour fields (low-resolution noise, upscaled) plus grain."""
    from PIL import Image

    rng = np.random.default_rng([seed, index])
    small = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((side, side), Image.Resampling.BILINEAR)
    grain = rng.integers(-12, 13, size=(side, side, 3))
    pixels = np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


class JpegDataset(ProfiledDataset):
    """Decodes a real JPEG made at set-up, crops, normalises: the classic vision pipeline."""

    profile = "jpeg"
    cost_knob = "side"

    def __init__(self, length: int = 256, seed: int = 0, side: int = 256, crop: int = 224):
        super().__init__(length, seed)
        if crop > side:
            raise ValueError(f"jpeg: crop {crop} is larger than the image side {side}")
        self.side = side
        self.crop = crop
        self._jpegs = [make_jpeg(seed, i, side) for i in range(length)]

    def expected(self, index: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(io.BytesIO(self._jpegs[index])) as image:
            pixels = np.asarray(image.convert("RGB"))
        # The crop's corner is a function of the index, like a seeded random crop.
        room = self.side - self.crop
        top, left = (index * 7) % (room + 1), (index * 13) % (room + 1)
        patch = pixels[top : top + self.crop, left : left + self.crop]
        chw = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float().div_(255.0)
        return (chw - _IMAGENET_MEAN) / _IMAGENET_STD


class LargeDataset(ProfiledDataset):
    """One large tensor per sample: shared-memory transfer and collate copies dominate."""

    profile = "large"
    cost_knob = "side"

    def __init__(self, length: int = 128, seed: int = 0, side: int = 224, channels: int = 3):
        super().__init__(length, seed)
        self.side = side
        self.channels = channels

    def expected(self, index: int) -> torch.Tensor:
        # Cheap to make on purpose: the cost under test is moving the bytes, not computing them.
        n = self.channels * self.side * self.side
        base = float((self.seed * 7919 + index) % 65536)
        return (
            torch.arange(n, dtype=torch.float32)
            .remainder_(251.0)
            .add_(base)
            .view(self.channels, self.side, self.side)
        )


def object_value(seed: int, j: int) -> float:
    return ((j * 2654435761 + seed) % 1000003) / 1000003.0


class PyObjDataset(ProfiledDataset):
    """Indexes a large Python list of objects; touching them in a forked worker un-shares pages.

    ``storage="numpy"`` holds the same values in one numpy array, which reading does not copy:
    the pair shows copy-on-read memory growth.
    """

    profile = "pyobj"
    cost_knob = "objects"

    def __init__(
        self, length: int = 512, seed: int = 0, objects: int = 500_000, storage: str = "list"
    ):
        super().__init__(length, seed)
        if storage not in ("list", "numpy"):
            raise ValueError(f"pyobj: storage must be 'list' or 'numpy', got {storage!r}")
        self.objects = objects
        self.storage = storage
        values = [object_value(seed, j) for j in range(objects)]
        # A list of small Python objects (each with its own refcount) versus one flat buffer.
        self._store = (
            [(j, v) for j, v in enumerate(values)]
            if storage == "list"
            else np.asarray(values, dtype=np.float64)
        )

    def _span(self, index: int) -> range:
        per = max(1, self.objects // max(1, self.length))
        start = (index * per) % max(1, self.objects)
        return range(start, min(start + per, self.objects))

    def __getitem__(self, index: int):
        span = self._span(self._check(index))
        if isinstance(self._store, list):  # storage == "list"
            total = 0.0
            for _, value in self._store[span.start : span.stop]:
                total += value
        else:
            total = 0.0
            for value in self._store[span.start : span.stop].tolist():
                total += value
        return torch.tensor([total, float(len(span))], dtype=torch.float64), index

    def expected(self, index: int) -> torch.Tensor:
        total = 0.0
        span = self._span(index)
        for j in span:
            total += object_value(self.seed, j)
        return torch.tensor([total, float(len(span))], dtype=torch.float64)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "storage": self.storage}
