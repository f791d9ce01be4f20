"""The table in README.md, from Locust's history here: python read.py (in this folder)."""

import csv
import statistics
from pathlib import Path

STEADY_FROM, STRETCH = 180, 120  # s: the 150 s ramp to 1,500 users and its queue's drain are over; 2-minute stretches

here = Path(__file__).parent
rows = [
    row
    for row in csv.DictReader((here / "locust_stats_history.csv").read_text().splitlines())
    if row["Name"] == "Aggregated"
]
start = int(rows[0]["Timestamp"])
steady = [(int(row["Timestamp"]) - start, row) for row in rows if row["95%"] != "N/A"]
steady = [(at, row) for at, row in steady if at >= STEADY_FROM]
for begin in range(STEADY_FROM, steady[-1][0] - STRETCH + 2, STRETCH):
    stretch = [row for at, row in steady if begin <= at < begin + STRETCH]
    rps = statistics.mean(float(row["Requests/s"]) for row in stretch)
    p95 = statistics.median(float(row["95%"]) for row in stretch)
    print(f"| {begin}-{begin + STRETCH} s | {rps:.0f} | {p95:.0f} |")
