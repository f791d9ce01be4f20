"""Does the hone-in search give the same answer twice, and within its time budget? Two searches of each
configuration, one after the other on the same stack, then a table of their maxima, agreement and durations.

    python loadtesting/benchmarks/search_repeatability.py                          # baseline and tuned, twice each
    python loadtesting/benchmarks/search_repeatability.py --configs baseline --repeat 3
Runs `lampi_load.runs.capacity --repeat N` (the local stack, server on CPU 0, Locust on CPU 1, 10 users/s; the
stack is restarted and seeded once per configuration, not between its searches), then writes repeatability.md in
the capacity folder and prints it. Two maxima agree when they differ by at most the search's resolution at the
smaller one (max(10 users, 5%) by default); a search meets its budget when it converged within the target below.
Expect about 2 x (6 + 10) minutes for the defaults on a 2-core machine; run it on a quiet machine.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOADTESTING = REPO / "loadtesting"
sys.path.insert(0, str(LOADTESTING))
from lampi_load.results import new_run_dir  # noqa: E402
from lampi_load.search import settings as search_settings  # noqa: E402
from lampi_load.search.speed_watch import spread_pct  # noqa: E402

BUDGET_S = {"baseline": 360, "tuned": 600}
"""Seconds each configuration's search should converge within on a 2-core machine (issue 13's targets)."""


def resolution(settings: dict, users: int, key: str = "max_users_without_error") -> float:
    """The search's resolution at `users` for `key`'s answer (`recorded_fraction`), at least resolution_users."""
    fraction = search_settings.recorded_fraction(settings, key)
    return search_settings.resolution(settings["resolution_users"], fraction, users)


def agreement(verdicts: list[dict], key: str, converged: str = "") -> str:
    """`yes (gap G, resolution R)` when every pair of the runs' `key` is within the resolution at the smaller; "-"
    when a search did not converge on it (`converged` names the verdict's flag; its figure is no answer)."""
    values = [verdict[key] for verdict in verdicts]
    if any(value is None for value in values) or len(values) < 2:
        return "-"
    if converged and not all(verdict.get(converged) for verdict in verdicts):
        return "- (a search did not converge)"
    low, high = min(values), max(values)
    allowed = resolution(verdicts[0]["settings"], low, key)
    return f"{'yes' if high - low <= allowed else 'NO'} (gap {high - low}, resolution {allowed:.0f})"


def answered_after(verdict: dict) -> str:
    """Seconds from the search's start to the end of its last level for the error-free maximum ("-" if it did not
    converge)."""
    if verdict["status"] != "converged":
        return "-"
    levels = [level for level in verdict["levels"] if level["phase"] != "usable"]
    return f"{levels[-1]['end'] - verdict['started_at']:.0f} s" if levels else "-"


def top_throughput(verdict: dict) -> float | None:
    """The most requests/s any judged level served (over its ramp and hold): the server's speed in that search. At
    saturation the error-free maximum moves with it (users = throughput x think time + the queues' length), so two
    searches whose maxima differ by about their throughputs' ratio met a server that ran at different speeds."""
    rates = [level["rps"] for level in verdict["levels"] if level.get("rps")]
    return max(rates) if rates else None


def cycle_seconds(verdict: dict) -> float | None:
    """The error-free maximum over the top throughput: by Little's law (users = throughput x (think time +
    response time)), seconds per request per user at the edge. Were the edge set by the server's throughput alone,
    this would not move with the server's speed: how much two searches' differ is the part of their disagreement
    that the server's speed does not explain (0% and 12% in the two tuned pairs of 2026-12-01)."""
    rate = top_throughput(verdict)
    return verdict["max_users_without_error"] / rate if rate else None


def spread(values: list[float | None]) -> str:
    """How much the largest of `values` exceeds the smallest, in percent ("-" if one is missing)."""
    pct = None if None in values else spread_pct(values)
    return "-" if pct is None else f"{pct:.0f}%"


def throughput_gap(verdicts: list[dict]) -> str:
    return spread([top_throughput(verdict) for verdict in verdicts])


def speed_reference(folder: Path) -> dict:
    """The server CPUs' speed reference the search recorded before and after it (provenance.json; `{}` in runs
    from before there was one)."""
    provenance = folder / "provenance.json"
    return (json.loads(provenance.read_text()).get("speed_reference") or {}) if provenance.exists() else {}


def argon2id_times(folder: Path) -> list[float | None]:
    """One Argon2id hash on the server's CPUs, in ms, before and after the search (None where there is none)."""
    reference = speed_reference(folder)
    return [(reference.get(when) or {}).get("argon2id_ms") for when in ("before", "after")]


def argon2id_before_after(folder: Path) -> str:
    """`19.8 -> 21.0`: `argon2id_times` for a table ("-": none)."""
    return " -> ".join("-" if value is None else f"{value:.1f}" for value in argon2id_times(folder))


def python_at_edge(verdict: dict) -> float | None:
    """The server CPUs' Python reference while the search judged its error-free edge: the mean of the figures of
    its largest passing level and its smallest failing one (the verdict's "server_speed", from
    `lampi_load.search.speed_watch`; None in verdicts from before the watch). The edge's, not all levels': the
    answer comes from the edge, and the usable levels, judged last, would mix in minutes that did not decide it."""
    edge = {(verdict.get(name) or {}).get("start") for name in ("max_level", "failing_level")} - {None}
    rows = (verdict.get("server_speed") or {}).get("levels", [])
    values = [row["python_ms"] for row in rows if row["start"] in edge and row["python_ms"]]
    return statistics.mean(values) if values else None


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary(runs: dict[str, list[Path]], budgets: dict[str, int]) -> list[str]:
    lines = [
        "| configuration | run | max users without error | first failing | usable (p95 <= bound) | status "
        "| error-free answer after | search time | both within budget | top throughput (requests/s) "
        "| users per request/s (s) | Argon2id on the server CPUs, before -> after (ms) "
        "| Python reference on the server CPUs at the error-free edge (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdict_sets = {}
    for name, folders in runs.items():
        verdicts = [json.loads((folder / "verdict.json").read_text()) for folder in folders]
        verdict_sets[name] = verdicts
        budget = budgets.get(name)
        for number, (folder, verdict) in enumerate(zip(folders, verdicts, strict=True), start=1):
            seconds = verdict["ended_at"] - verdict["started_at"]
            converged = verdict["status"] == "converged" and verdict.get("usable_converged") is not False
            met = "-" if budget is None else ("yes" if converged and seconds <= budget + 1 else "NO")
            usable = verdict.get("max_users_usable")
            if verdict.get("usable_converged") is False:
                usable = f"{usable or 'none found'} (not converged)"
            lines.append(
                f"| {name} | {number} (`{folder.name}`) | {verdict['max_users_without_error']} "
                f"| {verdict['first_failing_users']} | {usable} | {verdict['status']} | {answered_after(verdict)} "
                f"| {seconds:.0f} s | {met}{f' ({budget} s)' if budget else ''} "
                f"| {top_throughput(verdict) or 0:.0f} | {cycle_seconds(verdict) or 0:.2f} "
                f"| {argon2id_before_after(folder)} | {fmt_ms(python_at_edge(verdict))} |"
            )
    lines += [
        "",
        "| configuration | maxima agree | usable maxima agree | top throughputs differ by "
        "| users per request/s differ by | server CPUs' speed references differ by "
        "| Python references at the edge differ by |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, verdicts in verdict_sets.items():
        usable = agreement(verdicts, "max_users_usable", converged="usable_converged")
        cycles = spread([cycle_seconds(verdict) for verdict in verdicts])
        # Every reference of the configuration's searches, before and after each: how far the machine moved.
        times = [value for folder in runs[name] for value in argon2id_times(folder)]
        lines.append(
            f"| {name} | {agreement(verdicts, 'max_users_without_error')} | {usable} | {throughput_gap(verdicts)} "
            f"| {cycles} | {spread(times)} | {spread([python_at_edge(verdict) for verdict in verdicts])} |"
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="baseline,tuned", help="capacity configurations (default baseline,tuned)")
    parser.add_argument("--repeat", type=int, default=2, help="searches of each configuration (default 2)")
    parser.add_argument("--fake-users", default="1000", help="fake users to seed and sign in as (default 1000)")
    parser.add_argument("--out", type=Path, help="folder for the runs (default <results root>/<stamp>-repeatability)")
    parser.add_argument(
        "--summarise", type=Path, metavar="FOLDER", help="only write FOLDER/repeatability.md again from its runs"
    )
    args = parser.parse_args(argv)
    if args.summarise:
        found = {
            config.name: sorted(path.parent for path in config.glob("*/verdict.json"))
            for config in sorted(args.summarise.iterdir())
            if config.is_dir()
        }
        if not any(found.values()):
            parser.error(f"no */*/verdict.json under {args.summarise}")
        existing = args.summarise / "repeatability.md"
        # A run stopped before its end wrote no report: its heading then says so instead of giving a command.
        document = (
            existing.read_text().split("| configuration |")[0]
            if existing.exists()
            else f"# Search repeatability: {args.summarise.name}\n\nStopped before its end: from the runs it ended.\n"
        )
        report = [
            document.rstrip("\n"),
            "",
            *summary({name: runs for name, runs in found.items() if runs}, BUDGET_S),
            "",
        ]
        (args.summarise / "repeatability.md").write_text("\n".join(report))
        print("\n".join(report))
        return 0
    if not 2 <= args.repeat <= 10:
        parser.error(f"--repeat {args.repeat}: give 2 to 10 searches per configuration")
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    out = args.out.resolve() if args.out else new_run_dir("repeatability")
    runs: dict[str, list[Path]] = {}
    for name in names:
        # The budget is the search's own time limit: a search that has not converged by then says so.
        limit = str(BUDGET_S.get(name, 600))
        command = [sys.executable, "-m", "lampi_load.runs.capacity", "--configs", name, "--repeat", str(args.repeat)]
        command += ["--time-limit", limit, "--fake-users", args.fake_users, "--out", str(out / name)]
        if subprocess.run(command, cwd=LOADTESTING).returncode != 0:
            print(f"search_repeatability: error: the {name} searches failed (see above)", file=sys.stderr)
            return 1
        runs[name] = sorted(path.parent for path in (out / name).glob("*/verdict.json"))  # stamped: in run order
    command = "python loadtesting/benchmarks/search_repeatability.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    report = [f"# Search repeatability: {out.name}", "", "```", command, "```", "", *summary(runs, BUDGET_S), ""]
    (out / "repeatability.md").write_text("\n".join(report))
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
