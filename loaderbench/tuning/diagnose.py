"""The diagnoses of ``loaderbench tune``: what in a user's dataset makes loading with workers
wrong, wasteful or impossible, each as one cause and one fix naming the specifics.

The checks, all found by measurement (never by reading the user's code), all with fork workers
(a spawn worker costs seconds to start; what is checked here does not depend on the method):

- ``random-augmentation`` (a note, not a defect): the same index fetched twice in this process
  differs, two workers deliver different values for it, and two loaders seeded alike deliver
  the same ones: augmentation drawn from a state DataLoader reseeds per worker (generators.py
  reads which from the installed torch), as intended. Property 7 (workers deliver what no
  workers deliver) cannot hold for it as it is.
- ``copied-random-state``: the same index differs between fetches, but two workers fetching it
  deliver identical values: a generator that DataLoader does not reseed was copied into every
  worker; generators.py finds it (attributes, closures, module globals) and a reseed reaching it.
- ``nondeterministic``: the same index differs between fetches and two loaders seeded alike
  deliver different values: no seed reproduces an epoch (os.urandom, the clock).
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
from loaderbench.tuning.generators import (
    WORKER_SEED,
    Found,
    find_generators,
    reseeded_functions,
    reseeded_sentence,
    worker_init_source,
)
from loaderbench.tuning.generators import worker_init_fn as reseeding_init_fn

CODES = (
    "random-augmentation",
    "nondeterministic",
    "copied-random-state",
    "unsharded-iterable",
    "unpicklable",
    "copy-on-read",
    "worker-crash",
    "worker-hang",
    "worker-error",
)

#: Findings that are no defect: they explain, and ask for no fix.
NOTES = ("random-augmentation",)

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
    """One finding: its code (one of CODES), one sentence of cause, one sentence of fix. A note
    (NOTES) is no defect and has no fix."""

    code: str
    cause: str
    fix: str
    blocks_workers: bool = False  # loading with workers cannot be measured at all
    blocks_spawn: bool = False  # spawn and forkserver cannot be used

    def __post_init__(self):
        if self.code not in CODES:
            raise ValueError(f"unknown diagnosis code {self.code!r}; valid: {', '.join(CODES)}")
        if self.is_note == bool(self.fix.strip()):
            raise ValueError(f"{self.code}: a note has no fix, a defect has one")

    @property
    def is_note(self) -> bool:
        return self.code in NOTES

    def message(self) -> str:
        text = self.cause if self.is_note else f"{self.cause} Fix: {self.fix}"
        return " ".join(text.split())


# --- the public entry points ---------------------------------------------------------------------


def diagnose(
    dataset,
    *,
    collate_fn=None,
    batch_size: int = 8,
    timeout_s: float = 10.0,
    max_samples: int = 256,
    growth_threshold_mb: float = 10.0,
    worker_init_fn: Callable | None = None,
) -> list[Diagnosis]:
    """Every diagnosis of ``dataset``: the mismatch explanations, pickling, then one epoch with
    fork workers (failures and memory growth). ``worker_init_fn`` goes to every loader with
    workers (so a fix, such as a reseed, can be shown to work)."""
    found = _mismatch_explanations(
        dataset, timeout_s=timeout_s, max_samples=max_samples, worker_init_fn=worker_init_fn
    )
    found += [d for d in (unpicklable(dataset, collate_fn, worker_init_fn),) if d is not None]
    epoch = _worker_epoch(
        dataset, collate_fn or default_collate, batch_size, timeout_s, worker_init_fn
    )
    if epoch.failure is not None:
        found.append(epoch.failure)
    elif epoch.growth_per_worker_mb is not None:
        grown = copy_on_read(dataset, epoch.growth_per_worker_mb, growth_threshold_mb)
        found += [grown] if grown is not None else []
    return found


def explain_mismatch(dataset, worker_init_fn: Callable | None = None) -> list[Diagnosis]:
    """Only the cheap checks that explain why workers deliver something else than no workers:
    random-augmentation, copied-random-state, nondeterministic, unsharded-iterable."""
    return _mismatch_explanations(
        dataset, timeout_s=PROBE_TIMEOUT_S, max_samples=256, worker_init_fn=worker_init_fn
    )


def _mismatch_explanations(
    dataset, *, timeout_s: float, max_samples: int, worker_init_fn: Callable | None = None
) -> list[Diagnosis]:
    if isinstance(dataset, IterableDataset):
        found = [nondeterministic_stream(dataset, max_samples, timeout_s, worker_init_fn)]
        if found[0] is None:  # a stream that differs from itself also differs once per worker
            found = [unsharded_iterable(dataset, timeout_s, max_samples, worker_init_fn)]
    else:
        found = [random_state(dataset, timeout_s, worker_init_fn)]
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


# --- random-augmentation, copied-random-state and nondeterministic ------------------------------

#: The seed of the loaders that check whether a seed reproduces what the workers draw.
CHECK_SEED = 0


def random_state(
    dataset, timeout_s: float = PROBE_TIMEOUT_S, worker_init_fn: Callable | None = None
) -> Diagnosis | None:
    """A map-style dataset whose samples differ from fetch to fetch in one process:
    copied-random-state when two workers still agree with each other (they started from one
    copied state); else random-augmentation (a note) when two loaders seeded alike deliver the
    same draws, nondeterministic when they do not."""
    unstable = _unstable_index(dataset)
    if unstable is None:
        return None
    index, where = unstable
    keys = [_key(s) for s in _fetched_by_each_worker(dataset, index, timeout_s, worker_init_fn)]
    if len(keys) != PROBE_WORKERS or None in keys:
        return None  # the workers could not deliver it: the worker epoch says why
    if len(set(keys)) == 1:
        return _copied_random_state(dataset, index, timeout_s, worker_init_fn)
    seeded = [
        _fetched_by_each_worker(dataset, index, timeout_s, worker_init_fn, seed=CHECK_SEED)
        for _ in range(2)
    ]
    again = [[_key(s) for s in draws] for draws in seeded]
    if any(len(k) != PROBE_WORKERS or None in k for k in again):
        return None
    if again[0] != again[1]:
        return _nondeterministic(
            f"two loaders seeded alike (generator=torch.Generator().manual_seed({CHECK_SEED})) "
            f"delivered different values for index {index} from the same worker (no seed "
            f"reproduces an epoch)"
        )
    return _random_augmentation(
        f"index {index} differs from fetch to fetch in one process ({where}), workers 0 and 1 "
        f"delivered different values for it, and two loaders seeded alike "
        f"(generator=torch.Generator().manual_seed({CHECK_SEED})) delivered the same ones"
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


def _fetched_by_each_worker(
    dataset, index: int, timeout_s: float, worker_init_fn=None, seed: int | None = None
) -> list:
    """``index`` fetched once by each of two fork workers (in-order loading hands the k-th
    sampled index to worker k), or [] when the workers cannot deliver it. With ``seed``, the
    loader's generator is seeded with it (the workers' base seed follows from it)."""
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["generator"] = torch.Generator().manual_seed(seed)
    loader = _probe_loader(
        dataset,
        timeout_s,
        worker_init_fn,
        batch_size=None,
        sampler=[index] * PROBE_WORKERS,
        **overrides,
    )
    return _loaded(loader) or []


def _reseeds_that_work(
    dataset, index: int, timeout_s: float, worker_init_fn: Callable | None
) -> list[Found]:
    """Of the generators the dataset holds, those whose reseed (the very worker_init_fn a
    message prints) makes the two workers' draws of ``index`` differ: each alone first, then
    all together; [] when none does."""
    found = find_generators(dataset)
    for group in [[f] for f in found] + ([found] if len(found) > 1 else []):
        fixed = reseeding_init_fn(group, then=worker_init_fn)
        keys = [_key(s) for s in _fetched_by_each_worker(dataset, index, timeout_s, fixed)]
        if len(keys) == PROBE_WORKERS and None not in keys and len(set(keys)) == PROBE_WORKERS:
            return group
    return []


def _copied_random_state(
    dataset, index: int, timeout_s: float, worker_init_fn: Callable | None
) -> Diagnosis:
    found = _reseeds_that_work(dataset, index, timeout_s, worker_init_fn)
    evidence = (
        f"workers 0 and 1 delivered identical random values for index {index} where two "
        f"fetches in one process differ, so the workers repeat each other's random "
        f"augmentations ({reseeded_sentence()}, nothing else)."
    )
    if not found:
        return Diagnosis(
            "copied-random-state",
            f"A random state that DataLoader does not reseed is copied into every worker (no "
            f"generator among the dataset's attributes, the closures of its callables or the "
            f"globals of their modules makes the workers differ once reseeded): {evidence}",
            f"Find the generator the samples draw from and reseed it in a worker_init_fn from "
            f"torch.initial_seed() (for a numpy Generator g: `g.bit_generator.state = "
            f"numpy.random.PCG64({WORKER_SEED}).state`), or draw from {reseeded_functions()} "
            f"({reseeded_sentence()}).",
        )
    named = "; ".join(f"{f.where} (a {f.kind})" for f in found)
    verb = "is" if len(found) == 1 else "are"
    return Diagnosis(
        "copied-random-state",
        f"{named} {verb} created once, in the main process, and copied into every worker "
        f"unchanged: {evidence}",
        f"Reseed {'it' if len(found) == 1 else 'them'} in place in each worker from "
        f"torch.initial_seed() (distinct per worker, reproducible from the loader's seed) with "
        f"a worker_init_fn, e.g. (numpy and torch imported) `{worker_init_source(found)}` "
        f"passed as DataLoader(..., worker_init_fn=worker_init_fn); tried here: with it, "
        f"workers 0 and 1 delivered different values for index {index}.",
    )


def _random_augmentation(evidence: str) -> Diagnosis:
    return Diagnosis(
        "random-augmentation",
        f"Random augmentation, working as intended: {evidence} ({reseeded_sentence()}). "
        f"The equivalence properties (property 7: workers deliver what no workers deliver) "
        f"compare values across loaders, so they cannot hold for it as it is: compare with a "
        f"fixed generator (draws derived from the index) or with augmentation off.",
        "",
    )


def _nondeterministic(evidence: str) -> Diagnosis:
    return Diagnosis(
        "nondeterministic",
        f"Property 7 (workers deliver what no workers deliver) cannot hold for this dataset: "
        f"{evidence}, so any two loaders differ whatever the workers do.",
        f"Derive the randomness from a seed: from the index (e.g. rng = numpy.random.default_rng("
        f"[seed, index]) in __getitem__), or from {reseeded_functions()} ({reseeded_sentence()}, "
        f"from the loader's seed); not from os.urandom, the clock or a generator made without a "
        f"seed.",
    )


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


def nondeterministic_stream(
    dataset: IterableDataset,
    max_samples: int = 256,
    timeout_s: float = PROBE_TIMEOUT_S,
    worker_init_fn: Callable | None = None,
) -> Diagnosis | None:
    """The first samples of two passes over the stream in this process differ exactly:
    random-augmentation when two loaders seeded alike (two fork workers) deliver the same
    samples, nondeterministic when they do not."""
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
    seeded = []
    for _ in range(2):
        loader = _probe_loader(
            dataset,
            timeout_s,
            worker_init_fn,
            batch_size=None,
            generator=torch.Generator().manual_seed(CHECK_SEED),
        )
        seeded.append(_keyed(_loaded(loader, PROBE_WORKERS * cap), PROBE_WORKERS * cap))
    if not seeded[0] or not seeded[1]:
        return None
    if [k for k, _ in seeded[0]] != [k for k, _ in seeded[1]]:
        return _nondeterministic(
            f"two passes over the stream in one process differ from its sample {position} on, "
            f"and so do two loaders seeded alike (generator=torch.Generator().manual_seed("
            f"{CHECK_SEED})) (no seed reproduces an epoch)"
        )
    return _random_augmentation(
        f"two passes over the stream in one process differ from its sample {position} on, and "
        f"two loaders with two workers seeded alike (generator=torch.Generator().manual_seed("
        f"{CHECK_SEED})) delivered the same samples"
    )


def unsharded_iterable(
    dataset: IterableDataset,
    timeout_s: float = PROBE_TIMEOUT_S,
    max_samples: int = 256,
    worker_init_fn: Callable | None = None,
) -> Diagnosis | None:
    """With two fork workers, samples that the stream yields once in this process come more than
    once. Says nothing when the stream is longer than ``max_samples`` (no guessing from a part)."""
    alone = _keyed(_first(dataset, max_samples + 1), max_samples)
    if not alone:
        return None
    cap = PROBE_WORKERS * max_samples
    loader = _probe_loader(dataset, timeout_s, worker_init_fn, batch_size=None)
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


def unpicklable(dataset, collate_fn=None, worker_init_fn=None) -> Diagnosis | None:
    """The dataset, collate_fn or worker_init_fn cannot be pickled; names the deepest attribute
    that fails."""
    parts = (("dataset", dataset), ("collate_fn", collate_fn), ("worker_init_fn", worker_init_fn))
    for name, value in parts:
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

    def __getattr__(self, name: str):
        # The user's worker_init_fn sees this as get_worker_info().dataset: its attributes are
        # the user's dataset's (a reseed of info.dataset.rng must reach the real one).
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

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

    __getattr__ = _TrackedDataset.__getattr__

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


def _worker_epoch(
    dataset,
    collate_fn: Callable,
    batch_size: int,
    timeout_s: float,
    worker_init_fn: Callable | None = None,
) -> _EpochResult:
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
        worker_init_fn,
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


def _probe_loader(
    dataset, timeout_s: float, worker_init_fn: Callable | None = None, **overrides
) -> DataLoader:
    """A persistent loader with two fork workers (fork always: a spawn worker costs seconds to
    start here, and no check depends on the start method), ``timeout_s`` and the user's
    ``worker_init_fn`` when there is one."""
    if worker_init_fn is not None:
        overrides["worker_init_fn"] = worker_init_fn
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
