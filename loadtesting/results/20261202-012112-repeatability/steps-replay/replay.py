"""Replays the error-free search's choice of levels on committed tuned searches, with the steps away from the first
level doubling from the first step (1, 2, 4...: before 2026-12-02) and from the third (1, 1, 2, 4...: after).

Each search is replayed against a server that passes every level up to the middle of its own edge (the mean of its
largest passing and smallest failing levels) and fails every level above, from its own probe's estimate; it counts
the levels either rule tests until the search converges. Run from loadtesting/:

    ../.venv/bin/python results/20261202-012112-repeatability/steps-replay/replay.py
"""

import glob
import json
import sys

sys.path.insert(0, ".")
import lampi_load.search.machine as machine  # noqa: E402
from lampi_load.search.settings import SearchSettings  # noqa: E402

RULES = {"1, 2, 4...": lambda tries: 2**tries, "1, 1, 2, 4...": lambda tries: 2 ** max(tries - 1, 0)}


def levels_to_converge(first: int, edge: int, steps) -> int:
    machine.steps = steps
    search = machine.HoneInSearch(SearchSettings(), 0.0)
    users, phase = first, "probed"
    while True:
        search.verdict.levels.append({"users": users, "phase": phase, "passed": users <= edge, "start": 0})
        chosen = search._next_without_error()
        if chosen is None:
            return len(search.verdict.levels)
        users, phase = chosen


totals = dict.fromkeys(RULES, 0)
print("| search | probe's estimate | edge (middle) | levels, " + " | levels, ".join(RULES) + " |")
print("|---|---|---|" + "---|" * len(RULES))
for path in sorted(glob.glob("results/20261201-*/tuned/*/verdict.json")):
    if path < "results/20261201-132458":  # the searches with today's level test and probe, from 13:24 on
        continue
    with open(path) as file:
        verdict = json.load(file)
    first = verdict["probe"]["first_failure_users"]
    edge = (verdict["max_users_without_error"] + verdict["first_failing_users"]) // 2
    counts = {name: levels_to_converge(first, edge, steps) for name, steps in RULES.items()}
    for name, count in counts.items():
        totals[name] += count
    print(f"| {path.split('/')[-2]} | {first} | {edge} | " + " | ".join(str(c) for c in counts.values()) + " |")
print("| all | | | " + " | ".join(str(total) for total in totals.values()) + " |")
