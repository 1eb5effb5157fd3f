"""Property 7: your own dataset (--lb-dataset=package.module:callable) yields with workers what it
yields without: the same batches in order (map-style) or the same multiset (iterable)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import IterableDataset

from bench_datasets import USER_PROFILE, make_user_dataset
from bench_datasets.misbehaving import make_copied_generator, make_unsharded_stream
from loaderbench.tuning.diagnose import explain_mismatch

from .agreement import check_iterable_agrees, check_map_style_agrees, map_style_pool
from .oracle import LoaderMismatch

EXAMPLES = ["bench_datasets.examples:make_dataset", "bench_datasets.examples:make_iterable"]
ROOT = Path(__file__).resolve().parents[2]
MAX_INDICES = 48  # a user's dataset may be large and slow: each example loads a sample of it


def check_dataset(dataset, start_method: str, num_workers: int, name: str) -> None:
    """Hypothesis draws which indices (repeats allowed), batch size and drop_last; an iterable is
    compared whole, with and without automatic batching."""
    context = f"dataset {name} {start_method}-w{num_workers}"
    if isinstance(dataset, IterableDataset):
        for batch_size in (None, 1, 5):
            check_iterable_agrees(dataset, start_method, num_workers, batch_size, context)
        return
    if len(dataset) == 0:
        pytest.skip(f"{name} is empty: nothing to compare")
    with map_style_pool(dataset, start_method, num_workers) as (loader, sampler):

        @given(
            indices=st.lists(st.integers(0, len(dataset) - 1), max_size=MAX_INDICES),
            batch_size=st.integers(1, 8),
            drop_last=st.booleans(),
        )
        def workers_agree_with_no_workers(indices, batch_size, drop_last):
            check_map_style_agrees(loader, sampler, indices, batch_size, drop_last, context)

        workers_agree_with_no_workers()


def require_user_dataset(lb_settings):
    if not lb_settings.user_dataset:
        pytest.skip(
            "no --lb-dataset given: pass --lb-dataset=package.module:callable to check "
            "your own dataset"
        )
    return lb_settings.dataset(USER_PROFILE)


@pytest.fixture
def user_dataset(lb_settings):
    return require_user_dataset(lb_settings)


def test_your_dataset_yields_with_workers_what_it_yields_without(
    user_dataset, user_loader_key, lb_settings
):
    """On every start method and worker count of the selected grid (--lb-start-methods,
    --lb-workers)."""
    start_method, num_workers = user_loader_key
    check_dataset(user_dataset, start_method, num_workers, lb_settings.user_dataset)


@pytest.mark.processes
@pytest.mark.parametrize("factory", EXAMPLES)
def test_the_check_passes_the_example_user_datasets(factory):
    """The example datasets, built through the same factory path as --lb-dataset, pass."""
    check_dataset(make_user_dataset(factory), "fork", 3, factory)


@pytest.mark.processes
def test_lb_dataset_runs_the_check_on_the_named_dataset():
    """The option wires through: a separate pytest run with --lb-dataset runs the check on the
    named factory's dataset, and it passes. (A separate process: a session inside this one would
    take this session's loader workers for its own leftovers.)"""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"{Path(__file__)}::test_your_dataset_yields_with_workers_what_it_yields_without",
            "-p",
            "no:cacheprovider",
            "-q",
            "--benchmark-disable",
            f"--lb-dataset={EXAMPLES[0]}",
            "--lb-workers=2",
            "--lb-start-methods=fork",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr


@pytest.mark.processes
def test_a_copied_generator_mismatch_reads_first_as_its_diagnosis():
    """Index 0 twice, one per batch: workers 0 and 1 both draw from the generator state copied
    at fork, the main process draws twice from its own. The user reads the cause and the
    worker_init_fn fix before the batches that differ."""
    dataset = make_copied_generator()
    with map_style_pool(dataset, "fork", 2) as (loader, sampler):
        with pytest.raises(LoaderMismatch) as mismatch:
            check_map_style_agrees(loader, sampler, [0, 0], 1, False, "copied-generator fork-w2")
    message = str(mismatch.value)
    [diagnosis] = explain_mismatch(dataset)
    assert diagnosis.code == "copied-random-state"
    assert message.startswith(diagnosis.message() + "\n"), message
    assert "copied into every worker" in message and "worker_init_fn" in message
    assert "indices=[0, 0]" in message and "values differ" in message


@pytest.mark.processes
def test_an_unsharded_stream_mismatch_reads_first_as_its_diagnosis():
    with pytest.raises(LoaderMismatch) as mismatch:
        check_iterable_agrees(make_unsharded_stream(), "fork", 2, None, "unsharded fork-w2")
    message = str(mismatch.value)
    assert message.startswith("This IterableDataset is not sharded across workers"), message
    assert "get_worker_info()" in message.splitlines()[0]
    assert "duplicated" in message  # the mismatch itself follows


def test_without_lb_dataset_the_check_is_skipped_with_what_to_pass():
    with pytest.raises(pytest.skip.Exception, match="no --lb-dataset given: pass --lb-dataset="):
        require_user_dataset(SimpleNamespace(user_dataset=None))
