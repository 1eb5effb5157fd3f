"""Bad input to any command or pytest option: one line saying what is wrong and what to do, the
documented exit code (loaderbench: 2; pytest options: 4), and never a traceback.

The `loaderbench` commands and the option parsers run in-process (cli.main is the very code the
console script calls; each real process imports torch, seconds apiece). A sample of each kind then
runs as a real process, as pytest-benchmark's own tests run pytest, all started at once: a usage
error must reach the shell as one line and the exit code, whatever happens on the way out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_results import CPU_W0, CPU_W2, results

from bench_datasets import UserDatasetError, make_user_dataset
from loaderbench.cli import main
from loaderbench.errors import EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2]
# A user dataset module that fails the way a missing native library makes one fail.
BROKEN_DATASET = "import torch\nraise ImportError('libfancy.so: cannot open shared object file')\n"
ROUNDS = [0.10, 0.11, 0.12, 0.10, 0.11]

BAD_FILES = {
    "missing": (None, "no such file"),
    "directory": ("<dir>", "is a directory"),
    "not-json": ("{'benchmarks': [", "not JSON"),
    "wrong-schema": (json.dumps({"benchmarks": {"a": 1}}), "no 'benchmarks' list"),
    "empty-benchmarks": (json.dumps({"benchmarks": []}), "holds no benchmarks"),
}


def good_results(runner: str = "cpu") -> dict:
    return results({CPU_W0: ROUNDS, CPU_W2: [r / 2 for r in ROUNDS]}, runner=runner)


def bad_file(tmp_path: Path, kind: str) -> Path:
    content, _ = BAD_FILES[kind]
    path = tmp_path / f"{kind}.json"
    if content == "<dir>":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    return path


def good_file(tmp_path: Path, name: str = "good.json", **kwargs) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(good_results(**kwargs)))
    return path


def assert_one_line_error(stderr: str, command: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert lines[0].startswith(f"loaderbench {command}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- loaderbench commands ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BAD_FILES))
@pytest.mark.parametrize("command", ["table", "report", "gate-baseline", "gate-current"])
def test_every_command_refuses_an_unusable_file_in_one_line(tmp_path, capsys, command, kind):
    bad = bad_file(tmp_path, kind)
    argv = {
        "table": ["table", str(bad)],
        "report": ["report", str(bad), "--out", str(tmp_path / "report")],
        "gate-baseline": ["gate", str(bad), str(good_file(tmp_path))],
        "gate-current": ["gate", str(good_file(tmp_path)), str(bad)],
    }[command]
    code, out, err = run_cli(capsys, argv)
    assert code == EXIT_USAGE
    # A folder is a legitimate place for a baseline (baselines/<class>/), so gate says no
    # baseline file is in it rather than that it is a folder.
    problem = (
        "no baseline folder"
        if (command, kind) == ("gate-baseline", "directory")
        else BAD_FILES[kind][1]
    )
    assert_one_line_error(err, argv[0], bad.name, problem)
    assert out == ""


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["baseline", "--runs", "1"], ["--runs must be >= 2"]),
        (["baseline", "--runner", "My Runner"], ["is not a plain lower-case name"]),
        (["ab", "--blocks", "1"], ["one block cannot show the spread between starts"]),
        (["ab", "--a-python", "/no/such/python"], ["/no/such/python does not exist"]),
    ],
    ids=["baseline-runs", "baseline-runner", "ab-blocks", "ab-python"],
)
def test_bad_settings_are_refused_before_anything_runs(capsys, argv, fragments):
    code, out, err = run_cli(capsys, argv)
    assert code == EXIT_USAGE
    assert_one_line_error(err, argv[0], *fragments)


def test_a_baseline_of_another_runner_class_is_refused(tmp_path, capsys):
    baseline = good_file(tmp_path, "gpu-baseline.json", runner="gpu")
    current = good_file(tmp_path, "current.json", runner="cpu")
    code, _, err = run_cli(capsys, ["gate", str(baseline), str(current)])
    assert code == EXIT_USAGE
    assert_one_line_error(err, "gate", "runner class 'gpu'")


def test_no_baseline_for_this_runner_class_says_how_to_record_one(tmp_path, capsys):
    current = good_file(tmp_path, "current.json")
    empty = tmp_path / "baselines"
    empty.mkdir()
    code, _, err = run_cli(capsys, ["gate", str(current), "--baselines", str(empty)])
    assert code == EXIT_USAGE
    assert_one_line_error(err, "gate", "no baseline for runner class 'cpu'", "make baseline")


@pytest.mark.parametrize(
    "spec, fragments",
    [
        (
            "broken_dataset:make",
            ["cannot import module 'broken_dataset'", "ImportError: libfancy.so"],
        ),
        ("no_such_pkg.data:make", ["cannot import module 'no_such_pkg.data'", "PYTHONPATH"]),
        ("broken_dataset", ["is not of the form package.module:callable"]),
        ("json:nothing_here", ["module 'json' has no attribute 'nothing_here'"]),
        ("json:dumps", ["json:dumps() raised TypeError"]),
        ("os:getcwd", ["returned str, not a torch.utils.data.Dataset"]),
    ],
    ids=[
        "import-fails",
        "not-found",
        "no-callable",
        "no-attribute",
        "factory-raises",
        "not-a-dataset",
    ],
)
def test_a_user_dataset_that_cannot_be_built_is_one_line_naming_the_problem(
    tmp_path, monkeypatch, spec, fragments
):
    (tmp_path / "broken_dataset.py").write_text(BROKEN_DATASET)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserDatasetError) as refused:
        make_user_dataset(spec)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("--lb-dataset")
    for fragment in fragments:
        assert fragment in message


# --- real processes, started together -----------------------------------------------------------

PROCESSES = {
    # name: (argv after the interpreter, extra environment, exit code, fragments of the one line)
    "cli-missing-file": (
        ["-m", "loaderbench", "table", "nowhere.json"],
        {},
        2,
        ["loaderbench table: error: nowhere.json: no such file"],
    ),
    "unknown-start-method": (
        ["-m", "pytest", "--lb-start-methods=thread"],
        {},
        4,
        ["ERROR: --lb-start-methods: unknown start method thread"],
    ),
    "dataset-fails-to-import": (
        ["-m", "pytest", "--lb-dataset=broken_dataset:make"],
        {},
        4,
        ["ERROR: --lb-dataset: cannot import module 'broken_dataset'", "ImportError: libfancy.so"],
    ),
    "unknown-hypothesis-profile": (
        ["-m", "pytest"],
        {"HYPOTHESIS_PROFILE": "fast"},
        4,
        ["ERROR: HYPOTHESIS_PROFILE='fast' is not a profile; valid:"],
    ),
}


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """Every PROCESSES entry, started at once (each imports torch: seconds apiece), finished."""
    folder = tmp_path_factory.mktemp("bad_input")
    (folder / "broken_dataset.py").write_text(BROKEN_DATASET)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
    }
    started = {}
    for name, (args, extra, _, _) in PROCESSES.items():
        if args[1] == "pytest":
            args = [*args, "-p", "no:cacheprovider"]
        started[name] = subprocess.Popen(
            [sys.executable, *args],
            cwd=folder if args[1] == "loaderbench" else ROOT,
            env={**env, **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    return {name: (proc, *proc.communicate(timeout=180)) for name, proc in started.items()}


@pytest.mark.processes
@pytest.mark.parametrize("name", list(PROCESSES))
def test_a_real_process_given_bad_input_prints_one_line_and_the_documented_code(processes, name):
    proc, out, err = processes[name]
    _, _, code, fragments = PROCESSES[name]
    assert proc.returncode == code, out + err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
