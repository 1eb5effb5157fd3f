"""The compact table `make bench` prints: per profile, workers x start method, speed and start-up."""

from __future__ import annotations

from loaderbench.judging.derived import STARTUP, THROUGHPUT


def _rows(results: dict) -> dict[str, dict[str, dict]]:
    """{profile: {case id: {"case": ..., "throughput": bench, "startup": bench}}} in run order."""
    table: dict[str, dict[str, dict]] = {}
    for bench in results["benchmarks"]:
        info = bench.get("extra_info") or {}
        case, measure = info.get("case"), info.get("measure")
        if not isinstance(case, dict) or measure not in (THROUGHPUT, STARTUP):
            continue
        row = table.setdefault(case["profile"], {}).setdefault(case["id"], {"case": case})
        row[measure] = bench
    return table


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def format_table(results: dict) -> str:
    speedups = {
        d["case"]: d["value"]
        for d in results.get("loaderbench", {}).get("derived", [])
        if d.get("kind") == "speedup"
    }
    header = ("profile", "case", "samples/s", "speed-up", "1st batch ms")
    lines = []
    for profile, rows in _rows(results).items():
        for case_id, row in rows.items():
            tput = row.get(THROUGHPUT)
            rate = (tput.get("extra_info") or {}).get("samples_per_s") if tput else None
            startup = row.get(STARTUP)
            ttfb = startup["stats"]["median"] * 1e3 if startup else None
            speedup = 1.0 if row["case"]["num_workers"] == 0 and tput else speedups.get(case_id)
            label = case_id[len(profile) + 1 :]
            lines.append(
                (profile, label, _fmt(rate, ",.0f"), _fmt(speedup, ".2f", "x"), _fmt(ttfb, ",.1f"))
            )
    if not lines:
        return "no loaderbench grid results in this file"
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out, previous = [], None
    for i, row in enumerate([header, *lines]):
        shown = list(row)
        if i and row[0] == previous:
            shown[0] = ""  # print each profile's name once
        previous = row[0] if i else None
        out.append(
            "  ".join(
                c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(shown, widths))
            ).rstrip()
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
