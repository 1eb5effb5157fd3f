"""What the side-by-side commands print and write once measuring is done, with the measuring
replaced by fixed rows: the path from cli/ through presenting/ to the files a user opens."""

from __future__ import annotations

import json

from loaderbench.cli import main
from loaderbench.judging.verdict import Row, Verdict
from loaderbench.paired.sensitivity import Comparisons

REGRESSED = Row(
    "test_throughput[noop-w0]",
    baseline=0.010,
    current=0.012,
    change=1.2,
    low=1.1,
    high=1.3,
    p=0.001,
    verdict="regressed",
)
GRID = ["--", "--lb-profiles=noop", "--lb-workers=0,2", "--lb-start-methods=fork"]


def test_ab_prints_the_verdict_and_writes_it_as_markdown_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        "loaderbench.cli.ab.measure_side_by_side", lambda *a, **k: Verdict([REGRESSED])
    )
    out = tmp_path / "ab"
    assert main(["ab", "--out", str(out), *GRID]) == 1
    printed = capsys.readouterr().out
    assert "REGRESSED: 1 regressed" in printed and "1.200x" in printed
    markdown = (out / "verdict.md").read_text()
    assert markdown.startswith("# Regression verdict") and "| [1.100, 1.300] |" in markdown
    stored = json.loads((out / "verdict.json").read_text())
    assert stored["result"] == "REGRESSED" and stored["rows"][0]["change"] == 1.2
    assert any(line.startswith("grid ") for line in stored["preamble"])


def test_ratios_prints_its_table_and_writes_it_with_the_rows(tmp_path, capsys, monkeypatch):
    row = {
        "name": "speedup[noop-w2-fork]",
        "value": 1.9,
        "low": 1.8,
        "high": 2.0,
        "pairs": 12,
        "blocks": 3,
        "mode": "alternate",
        "stopped": "settled",
        "what": "speed-up",
    }
    monkeypatch.setattr("loaderbench.cli.ratios.measure_ratios", lambda *a, **k: [row])
    out = tmp_path / "ratios"
    assert (
        main(["ratios", "--kinds", "speedup", "--pair-alpha", "0.1", "--out", str(out), *GRID]) == 0
    )
    table = (out / "ratios.txt").read_text()
    assert table.rstrip() in capsys.readouterr().out
    assert table.splitlines()[2].split()[:2] == ["speedup[noop-w2-fork]", "1.900"]
    stored = json.loads((out / "ratios.json").read_text())
    assert stored["rows"] == [row] and stored["profiles"] == ["noop"]
    assert stored["confidence"] == 0.9


def test_sensitivity_prints_its_table_and_writes_sensitivity_md(tmp_path, capsys, monkeypatch):
    comparisons = Comparisons(
        [
            {
                "run": 1,
                "variant": "cost x1.25",
                "seconds": 30.0,
                "rows": [{"name": REGRESSED.name, "verdict": "regressed", "change": 1.2}],
            }
        ],
        ["cost x1.25"],
        ["grid quick: noop"],
    )
    monkeypatch.setattr(
        "loaderbench.cli.sensitivity.measure_sensitivity", lambda *a, **k: comparisons
    )
    out = tmp_path / "sensitivity"
    assert main(["sensitivity", "--no-aa", "--slowdowns", "1.25", "--out", str(out), *GRID]) == 0
    table = (out / "sensitivity.md").read_text()
    assert table.rstrip() in capsys.readouterr().out
    assert f"| {REGRESSED.name} | 1 of 1 regressed | 25% |" in table


def test_gate_remeasure_writes_the_verdict_with_what_was_measured(tmp_path, capsys, monkeypatch):
    preamble = ["baseline: baselines/cpu/x.json, remeasured from its recipe", "grid quick: noop"]
    monkeypatch.setattr(
        "loaderbench.paired.remeasure.remeasure",
        lambda *a, **k: (Verdict([REGRESSED]), preamble),
    )
    out = tmp_path / "remeasure"
    assert main(["gate", "--remeasure", "--out", str(out)]) == 1
    assert capsys.readouterr().out.startswith("\n".join(preamble))
    assert json.loads((out / "verdict.json").read_text())["preamble"] == preamble
    assert "- grid quick: noop" in (out / "verdict.md").read_text()
