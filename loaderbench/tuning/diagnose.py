"""The diagnoses of ``loaderbench tune``: what in a user's dataset makes loading with workers
wrong, wasteful or impossible, each as one cause and one fix naming the specifics.

The checks, all found by measurement (never by reading the user's code), all with fork workers
(a spawn worker costs seconds to start; what is checked here does not depend on the method):

- ``nondeterministic``: the same index fetched twice in this process differs, so property 7
  (workers deliver what no workers deliver) cannot hold for the dataset at all.
- ``copied-random-state``: the same, but two workers fetching that index deliver identical
  values: a generator made in ``__init__`` was copied into every worker.
- ``unsharded-iterable``: an IterableDataset yields each sample once per worker.
- ``unpicklable``: spawn and forkserver workers cannot receive the dataset or collate_fn.
- ``copy-on-read``: each fork worker's anonymous memory grows over an epoch (refcount writes
  un-share the pages of Python objects).
- ``worker-crash``, ``worker-hang``, ``worker-error``: one epoch with workers dies, times out or
  raises; named by worker id and index, which each worker records in shared memory.

Comparisons are exact (loaderbench.measuring.exact): the same structure, types, dtypes and values. A check
that cannot decide (samples that cannot be compared exactly, an empty dataset, a stream longer
than its cap, a fetch that raises) says nothing rather than guess.
"""

from __future__ import annotations

import gc
import multiprocessing
import operator
import os
import pickle
import random
import re
import signal
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    default_collate,
    default_convert,
    get_worker_info,
)

from loaderbench.grid import Case
from loaderbench.measuring.exact import describe, fingerprint, first_difference
from loaderbench.measuring.loaders import build_loader, shutdown
from loaderbench.measuring.memory import MB, Usage, usage_by_process

CODES = (
    "nondeterministic",
    "copied-random-state",
    "unsharded-iterable",
    "unpicklable",
    "copy-on-read",
    "worker-crash",
    "worker-hang",
    "worker-error",
)

#: Workers of every probe loader: two are enough to show a copy, a duplicate or a failure.
PROBE_WORKERS = 2
#: Seconds a probe loader of explain_mismatch may wait for a batch before giving up.
PROBE_TIMEOUT_S = 10.0
#: Items read by the epoch that measures memory growth and finds failures. Copy-on-read is about
#: touching the objects, so the whole dataset is read up to this many items.
EPOCH_CAP = 200_000
#: Elements of one list or dict looked into when searching attributes (a dataset's records may
#: be millions; a generator or an open file sits near the top).
WALK_ITEMS = 64


@dataclass(frozen=True)
class Diagnosis:
    """One finding: its code (one of CODES), one sentence of cause, one sentence of fix."""

    code: str
    cause: str
    fix: str
    blocks_workers: bool = False  # loading with workers cannot be measured at all
    blocks_spawn: bool = False  # spawn and forkserver cannot be used

    def __post_init__(self):
        if self.code not in CODES:
            raise ValueError(f"unknown diagnosis code {self.code!r}; valid: {', '.join(CODES)}")

    def message(self) -> str:
        return " ".join(f"{self.cause} Fix: {self.fix}".split())


# --- the public entry points ---------------------------------------------------------------------


def diagnose(
    dataset,
    *,
    collate_fn=None,
    batch_size: int = 8,
    timeout_s: float = 10.0,
    max_samples: int = 256,
    growth_threshold_mb: float = 10.0,
) -> list[Diagnosis]:
    """Every diagnosis of ``dataset``: the mismatch explanations, pickling, then one epoch with
    fork workers (failures and memory growth)."""
    found = _mismatch_explanations(dataset, timeout_s=timeout_s, max_samples=max_samples)
    found += [d for d in (unpicklable(dataset, collate_fn),) if d is not None]
    epoch = _worker_epoch(dataset, collate_fn or default_collate, batch_size, timeout_s)
    if epoch.failure is not None:
        found.append(epoch.failure)
    elif epoch.growth_per_worker_mb is not None:
        grown = copy_on_read(dataset, epoch.growth_per_worker_mb, growth_threshold_mb)
        found += [grown] if grown is not None else []
    return found


def explain_mismatch(dataset) -> list[Diagnosis]:
    """Only the cheap checks that explain why workers deliver something else than no workers:
    nondeterministic, copied-random-state, unsharded-iterable."""
    return _mismatch_explanations(dataset, timeout_s=PROBE_TIMEOUT_S, max_samples=256)


def _mismatch_explanations(dataset, *, timeout_s: float, max_samples: int) -> list[Diagnosis]:
    if isinstance(dataset, IterableDataset):
        found = [nondeterministic_stream(dataset, max_samples)]
        if found[0] is None:  # a stream that differs from itself also differs once per worker
            found = [unsharded_iterable(dataset, timeout_s, max_samples)]
    else:
        found = [random_state(dataset, timeout_s)]
    return [d for d in found if d is not None]


# --- comparing samples exactly -------------------------------------------------------------------

_FAILED = object()


def _fetch(fetch: Callable[[], Any]) -> Any:
    """``fetch()``, or _FAILED when it raises: a check is no place to report the dataset's errors
    (the worker epoch does that, naming the index)."""
    try:
        return fetch()
    except Exception:
        return _FAILED


def _key(sample: Any) -> Any:
    """The exact fingerprint of a sample as a loader would deliver it (numpy converted to
    tensors), or None when it holds something that cannot be compared exactly."""
    if sample is _FAILED:
        return None
    try:
        return fingerprint(default_convert(sample))
    except Exception:  # fingerprint's TypeError, or whatever converting an odd object raises
        return None


def _where_different(first: Any, second: Any, path: str) -> str:
    return first_difference(default_convert(second), default_convert(first), path) or path


# --- nondeterministic and copied-random-state ----------------------------------------------------


def random_state(dataset, timeout_s: float = PROBE_TIMEOUT_S) -> Diagnosis | None:
    """A map-style dataset whose samples differ from fetch to fetch: copied-random-state when two
    workers still agree with each other (they started from one copied state), else
    nondeterministic."""
    unstable = _unstable_index(dataset)
    if unstable is None:
        return None
    index, where = unstable
    by_workers = _fetched_by_each_worker(dataset, index, timeout_s)
    keys = [_key(sample) for sample in by_workers]
    if len(keys) == PROBE_WORKERS and keys[0] is not None and len(set(keys)) == 1:
        return _copied_random_state(dataset, index)
    return _nondeterministic(
        f"fetching index {index} twice in one process gave different values ({where})"
    )


def _unstable_index(dataset) -> tuple[int, str] | None:
    """The first of a few indices (first, middle, last) whose two fetches in this process differ
    exactly, with where they differ."""
    length = _length(dataset)
    for index in sorted({0, length // 2, length - 1}) if length else ():
        first = _fetch(partial(operator.getitem, dataset, index))
        second = _fetch(partial(operator.getitem, dataset, index))
        first_key, second_key = _key(first), _key(second)
        if first_key is not None and second_key is not None and first_key != second_key:
            return index, _where_different(first, second, f"dataset[{index}]")
    return None


def _length(dataset) -> int:
    try:
        return len(dataset)
    except Exception:  # no __len__, or one that fails: the index checks have nothing to go on
        return 0


def _fetched_by_each_worker(dataset, index: int, timeout_s: float) -> list:
    """``index`` fetched once by each of two fork workers (in-order loading hands the k-th
    sampled index to worker k), or [] when the workers cannot deliver it."""
    loader = _probe_loader(dataset, timeout_s, batch_size=None, sampler=[index] * PROBE_WORKERS)
    return _loaded(loader) or []


def _copied_random_state(dataset, index: int) -> Diagnosis:
    generators = _generator_attributes(dataset)
    path, generator = generators[0] if generators else ("", None)
    if generator is None:
        held = (
            "a random state created before the workers started (numpy's global "
            "numpy.random state, which DataLoader does not reseed per worker, is the usual one)"
        )
        reseed = "numpy.random.seed(torch.initial_seed() % 2**32)"
    else:
        held = (
            f"dataset{path} (a {_generator_kind(generator)}) is created once, in the main "
            f"process, and"
        )
        reseed = f"info.dataset{path} = {_reseeded(generator)}"
    return Diagnosis(
        "copied-random-state",
        f"{held} copied into every worker: workers 0 and 1 delivered identical random values "
        f"for index {index} where two fetches in one process differ, so the workers repeat each "
        f"other's random augmentations (and property 7 cannot hold for random samples).",
        f"Reseed it in each worker from torch.initial_seed() with a worker_init_fn, e.g. "
        f"`def worker_init_fn(worker_id): info = torch.utils.data.get_worker_info(); {reseed}` "
        f"passed as DataLoader(..., worker_init_fn=worker_init_fn).",
    )


def _nondeterministic(evidence: str) -> Diagnosis:
    return Diagnosis(
        "nondeterministic",
        f"Property 7 (workers deliver what no workers deliver) cannot hold for this dataset: "
        f"{evidence}, so any two loaders differ whatever the workers do.",
        "Derive the randomness from the index (e.g. rng = numpy.random.default_rng([seed, "
        "index]) in __getitem__), or seed augmentation per worker in a worker_init_fn and do not "
        "compare values across loaders.",
    )


_GENERATOR_KINDS = (
    (np.random.Generator, "numpy.random.Generator"),
    (np.random.RandomState, "numpy.random.RandomState"),
    (np.random.BitGenerator, "numpy.random.BitGenerator"),
    (random.Random, "random.Random"),
    (torch.Generator, "torch.Generator"),
)


def _generator_kind(value: Any) -> str | None:
    for kind, name in _GENERATOR_KINDS:
        if isinstance(value, kind):
            return name
    return None


def _reseeded(generator: Any) -> str:
    """An expression making a fresh generator of ``generator``'s kind from the worker's seed."""
    if isinstance(generator, np.random.Generator):
        return "numpy.random.default_rng(torch.initial_seed() % 2**32)"
    if isinstance(generator, np.random.RandomState):
        return "numpy.random.RandomState(torch.initial_seed() % 2**32)"
    if isinstance(generator, np.random.BitGenerator):
        return f"numpy.random.{type(generator).__name__}(torch.initial_seed() % 2**32)"
    if isinstance(generator, random.Random):
        return "random.Random(torch.initial_seed())"
    return "torch.Generator().manual_seed(torch.initial_seed())"


def _generator_attributes(dataset) -> list[tuple[str, Any]]:
    """(path, generator) for each random generator among the dataset's attributes and, one level
    down, theirs (a transform's ``rng``, a wrapped dataset's)."""
    found = []
    for path, value in _children(dataset, ""):
        if _generator_kind(value):
            found.append((path, value))
            continue
        found += [(p, v) for p, v in _children(value, path) if _generator_kind(v)]
    return found


def _children(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, child) for the items of a dict, list or tuple, or the attributes of an object; the
    paths are Python (``.rng``, ``[0]``, ``['key']``) so a fix can assign to them."""
    if isinstance(value, dict):
        for key, child in islice(value.items(), WALK_ITEMS):
            yield f"{path}[{key!r}]", child
    elif isinstance(value, (list, tuple)):
        for position, child in enumerate(value[:WALK_ITEMS]):
            yield f"{path}[{position}]", child
    elif not isinstance(value, (type, types.ModuleType, types.FunctionType, types.MethodType)):
        try:
            attributes = vars(value)
        except TypeError:  # no __dict__ (builtins, C extension objects)
            return
        for name, child in list(attributes.items()):
            yield f"{path}.{name}", child


# --- nondeterministic streams and unsharded-iterable ---------------------------------------------


def nondeterministic_stream(dataset: IterableDataset, max_samples: int = 256) -> Diagnosis | None:
    """The first samples of two passes over the stream in this process differ exactly."""
    cap = min(max_samples, 32)
    first = _keyed(_first(dataset, cap), cap)
    second = _keyed(_first(dataset, cap), cap)
    if not first or not second:
        return None
    first_keys, second_keys = [k for k, _ in first], [k for k, _ in second]
    if first_keys == second_keys:
        return None
    position = next(
        (k for k, (a, b) in enumerate(zip(first_keys, second_keys)) if a != b),
        min(len(first_keys), len(second_keys)),
    )
    return _nondeterministic(
        f"two passes over the stream in one process differ from its sample {position} on"
    )


def unsharded_iterable(
    dataset: IterableDataset, timeout_s: float = PROBE_TIMEOUT_S, max_samples: int = 256
) -> Diagnosis | None:
    """With two fork workers, samples that the stream yields once in this process come more than
    once. Says nothing when the stream is longer than ``max_samples`` (no guessing from a part)."""
    alone = _keyed(_first(dataset, max_samples + 1), max_samples)
    if not alone:
        return None
    cap = PROBE_WORKERS * max_samples
    loader = _probe_loader(dataset, timeout_s, batch_size=None)
    with_workers = _keyed(_loaded(loader, cap + 1), cap)
    if not with_workers:
        return None
    once, delivered = Counter(k for k, _ in alone), Counter(k for k, _ in with_workers)
    repeated = [key for key in once if delivered[key] > once[key]]
    if not repeated:
        return None
    example = dict(alone)[repeated[0]]
    if all(delivered[key] == PROBE_WORKERS * count for key, count in once.items()):
        how = f"each of its {len(alone)} samples came {PROBE_WORKERS} times (once from each worker)"
    else:
        how = (
            f"{len(repeated)} of its {len(alone)} samples came more than once (one "
            f"{delivered[repeated[0]]} times)"
        )
    return Diagnosis(
        "unsharded-iterable",
        f"This IterableDataset is not sharded across workers: with {PROBE_WORKERS} fork workers "
        f"{how}, e.g. {describe(default_convert(example), 120)}.",
        "Shard the stream in __iter__ with torch.utils.data.get_worker_info(): when it is not "
        "None, yield only every info.num_workers-th item starting at info.id (or split the "
        "files or shards the same way).",
    )


def _first(dataset: IterableDataset, count: int) -> list | None:
    """The stream's first ``count`` samples in this process; None when it raises."""
    try:
        return list(islice(iter(dataset), count))
    except Exception:
        return None


def _keyed(samples: list | None, cap: int) -> list[tuple] | None:
    """(fingerprint, sample) for each sample; None when there are none, more than ``cap`` (a
    part of a stream says nothing about the whole), or any cannot be compared exactly."""
    if not samples or len(samples) > cap:
        return None
    keys = [_key(sample) for sample in samples]
    return None if any(key is None for key in keys) else list(zip(keys, samples))


# --- unpicklable ---------------------------------------------------------------------------------


class _Discard:
    """A file that forgets what is written: only whether pickling succeeds matters."""

    def write(self, data) -> int:
        return len(data)


class _ProbePickler(ForkingPickler):
    """ForkingPickler (what spawn and forkserver send the dataset with) that takes tensors and
    arrays as given: they always pickle, and torch's reducer would move a tensor's storage into
    shared memory and hold a descriptor for a receiver that never comes. (reducer_override, not
    persistent_id: pickle calls it for objects only, never for the ints and strings of a large
    list of records.)"""

    def reducer_override(self, obj):
        if isinstance(obj, (torch.Tensor, np.ndarray)) or torch.is_storage(obj):
            return int, ()
        return NotImplemented


def _pickle_error(obj: Any) -> Exception | None:
    try:
        _ProbePickler(_Discard(), pickle.DEFAULT_PROTOCOL).dump(obj)
    except Exception as exc:
        return exc
    return None


def unpicklable(dataset, collate_fn=None) -> Diagnosis | None:
    """The dataset or collate_fn cannot be pickled; names the deepest attribute that fails."""
    for name, value in (("dataset", dataset), ("collate_fn", collate_fn)):
        error = _pickle_error(value) if value is not None else None
        if error is not None:
            path, culprit, error = _failing_part(value, "", error, depth=3)
            return _unpicklable(f"{name}{path}", culprit, error)
    return None


def _failing_part(
    value: Any, path: str, error: Exception, depth: int
) -> tuple[str, Any, Exception]:
    """The deepest part of ``value`` (which fails to pickle with ``error``) that fails alone."""
    if depth:
        for child_path, child in _children(value, path):
            child_error = _pickle_error(child)
            if child_error is not None:
                return _failing_part(child, child_path, child_error, depth - 1)
    return path, value, error


def _unpicklable(path: str, culprit: Any, error: Exception) -> Diagnosis:
    if _defined_locally(culprit):
        fix = (
            "Define it at module level (a def or class, not a lambda or a nested one) so that "
            "pickle can find it by name, or stay with fork."
        )
    else:
        fix = (
            "Open the resource lazily in the worker (on first use in __getitem__, or in a "
            "worker_init_fn) and keep only what opens it (a path, a URL) in the dataset, or "
            "stay with fork."
        )
    return Diagnosis(
        "unpicklable",
        f"{path} ({_what(culprit)}) cannot be pickled ({_first_line(error)}), so spawn and "
        f"forkserver workers, which receive the dataset and collate_fn pickled, cannot start.",
        fix,
        blocks_spawn=True,
    )


def _what(value: Any) -> str:
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return f"the function {value.__qualname__}"
    if isinstance(value, type):
        return f"the class {value.__qualname__}"
    return _a(_type_name(value))


def _defined_locally(value: Any) -> bool:
    """A lambda, or a function or class defined inside a function (or an instance of one):
    pickle refers to these by name, and they have none it can import."""
    named = value if isinstance(value, (types.FunctionType, type)) else type(value)
    return any(part in named.__qualname__ for part in ("<lambda>", "<locals>"))


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou_' else 'a'} {noun}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


# --- copy-on-read --------------------------------------------------------------------------------


def copy_on_read(
    dataset, growth_per_worker_mb: float, threshold_mb: float = 10.0
) -> Diagnosis | None:
    """The measured growth of each fork worker's memory over an epoch, as a diagnosis naming the
    dataset's largest list or dict attribute; None below ``threshold_mb``."""
    if growth_per_worker_mb < threshold_mb:
        return None
    largest = _largest_container(dataset)
    if largest is None:
        held = "the Python objects it reads"
        store = "Keep the data in numpy arrays or arrow-backed storage (pyarrow, datasets.Dataset)"
    else:
        path, container = largest
        held = f"dataset{path} ({_a(type(container).__name__)} of {len(container)} Python objects)"
        store = (
            f"Store dataset{path} as numpy arrays or arrow-backed storage (pyarrow, "
            f"datasets.Dataset)"
        )
    return Diagnosis(
        "copy-on-read",
        f"Each fork worker's memory grew by {growth_per_worker_mb:.1f} MB over one epoch: reading "
        f"{held} writes their reference counts, which copies the pages they live on into every "
        f"worker.",
        f"{store} instead of Python objects, so that reading them writes nothing and the workers "
        f"keep sharing one copy.",
    )


def _largest_container(dataset) -> tuple[str, list | dict] | None:
    """The dataset's longest list or dict attribute (one level of nesting looked into)."""
    candidates = []
    for path, value in _children(dataset, ""):
        candidates.append((path, value))
        if not isinstance(value, (list, dict)):
            candidates += list(_children(value, path))
    containers = [(path, value) for path, value in candidates if isinstance(value, (list, dict))]
    return max(containers, key=lambda found: len(found[1]), default=None)


# --- one epoch with workers: failures and memory -------------------------------------------------

#: Bytes of the first error line each worker can leave in shared memory.
ERROR_BYTES = 240
#: What a worker was running when it raised.
FETCHERS = ("__getitem__", "__getitems__", "collate_fn")


class _WorkerSlots:
    """Per worker, in memory shared with fork workers (each writes only its own slot, so no
    lock): the index it is fetching (-1 when idle) and since when, and the first index at which
    it raised, with the error's first line (where a crash leaves no traceback to read)."""

    def __init__(self, workers: int):
        context = multiprocessing.get_context("fork")
        self.current = context.Array("q", [-1] * workers, lock=False)
        self.since = context.Array("d", workers, lock=False)
        self.failed_at = context.Array("q", [-1] * workers, lock=False)
        self.failed_in = context.Array("b", workers, lock=False)  # an index into FETCHERS
        self.errors = context.Array("c", workers * ERROR_BYTES, lock=False)

    def begin(self, worker: int, index: int) -> None:
        self.since[worker] = time.monotonic()
        self.current[worker] = index

    def end(self, worker: int) -> None:
        self.current[worker] = -1

    def fail(self, worker: int, index: int, error: BaseException, fetcher: str) -> None:
        if self.failed_at[worker] != -1:
            return  # the first failure is the one the main process sees
        text = _first_line(error).encode("utf-8", "replace")[: ERROR_BYTES - 1]
        start = worker * ERROR_BYTES
        self.errors[start : start + ERROR_BYTES] = text.ljust(ERROR_BYTES, b"\0")
        self.failed_in[worker] = FETCHERS.index(fetcher)
        self.failed_at[worker] = index

    def error(self, worker: int) -> str:
        start = worker * ERROR_BYTES
        return self.errors[start : start + ERROR_BYTES].rstrip(b"\0").decode("utf-8", "replace")

    def stuck(self) -> list[int]:
        """Workers in the middle of a fetch, the longest-running first."""
        busy = [w for w in range(len(self.current)) if self.current[w] != -1]
        return sorted(busy, key=lambda w: self.since[w])


def _worker_id() -> int:
    info = get_worker_info()
    assert info is not None  # called in a DataLoader worker only
    return info.id


class _TrackedDataset(Dataset):
    """The user's dataset as each worker fetches it, recording the index in ``slots``; a sample
    arrives as (index, sample) so that collation can name the indices of its batch."""

    def __init__(self, dataset, slots: _WorkerSlots):
        self.dataset, self.slots = dataset, slots

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        worker = _worker_id()
        self.slots.begin(worker, index)
        try:
            sample = self.dataset[index]
        except Exception as exc:
            self.slots.fail(worker, index, exc, "__getitem__")
            raise
        self.slots.end(worker)
        return index, sample


class _TrackedBatchDataset(_TrackedDataset):
    """The same for a dataset with ``__getitems__``, through which torch fetches whole batches
    (its ``__getitem__`` may not even work): the batch's first index is recorded."""

    def __getitems__(self, indices: list[int]) -> list:
        worker = _worker_id()
        self.slots.begin(worker, indices[0])
        try:
            samples = self.dataset.__getitems__(indices)
        except Exception as exc:
            self.slots.fail(worker, indices[0], exc, "__getitems__")
            raise
        self.slots.end(worker)
        return list(zip(indices, samples))


class _TrackedStream(IterableDataset):
    """The user's IterableDataset, recording each worker's position in its own stream."""

    def __init__(self, dataset: IterableDataset, slots: _WorkerSlots):
        self.dataset, self.slots = dataset, slots

    def __iter__(self):
        worker, position = _worker_id(), 0
        samples = iter(self.dataset)
        while True:
            self.slots.begin(worker, position)
            try:
                sample = next(samples)
            except StopIteration:
                self.slots.end(worker)
                return
            except Exception as exc:
                self.slots.fail(worker, position, exc, "__getitem__")
                raise
            self.slots.end(worker)
            yield position, sample
            position += 1


class _CountingCollate:
    """Runs the user's collate_fn in the worker (so its failures count too), then sends back only
    (worker id, pid, samples): the epoch is about fetching, and tensors sent to the main process
    would cost more than the fetching on a dataset of small samples."""

    def __init__(self, collate_fn: Callable, slots: _WorkerSlots):
        self.collate_fn, self.slots = collate_fn, slots

    def __call__(self, pairs: list) -> tuple[int, int, int]:
        try:
            self.collate_fn([sample for _, sample in pairs])
        except Exception as exc:
            self.slots.fail(_worker_id(), pairs[0][0], exc, "collate_fn")
            raise
        return _worker_id(), os.getpid(), len(pairs)


@dataclass
class _EpochResult:
    failure: Diagnosis | None = None
    growth_per_worker_mb: float | None = None
    samples: int = 0


def _worker_epoch(dataset, collate_fn: Callable, batch_size: int, timeout_s: float) -> _EpochResult:
    """One epoch (up to EPOCH_CAP samples) with two fork workers and ``timeout_s``: the first
    failure as a diagnosis, else the mean growth of the workers' anonymous PSS from their first
    batch to the end."""
    slots = _WorkerSlots(PROBE_WORKERS)
    iterable = isinstance(dataset, IterableDataset)
    tracked: Dataset
    if iterable:
        tracked, sampler = _TrackedStream(dataset, slots), None
    else:
        length = min(_length(dataset), EPOCH_CAP)
        if length == 0:
            return _EpochResult()
        batched = getattr(dataset, "__getitems__", None)  # torch's own test for it
        tracked = (_TrackedBatchDataset if batched else _TrackedDataset)(dataset, slots)
        sampler = range(length)
    loader = _probe_loader(
        tracked,
        timeout_s,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=_CountingCollate(collate_fn, slots),
    )
    result, first_usage = _EpochResult(), {}
    with _stopped_after(loader, slots):
        try:
            with _gc_frozen():
                batches = iter(loader)  # the workers fork here
            for worker, pid, samples in batches:
                result.samples += samples
                if worker not in first_usage:
                    first_usage[worker] = (pid, usage_by_process([pid]).get(pid))
                if result.samples >= EPOCH_CAP:
                    break
            result.growth_per_worker_mb = _growth_per_worker_mb(first_usage)
        except Exception as exc:  # torch raises RuntimeError (also from its SIGCHLD handler, at
            # any point while workers live), or the worker's own exception type
            result.failure = _failure(exc, loader, slots, timeout_s, iterable)
    return result


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """This process's objects out of the garbage collector's reach while workers fork: a full
    collection in a worker would write to every object it inherited (copying this whole process,
    pytest or the tuner, into it) and pass for the dataset's copy-on-read. Unfrozen after,
    unless the caller had frozen objects itself (unfreezing would undo that too)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _growth_per_worker_mb(first_usage: dict[int, tuple[int, Usage | None]]) -> float | None:
    """Mean growth of the workers' anonymous PSS (the whole PSS where the kernel does not split
    it) since their first batch; None when a worker could not be read."""
    growths = []
    for pid, first in first_usage.values():
        last = usage_by_process([pid]).get(pid)
        if first is None or last is None:
            return None
        if first.anon is not None and last.anon is not None:
            growths.append(last.anon - first.anon)
        else:
            growths.append(last.pss - first.pss)
    return sum(growths) / len(growths) / MB if growths else None


def _failure(
    error: Exception, loader: DataLoader, slots: _WorkerSlots, timeout_s: float, iterable: bool
) -> Diagnosis:
    """The diagnosis of an epoch that raised: hang, crash, or an exception in a worker."""
    text = str(error)
    position = "position {} of its stream" if iterable else "index {}"
    if "timed out after" in text:
        return _hang(slots, timeout_s, position)
    dead = _dead_workers(loader)
    if dead or "exited unexpectedly" in text or "killed by signal" in text:
        return _crash(dead, slots, position, text)
    return _error(error, slots, position)


def _hang(slots: _WorkerSlots, timeout_s: float, position: str) -> Diagnosis:
    stuck = slots.stuck()
    if stuck:
        worker, index = stuck[0], slots.current[stuck[0]]
        where = f"worker {worker} was still fetching {position.format(index)}"
        reproduce = f"at {position.format(index)}"
    else:
        where, reproduce = "no worker was fetching a sample (collate_fn or the sampler?)", ""
    return Diagnosis(
        "worker-hang",
        f"The DataLoader timed out after {_seconds(timeout_s)}: {where}, so loading with "
        f"workers cannot be measured.",
        f"Find what blocks {reproduce} in a worker: a lock, thread pool or connection created "
        f"before the workers forked is the usual cause (create it lazily in the worker); if the "
        f"sample is only slow, pass a timeout larger than {_seconds(timeout_s)}.",
        blocks_workers=True,
    )


def _seconds(value: float) -> str:
    return f"{value:g} second{'' if value == 1 else 's'}"


def _dead_workers(loader: DataLoader) -> list[tuple[int, Any]]:
    """(worker id, process) of each worker that has exited (see _live_workers)."""
    workers = getattr(getattr(loader, "_iterator", None), "_workers", None) or []
    return [
        (worker, process) for worker, process in enumerate(workers) if process.exitcode is not None
    ]


def _crash(dead: list, slots: _WorkerSlots, position: str, text: str) -> Diagnosis:
    if dead:
        worker, process = dead[0]
        how = _exit_description(process.exitcode)
        index = slots.current[worker]
        what = f"Worker {worker} (pid {process.pid}) died ({how})"
        where = f" while fetching {position.format(index)}" if index != -1 else ""
        reproduce = (
            f"{position.format(index)} in one process"
            if index != -1
            else "its samples in one process"
        )
    else:
        what, where, reproduce = (
            f"A worker died ({_first_line(RuntimeError(text))})",
            "",
            "the samples in one process",
        )
    return Diagnosis(
        "worker-crash",
        f"{what}{where}, which stops the DataLoader, so loading with workers cannot be measured.",
        f"Load {reproduce}: a SIGSEGV points at a C extension that does not survive fork (start "
        f"its state lazily in the worker), a SIGKILL usually at the out-of-memory killer (see "
        f"dmesg; fewer workers or smaller samples).",
        blocks_workers=True,
    )


def _exit_description(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


_CAUGHT = re.compile(r"Caught (\w+) in DataLoader worker process (\d+)")


def _error(error: Exception, slots: _WorkerSlots, position: str) -> Diagnosis:
    caught = _CAUGHT.search(str(error))
    failed = [w for w in range(PROBE_WORKERS) if slots.failed_at[w] != -1]
    worker = int(caught.group(2)) if caught else (failed[0] if failed else None)
    if worker is not None and slots.failed_at[worker] != -1:
        index = slots.failed_at[worker]
        raised = slots.error(worker)
        fetcher = FETCHERS[slots.failed_in[worker]]
        where = (
            f"__getitem__ at {position.format(index)}"
            if fetcher == "__getitem__"
            else f"{fetcher} on the batch starting at {position.format(index)}"
        )
        what = f"Worker {worker} raised an error in {where} ({raised})"
        reproduce = _reproduction(index, fetcher, iterable="index" not in position)
    else:
        raised = f"{caught.group(1)}" if caught else _first_line(error)
        what = f"A worker raised {raised}" if worker is None else f"Worker {worker} raised {raised}"
        reproduce = "Reproduce it without workers (num_workers=0)"
    return Diagnosis(
        "worker-error",
        f"{what}, and the DataLoader re-raised it, ending the epoch, so loading with workers "
        f"cannot be measured.",
        f"{reproduce} and fix that sample or the code reading it (or skip samples known to be "
        f"bad before they reach the DataLoader).",
        blocks_workers=True,
    )


def _reproduction(index: int, fetcher: str, iterable: bool) -> str:
    if iterable:
        return "Reproduce it by iterating the dataset in one process"
    if fetcher == "collate_fn":
        return (
            f"Reproduce it by collating the batch that starts with dataset[{index}] in one process"
        )
    if fetcher == "__getitems__":
        return (
            f"Reproduce it with dataset.__getitems__ on the batch starting at {index} in "
            f"one process"
        )
    return f"Reproduce it with dataset[{index}] in one process"


# --- probe loaders -------------------------------------------------------------------------------


def _probe_loader(dataset, timeout_s: float, **overrides) -> DataLoader:
    """A persistent loader with two fork workers (fork always: a spawn worker costs seconds to
    start here, and no check depends on the start method) and ``timeout_s``."""
    return build_loader(
        dataset,
        Case("diagnose", PROBE_WORKERS, "fork"),
        persistent=True,
        timeout=timeout_s,
        **overrides,
    )


def _loaded(loader: DataLoader, count: int | None = None) -> list | None:
    """The loader's first ``count`` items (all of them by default); None when it raises (the
    epoch check reports failures, naming the index). Its workers are gone on return."""
    try:
        with _stopped_after(loader):
            return list(islice(loader, count))
    except Exception:
        return None


@contextmanager
def _stopped_after(loader: DataLoader, slots: _WorkerSlots | None = None) -> Iterator[None]:
    """On exit, the loader's workers are gone. Those that may be stuck in a fetch are terminated
    first (torch would wait 5 s for each to join): the ones ``slots`` shows busy, or all of them
    when the body raised (a timeout, say) and nothing more is wanted from them."""
    try:
        yield
    except BaseException:
        _terminate(_live_workers(loader))
        raise
    finally:
        if slots is not None:
            workers = dict(_live_workers(loader))
            _terminate((w, workers[w]) for w in slots.stuck() if w in workers)
        try:
            shutdown(loader)
        except Exception:  # a worker that died is reported by the check, not by the clean-up
            pass


def _live_workers(loader: DataLoader) -> list[tuple[int, Any]]:
    """(worker id, process) of each live worker. DataLoader has no public handle on its workers
    (memory.worker_pids reads the same attribute)."""
    workers = getattr(getattr(loader, "_iterator", None), "_workers", None) or []
    return [(worker, process) for worker, process in enumerate(workers) if process.is_alive()]


def _terminate(workers) -> None:
    # A worker terminated by its parent exits with status 0 (torch's SIGTERM handler), which the
    # loader's SIGCHLD handler does not report as a failure.
    for _, process in workers:
        process.terminate()
