"""Example user datasets, in the form ``--lb-dataset=package.module:callable`` expects:

    pytest tests/properties --lb-dataset=bench_datasets.examples:make_dataset
    pytest tests/properties --lb-dataset=bench_datasets.examples:make_iterable
    loaderbench tune bench_datasets.examples:make_light --step-ms 20
    loaderbench tune bench_datasets.examples:make_augmented_images --step-ms 10

``make_augmented_images`` is a heavy, realistic vision pipeline (JPEG decode, random resized crop,
flip, normalise, augmentation from torch's global generator): workers matter for it. Beside a
10 ms step loading is the bottleneck; ``make_light`` beside a 20 ms step is the case where it is
not. ``make_augmented`` (and its numpy and random-module variants) augments at random the way
training code does, from a global state DataLoader reseeds in every worker: correct, and
``loaderbench tune`` says so in a note.

A factory takes no arguments and returns a Dataset or IterableDataset. Classes live at module
level so that spawn and forkserver workers can unpickle them.
"""

from __future__ import annotations

import io
import math
import random
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


class Augmented(Dataset):
    """4x4 "images" plus noise drawn per fetch from a global random state that DataLoader
    reseeds in every worker: torch's (``torch.rand``), numpy's (``numpy.random.random``) or
    Python's (``random.random``). Random augmentation as intended: not a defect."""

    SOURCES = ("torch", "numpy", "random")

    def __init__(self, source: str = "torch", length: int = 64):
        if source not in self.SOURCES:
            raise ValueError(f"source {source!r}; valid: {', '.join(self.SOURCES)}")
        self.source, self.length = source, length

    def __len__(self) -> int:
        return self.length

    def noise(self) -> torch.Tensor:
        if self.source == "torch":
            return torch.rand(4, 4)
        if self.source == "numpy":
            return torch.from_numpy(np.random.random((4, 4)).astype(np.float32))
        return torch.tensor([[random.random() for _ in range(4)] for _ in range(4)])

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.arange(16, dtype=torch.float32).reshape(4, 4) + index + self.noise()


def make_augmented() -> Augmented:
    return Augmented("torch")


_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def random_resized_box(
    height: int, width: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of a random resized crop, drawn from torch's global
    generator as torchvision's RandomResizedCrop.get_params draws it."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(*scale).item()
        aspect = math.exp(torch.empty(1).uniform_(*log_ratio).item())
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,)).item())
            left = int(torch.randint(0, width - w + 1, (1,)).item())
            return top, left, h, w
    side = min(height, width)  # the fallback: a centred square
    return (height - side) // 2, (width - side) // 2, side, side


class AugmentedImages(Dataset):
    """A training set of photos as vision code loads it: ``length`` synthetic JPEGs of
    3x``side``x``side`` (encoded once, here, with Pillow), each fetch decoding one, taking a
    random resized crop to ``crop``x``crop``, flipping it at random and normalising it. The
    randomness comes from torch's global generator, which DataLoader reseeds per worker. A
    sample is (image, label); a batch of 64 takes a few hundred ms in one process."""

    def __init__(self, length: int = 256, side: int = 256, crop: int = 224, seed: int = 0):
        from bench_datasets.profiles import make_jpeg

        self.crop = crop
        self.jpegs = [make_jpeg(seed, i, side) for i in range(length)]
        self.labels = [int(np.random.default_rng([seed, i]).integers(1000)) for i in range(length)]

    def __len__(self) -> int:
        return len(self.jpegs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(io.BytesIO(self.jpegs[index])) as encoded:
            image = encoded.convert("RGB")
        top, left, h, w = random_resized_box(image.height, image.width)
        image = image.resize(
            (self.crop, self.crop), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h)
        )
        if torch.rand(1).item() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float().div_(255.0)
        return (pixels - _IMAGENET_MEAN) / _IMAGENET_STD, self.labels[index]


def make_augmented_images() -> AugmentedImages:
    """256 JPEGs of 3x256x256, cropped at random to 224, flipped, normalised."""
    return AugmentedImages()
