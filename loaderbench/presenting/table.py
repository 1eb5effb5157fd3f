"""The compact table `make bench` prints: per profile, workers x start method, speed, a default
loader's whole epoch and start-up."""

from __future__ import annotations

from loaderbench.results import EPOCH, STARTUP, THROUGHPUT, Benchmark, Results


def _rows(results: Results) -> dict[str, dict[str, dict[str, Benchmark]]]:
    """{profile: {case id: {measure: bench}}} in run order."""
    table: dict[str, dict[str, dict[str, Benchmark]]] = {}
    for bench in results.benchmarks:
        case = bench.case
        if case is None or bench.measure not in (THROUGHPUT, EPOCH, STARTUP):
            continue
        row = table.setdefault(case["profile"], {}).setdefault(str(bench.case_id), {})
        row[str(bench.measure)] = bench
    return table


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def format_table(results: Results) -> str:
    speedups = {d.case: d.value for d in results.derived if d.kind == "speedup"}
    epoch_speedups = {d.case: d.value for d in results.derived if d.kind == "epoch_speedup"}
    header = ("profile", "case", "samples/s", "speed-up", "epoch ms", "epoch x", "1st batch ms")
    lines = []
    for profile, rows in _rows(results).items():
        for case_id, row in rows.items():
            tput = row.get(THROUGHPUT)
            rate = tput.value("samples_per_s") if tput else None
            startup = row.get(STARTUP)
            ttfb = startup.median * 1e3 if startup else None
            speedup = 1.0 if tput and tput.num_workers == 0 else speedups.get(case_id)
            epoch = row.get(EPOCH)
            epoch_ms = epoch.median * 1e3 if epoch else None
            epoch_speedup = 1.0 if epoch and epoch.num_workers == 0 else epoch_speedups.get(case_id)
            label = case_id[len(profile) + 1 :]
            lines.append(
                (
                    profile,
                    label,
                    _fmt(rate, ",.0f"),
                    _fmt(speedup, ".2f", "x"),
                    _fmt(epoch_ms, ",.1f"),
                    _fmt(epoch_speedup, ".2f" if (epoch_speedup or 1) >= 0.1 else ".3f", "x"),
                    _fmt(ttfb, ",.1f"),
                )
            )
    if not lines:
        return "no loaderbench grid results in this file"
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out, previous = [], None
    for i, shown_row in enumerate([header, *lines]):
        shown = list(shown_row)
        if i and shown_row[0] == previous:
            shown[0] = ""  # print each profile's name once
        previous = shown_row[0] if i else None
        out.append(
            "  ".join(
                c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(shown, widths))
            ).rstrip()
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
