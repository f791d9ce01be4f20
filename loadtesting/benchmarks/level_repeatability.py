"""How often does one level test give the same result? The levels around a search's edge, tested again and again.

    python loadtesting/benchmarks/level_repeatability.py                 # baseline 100,110,120 and tuned, 4 times
    python loadtesting/benchmarks/level_repeatability.py --levels baseline=100,110,120 --repeat 3
For each configuration it runs `lampi_load.runs.capacity` once (the local stack restarted and seeded, server on CPU
0, Locust on CPU 1, 10 users/s) with `--hone-levels`: no probe and no search, only the given user counts, in cycles
(100, 110, 120, 100, 110, 120, ...), each by the search's own level test. Then it writes levels.md in its folder
and prints it: per level, how many of its tests passed, and each test's failures, p95 and throughput.

Two searches can only agree within their resolution if the level test is firm there: a level that passes in some
tests and fails in others, one resolution from another that does too, lets two honest searches land a resolution
or more apart. Expect about 10 minutes per configuration with the defaults; run it on a quiet machine.
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
from lampi_load.reports.render import tests_by_users  # noqa: E402
from lampi_load.results import new_run_dir  # noqa: E402
from lampi_load.search.settings import SearchSettings  # noqa: E402

LEVELS = {"baseline": [100, 110, 120], "tuned": [1600, 1700, 1800]}
"""User counts tested by default: around each stack's error-free edge on 2026-12-02 from 04:00 (baseline: 100
always passed, 120 never; tuned: 1,600 always, 1,800 never; loadtesting/results/20261202-04*-levels). The tuned
edge moves with the machine's speed (1,405-1,484 in the searches of 01:33-02:00): give --levels around your own."""

LEVEL_SECONDS = 90
"""Seconds allowed per level test in the run's time limit: a test takes 50 s after a pass (10 s settle, 20 s ramp,
20 s hold) and up to 110 s after a failure (the settle waits up to 60 s more while p95 falls); 51-64 s each in the
committed runs."""


def parse_levels(specs: list[str]) -> dict[str, list[int]]:
    """`["baseline=100,110"]` -> {"baseline": [100, 110]}; ValueError naming the bad one."""
    levels = {}
    for spec in specs:
        name, _, counts = spec.partition("=")
        try:
            users = [int(part) for part in counts.split(",")]
        except ValueError:
            raise ValueError(f"--levels {spec}: give CONFIG=USERS,USERS,... (whole numbers)") from None
        if not name or not users or min(users) < 1:
            raise ValueError(f"--levels {spec}: give CONFIG=USERS,USERS,... (at least 1 user each)")
        levels[name] = users
    return levels


def summary(verdicts: dict[str, dict]) -> list[str]:
    """The table of levels.md: one row per configuration and user count, from each run's verdict.json."""
    lines = [
        "| configuration | users | passed | failures in each test | p95 in each test (ms) | req/s (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name, verdict in verdicts.items():
        for users, tests in tests_by_users(verdict["levels"]).items():
            passed = sum(level["passed"] for level in tests)
            p95s = ", ".join("-" if level["p95_ms"] is None else f"{level['p95_ms']:.0f}" for level in tests)
            rps = statistics.median(level["rps"] for level in tests)
            lines.append(
                f"| {name} | {users} | {passed} of {len(tests)} "
                f"| {', '.join(str(level['failures']) for level in tests)} | {p95s} | {rps:.0f} |"
            )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels",
        action="append",
        metavar="CONFIG=USERS,...",
        help="a capacity configuration and its user counts (repeatable; default baseline=100,110,120 and "
        "tuned=1600,1700,1800)",
    )
    parser.add_argument("--repeat", type=int, default=4, help="tests of each level (default 4)")
    parser.add_argument("--fake-users", default="1000", help="fake users to seed and sign in as (default 1000)")
    parser.add_argument("--out", type=Path, help="folder for the runs (default <results root>/<stamp>-levels)")
    args = parser.parse_args(argv)
    try:
        levels = parse_levels(args.levels) if args.levels else LEVELS
    except ValueError as error:
        parser.error(str(error))
    if not 1 <= args.repeat <= 10:
        parser.error(f"--repeat {args.repeat}: give 1 to 10 tests per level")
    out = args.out.resolve() if args.out else new_run_dir("levels")
    verdicts = {}
    for name, users in levels.items():
        plan = users * args.repeat  # in cycles: a slow stretch of the machine then falls on every level alike
        command = [sys.executable, "-m", "lampi_load.runs.capacity", "--configs", name, "--repeat", "1"]
        # Every level's test, and before the first the climb from 0 users to its base.
        limit = LEVEL_SECONDS * len(plan) + plan[0] / SearchSettings.spawn_rate
        command += ["--time-limit", f"{limit:.0f}", "--fake-users", args.fake_users]
        command += ["--out", str(out / name), "--", "--hone-levels", ",".join(map(str, plan))]
        if subprocess.run(command, cwd=LOADTESTING).returncode != 0:
            print(f"level_repeatability: error: the {name} run failed (see above)", file=sys.stderr)
            return 1
        found = sorted((out / name).glob("*/verdict.json"))
        if not found:
            print(f"level_repeatability: error: the {name} run left no verdict.json", file=sys.stderr)
            return 1
        verdicts[name] = json.loads(found[-1].read_text())
    command = "python loadtesting/benchmarks/level_repeatability.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = [f"# Level repeatability: {out.name}", "", "```", command, "```", "", *summary(verdicts), ""]
    cut = [name for name, verdict in verdicts.items() if verdict["status"] != "levels-tested"]
    if cut:
        report += [f"Not every level was tested ({', '.join(cut)}: the run ended {verdicts[cut[0]]['status']}).", ""]
    (out / "levels.md").write_text("\n".join(report))
    print("\n".join(report))
    if cut:
        print(f"level_repeatability: error: {', '.join(cut)}: not every level was tested", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
