"""The sampler sees copy-on-read: forked workers reading a Python list un-share its pages, workers
reading the same values from one numpy array do not."""

import gc
import os

import pytest
import torch

from bench_datasets import make_dataset
from loaderbench.grid import Case
from loaderbench.measuring.loaders import build_loader, drain, running
from loaderbench.measuring.memory import loader_sampler, process_pss, summarise

pytestmark = pytest.mark.processes  # every test here starts worker processes

WORKERS = 2


def growth_mb(storage: str) -> float:
    """MB the loader adds over two shuffled epochs with fork workers (main + workers, PSS)."""
    dataset = make_dataset("pyobj", storage=storage)
    gc.collect()
    baseline = process_pss(os.getpid())
    loader = build_loader(
        dataset,
        Case("pyobj", WORKERS, "fork"),
        persistent=True,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    with running(loader):
        drain(loader)
        with loader_sampler(loader) as sampler:
            drain(loader)
    growth = summarise(sampler.peak, baseline, WORKERS)["growth_mb"]
    del dataset, loader
    gc.collect()
    return growth


def test_list_storage_grows_with_fork_workers_and_numpy_storage_does_not():
    """Each worker's refcount writes copy the list's pages (~58 MB of tuples) into the worker."""
    from_list, from_numpy = growth_mb("list"), growth_mb("numpy")
    assert from_list - from_numpy >= 50, (from_list, from_numpy)
