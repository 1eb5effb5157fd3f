"""`loaderbench report` on a stored results file from a real run, and its recommendation rule."""

import json
import re
from pathlib import Path

import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from loaderbench import cli, report
from loaderbench.grid import Case
from loaderbench.plots import STYLE
from loaderbench.recommend import TIE, recommend
from loaderbench.series import MEMORY, OVERLAP, series

#: A real run: `pytest tests/benchmarks --benchmark-only --lb-profiles=cpu,io --lb-rounds=3
#: --benchmark-save-data --benchmark-json=...` on the 2-core reference machine.
STORED = Path(__file__).parent / "data" / "results-cpu-io.json"
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def stored():
    return json.loads(STORED.read_text())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, stored):
    """The report of the stored run, rendered once through the command line."""
    out = tmp_path_factory.mktemp("report")
    assert cli.main(["report", str(STORED), "--out", str(out)]) == 0
    return out, (out / report.REPORT_NAME).read_text()


def heading_order(markdown):
    return [line[3:] for line in markdown.splitlines() if line.startswith("## ")]


def test_every_section_renders_in_order(rendered, stored):
    """Recommendations, then each measure; a measure absent from the run says so instead."""
    _, markdown = rendered
    assert heading_order(markdown) == ["Recommendations"] + [s.title for s in report.SECTIONS]
    for section in report.SECTIONS:
        body = markdown.split(f"## {section.title}\n", 1)[1].split("\n## ", 1)[0]
        measured = series(stored, section.measure)
        assert (report.NOT_MEASURED in body) == (not measured), section.title
        for points in measured.values():  # every measured case has its row
            for point in points:
                assert f"| {point.profile} | {point.label} |" in body


def test_every_plot_is_linked_exists_and_is_a_valid_png(rendered, stored):
    """Each image the report links is a PNG that Pillow verifies, and no PNG is left unlinked."""
    out, markdown = rendered
    linked = IMAGE.findall(markdown)
    expected = [s.plot_file for s in report.SECTIONS if series(stored, s.measure)]
    assert linked == expected and "throughput.png" in linked and "startup.png" in linked
    for name in linked:
        with Image.open(out / name) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) >= 300, name
    assert sorted(p.name for p in out.glob("*.png")) == sorted(linked)


def colours_in(path):
    with Image.open(path) as image:
        return {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20)}


def test_each_start_method_of_the_run_is_drawn_in_its_colour(rendered, stored):
    """The throughput and start-up plots show a line or bar for every start method measured."""
    out, _ = rendered
    for plot, measure in (("throughput.png", "throughput"), ("startup.png", "startup")):
        methods = {p.start_method for points in series(stored, measure).values()
                   for p in points if p.start_method}
        assert methods, measure
        present = colours_in(out / plot)
        for method in methods:
            colour = tuple(round(c * 255) for c in to_rgb(STYLE[method][0]))
            assert colour in present, f"{plot}: no {method} ({colour})"


def test_recommendations_name_one_case_per_profile_with_its_gain(rendered, stored):
    """'cpu: 2 workers, fork — 1.9× over 0, memory not measured', for every profile measured."""
    _, markdown = rendered
    lines = [line[2:] for line in markdown.split("## Recommendations\n", 1)[1]
             .split("\n## ", 1)[0].splitlines() if line.startswith("- ")]
    profiles = list(series(stored, "throughput"))
    assert [line.split(":")[0] for line in lines] == profiles
    shape = re.compile(r"\w+: (\d+ workers, (fork|spawn|forkserver) — \d+\.\d× over 0, "
                       r"(memory not measured|[+-][\d,]+ MB)|0 workers \(main process\) — .+)")
    for line in lines:
        assert shape.fullmatch(line), line


def test_step_summary_gets_the_report_appended_without_embedded_images(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert cli.main(["report", str(STORED), "--out", str(tmp_path / "out")]) == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n# loaderbench report\n")
    assert not IMAGE.search(text) and "_Plot: `throughput.png` in the uploaded results._" in text
    assert heading_order(text) == heading_order((tmp_path / "out" / "report.md").read_text())


def test_a_stale_plot_of_an_unmeasured_measure_is_removed(tmp_path, stored):
    stale = tmp_path / "overlap.png"
    stale.write_bytes(b"from an earlier run")
    report.build(stored, tmp_path, source="stored")
    assert not series(stored, OVERLAP) and not stale.exists()


def test_verdict_comes_first_with_a_baseline(tmp_path):
    """Judged against itself: the gate's table first, every derived ratio unchanged."""
    assert cli.main(["report", str(STORED), "--baseline", str(STORED), "--only", "derived",
                     "--out", str(tmp_path)]) == 0
    markdown = (tmp_path / "report.md").read_text()
    assert heading_order(markdown)[:2] == ["Regression verdict", "Recommendations"]
    verdict = markdown.split("## Recommendations", 1)[0]
    assert "judging derived only" in verdict and "Result: **no regression**" in verdict
    rows = [line for line in verdict.splitlines() if line.startswith("| ") and "]" in line]
    derived = json.loads(STORED.read_text())["loaderbench"]["derived"]
    assert len(rows) == len(derived) and all("| unchanged |" in row for row in rows)


@pytest.mark.parametrize("args, message", [
    (["missing.json"], "no such file"),
    ([str(STORED), "--baseline", "missing.json"], "no such file"),
    ([str(STORED), "--out", str(STORED)], "is a file, expected a directory"),
])
def test_unusable_input_is_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path)]
    assert cli.main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("loaderbench report: error:") and message in err


# The recommendation rule, on synthetic runs where the right answer is known.

def run_of(throughput=(), startup=(), memory=()):
    """A results dict with throughput (samples/s), start-up (s) and memory (MB) per case."""
    benchmarks = []
    for measure, rows in (("throughput", throughput), ("startup", startup), (MEMORY, memory)):
        for case, value in rows:
            info = {"measure": measure, "case": case.as_dict()}
            median = 1.0
            if measure == "throughput":
                info["samples_per_s"] = value
            elif measure == "startup":
                median = value
            else:
                info["peak_pss_mb"] = value
            benchmarks.append({"name": f"test_{measure}[{case.id}]",
                               "stats": {"median": median, "min": median}, "extra_info": info})
    return {"benchmarks": benchmarks}


def only(recommendations):
    (single,) = recommendations
    return single


def test_a_clear_winner_is_picked_with_its_speedup_and_memory():
    run = run_of(throughput=[(Case("cpu", 0), 100.0), (Case("cpu", 2, "fork"), 150.0),
                             (Case("cpu", 4, "fork"), 190.0)],
                 memory=[(Case("cpu", 0), 300.0), (Case("cpu", 4, "fork"), 440.0)])
    pick = only(recommend(run))
    assert pick.sentence() == "cpu: 4 workers, fork — 1.9× over 0, +140 MB"


def test_among_near_ties_fewer_workers_then_faster_startup_win():
    within = 1 - TIE / 2
    run = run_of(throughput=[(Case("io", 0), 100.0), (Case("io", 2, "spawn"), 200.0 * within),
                             (Case("io", 2, "fork"), 200.0 * within),
                             (Case("io", 4, "fork"), 200.0)],
                 startup=[(Case("io", 2, "spawn"), 2.0), (Case("io", 2, "fork"), 0.1)])
    pick = only(recommend(run)).pick
    assert (pick.num_workers, pick.start_method) == (2, "fork")


def test_a_case_just_beyond_the_tie_band_is_not_traded_for_fewer_workers():
    beyond = 1 - TIE * 1.5
    run = run_of(throughput=[(Case("io", 0), 100.0), (Case("io", 2, "fork"), 200.0 * beyond),
                             (Case("io", 4, "fork"), 200.0)])
    assert only(recommend(run)).pick.num_workers == 4


def test_when_workers_do_not_help_the_main_process_is_recommended():
    run = run_of(throughput=[(Case("noop", 0), 1000.0), (Case("noop", 2, "fork"), 700.0)])
    assert only(recommend(run)).sentence().startswith("noop: 0 workers (main process)")
