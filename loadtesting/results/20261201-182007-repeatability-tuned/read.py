"""Each judged level of the three searches beside what monitor.jsonl saw in its window: the CPU ms per request of
the server's processes and of Locust (ticks are 10 ms), and the medians of the references on both CPUs.

    python read.py
"""

import csv
import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
records = [json.loads(line) for line in (HERE / "monitor.jsonl").read_text().splitlines()]
probes = [record for record in records if "cpu" in record]
ticks = [record for record in records if "ticks" in record]

print("| search | users | phase | req/s | uwsgi | postgres | nginx | locust | CPU 0: Argon2id, PBKDF2 ", end="")
print("| CPU 1: Argon2id, PBKDF2 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for verdict_file in sorted(HERE.glob("tuned/*/verdict.json")):
    verdict = json.loads(verdict_file.read_text())
    for level in verdict["levels"]:

        def inside(record, level=level):
            return level["start"] <= record["t"] <= level["end"]

        used: dict[str, int] = {}
        for record in filter(inside, ticks):
            for name, count in record["ticks"].items():
                used[name] = used.get(name, 0) + count

        def per_request(name, used=used, level=level):
            return f"{10 * used.get(name, 0) / level['requests']:.2f}"

        def median(cpu, key, inside=inside):
            return statistics.median(probe[key] for probe in probes if probe["cpu"] == cpu and inside(probe))

        print(
            f"| {verdict_file.parent.name[-7:]} | {level['users']} | {level['phase']} | {level['rps']:.0f} "
            f"| {per_request('uwsgi')} | {per_request('postgres')} | {per_request('nginx')} | {per_request('locust')} "
            f"| {median(0, 'a2'):.1f}, {median(0, 'pb'):.2f} | {median(1, 'a2'):.1f}, {median(1, 'pb'):.2f} |"
        )

print()
print("| search | requests | CPU ms per request over the whole search: uwsgi, postgres, nginx, locust |")
print("|---|---|---|")
for verdict_file in sorted(HERE.glob("tuned/*/verdict.json")):
    verdict = json.loads(verdict_file.read_text())
    start, end = verdict["started_at"], verdict["ended_at"]
    with (verdict_file.parent / "locust_stats_history.csv").open(newline="") as handle:
        counts = {
            int(row["Timestamp"]): int(row["Total Request Count"])
            for row in csv.DictReader(handle)
            if row["Name"] == "Aggregated" and start <= int(row["Timestamp"]) <= end
        }
    requests = counts[max(counts)] - counts[min(counts)]
    used = {}
    for record in ticks:
        if start <= record["t"] <= end:
            for name, count in record["ticks"].items():
                used[name] = used.get(name, 0) + count
    figures = ", ".join(f"{10 * used.get(name, 0) / requests:.2f}" for name in ("uwsgi", "postgres", "nginx", "locust"))
    print(f"| {verdict_file.parent.name[-7:]} | {requests} | {figures} |")
