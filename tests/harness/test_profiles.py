"""Every profile's content is a pure function of (seed, index), checked exactly."""

import os
import pickle

import pytest
import torch

import bench_datasets
from bench_datasets import (
    PROFILES,
    ShardedIterable,
    UserDatasetError,
    make_dataset,
    make_user_dataset,
)
from loaderbench.grid import Case
from loaderbench.measuring.loaders import build_loader, running

SMALL = 6


def build(profile, seed=0):
    """A small dataset of ``profile`` (pyobj's list shrunk to match)."""
    overrides = {"objects": 600} if profile == "pyobj" else {}
    return make_dataset(profile, length=SMALL, seed=seed, **overrides)


@pytest.fixture(params=list(PROFILES))
def small(request):
    with build(request.param) as dataset:
        yield dataset


def assert_same(a: torch.Tensor, b: torch.Tensor):
    assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def test_getitem_returns_the_recomputable_content_and_its_index(small):
    for index in range(SMALL):
        data, origin = small[index]
        assert origin == index
        assert_same(data, small.expected(index))


def test_content_depends_on_seed_and_index_only(small):
    with build(small.profile) as again, build(small.profile, seed=1) as other_seed:
        assert all(torch.equal(again[i][0], small[i][0]) for i in range(SMALL))
        assert not torch.equal(other_seed[0][0], small[0][0])
        assert not torch.equal(small[0][0], small[1][0])


def test_a_pickled_copy_yields_the_same_samples(small):
    """What a spawn or forkserver worker receives (the smoke pass of `make test` starts such
    workers for one profile only): the dataset pickled by reference to importable code, whole."""
    copy = pickle.loads(pickle.dumps(small))
    assert type(copy) is type(small)
    for index in range(SMALL):
        data, origin = copy[index]
        assert origin == index
        assert_same(data, small[index][0])


def test_out_of_range_index_is_an_index_error(small):
    with pytest.raises(IndexError):
        small[SMALL]


def test_cost_scale_multiplies_the_cost_knob():
    assert make_dataset("cpu", length=1, cost_scale=1.25).iterations == 10000
    assert make_dataset("io", length=1, cost_scale=1.1).latency_ms == pytest.approx(2.2)
    assert make_dataset("cpu", length=1, cost_scale=2.0, iterations=10).iterations == 10


def test_unknown_profile_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown profile 'gpu'; valid: noop, cpu"):
        make_dataset("gpu")


def test_disk_profile_removes_its_files_on_close():
    dataset = make_dataset("disk", length=3, sample_bytes=16)
    assert os.listdir(dataset.root)
    dataset.close()
    assert not os.path.exists(dataset.root)


def test_pyobj_list_and_numpy_storage_hold_the_same_values():
    as_list = make_dataset("pyobj", length=4, objects=400)
    as_array = make_dataset("pyobj", length=4, objects=400, storage="numpy")
    for i in range(4):
        assert_same(as_list[i][0], as_array[i][0])


@pytest.mark.processes
def test_sharded_iterable_yields_every_sample_once_across_workers():
    dataset = make_dataset("noop", length=23)
    case = Case("noop", 2, "fork", batch_size=4)
    with running(build_loader(ShardedIterable(dataset), case)) as loader:
        seen = [int(i) for _, indices in loader for i in indices]
    assert sorted(seen) == list(range(23))


def test_user_dataset_from_a_factory(tmp_path, monkeypatch):
    (tmp_path / "userdata.py").write_text(
        "from bench_datasets import make_dataset\n"
        "def good():\n    return make_dataset('noop', length=3)\n"
        "def not_a_dataset():\n    return [1, 2, 3]\n"
        "def broken():\n    raise OSError('bucket not reachable')\n"
        "value = 3\n"
    )
    (tmp_path / "brokenmod.py").write_text("import does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert len(make_user_dataset("userdata:good")) == 3
    for spec, message in [
        ("userdata", "not of the form package.module:callable"),
        ("nosuchmodule:f", "cannot import module 'nosuchmodule'"),
        ("brokenmod:f", "ModuleNotFoundError: No module named 'does_not_exist'"),
        ("userdata:missing", "has no attribute 'missing'"),
        ("userdata:value", "is not callable"),
        ("userdata:broken", r"userdata:broken\(\) raised OSError: bucket not reachable"),
        ("userdata:not_a_dataset", "returned list, not a torch.utils.data.Dataset"),
    ]:
        with pytest.raises(UserDatasetError, match=message):
            make_user_dataset(spec)


def test_every_profile_is_exported():
    assert set(PROFILES) == {"noop", "cpu", "io", "disk", "jpeg", "large", "pyobj"}
    assert bench_datasets.USER_PROFILE not in PROFILES
