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
from torch.utils.data import DataLoader, Dataset, IterableDataset

from bench_datasets import examples, misbehaving
from bench_datasets.faulty import FailingCollate, RaisingDataset
from loaderbench.measuring import leaks
from loaderbench.tuning import generators
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
    if diagnosis.is_note:
        assert diagnosis.message() == diagnosis.cause
    else:
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
        "info.dataset.rng.bit_generator.state = numpy.random.PCG64(torch.initial_seed() % 2**32)"
        ".state" in diagnosis.fix
    )
    assert not diagnosis.blocks_workers and not diagnosis.blocks_spawn


@pytest.mark.processes
def test_a_dataset_that_differs_from_itself_says_first_that_property_7_cannot_hold():
    diagnosis = only(diagnosed(misbehaving.make_nondeterministic()), "nondeterministic")
    assert diagnosis.cause.startswith(
        "Property 7 (workers deliver what no workers deliver) cannot hold"
    )
    assert "two loaders seeded alike" in diagnosis.cause
    assert "different values for index 0 from the same worker" in diagnosis.cause
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


# --- randomness: augmentation as intended, copied states, and what torch reseeds -----------------


@pytest.mark.processes
@pytest.mark.parametrize("source", examples.Augmented.SOURCES)
def test_augmentation_from_a_state_torch_reseeds_is_a_note_with_no_fix(source):
    """torch.rand, numpy.random.random and random.random: DataLoader reseeds each per worker."""
    diagnosis = only(diagnosed(examples.Augmented(source)), "random-augmentation")
    assert diagnosis.is_note and diagnosis.fix == "" and "Fix:" not in diagnosis.message()
    assert "workers 0 and 1 delivered different values" in diagnosis.cause
    assert "two loaders seeded alike" in diagnosis.cause and "the same ones" in diagnosis.cause
    assert "compare with a fixed generator" in diagnosis.cause
    assert "augmentation off" in diagnosis.cause


def worker_draws(dataset, worker_init_fn=None, index: int = 0) -> list:
    """``index`` as each of two fork workers delivers it (in order: worker 0, then 1)."""
    loader = DataLoader(
        dataset,
        batch_size=None,
        sampler=[index, index],
        num_workers=2,
        multiprocessing_context="fork",
        worker_init_fn=worker_init_fn,
    )
    return list(loader)


def image(sample) -> torch.Tensor:
    return sample[0] if isinstance(sample, (list, tuple)) else sample


def printed_fix(diagnosis: Diagnosis):
    """The worker_init_fn a message prints, defined from its text as a user would paste it."""
    code = re.search(r"`(def worker_init_fn\(worker_id\):[^`]*)`", diagnosis.fix)
    assert code, diagnosis.fix
    namespace = {"torch": torch, "numpy": __import__("numpy")}
    exec(code.group(1), namespace)
    return namespace["worker_init_fn"]


COPIED = [
    (misbehaving.make_copied_generator, "dataset.rng (a numpy.random.Generator)"),
    (misbehaving.make_global_generator, "module bench_datasets.misbehaving.NOISE (a numpy"),
    (misbehaving.make_copied_random, "dataset.rng (a random.Random)"),
    (misbehaving.make_captured_generator, "rng, captured by dataset.transform (a numpy"),
]


@pytest.mark.processes
@pytest.mark.parametrize(
    "factory, named", COPIED, ids=["attribute", "module-level", "random.Random", "closure"]
)
def test_a_copied_generator_is_named_and_its_printed_fix_makes_the_workers_differ(factory, named):
    dataset = factory()
    found = diagnosed(dataset)
    if factory is misbehaving.make_captured_generator:  # a closure is also not picklable
        assert [d.code for d in found] == ["copied-random-state", "unpicklable"]
        found = found[:1]
    diagnosis = only(found, "copied-random-state")
    assert diagnosis.cause.startswith(named), diagnosis.cause
    assert "does not reseed per worker" not in diagnosis.message()
    first, second = worker_draws(dataset)
    assert torch.equal(image(first), image(second))  # the bug, shown
    fix = printed_fix(diagnosis)
    first, second = worker_draws(dataset, fix)
    assert not torch.equal(image(first), image(second))
    # and with the fix, the diagnosis itself calls the randomness correct
    assert [d.code for d in explain_mismatch(dataset, worker_init_fn=fix)] == [
        "random-augmentation"
    ]


def test_what_the_messages_say_torch_reseeds_is_what_the_installed_torch_reseeds():
    """Read from torch's _worker_loop: every statement claimed is there, and a source without one
    drops its claim (so the check can fail)."""
    source = " ".join(generators.worker_loop_source().split())
    assert "random.seed(seed)" in source and "torch.manual_seed(seed)" in source
    assert "_generate_state(base_seed, worker_id)" in source and "np.random.seed(" in source
    assert generators.reseeded_by_torch() == tuple(w for w, _ in generators.TORCH_RESEEDS)
    without_numpy = generators.worker_loop_source().replace("np.random.seed(", "pass  # (")
    assert "numpy" not in " ".join(generators.reseeded_by_torch(without_numpy))
    sentence = generators.reseeded_sentence()
    for what in generators.reseeded_by_torch():
        assert what in sentence


@pytest.mark.processes
def test_no_randomness_message_claims_what_torch_does_not_do():
    """Every random-state message names what torch reseeds as the source says, never says torch
    leaves numpy's global state alone, and never tells a user to reseed a state torch reseeds
    (numpy.random.seed) as the fix for a generator object."""
    found = [
        d
        for factory in [f for f, _ in COPIED]
        + [examples.make_augmented, misbehaving.make_nondeterministic]
        for d in explain_mismatch(factory())
    ]
    assert {d.code for d in found} == {
        "copied-random-state",
        "random-augmentation",
        "nondeterministic",
    }
    for diagnosis in found:
        text = diagnosis.message()
        assert "does not reseed per worker" not in text
        assert "numpy.random.seed(" not in text
        if "reseed" in text.replace("Reseed it", "").replace(".seed(", ""):
            assert generators.reseeded_sentence() in text, text


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
    assert len(set(CODES)) == 9
    with pytest.raises(ValueError, match="unknown diagnosis code 'slow'"):
        Diagnosis("slow", "x.", "y.")
    assert (
        Diagnosis("worker-hang", "It hung\nat 3.", "Fix\nit.").message()
        == "It hung at 3. Fix: Fix it."
    )
    with pytest.raises(ValueError, match="a note has no fix"):
        Diagnosis("random-augmentation", "Fine.", "Do this.")
    with pytest.raises(ValueError, match="a defect has one"):
        Diagnosis("worker-hang", "It hung.", "")
