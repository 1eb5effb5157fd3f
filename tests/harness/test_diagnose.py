"""The diagnoses of ``loaderbench tune``: each example of bench_datasets.misbehaving gets its own
diagnosis, naming the specific thing (the attribute, the index, the worker, the MB), with a fix
that names what to change; the clean examples get none; odd datasets get none and do not break
the checks; and no worker process outlives a diagnosis, a hung one included."""

from __future__ import annotations

import gc
import itertools
import re
import time

import pytest
import torch
from torch.utils.data import Dataset, IterableDataset

from bench_datasets import examples, misbehaving
from bench_datasets.faulty import FailingCollate, RaisingDataset
from loaderbench.measuring import leaks
from loaderbench.tuning.diagnose import CODES, Diagnosis, copy_on_read, diagnose, explain_mismatch

#: A hung worker is waited for this long: short, so the file stays fast.
HANG_TIMEOUT_S = 2.0


def diagnosed(dataset, **options) -> list[Diagnosis]:
    """diagnose(), checked to leave no worker process behind (beyond a short grace for one that
    is between exiting and being reaped) and the garbage collector as it found it (its frozen
    objects included)."""
    before = {p.pid for p in leaks.child_processes()}
    frozen = gc.get_freeze_count()  # not 0 in an interpreter that froze objects as it started
    try:
        return diagnose(dataset, timeout_s=HANG_TIMEOUT_S, **options)
    finally:
        # A frozen object that is freed leaves the permanent generation: the count may fall a
        # little, but neither grow (objects left frozen) nor drop to 0 (the caller's unfrozen).
        after = gc.get_freeze_count()
        assert after <= frozen, "diagnose() left this process's objects gc-frozen"
        assert after > 0 or frozen == 0, "diagnose() unfroze the objects its caller had frozen"
        new = [p for p in leaks.child_processes() if p.pid not in before]
        left = leaks.survivors(new, grace_s=2.0) if new else []
        leaks.kill(left)
        assert not left, f"diagnose() left worker processes alive: {leaks.describe(left)}"
        close = getattr(dataset, "close", None)
        if close is not None:
            close()


def only(found: list[Diagnosis], code: str) -> Diagnosis:
    assert [d.code for d in found] == [code], [d.message() for d in found]
    diagnosis = found[0]
    assert "\n" not in diagnosis.message()
    assert diagnosis.message() == f"{diagnosis.cause} Fix: {diagnosis.fix}"
    return diagnosis


# --- the misbehaving examples ------------------------------------------------------------------


@pytest.mark.processes
def test_a_generator_made_in_init_is_named_with_a_worker_init_fn_that_reseeds_it():
    found = diagnosed(misbehaving.make_copied_generator())
    diagnosis = only(found, "copied-random-state")  # and not also "nondeterministic"
    assert "dataset.rng (a numpy.random.Generator)" in diagnosis.cause
    assert "copied into every worker" in diagnosis.cause
    assert "worker_init_fn" in diagnosis.fix
    assert (
        "info.dataset.rng = numpy.random.default_rng(torch.initial_seed() % 2**32)" in diagnosis.fix
    )
    assert not diagnosis.blocks_workers and not diagnosis.blocks_spawn


@pytest.mark.processes
def test_a_dataset_that_differs_from_itself_says_first_that_property_7_cannot_hold():
    diagnosis = only(diagnosed(misbehaving.make_nondeterministic()), "nondeterministic")
    assert diagnosis.cause.startswith(
        "Property 7 (workers deliver what no workers deliver) cannot hold"
    )
    assert "index 0" in diagnosis.cause and "dataset[0]: values differ" in diagnosis.cause
    assert "numpy.random.default_rng([seed, index])" in diagnosis.fix


@pytest.mark.processes
def test_a_stream_every_worker_yields_in_full_is_unsharded():
    diagnosis = only(diagnosed(misbehaving.make_unsharded_stream()), "unsharded-iterable")
    assert "each of its 48 samples came 2 times" in diagnosis.cause
    assert "torch.utils.data.get_worker_info()" in diagnosis.fix
    assert "info.num_workers" in diagnosis.fix and "info.id" in diagnosis.fix


@pytest.mark.processes
def test_an_open_file_handle_is_named_and_blocks_spawn():
    diagnosis = only(diagnosed(misbehaving.make_unpicklable()), "unpicklable")
    assert diagnosis.cause.startswith("dataset.handle (an _io.BufferedReader) cannot be pickled")
    assert "lazily in the worker" in diagnosis.fix and "stay with fork" in diagnosis.fix
    assert diagnosis.blocks_spawn and not diagnosis.blocks_workers


@pytest.mark.processes
def test_a_lambda_collate_fn_is_named_with_module_level_as_the_fix():
    diagnosis = only(
        diagnosed(examples.make_dataset(), collate_fn=lambda batch: batch), "unpicklable"
    )
    assert diagnosis.cause.startswith("collate_fn (the function test_a_lambda_collate_fn")
    assert "module level" in diagnosis.fix
    assert diagnosis.blocks_spawn


@pytest.mark.processes
def test_a_list_of_dicts_read_by_fork_workers_grows_each_worker_by_its_mb():
    """batch_size=64: the epoch reads all 200,000 records, and small batches would only add the
    main process's per-batch work to the file's wall time."""
    diagnosis = only(diagnosed(misbehaving.make_growing_list(), batch_size=64), "copy-on-read")
    grown = re.search(r"grew by ([\d.]+) MB", diagnosis.cause)
    assert grown and float(grown.group(1)) >= 10, diagnosis.cause
    assert "dataset.records (a list of 200000 Python objects)" in diagnosis.cause
    assert "Store dataset.records as numpy arrays or arrow-backed storage" in diagnosis.fix


@pytest.mark.processes
def test_a_hang_inside_a_worker_names_the_timeout_the_worker_and_the_index():
    """Index 37 is in batch 4 of 8 samples, which in-order loading hands to worker 0. The hung
    worker is terminated, not waited for: the whole diagnosis stays near the timeout (torch's
    own shutdown would wait 5 s more for it to join)."""
    started = time.monotonic()
    diagnosis = only(diagnosed(misbehaving.make_hanging()), "worker-hang")
    assert time.monotonic() - started < HANG_TIMEOUT_S + 4
    assert f"timed out after {HANG_TIMEOUT_S:g} seconds" in diagnosis.cause
    assert "worker 0 was still fetching index 37" in diagnosis.cause
    assert "at index 37" in diagnosis.fix
    assert diagnosis.blocks_workers


@pytest.mark.processes
def test_a_killed_worker_names_itself_its_signal_and_the_index():
    """Index 21 is in batch 2: worker 0's."""
    diagnosis = only(diagnosed(misbehaving.make_crashing()), "worker-crash")
    assert re.search(
        r"Worker 0 \(pid \d+\) died \(killed by SIGKILL\) while fetching index 21", diagnosis.cause
    ), diagnosis.cause
    assert "index 21 in one process" in diagnosis.fix
    assert diagnosis.blocks_workers


@pytest.mark.processes
def test_an_exception_in_getitem_keeps_its_type_and_names_the_worker_and_index():
    """Index 40 is in batch 5: worker 1's."""
    diagnosis = only(diagnosed(misbehaving.make_raising()), "worker-error")
    assert (
        "Worker 1 raised an error in __getitem__ at index 40 (InjectedFault: sample 40 is "
        "unreadable)"
    ) in diagnosis.cause
    assert "dataset[40]" in diagnosis.fix
    assert diagnosis.blocks_workers


@pytest.mark.processes
def test_an_exception_in_collate_fn_names_the_batch_it_was_collating():
    """Index 17 is in batch 2 (indices 16-23): worker 0's."""
    diagnosis = only(
        diagnosed(RaisingDataset(64, at=()), collate_fn=FailingCollate(at=17)), "worker-error"
    )
    assert (
        "Worker 0 raised an error in collate_fn on the batch starting at index 16 "
        "(InjectedFault: cannot collate the batch holding sample 17)"
    ) in diagnosis.cause
    assert "collating the batch that starts with dataset[16]" in diagnosis.fix


# --- clean and odd datasets --------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.parametrize(
    "factory", [examples.make_dataset, examples.make_iterable], ids=["map-style", "iterable"]
)
def test_the_clean_examples_get_no_diagnosis(factory):
    assert diagnosed(factory()) == []


class Opaque(Dataset):
    """Samples no exact comparison can judge (a fresh object each fetch)."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int):
        return {"index": index, "handle": object()}


class Endless(IterableDataset):
    """An infinite, sharded stream: every check must stop at its cap."""

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        yield from itertools.count(start, step)


class Labels(IterableDataset):
    """A sharded stream longer than the cap whose samples repeat by design (600 labels 0-9): its
    first 256 samples alone and 512 with workers hold each label 25 and 51 times, which only the
    whole stream could tell from an unsharded one."""

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for index in range(start, 600, step):
            yield index % 10


class BatchesOnly(Dataset):
    """Loads through ``__getitems__`` only, as torch does when it is there: the epoch must not
    call ``__getitem__`` and report its error."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, index: int):
        raise NotImplementedError("fetch batches with __getitems__")

    def __getitems__(self, indices: list[int]) -> list:
        return [torch.tensor([index]) for index in indices]


class Empty(Dataset):
    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: int):
        raise IndexError(index)


@pytest.mark.processes
@pytest.mark.parametrize(
    "dataset, options",
    [
        (Opaque(), {"collate_fn": list}),
        (Endless(), {"batch_size": 256}),  # the epoch's cap, in few batches
        (Labels(), {}),
        (BatchesOnly(), {}),
        (Empty(), {}),
    ],
    ids=["incomparable", "infinite", "longer-than-the-cap", "getitems-only", "empty"],
)
def test_odd_datasets_get_no_diagnosis_and_no_error(dataset, options):
    assert diagnosed(dataset, **options) == []


@pytest.mark.processes
def test_explain_mismatch_only_runs_the_mismatch_checks():
    """A hanging dataset's hang is the epoch's finding, not a mismatch explanation."""
    assert explain_mismatch(misbehaving.make_hanging()) == []
    assert [d.code for d in explain_mismatch(misbehaving.make_copied_generator())] == [
        "copied-random-state"
    ]


# --- the measured growth as a diagnosis --------------------------------------------------------


class Holder(Dataset):
    def __init__(self):
        self.labels = {j: j % 3 for j in range(10)}
        self.index = type("Index", (), {})()
        self.index.rows = list(range(1000))  # one level down, and the longest

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> int:
        return index


def test_copy_on_read_names_the_longest_list_or_dict_and_the_mb_per_worker():
    assert copy_on_read(Holder(), 9.9) is None
    diagnosis = copy_on_read(Holder(), 42.25)
    assert diagnosis.code == "copy-on-read"
    assert "grew by 42.2 MB" in diagnosis.cause
    assert "dataset.index.rows (a list of 1000 Python objects)" in diagnosis.cause
    assert "numpy arrays or arrow-backed storage" in diagnosis.fix
    assert copy_on_read(Holder(), 20.0, threshold_mb=25.0) is None


def test_a_diagnosis_has_a_known_code_and_a_one_paragraph_message():
    assert len(set(CODES)) == 8
    with pytest.raises(ValueError, match="unknown diagnosis code 'slow'"):
        Diagnosis("slow", "x.", "y.")
    assert (
        Diagnosis("worker-hang", "It hung\nat 3.", "Fix\nit.").message()
        == "It hung at 3. Fix: Fix it."
    )
