"""Puts several hone-in searches side by side: a table with each one's verdict and its ratio to the first, and
one chart with every run's users and requests/s on the same axes.

    python -m lampi_load.reports.compare --out DIR baseline=RESULTS_DIR tuned=RESULTS_DIR ...
The first run is the reference for the ratios (the baseline).
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from lampi_load.reports.render import P95_OF, fmt_ms, read_history, usable_cell  # noqa: E402


def load(results_dir: Path) -> dict:
    """A search's verdict, with the folder it came from."""
    verdict = json.loads((results_dir / "verdict.json").read_text())
    return {**verdict, "dir": results_dir}


def table(runs: dict[str, dict]) -> list[str]:
    """Markdown rows: max users without error, throughput and p95 there, ratio to the first run, the usable
    maximum (p95 under the bound), the smallest failing level with its own reason, and the search's duration."""
    reference = next(iter(runs.values()))["max_users_without_error"] or None
    lines = [
        "| run | max users without error | x first | req/s there | p95 there | max with p95 under bound "
        "| first failing | why it failed | status | search time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, verdict in runs.items():
        best = verdict.get("max_level") or {}
        failing = verdict.get("failing_level") or {}
        users = verdict["max_users_without_error"]
        ratio = f"{users / reference:.2f}" if reference else "-"
        flags = verdict["status"] + (", generator-bound" if verdict.get("generator_bound") else "")
        lines.append(
            f"| {name} | {users} | {ratio} | {best.get('rps', 0):.1f} | {fmt_ms(best.get('p95_ms'))} "
            f"| {usable_cell(verdict)} | {failing.get('users', '-')} | {(failing.get('reason') or '-')[:80]} "
            f"| {flags} | {search_time(verdict)} |"
        )
    older = [name for name, verdict in runs.items() if "p95_of" not in verdict]
    if older:
        # Two measures of a level's p95: say which runs took the other, rather than compare them silently.
        lines += ["", f"p95 of {', '.join(older)}: {P95_OF[None]} (recorded before p95_of); else {P95_OF['window']}."]
    return lines


def search_time(verdict: dict) -> str:
    """How long the search took, from its own clock (seconds)."""
    if not verdict.get("ended_at") or not verdict.get("started_at"):
        return "-"
    return f"{verdict['ended_at'] - verdict['started_at']:.0f} s"


def draw(runs: dict[str, dict], path: Path) -> None:
    """Users and requests/s over time, every run on the same two axes."""
    figure, (users_axis, rps_axis) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, verdict in runs.items():
        history = read_history(verdict["dir"])
        start = history[0]["Timestamp"]
        t = [row["Timestamp"] - start for row in history]
        users_axis.plot(t, [row["User Count"] for row in history], label=name, linewidth=1)
        rps_axis.plot(t, [row["Requests/s"] for row in history], label=name, linewidth=1)
    users_axis.set_ylabel("users")
    rps_axis.set_ylabel("requests/s")
    rps_axis.set_xlabel("seconds since start")
    for axis in (users_axis, rps_axis):
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=RESULTS_DIR", help="searches to compare, reference first")
    parser.add_argument("--out", type=Path, required=True, help="folder for comparison.md and comparison.png")
    args = parser.parse_args(argv)
    runs = {}
    for item in args.runs:
        name, sep, folder = item.partition("=")
        if not sep or not (Path(folder) / "verdict.json").exists():
            parser.error(f"{item!r}: expected NAME=RESULTS_DIR with a verdict.json in it")
        runs[name] = load(Path(folder))
    args.out.mkdir(parents=True, exist_ok=True)
    draw(runs, args.out / "comparison.png")
    lines = ["# Hone-in searches compared", "", *table(runs), "", "![users and requests/s](comparison.png)", ""]
    lines += [f"- {name}: `{verdict['dir']}`" for name, verdict in runs.items()]
    (args.out / "comparison.md").write_text("\n".join(lines) + "\n")
    print(args.out / "comparison.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
