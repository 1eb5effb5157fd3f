"""Slowdowns injected into ``torch.utils.data`` itself: test doubles that show a regression inside
DataLoader is caught, not only one in the dataset's code.

The run configuration's ``inject`` setting, NAME=VALUE (config.py; a benchmark run or a side of a
side-by-side comparison; repeatable):

- ``worker-batch-delay`` (seconds): every worker waits this long before it hands a batch to the
  main process (the result queue's ``put``), as a slower pickling or IPC path would;
- ``worker-start-delay`` (seconds): every worker waits this long as it starts, before its loop,
  as a slower worker start-up would;
- ``main-batch-delay`` (seconds): the main process waits this long for every batch its iterator
  returns (at any ``num_workers``), as a slower collate or pin path would;
- ``epoch-end-delay`` (seconds): a loader with workers waits this long as it stops them
  (``_shutdown_workers``), which a non-persistent loader does at every epoch's end: the shape of
  the torch 1.2 regression that added seconds to every epoch (pytorch/pytorch#23642);
- ``fetch-work`` (a fraction): every fetch of a batch (``_MapDatasetFetcher.fetch`` and its
  iterable twin, in whichever process fetches) does this much more work, busy on the CPU after
  the real fetch: ``fetch-work=0.1`` is 10% more work per fetch, inside DataLoader itself.

How it reaches the workers: ``install`` replaces ``torch.utils.data._utils.worker._worker_loop``,
the target DataLoader gives every worker process, with ``delayed_worker_loop`` of this module. A
forked worker inherits the replacement (and a replaced fetch); a spawned or forkserver worker
receives the target by reference (module and name), imports this module and finds the delays in
the environment (``LOADERBENCH_INJECT``), which every start method passes on, and replaces the
fetch itself.
"""

from __future__ import annotations

import json
import os
import time

import torch
import torch.utils.data._utils.fetch as torch_fetch
import torch.utils.data._utils.worker as torch_worker
from torch.utils.data import Dataset
from torch.utils.data.dataloader import _BaseDataLoaderIter, _MultiProcessingDataLoaderIter

from loaderbench.config import INJECTIONS

ENV_VAR = "LOADERBENCH_INJECT"

# Taken at import, before any replacement: a forked worker inherits the replaced attribute, and
# must still reach the real loop.
_ORIGINAL_WORKER_LOOP = torch_worker._worker_loop
_ORIGINAL_NEXT = _BaseDataLoaderIter.__next__
_ORIGINAL_SHUTDOWN = _MultiProcessingDataLoaderIter._shutdown_workers
_ORIGINAL_FETCH = {
    fetcher: fetcher.fetch
    for fetcher in (torch_fetch._MapDatasetFetcher, torch_fetch._IterableDatasetFetcher)
}


def active() -> dict[str, float]:
    """The delays in force in this process (from the environment)."""
    try:
        recorded = json.loads(os.environ.get(ENV_VAR) or "{}")
    except json.JSONDecodeError:
        return {}
    return {k: float(v) for k, v in recorded.items() if k in INJECTIONS}


def install(delays: dict[str, float]) -> None:
    """Put ``delays`` in force in this process and in every DataLoader worker it starts."""
    if not any(delays.values()):
        return
    os.environ[ENV_VAR] = json.dumps(delays)
    torch_worker._worker_loop = delayed_worker_loop
    if delays.get("main-batch-delay"):
        _BaseDataLoaderIter.__next__ = _delayed_next  # type: ignore[method-assign]  # patched on purpose
    if delays.get("epoch-end-delay"):
        _MultiProcessingDataLoaderIter._shutdown_workers = _delayed_shutdown  # type: ignore[method-assign]  # patched on purpose
    _replace_fetch(delays.get("fetch-work", 0.0))


def uninstall() -> None:
    """Undo ``install`` in this process (workers started later run unchanged)."""
    os.environ.pop(ENV_VAR, None)
    torch_worker._worker_loop = _ORIGINAL_WORKER_LOOP
    _BaseDataLoaderIter.__next__ = _ORIGINAL_NEXT  # type: ignore[method-assign]  # restores the original
    _MultiProcessingDataLoaderIter._shutdown_workers = _ORIGINAL_SHUTDOWN  # type: ignore[method-assign]  # restores the original
    for fetcher, fetch in _ORIGINAL_FETCH.items():
        fetcher.fetch = fetch  # type: ignore[method-assign]  # restores the original


#: The delays the worker loop of this (worker) process runs with, once it has started.
IN_THIS_WORKER: dict[str, float] = {}


class InjectionProbe(Dataset):
    """Each sample is the worker delays in force where it was loaded: how a test sees the
    replaced loop reach a spawned or forkserver worker."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor(
            [IN_THIS_WORKER.get(name, 0.0) for name in INJECTIONS], dtype=torch.float64
        )


def delayed_worker_loop(*args, **kwargs):
    """DataLoader's worker loop, after the start delay and with a delay on every batch it sends."""
    delays = active()
    IN_THIS_WORKER.update(delays)
    _replace_fetch(delays.get("fetch-work", 0.0))  # a spawned worker's torch is its own
    if delays.get("worker-start-delay"):
        time.sleep(delays["worker-start-delay"])
    if delays.get("worker-batch-delay"):
        patched = list(args)
        patched[3] = _DelayedQueue(patched[3], delays["worker-batch-delay"])  # data_queue
        args = tuple(patched)
    return _ORIGINAL_WORKER_LOOP(*args, **kwargs)


class _DelayedQueue:
    """A worker's result queue whose ``put`` waits first; everything else goes to the queue."""

    def __init__(self, queue, delay_s: float):
        self._queue, self._delay_s = queue, delay_s

    def put(self, *args, **kwargs):
        time.sleep(self._delay_s)
        return self._queue.put(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._queue, name)


def _delayed_next(self):
    batch = _ORIGINAL_NEXT(self)
    time.sleep(active().get("main-batch-delay", 0.0))
    return batch


def _delayed_shutdown(self):
    # The first call stops the workers; later ones (``__del__``) return at once in torch too.
    if not getattr(self, "_shutdown", True):
        time.sleep(active().get("epoch-end-delay", 0.0))
    return _ORIGINAL_SHUTDOWN(self)


def _replace_fetch(fraction: float) -> None:
    """Every fetcher's ``fetch`` followed by ``fraction`` of its own time of busy work."""
    if not fraction:
        return
    for fetcher, original in _ORIGINAL_FETCH.items():

        def fetch(self, possibly_batched_index, _original=original):
            begun = time.perf_counter()
            data = _original(self, possibly_batched_index)
            _busy(fraction * (time.perf_counter() - begun))
            return data

        fetcher.fetch = fetch  # type: ignore[method-assign]  # patched on purpose


def _busy(seconds: float) -> None:
    """Work on the CPU (holding the GIL, as the fetch's own Python work does) for ``seconds``."""
    ends = time.perf_counter() + seconds
    while time.perf_counter() < ends:
        pass
