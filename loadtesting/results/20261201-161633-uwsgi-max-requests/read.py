"""The table in README.md, from the four runs' Locust CSVs: python read.py (in this folder)."""

import csv
import statistics
from pathlib import Path

STEADY_FROM = 150  # s after the start: the 100 s ramp to 1,000 users and its queue's drain are over

for run in sorted(Path(__file__).parent.glob("r*-*")):
    rows = [
        row
        for row in csv.DictReader((run / "locust_stats_history.csv").read_text().splitlines())
        if row["Name"] == "Aggregated"
    ]
    start = int(rows[0]["Timestamp"])
    steady = [row for row in rows if int(row["Timestamp"]) - start >= STEADY_FROM and row["95%"] != "N/A"]
    p95 = [float(row["95%"]) for row in steady]
    rps = statistics.mean(float(row["Requests/s"]) for row in steady)
    total = next(
        row
        for row in csv.DictReader((run / "locust_stats.csv").read_text().splitlines())
        if row["Name"] == "Aggregated"
    )
    respawns = (run / "respawns.txt").read_text().strip()
    print(
        f"| {run.name} | {respawns} | {statistics.median(p95):.0f} | {min(p95):.0f}-{max(p95):.0f} | {rps:.0f} "
        f"| {total['Failure Count']} |"
    )
