"""--lb-loader=MODULE:CLASS (loaders.py): a bad class is one line naming it and what it refused;
results record the class and its package version; a baseline judges only runs of its class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_benchmark.utils import get_machine_id
from synthetic_results import CPU_W0, FINGERPRINT, merged, results

from loaderbench.config import recorded_value
from loaderbench.errors import InputError
from loaderbench.judging.baseline import locate_baseline
from loaderbench.judging.stored_numbers import check_same_runner
from loaderbench.machine import Fingerprint
from loaderbench.measuring.loaders import LoaderClassError, resolve_loader
from loaderbench.results import DEFAULT_LOADER, Results
from loaderbench.storage import write_json_atomic

ROOT = Path(__file__).resolve().parents[2]
STATEFUL = "torchdata.stateful_dataloader:StatefulDataLoader"


class RefusesInOrder:
    """Takes DataLoader's arguments except in_order."""

    def __init__(self, dataset, **kwargs):
        if "in_order" in kwargs:
            raise TypeError("__init__() got an unexpected keyword argument 'in_order'")


@pytest.mark.parametrize(
    "spec,said",
    [
        ("torch.utils.data", "write MODULE:CLASS, e.g. torch.utils.data:DataLoader"),
        ("no_such_module:Loader", "module no_such_module does not import (ModuleNotFoundError"),
        ("torch.utils.data:NoSuchLoader", "module torch.utils.data has no NoSuchLoader"),
        ("torch.utils.data:default_collate", "default_collate is not a class (function)"),
        (
            f"{__name__}:RefusesInOrder",
            "RefusesInOrder refuses DataLoader's argument in_order=True",
        ),
    ],
)
def test_a_loader_class_that_cannot_be_used_is_one_line_naming_it(spec, said):
    with pytest.raises(LoaderClassError) as refused:
        resolve_loader(spec)
    message = str(refused.value)
    assert message.startswith(f"--lb-loader={spec}: ") and said in message, message
    assert "\n" not in message


def test_the_default_loader_records_torch_and_its_version():
    import torch

    assert resolve_loader(DEFAULT_LOADER).record() == {
        "class": DEFAULT_LOADER,
        "package": "torch",
        "version": torch.__version__,
    }


def test_stateful_dataloader_records_torchdata_and_its_version():
    pytest.importorskip("torchdata", reason="torchdata is not installed: pip install '.[stateful]'")
    assert resolve_loader(STATEFUL).record() == {
        "class": STATEFUL,
        "package": "torchdata",
        "version": "0.11.0",
    }


@pytest.mark.processes
def test_pytest_with_a_bad_loader_is_a_usage_error_of_one_line():
    """Exit 4 (pytest's usage error), one line, no traceback, before anything runs."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/properties/test_in_order.py",
            "-p",
            "no:cacheprovider",
            f"--lb-loader={__name__.rsplit('.', 1)[-1]}:RefusesInOrder",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        timeout=120,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 4, done.stdout + done.stderr
    assert len(lines) == 1 and "refuses DataLoader's argument in_order" in lines[0], lines
    assert "Traceback" not in done.stderr


def stored(folder: Path, name: str, loader: str | None) -> Path:
    baseline = merged([results({CPU_W0: [1.0, 1.1]})] * 2)
    if loader is not None:
        baseline["loaderbench"]["loader"] = {"class": loader, "package": "x", "version": "1"}
    path = folder / get_machine_id() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, baseline)
    return path


def test_a_baseline_is_found_only_among_those_of_the_same_loader_class(tmp_path):
    torch_baseline = stored(tmp_path, "0001_test-2cpu.json", None)  # recorded before --lb-loader
    stateful_baseline = stored(tmp_path, "0002_test-2cpu.json", STATEFUL)
    kind = Fingerprint.from_dict(FINGERPRINT)
    find = lambda loader: locate_baseline(tmp_path, "cpu", kind, loader=loader)  # noqa: E731
    assert find(DEFAULT_LOADER) == torch_baseline
    assert find(STATEFUL) == stateful_baseline
    with pytest.raises(InputError, match="no baseline in .* measured the loader class my:Loader"):
        find("my:Loader")
    with pytest.raises(InputError, match=f"measured the loader class {STATEFUL} but"):
        check_same_runner(
            Results.from_json(json.loads(stateful_baseline.read_text())),
            Results.from_json(json.loads(torch_baseline.read_text())),
            stateful_baseline,
            torch_baseline,
        )


def test_a_baseline_run_measures_the_last_loader_its_arguments_name():
    assert recorded_value(["--lb-grid=quick"], "loader") == DEFAULT_LOADER
    assert recorded_value(["--lb-loader=a:B", "--lb-loader", "c:D"], "loader") == "c:D"


def test_tune_takes_the_loader_class_as_an_argument_and_names_it():
    """tune(loader=) in the Python API: every loader measured is of that class, the printed call
    and tune.json name it, and the class in use before is in use again afterwards; a class that
    refuses a DataLoader argument is a one-line ValueError."""
    pytest.importorskip("torchdata", reason="torchdata is not installed: pip install '.[stateful]'")
    from torchdata.stateful_dataloader import StatefulDataLoader

    from loaderbench.measuring import loaders
    from loaderbench.tuning import tune

    built = []
    real_make = loaders.make_loader

    def recording(dataset, **kwargs):
        loader = real_make(dataset, **kwargs)
        built.append(type(loader))
        return loader

    before = loaders.current_loader()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loaders, "make_loader", recording)
        patch.setattr("loaderbench.tuning.contest.make_loader", recording, raising=False)
        result = tune(
            list(range(64)),
            batch_size=8,
            loader=StatefulDataLoader,
            max_workers=0,
            budget_s=5,
            prefetch_factors="2",
            diagnose=False,
            show=lambda line: None,
        )
    assert built and set(built) == {StatefulDataLoader}
    assert result.snippet().startswith("StatefulDataLoader(")
    recorded = result.as_dict()["loader"]  # a class given names the module defining it
    assert recorded["class"].endswith(":StatefulDataLoader") and recorded["package"] == "torchdata"
    assert loaders.current_loader() == before
    with pytest.raises(ValueError, match="RefusesInOrder refuses DataLoader's argument in_order"):
        tune(list(range(8)), loader=RefusesInOrder, diagnose=False, show=lambda line: None)
