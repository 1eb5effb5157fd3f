"""`loaderbench sensitivity`'s table: verdicts counted per row and variant, and --tabulate, which
counts the sensitivity.json files of several commands together."""

from __future__ import annotations

import json

from loaderbench.cli import main


def record(run: int, variant: str, verdict: str, change: float) -> dict:
    return {
        "run": run,
        "variant": variant,
        "seconds": 60.0,
        "rows": [{"name": "test_throughput[cpu-w0]", "verdict": verdict, "change": change}],
    }


def test_tabulate_counts_the_runs_of_several_files_together(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(
        json.dumps(
            {
                "preamble": ["grid quick: cpu"],
                "records": [
                    record(1, "A/A", "unchanged", 0.99),
                    record(1, "cost x1.25", "regressed", 1.2),
                    record(1, "cost x1.1", "regressed", 1.1),
                ],
            }
        )
    )
    second.write_text(
        json.dumps(
            {
                "preamble": ["grid quick: cpu"],
                "records": [
                    record(1, "A/A", "regressed", 1.04),
                    record(1, "cost x1.1", "inconclusive", 1.06),
                ],
            }
        )
    )
    assert main(["sensitivity", "--tabulate", str(first), str(second)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "cpu-w0" in line)
    assert line == (
        "| test_throughput[cpu-w0] | 1 of 2 regressed, 0.990-1.040x | 1 of 2 regressed "
        "| 1 of 1 regressed | 25% |"
    )


def test_tabulate_refuses_a_file_that_is_not_a_sensitivity_json(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text('{"benchmarks": []}')
    assert main(["sensitivity", "--tabulate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a sensitivity.json" in err and len(err.splitlines()) == 1


def test_the_smallest_slowdown_caught_is_the_smallest_and_a_dash_when_none_was_tried(
    tmp_path, capsys
):
    caught_both, aa_only = tmp_path / "a.json", tmp_path / "b.json"
    caught_both.write_text(
        json.dumps(
            {
                "preamble": [],
                "records": [
                    record(1, "cost x1.25", "regressed", 1.2),
                    record(1, "cost x1.1", "regressed", 1.1),
                ],
            }
        )
    )
    aa_only.write_text(
        json.dumps(
            {
                "preamble": [],
                "records": [
                    {
                        "run": 1,
                        "variant": "A/A",
                        "seconds": 60.0,
                        "rows": [
                            {
                                "name": "test_throughput[io-w0]",
                                "verdict": "unchanged",
                                "change": 1.0,
                            }
                        ],
                    }
                ],
            }
        )
    )
    assert main(["sensitivity", "--tabulate", str(caught_both), str(aa_only)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if "cpu-w0" in line).endswith("| 10% |")
    assert next(line for line in lines if "io-w0" in line).endswith(
        "| - |"
    )  # not tried, not "none"


def test_tabulate_reports_how_much_one_pair_moves_within_a_block_of_an_a_against_a(
    tmp_path, capsys
):
    """From the rounds a run kept: pairs of ratio 1.1, 1/1.1, 1.1, 1/1.1 spread by
    stdev(+-log 1.1) = 11.0%; a block of two pairs is too short to count."""
    up, down = (1.0, 1.1), (1.1, 1.0)
    row = {
        "name": "test_throughput[cpu-w0]",
        "verdict": "unchanged",
        "change": 1.0,
        "rounds": [[up, down, up, down], [up, down]],
    }
    stored = tmp_path / "s.json"
    stored.write_text(
        json.dumps(
            {
                "preamble": [],
                "records": [{"run": 1, "variant": "A/A", "seconds": 60.0, "rows": [row]}],
            }
        )
    )
    assert main(["sensitivity", "--tabulate", str(stored)]) == 0
    assert "- test_throughput[cpu-w0]: 11.0%-11.0%" in capsys.readouterr().out
