"""`loaderbench report` on a stored results file from a real run, and its recommendation rule."""

import json
import re
from pathlib import Path

import pytest
from matplotlib.colors import to_rgb
from PIL import Image
from synthetic_results import merged

from loaderbench import cli
from loaderbench.grid import Case
from loaderbench.presenting import report
from loaderbench.presenting.plots import STYLE, line_style
from loaderbench.presenting.recommend import TIE, recommend
from loaderbench.presenting.series import GRID_TESTS, MEMORY, OVERLAP, series
from loaderbench.results import Results
from loaderbench.storage import write_json_atomic

#: A real run on the 2-core reference machine (busy at the time: the numbers are not representative),
#: holding every measure the report shows: `pytest tests/benchmarks --benchmark-only
#: --lb-profiles=cpu,io,pyobj --lb-rounds=3 --benchmark-json=...`.
STORED = Path(__file__).parent / "data" / "results-cpu-io-pyobj.json"
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def stored():
    return json.loads(STORED.read_text())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, stored):
    """The report of the stored run, rendered once through the command line as in a GitHub job."""
    out = tmp_path_factory.mktemp("report")
    summary = out / "summary.md"
    summary.write_text("earlier step\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        assert cli.main(["report", str(STORED), "--out", str(out)]) == 0
    return out, (out / report.REPORT_NAME).read_text()


def io_only(stored, path, **loaderbench):
    """A small copy of the stored run (the io profile alone), quick to render."""
    meta = {**stored["loaderbench"], **loaderbench}
    meta["derived"] = [d for d in meta["derived"] if d["case"].startswith("io-")]
    path.write_text(
        json.dumps(
            {
                **stored,
                "loaderbench": meta,
                "benchmarks": [
                    b
                    for b in stored["benchmarks"]
                    if (b["extra_info"].get("case") or {}).get("profile") == "io"
                ],
            }
        )
    )
    return path


def heading_order(markdown):
    return [line[3:] for line in markdown.splitlines() if line.startswith("## ")]


def test_every_section_renders_in_order(rendered, stored):
    """Recommendations, then each measure; a measure absent from the run says so instead."""
    _, markdown = rendered
    assert heading_order(markdown) == ["Recommendations"] + [s.title for s in report.SECTIONS]
    for section in report.SECTIONS:
        body = markdown.split(f"## {section.title}\n", 1)[1].split("\n## ", 1)[0]
        measured = series(Results.from_json(stored), section.measure)
        assert (report.NOT_MEASURED in body) == (not measured), section.title
        for points in measured.values():  # every measured case has its row
            for point in points:
                assert f"| {point.panel} | {point.label} |" in body


def test_every_plot_is_linked_exists_and_is_a_valid_png(rendered, stored):
    """Each image the report links is a PNG that Pillow verifies, and no PNG is left unlinked."""
    out, markdown = rendered
    linked = IMAGE.findall(markdown)
    expected = [
        s.plot_file for s in report.SECTIONS if series(Results.from_json(stored), s.measure)
    ]
    assert linked == expected and "throughput.png" in linked and "startup.png" in linked
    for name in linked:
        with Image.open(out / name) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) >= 300, name
    assert sorted(p.name for p in out.glob("*.png")) == sorted(linked)


def colours_in(path):
    with Image.open(path) as image:
        return {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20)}


def test_the_stored_run_holds_every_measure_and_the_copy_on_read_pair(stored):
    """Guards the data file itself: otherwise the tests above could pass on "not measured"."""
    assert all(series(Results.from_json(stored), section.measure) for section in report.SECTIONS)
    pair = series(Results.from_json(stored), MEMORY)["pyobj, copy on read"]
    assert {p.line for p in pair} == {"list", "numpy"}


def test_every_line_of_every_panel_is_drawn_in_its_colour(rendered, stored):
    """Each plot shows each line (start method, or storage in the copy-on-read panel) in the colour
    that start method or setting has everywhere."""
    out, _ = rendered
    for section in report.SECTIONS:
        present = colours_in(out / section.plot_file)
        for points in series(Results.from_json(stored), section.measure).values():
            lines = list(dict.fromkeys(p.line for p in points if p.line))
            others = [line for line in lines if line not in STYLE]
            for line in lines:
                colour = tuple(round(c * 255) for c in to_rgb(line_style(line, others)[0]))
                assert colour in present, f"{section.plot_file}: no {line} line ({colour})"


def test_copy_on_read_growth_is_shown_per_storage(rendered, stored):
    """The copy-on-read pair's rows report growth over 0 workers against their own storage."""
    _, markdown = rendered
    pair = series(Results.from_json(stored), MEMORY)["pyobj, copy on read"]
    for point in pair:
        if point.num_workers:
            serial = next(p for p in pair if p.num_workers == 0 and p.line == point.line)
            growth = f"{point.value - serial.value:+,.0f} MB"
            assert (
                f"| pyobj, copy on read | {point.label} | {point.value:,.0f} | {growth} |"
                in markdown
            )


def test_recommendations_name_one_case_per_profile_with_its_gain(rendered, stored):
    """'cpu: 2 workers, fork — 1.9× over 0, memory not measured', for every profile measured."""
    _, markdown = rendered
    lines = [
        line[2:]
        for line in markdown.split("## Recommendations\n", 1)[1].split("\n## ", 1)[0].splitlines()
        if line.startswith("- ")
    ]
    profiles = list(series(Results.from_json(stored), "throughput"))
    assert [line.split(":")[0] for line in lines] == profiles
    shape = re.compile(
        r"\w+: (\d+ workers, (fork|spawn|forkserver) — \d+\.\d× over 0, "
        r"(memory not measured|[+-][\d,]+ MB)|0 workers \(main process\) — .+)"
    )
    for line in lines:
        assert shape.fullmatch(line), line


def test_step_summary_gets_the_report_appended_without_embedded_images(rendered):
    out, markdown = rendered
    text = (out / "summary.md").read_text()
    assert text.startswith("earlier step\n# loaderbench report\n")
    assert not IMAGE.search(text) and "_Plot: `throughput.png` in the uploaded results._" in text
    assert heading_order(text) == heading_order(markdown)


def test_a_run_without_memory_and_overlap_says_so_and_drops_stale_plots(tmp_path, stored):
    partial = {
        **stored,
        "benchmarks": [
            b
            for b in stored["benchmarks"]
            if b["extra_info"].get("measure") not in (MEMORY, OVERLAP)
        ],
    }
    stale = tmp_path / "overlap.png"
    stale.write_bytes(b"from an earlier run")
    built = report.build(Results.from_json(partial), tmp_path, source="partial")
    assert [p.name for p in built.plots] == ["throughput.png", "epoch.png", "startup.png"]
    assert not stale.exists() and not (tmp_path / "memory.png").exists()
    for title in ("Peak memory", "Overlap with the training step"):
        body = built.markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
        assert body.strip() == report.NOT_MEASURED
    assert "memory not measured" in built.markdown.split("## Throughput", 1)[0]


def test_a_bare_baseline_judges_against_the_runner_class_folder_first(tmp_path, stored):
    """A run judged against a baseline of two runs just like it, found as
    baselines/cpu/<machine>/0001_*.json: the gate's table comes first, every derived ratio
    unchanged."""
    current = io_only(stored, tmp_path / "current.json")
    folder = tmp_path / "baselines" / "cpu" / "Linux-CPython-3.11-64bit"
    run = json.loads(current.read_text())
    pooled = merged([run, run])
    write_json_atomic(folder / "0001_baseline.json", pooled)
    run["loaderbench"]["derived"] = pooled["loaderbench"]["derived"]  # as this version derives
    write_json_atomic(current, run)
    assert (
        cli.main(
            [
                "report",
                str(current),
                "--baseline",
                "--baselines",
                str(tmp_path / "baselines"),
                "--only",
                "derived",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert heading_order(markdown)[:2] == ["Regression verdict", "Recommendations"]
    verdict = markdown.split("## Recommendations", 1)[0]
    assert f"baseline: `{folder / '0001_baseline.json'}` (2 runs in 1 sitting" in verdict
    assert "judging derived only" in verdict
    assert "**no regression**: 0 regressed, 0 inconclusive" in verdict
    rows = [line for line in verdict.splitlines() if line.startswith("| ") and "]" in line]
    assert len(rows) == len(pooled["loaderbench"]["derived"]) > 0
    assert all("| unchanged |" in row for row in rows)


@pytest.mark.parametrize(
    "runner, note",
    [
        ("gpu", "_Not judged: no baseline for runner class 'gpu'"),
        (None, "records no runner class"),  # results written before runner classes existed
    ],
)
def test_a_bare_baseline_with_none_to_find_still_writes_the_report(runner, note, tmp_path, stored):
    current = io_only(stored, tmp_path / "current.json", runner=runner)
    assert (
        cli.main(
            [
                "report",
                str(current),
                "--baseline",
                "--baselines",
                str(tmp_path),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert heading_order(markdown)[:2] == ["Regression verdict", "Recommendations"]
    assert note in markdown


def test_an_explicit_baseline_file_is_judged(tmp_path, stored):
    current = io_only(stored, tmp_path / "current.json")
    assert (
        cli.main(
            ["report", str(current), "--baseline", str(current), "--out", str(tmp_path / "out")]
        )
        == 0
    )
    assert f"baseline: `{current}`\n" in (tmp_path / "out" / "report.md").read_text()


def test_the_gates_verdict_file_is_shown_as_written(tmp_path, stored):
    """make bench: the gate judged (and confirmed) first; the report shows that verdict as is."""
    current = io_only(stored, tmp_path / "current.json")
    assert cli.main(["gate", str(current), str(current), "--markdown", str(tmp_path / "v.md")]) == 0
    written = (tmp_path / "v.md").read_text()
    assert (
        cli.main(
            [
                "report",
                str(current),
                "--verdict",
                str(tmp_path / "v.md"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert heading_order(markdown)[:2] == ["Regression verdict", "Recommendations"]
    shown = markdown.split("## Regression verdict\n", 1)[1].split("## Recommendations", 1)[0]
    assert shown.strip() == written.split("\n", 1)[1].strip()


def test_no_verdict_file_means_the_gate_stopped_first(tmp_path, stored):
    current = io_only(stored, tmp_path / "current.json")
    assert (
        cli.main(
            [
                "report",
                str(current),
                "--verdict",
                str(tmp_path / "none.md"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert "_Not judged: no verdict at" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.json"], "no such file"),
        ([str(STORED), "--baseline", "missing.json"], "no such file"),
        ([str(STORED), "--out", str(STORED)], "is a file, expected a directory"),
        ([str(STORED), "--verdict", str(STORED)], "not a verdict written by `loaderbench gate`"),
        ([str(STORED), "--verdict", "v.md", "--baseline"], "--verdict and --baseline both given"),
    ],
)
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
            benchmarks.append(
                {
                    "name": f"{GRID_TESTS[measure]}[{case.id}]",
                    "stats": {"median": median, "min": median},
                    "extra_info": info,
                }
            )
    return {"benchmarks": benchmarks}


def only(recommendations):
    (single,) = recommendations
    return single


def test_a_clear_winner_is_picked_with_its_speedup_and_memory():
    run = run_of(
        throughput=[
            (Case("cpu", 0), 100.0),
            (Case("cpu", 2, "fork"), 150.0),
            (Case("cpu", 4, "fork"), 190.0),
        ],
        memory=[(Case("cpu", 0), 300.0), (Case("cpu", 4, "fork"), 440.0)],
    )
    pick = only(recommend(Results.from_json(run)))
    assert pick.sentence() == "cpu: 4 workers, fork — 1.9× over 0, +140 MB"


def test_among_near_ties_fewer_workers_then_faster_startup_win():
    within = 1 - TIE / 2
    run = run_of(
        throughput=[
            (Case("io", 0), 100.0),
            (Case("io", 2, "spawn"), 200.0 * within),
            (Case("io", 2, "forkserver"), 200.0 * within),
            (Case("io", 4, "spawn"), 200.0),
        ],
        startup=[(Case("io", 2, "spawn"), 2.0), (Case("io", 2, "forkserver"), 0.5)],
    )
    pick = only(recommend(Results.from_json(run))).pick
    assert (pick.num_workers, pick.start_method) == (2, "forkserver")


def test_a_case_just_beyond_the_tie_band_is_not_traded_for_fewer_workers():
    beyond = 1 - TIE * 1.5
    run = run_of(
        throughput=[
            (Case("io", 0), 100.0),
            (Case("io", 2, "fork"), 200.0 * beyond),
            (Case("io", 4, "fork"), 200.0),
        ]
    )
    assert only(recommend(Results.from_json(run))).pick.num_workers == 4


def test_when_workers_do_not_help_the_main_process_is_recommended():
    run = run_of(throughput=[(Case("noop", 0), 1000.0), (Case("noop", 2, "fork"), 700.0)])
    assert (
        only(recommend(Results.from_json(run)))
        .sentence()
        .startswith("noop: 0 workers (main process)")
    )
