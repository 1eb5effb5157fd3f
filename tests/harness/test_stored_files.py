"""Stored files through the results model: a recorded results file and the committed baselines,
read and written again, are the same bytes (pytest-benchmark's own format stays readable and
writable unchanged), and the verdict on them is the one recorded before the model was typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loaderbench.cli import main
from loaderbench.errors import InputError
from loaderbench.results import load_results

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
RESULTS = DATA / "results-cpu-io-pyobj.json"
BASELINES = sorted((ROOT / "baselines").rglob("[0-9][0-9][0-9][0-9]_*.json"))


def written_as_read(path: Path) -> str:
    """The file's model written back in the file's own layout: pytest-benchmark's (indent 4, keys
    in the order written, no final newline) or loaderbench's (storage.write_json_atomic)."""
    data = load_results(path).to_json()
    if path.read_text().startswith('{\n    "'):
        return json.dumps(data, indent=4)
    return json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n"


@pytest.mark.parametrize("path", [RESULTS, *BASELINES], ids=lambda p: p.name)
def test_a_stored_file_read_and_written_again_is_the_same_file(path):
    assert written_as_read(path) == path.read_text()


def test_the_committed_baselines_are_all_checked():
    assert len(BASELINES) >= 2


@pytest.mark.parametrize("baseline", BASELINES, ids=lambda p: p.name)
def test_the_verdict_on_the_recorded_results_is_the_one_recorded(baseline, tmp_path, capsys):
    """``loaderbench gate BASELINE RESULTS`` by stored numbers only gives the verdict (every row,
    its numbers, notes and the exit code's result) that the code before the typed model gave."""
    recorded = DATA / f"verdict-{RESULTS.stem}-vs-{baseline.stem}.json"
    markdown = tmp_path / "verdict.md"
    code = main(
        [
            "gate",
            str(baseline),
            str(RESULTS),
            "--side-by-side",
            "0",
            "--confirm",
            "0",
            "--markdown",
            str(markdown),
        ]
    )
    capsys.readouterr()
    verdict = json.loads(markdown.with_suffix(".json").read_text())
    verdict.pop("preamble")
    assert verdict == json.loads(recorded.read_text())
    assert code == (1 if verdict["result"] == "REGRESSED" else 0)


def test_a_fingerprint_with_a_mistyped_field_is_refused_naming_it(tmp_path):
    stored = json.loads(RESULTS.read_text())
    stored["machine_info"]["loaderbench"]["usable_cores"] = "2"
    path = tmp_path / "results.json"
    path.write_text(json.dumps(stored))
    with pytest.raises(InputError, match=r"fingerprint's usable_cores is str '2', expected int"):
        load_results(path)
