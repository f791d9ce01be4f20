"""Prints finished searches' verdicts as one short table, with where their reports and charts are.

    python -m lampi_load.reports.verdicts HTTP=RESULTS_DIR MQTT=RESULTS_DIR
What `make demo` ends with. Every figure of a row comes from the level it names: the largest level that passed
(`max_level` of verdict.json) and the smallest that failed (`failing_level`), each with its own throughput, p95
and reason, and the largest that passed with p95 under the usability bound (`usable_level`). Requests are
Locust's: HTTP requests, or MQTT CONNECTs and PUBLISHes (to their CONNACK or PUBACK).
"""

import argparse
import json
import sys
from pathlib import Path

from lampi_load.reports.render import fmt_ms, usable_cell

ROWS = [
    "status",
    "max without error",
    "req/s there",
    "p95 there",
    "max with p95 under bound",
    "first failing level",
    "why it failed",
    "generator-bound",
]


def cells(verdict: dict) -> list[str]:
    """One search's column: its figures in the order of ROWS."""
    best = verdict.get("max_level") or {}
    failing = verdict.get("failing_level") or {}
    return [
        verdict["status"],
        str(verdict["max_users_without_error"]),
        f"{best['rps']:.1f}" if best else "-",
        fmt_ms(best.get("p95_ms")),
        usable_cell(verdict),
        str(failing["users"]) if failing else "none",
        failing.get("reason") or "-",
        "yes: add Locust processes" if verdict.get("generator_bound") else "no",
    ]


def table(runs: dict[str, dict]) -> str:
    """A plain-text table for a terminal: one column per search, one row per figure."""
    columns = [["", *ROWS], *([name, *cells(verdict)] for name, verdict in runs.items())]
    widths = [max(len(cell) for cell in column) for column in columns]
    lines = [
        "  ".join(column[i].ljust(width) for column, width in zip(columns, widths, strict=True)).rstrip()
        for i in range(len(ROWS) + 1)
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=RESULTS_DIR", help="finished searches, in order")
    args = parser.parse_args(argv)
    runs, folders = {}, {}
    for item in args.runs:
        name, sep, folder = item.partition("=")
        verdict_file = Path(folder) / "verdict.json"
        if not sep or not verdict_file.is_file():
            parser.error(f"{item!r}: expected NAME=RESULTS_DIR with a verdict.json in it")
        runs[name], folders[name] = json.loads(verdict_file.read_text()), Path(folder)
    print(table(runs))
    print()
    for name, folder in folders.items():
        charts = ", ".join(str(chart) for chart in sorted(folder.glob("*.png"))) or "none"
        print(f"{name}: report {folder / 'report.md'}; charts {charts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
