"""Turns one search's results folder into `report.md` and `timeline.png`.

Reads Locust's `<prefix>_stats_history.csv` (written with --csv and --csv-full-history), `verdict.json` (the
hone-in shape's) and the sar averages inside it. Usable alone: `python -m lampi_load.reports.render RESULTS_DIR`.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from lampi_load.search.sar import clock  # noqa: E402
from lampi_load.search.settings import recorded_fraction  # noqa: E402
from lampi_load.search.speed import describe  # noqa: E402
from lampi_load.search.speed_watch import describe as describe_watch  # noqa: E402

MOMENT_COLOURS = {"minimal": "tab:green", "max_without_error": "tab:blue", "failing": "tab:red"}
MOMENT_TITLES = {
    "minimal": "minimal load",
    "max_without_error": "max without error",
    "failing": "failing load",
}


def moments_heading(count: int) -> str:
    """The sar table's moments, in words: a search has three; a run of given levels has no minimal-load moment (no
    probe), and no failing one if every level passed."""
    return {1: "the one moment", 2: "the two moments", 3: "the three moments"}.get(count, f"{count} moments")


def read_history(results_dir: Path) -> list[dict]:
    """The Aggregated rows of Locust's stats history, with numbers parsed (None where Locust wrote N/A)."""
    files = sorted(results_dir.glob("*_stats_history.csv"))
    if not files:
        raise FileNotFoundError(
            f"no *_stats_history.csv in {results_dir}: run Locust with --csv and --csv-full-history"
        )
    rows = []
    with files[0].open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] != "Aggregated":
                continue
            rows.append({key: number(value) for key, value in row.items()})
    return rows


def number(value: str):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def draw_timeline(history: list[dict], moments: dict, path: Path) -> None:
    """Users, throughput, failures and latency percentiles over time, the three moments shaded."""
    start = history[0]["Timestamp"]
    t = [(row["Timestamp"] - start) for row in history]
    panels = [
        ("users", [("User Count", "users")]),
        ("requests/s", [("Requests/s", "requests/s")]),
        ("failures/s", [("Failures/s", "failures/s")]),
        ("latency (ms)", [("50%", "p50"), ("95%", "p95"), ("99%", "p99")]),
    ]
    lines = [
        (label, [(name, t, [row[column] for row in history]) for column, name in series]) for label, series in panels
    ]
    draw_panels(lines, moments, start, "seconds since start", path)


def draw_panels(
    panels: list[tuple[str, list[tuple[str, list, list]]]], moments: dict, start: float, xlabel: str, path: Path
) -> None:
    """Stacked panels sharing a time axis, each (y label, [(line name, seconds since `start`, values)]), the
    search's moments (epoch-second windows) shaded on every panel and named in the first; saved to `path`."""
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 9), sharex=True)
    for axis, (label, lines) in zip(axes, panels, strict=True):
        for name, xs, ys in lines:
            axis.plot(xs, ys, label=name, linewidth=1)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        for moment, window in moments.items():
            colour = MOMENT_COLOURS.get(moment, "grey")
            axis.axvspan(window["start"] - start, window["end"] - start, color=colour, alpha=0.15)
        if len(lines) > 1:
            axis.legend(loc="upper left", fontsize="small")
    handles = [plt.Rectangle((0, 0), 1, 1, color=MOMENT_COLOURS[m], alpha=0.3) for m in moments]
    axes[0].legend(handles, [MOMENT_TITLES[m] for m in moments], loc="upper left", fontsize="small")
    axes[-1].set_xlabel(xlabel)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def sar_table(sar: dict, windows: dict | None = None) -> list[str]:
    """One row per moment with the sar figures that explain a break; `windows` (verdict.json's `sar_windows`)
    name the level each slice was cut at, where that is not the moment's level of the verdict."""
    lines = [
        "| moment | CPU %user | %system | %iowait | %idle | %idle per core | run queue | load 1 min | %memused "
        "| disk tps | disk wkB/s | disk %util | lo rxkB/s | TCP active/s | passive/s | retrans/s | resets out/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for moment, views in sar.items():
        cpus = views.get("cpu", [])
        cpu = next((row for row in cpus if row.get("CPU") == "all"), first(cpus))
        per_core = ", ".join(f"{row['CPU']}: {row.get('%idle')}" for row in cpus if row.get("CPU", "all") != "all")
        queue = first(views.get("queue"))
        memory = first(views.get("memory"))
        lo = next((row for row in views.get("network", []) if row.get("IFACE") == "lo"), {})
        tcp = merge(views.get("tcp", []))
        disks = views.get("disk", [])
        cells = [
            cpu.get("%user"),
            cpu.get("%system"),
            cpu.get("%iowait"),
            cpu.get("%idle"),
            per_core,
            queue.get("runq-sz"),
            queue.get("ldavg-1"),
            memory.get("%memused"),
            total(disks, "tps"),
            total(disks, "wkB/s"),
            max((row["%util"] for row in disks if "%util" in row), key=float, default=None),
            lo.get("rxkB/s"),
            tcp.get("active/s"),
            tcp.get("passive/s"),
            tcp.get("retrans/s"),
            tcp.get("orsts/s"),
        ]
        title = MOMENT_TITLES.get(moment, moment)
        if windows and moment in windows:
            title += f" (sliced at {windows[moment]['users']} users)"
        lines.append(f"| {title} | " + " | ".join(c or "-" for c in cells) + " |")
    return lines


def stale_windows(verdict: dict) -> dict:
    """The sar slices' windows that are not the verdict's moments (a re-derived verdict's), by moment."""
    moments = verdict.get("moments", {})
    return {m: w for m, w in verdict.get("sar_windows", {}).items() if moments.get(m, {}).get("users") != w["users"]}


def total(rows: list[dict], column: str) -> str | None:
    """The column summed over devices (sar -d lists one row per disk), as sar prints it."""
    values = [float(row[column]) for row in rows if column in row]
    return f"{sum(values):.2f}" if values else None


def first(rows) -> dict:
    return rows[0] if rows else {}


def merge(rows) -> dict:
    merged: dict = {}
    for row in rows:
        merged.update(row)
    return merged


def render(results_dir: Path) -> Path:
    """Writes report.md (and timeline.png) into results_dir; returns the report's path."""
    verdict = json.loads((results_dir / "verdict.json").read_text())
    history = read_history(results_dir)
    draw_timeline(history, verdict.get("moments", {}), results_dir / "timeline.png")
    command = (results_dir / "command.txt").read_text().strip() if (results_dir / "command.txt").exists() else ""
    machine = (results_dir / "machine.txt").read_text().strip() if (results_dir / "machine.txt").exists() else ""
    best = verdict.get("max_level") or {}
    failing = verdict.get("failing_level") or {}
    lines = [
        f"# Hone-in search: {results_dir.name}",
        "",
        f"- **Verdict**: {verdict['max_users_without_error']} users without error ({verdict['status']})",
        f"- At that load: {best.get('rps', 0):.1f} requests/s, p95 {fmt_ms(best.get('p95_ms'))}, "
        f"generator CPU {best.get('generator_cpu', 0):.0f}%",
        f"- First failing load: {failing.get('users', '-')} users "
        f"({failing.get('rps', 0):.1f} requests/s, p95 {fmt_ms(failing.get('p95_ms'))}): "
        f"{failing.get('reason') or '-'}",
    ]
    if line := usable_line(verdict):
        lines.insert(4, line)
    if tally := given_tally(verdict):
        lines.append(f"- {tally}")
    if line := short_line(verdict):
        lines.append(line)
    if verdict.get("generator_bound"):
        lines.append("- **The load generator was saturated**: add Locust processes (--processes) before trusting this.")
    if command:
        lines += ["", "Reproduce with:", "", "```", command, "```"]
    if machine:
        lines += ["", f"Machine: {machine}"]
    provenance_file = results_dir / "provenance.json"
    reference = json.loads(provenance_file.read_text()).get("speed_reference") if provenance_file.exists() else None
    if speed := describe(reference):
        lines += ["", f"Server CPUs' speed reference (`lampi_load.search.speed`): {speed}"]
    if during := describe_watch(verdict.get("server_speed")):
        lines += ["", f"Server CPUs' speed during the levels (`lampi_load.search.speed_watch`): {during}"]
    lines += ["", "## Levels", "", *level_test(verdict)]
    lines += [
        "| phase | users | from | settled | requests | failures | req/s | p95 | generator CPU | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in verdict.get("levels", []):
        result = "pass" if level["passed"] else f"fail: {level['reason']}"
        settled = f"{level['settled_s']:.0f} s" if "settled_s" in level else "-"
        lines.append(
            f"| {level['phase']} | {level['users']} | {level.get('base', '-')} | {settled} | {level['requests']} "
            f"| {level['failures']} | {level['rps']:.1f} | {fmt_ms(level['p95_ms'])} | {level['generator_cpu']:.0f}% "
            f"| {result} |"
        )
    if verdict.get("sar"):
        lines += [
            "",
            f"## sar at {moments_heading(len(verdict['sar']))} (averages over each window)",
            "",
            *sar_table(verdict["sar"], stale_windows(verdict)),
        ]
        lines += ["", "Full listings: " + ", ".join(f"`sar-{m}.txt`" for m in verdict["sar"])]
    lines += ["", "## Timeline", "", "![users, throughput, failures and latency over time](timeline.png)", ""]
    windows = verdict.get("moments", {})
    for moment, window in windows.items():
        lines.append(
            f"- {MOMENT_TITLES.get(moment, moment)}: {window['users']} users, {clock(window['start'])} to "
            f"{clock(window['end'])} UTC"
        )
    report = results_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


P95_OF = {
    "window": "that of every response in the ramp and the hold",
    None: "the highest of Locust's 10 s p95 read each second in the ramp and the hold",  # verdicts before p95_of
}


def level_test(verdict: dict) -> list[str]:
    """How the search tested its levels (from its settings), and what its probe found or which levels it was given;
    nothing for verdicts written before the search probed."""
    settings, probe = verdict.get("settings", {}), verdict.get("probe")
    given = settings.get("levels")
    if (probe is None and not given) or "ramp" not in settings:
        return []
    rate = settings["spawn_rate"]
    if given:
        opening = (
            f"No probe and no search: the levels given (--hone-levels {given}), in that order, each of N users "
            "tested as a search tests a level:"
        )
    else:
        opening = (
            f"Probe: one ramp from 0 users at {rate:g} users/s; it {probe_found(probe, settings)}. Each level of N "
            "users was then tested the same way whichever way the search reached it:"
        )
    return [
        f'{opening} from N - {rate * settings["ramp"]:g} users ("from", 0 at least; stopping users at once, '
        f"starting them at {rate:g}/s), {settings['settle']:g} s unjudged there (longer while p95 still fell, the "
        f"last level's queues draining: the settled column), a ramp to N at {rate:g} users/s and a "
        f"{settings['hold']:g} s hold; the ramp and the hold are judged. req/s is the hold's; p95 is "
        f"{P95_OF.get(verdict.get('p95_of'), P95_OF[None])}.",
        "",
    ]


def probe_found(probe: dict, settings: dict) -> str:
    """What the probe's ramp ended on, as "it ..." goes on."""
    if probe.get("first_failure_users") is not None:
        return f"first failed at {probe['first_failure_users']} users ({probe['reason']})"
    if probe.get("stalled_users") is not None:
        return (
            f"stopped rising at {probe['stalled_users']} users without a failure (the generator started no more; "
            "levels went no higher)"
        )
    if probe.get("end", 0) - probe.get("start", 0) >= settings.get("time_limit", float("inf")) - 1:
        return "was cut by the time limit without a failure"
    return f"reached the cap ({settings.get('max_users')} users) without a failure"


def tests_by_users(levels: list[dict]) -> dict[int, list[dict]]:
    """A verdict's judged levels grouped by user count, smallest first, each group in the order tested."""
    tests: dict[int, list[dict]] = {}
    for level in levels:
        tests.setdefault(level["users"], []).append(level)
    return dict(sorted(tests.items()))


def given_tally(verdict: dict) -> str:
    """For a run of given levels (`--hone-levels`), how many of each level's tests passed: "Levels given: 100 users
    passed 4 of 4 tests, 110 users 3 of 4, ...", since the verdict's figures take each level's latest result alone.
    Nothing for a search."""
    if not verdict.get("settings", {}).get("levels"):
        return ""
    tests = tests_by_users(verdict.get("levels", []))
    if not tests:
        return "Levels given: none was tested"
    each = [f"{users} users {sum(test['passed'] for test in of)} of {len(of)}" for users, of in tests.items()]
    each[0] = each[0].replace(" users ", " users passed ", 1) + " tests"
    return f"Levels given: {', '.join(each)} (the figures above take each level's latest result)"


def short_line(verdict: dict) -> str | None:
    """The level the generator did not hold, if any (`short_level`): it was not judged, and the search ended."""
    short = verdict.get("short_level")
    if not short:
        return None
    return (
        f"- **The load generator did not hold a level**: {short['users']} users asked, {short['held']} at the fewest "
        "in its hold (distributed, a worker lost or one that joined after the start; for MQTT, too few device ids): "
        "not judged, and the search ended there"
    )


def usable_line(verdict: dict) -> str | None:
    """The report's usable answer, `- Usable (p95 under 1000 ms): 744 users (142.7 requests/s, p95 730 ms); ...`;
    None for verdicts without one."""
    if verdict.get("max_users_usable") is None:
        return None
    usable = verdict.get("usable_level") or {}  # absent from verdicts older than it
    rps, p95 = usable.get("rps", 0), fmt_ms(usable.get("p95_ms"))
    at = f"{verdict['max_users_usable']} users ({rps:.1f} requests/s, p95 {p95})"
    if verdict["max_users_usable"] == 0:
        at = "none of the levels tested"  # not "0 users (0.0 requests/s, p95 -)", as if a level had measured that
    return f"- Usable (p95 under {fmt_ms(verdict['usable_p95_ms'])}): {at}{usable_state(verdict)}{not_usable(verdict)}"


def usable_state(verdict: dict) -> str:
    """Whether the usable maximum converged, and to what resolution; nothing for verdicts that do not say."""
    converged, settings = verdict.get("usable_converged"), verdict.get("settings", {})
    if converged is None:
        return ""
    if not converged:
        why = "a level the generator did not hold" if verdict.get("short_level") else "the time limit"
        floor = ", so the edge is at or above it" if verdict.get("max_users_usable") else ""
        return f"; not converged: {why} came first{floor}"
    fraction = recorded_fraction(settings, "max_users_usable")
    if fraction is None or "resolution_users" not in settings:
        return "; converged"
    return f"; converged to within {fraction * 100:g}% or {settings['resolution_users']} users"


def not_usable(verdict: dict) -> str:
    """The usable answer's other edge, `; not usable at 677 users (p95 1400 ms)`; nothing for verdicts without it."""
    above = verdict.get("not_usable_level")
    if not above:
        return ""
    why = f"p95 {fmt_ms(above.get('p95_ms'))}" if above.get("passed") else above.get("reason") or "failed"
    return f"; not usable at {above['users']} users ({why})"


def fmt_ms(value) -> str:
    return f"{value:.0f} ms" if value is not None else "-"


def usable_cell(verdict: dict) -> str:
    """The largest passing level with p95 under the verdict's bound, with the bound; '-' if not recorded."""
    if verdict.get("max_users_usable") is None:
        return "-"
    return f"{verdict['max_users_usable']} (p95 <= {fmt_ms(verdict['usable_p95_ms'])})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="a folder with verdict.json and Locust's CSV files")
    args = parser.parse_args(argv)
    try:
        print(render(args.results_dir))
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
