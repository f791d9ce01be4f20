"""The server CPUs' speed level by level: a small reference timed every second while the search's users run.

The references before and after a search (`speed.py`) are taken with the server idle, minutes away from the levels
they would explain. On this project's 2-core VM the machine changed speed between two consecutive searches by more
than the searches' resolution: the server's CPU per request rose about 50% and a PBKDF2 loop on the generator's
CPU 70%, with no steal time reported (loadtesting/http-results.md). Timed back to back on an idle core, a page of
Python took about 1.4 ms for a fraction of a second to a few seconds, then about 2.8 ms, and back, whether the
other core was busy or not: the host's neighbours, not this machine's load. So a watch runs beside the levels,
pinned to the server's CPUs: every `INTERVAL_S` it times `speed.python_ms` three times, and every
`ARGON2ID_EVERY`th sample one `speed.argon2id_ms`, at real-time priority (SCHED_FIFO) when the kernel allows it,
so the figure is the CPUs' speed and not the server's load (it preempts the server for about 5 ms a second, and
25 ms every 5 s: about 1% of one CPU). The verdict gives each judged level's mean: the average speed its server got.

    python -m lampi_load.search.speed_watch --interval 1 --count 12     # JSON lines on stdout, a header first
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lampi_load.search.background import BackgroundRecorder
from lampi_load.search.speed import LOADTESTING, argon2id_ms, python_ms

INTERVAL_S = 1.0
"""Seconds between samples: a level's ramp and hold (40 s by default) get about forty, enough for their mean to
average the machine's phases of fast and slow."""

ARGON2ID_EVERY = 5
"""Samples between Argon2id hashes (about 25 ms each, against about 5 ms for the Python runs)."""


def realtime() -> str:
    """Raises this process to the lowest real-time priority, which preempts every ordinary process (the server's):
    "fifo"; "normal" when the kernel refuses (no root or CAP_SYS_NICE)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return "normal"
    return "fifo"


def sample(with_argon2id: bool) -> dict:
    """One sample: {"t": epoch s, "python_ms": mean of 3 runs} and, `with_argon2id`, "argon2id_ms": one hash."""
    record = {"t": round(time.time(), 3), "python_ms": round(statistics.mean(python_ms() for _ in range(3)), 3)}
    if with_argon2id:
        record["argon2id_ms"] = round(argon2id_ms(), 2)
    return record


def watch(interval: float, count: int, out) -> None:
    """Writes a header line ({"priority", "interval_s", "argon2id_every"}) then `count` samples, one every
    `interval` s, to `out`; the first and every `ARGON2ID_EVERY`th after it with an Argon2id hash."""
    header = {"priority": realtime(), "interval_s": interval, "argon2id_every": ARGON2ID_EVERY}
    out.write(json.dumps(header) + "\n")
    out.flush()
    argon2id_ms()  # the first allocates the 19 MiB
    due = time.monotonic()
    for number in range(count):
        out.write(json.dumps(sample(number % ARGON2ID_EVERY == 0)) + "\n")
        out.flush()
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))


def read(path: Path) -> tuple[dict, list[dict]]:
    """A watch's file: its header ({} if none) and its samples (a line cut by the watch's end is skipped)."""
    header, samples = {}, []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "t" in record:
            samples.append(record)
        else:
            header = record
    return header, samples


def during(samples: list[dict], start: float, end: float) -> dict:
    """What the samples taken from `start` to `end` (epoch s) say: {"python_ms": their mean, "argon2id_ms": the
    median of the hashes among them, "samples"}; a figure is None when no sample fell there. The mean, not the
    median: the machine flips between a fast and a slow phase, and the server gets the average of the two."""
    inside = [record for record in samples if start <= record["t"] <= end]
    python = [record["python_ms"] for record in inside]
    argon2 = [record["argon2id_ms"] for record in inside if "argon2id_ms" in record]
    return {
        "python_ms": round(statistics.mean(python), 2) if python else None,
        "argon2id_ms": round(statistics.median(argon2), 2) if argon2 else None,
        "samples": len(inside),
    }


SLOW_PCT = 30.0
"""A failing level whose Python figure is this much above that of the passing level below it was judged on a
slower machine. On the project's VM, sampled every 5 s and taking medians, the levels of a steady search read up
to 26% apart (1.39-1.75 ms), those of a search during which the machine slowed 84% (1.38-2.54 ms, its throughput
down from about 300 to 161-219 requests/s)."""


def spread_pct(values: list[float | None]) -> float | None:
    """How much the largest of `values` exceeds the smallest, in percent (None with fewer than two)."""
    present = [value for value in values if value]
    return round(100 * (max(present) / min(present) - 1), 1) if len(present) >= 2 else None


EDGES = (("max", "failing"), ("usable", "not_usable"))
"""Each answer's edge, as (the role of its largest passing level, the role of the smallest level above it that
failed), the roles `derive` gives: the error-free answer's, then the usable one's."""


def by_level(path: Path, levels: list[dict], cpus: str | None, roles: dict[str, dict | None] | None = None) -> dict:
    """What the verdict records of the watch: {"cpus", "priority", "interval_s", "levels": [{"users", "phase",
    "start", "roles", "python_ms", "argon2id_ms", "samples"}, ...] in the order judged, "python_spread_pct": how
    far apart the levels' Python figures were}. `roles`: the levels the answers come from, by the names of `EDGES`
    (`lampi_load.search.machine.derive`'s figures without their "_level"; None where there is none); a row's
    "roles" are its level's (one level can be both answers' largest passing level), in `EDGES`' order."""
    header, samples = read(path)
    role_names = [name for edge in EDGES for name in edge]
    roles_of = {}
    for name in role_names:
        if (roles or {}).get(name):
            roles_of.setdefault(roles[name]["start"], []).append(name)
    rows = [
        {
            "users": level["users"],
            "phase": level["phase"],
            "start": level["start"],
            "roles": roles_of.get(level["start"], []),
            **during(samples, level["start"], level["end"]),
        }
        for level in levels
    ]
    return {
        "cpus": cpus or "any",
        "priority": header.get("priority"),
        "interval_s": header.get("interval_s"),
        "levels": rows,
        "python_spread_pct": spread_pct([row["python_ms"] for row in rows]),
    }


def slow_edges(record: dict | None) -> list[dict]:
    """The answers whose failing side was judged while the server CPUs ran SLOW_PCT or more slower than during
    their passing side (by the Python reference): [{"passed": users, "passed_ms", "failed": users, "failed_ms"}],
    the error-free answer's first. Such a failure may be the machine's, not the load's. Only the two levels of an
    edge are compared, because the answer comes from them: a level far from an edge passes or fails the same on a
    slower machine (the demo's search, comparing every level with its fastest, warned of its light usable levels,
    2 and 21 users, judged 37-81% slower)."""
    rows = {role: row for row in (record or {}).get("levels", []) for role in row.get("roles", [])}
    edges = []
    for passing, failing in EDGES:
        low, high = rows.get(passing, {}), rows.get(failing, {})
        if not (low.get("python_ms") and high.get("python_ms")):
            continue
        if high["python_ms"] >= low["python_ms"] * (1 + SLOW_PCT / 100):
            edges.append(
                {
                    "passed": low["users"],
                    "passed_ms": low["python_ms"],
                    "failed": high["users"],
                    "failed_ms": high["python_ms"],
                }
            )
    return edges


def say_edges(edges: list[dict]) -> str:
    """`1893 users failed at 2.45 ms against 1803 passing at 1.80 ms`, for each edge, joined by "; "."""
    return "; ".join(
        f"{edge['failed']} users failed at {edge['failed_ms']:.2f} ms against {edge['passed']} passing at "
        f"{edge['passed_ms']:.2f} ms"
        for edge in edges
    )


def describe(record: dict | None) -> str:
    """One line for a report: `Python reference 2.1-3.4 ms across the levels (62% apart), Argon2id 19.5-23.1 ms;
    sampled every 1 s at fifo priority on CPUs 0`, then the `slow_edges` if any; "" when there is nothing to
    say."""
    rows = [row for row in (record or {}).get("levels", []) if row.get("python_ms")]
    if not rows:
        return ""
    python = [row["python_ms"] for row in rows]
    argon2 = [row["argon2id_ms"] for row in rows if row.get("argon2id_ms")]
    apart = f" ({record['python_spread_pct']:g}% apart)" if record.get("python_spread_pct") is not None else ""
    hashes = f", Argon2id {min(argon2):.1f}-{max(argon2):.1f} ms" if argon2 else ""
    line = (
        f"Python reference {min(python):.1f}-{max(python):.1f} ms across the levels{apart}{hashes}; sampled every "
        f"{record['interval_s']:g} s at {record['priority']} priority on CPUs {record['cpus']}"
    )
    if edges := slow_edges(record):
        line += f"; failing side judged on a machine {SLOW_PCT:g}% or more slower: {say_edges(edges)}"
    return line


class SpeedWatch(BackgroundRecorder):
    """The watch as a process of its own on `cpus` (a taskset list; None: any CPU), writing to `path`; bounded by
    its sample count, so a watch whose owner was killed before `stop()` ends by itself."""

    def __init__(self, path: Path, cpus: str | None, seconds: float, interval: float = INTERVAL_S):
        self.path, self.cpus, self.interval = Path(path), cpus, interval
        self.count = max(1, round(seconds / interval))

    def start(self) -> "SpeedWatch":
        command = [sys.executable, "-m", "lampi_load.search.speed_watch", "--interval", str(self.interval)]
        command += ["--count", str(self.count)]
        if self.cpus:
            command = ["taskset", "-c", self.cpus, *command]
        with self.path.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, cwd=LOADTESTING)
        return self


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--interval", type=float, default=INTERVAL_S, help=f"seconds between samples (default {INTERVAL_S:g})"
    )
    parser.add_argument("--count", type=int, default=12, help="samples to take, then stop (default 12)")
    args = parser.parse_args(argv)
    if args.interval <= 0 or not 1 <= args.count <= 100_000:
        parser.error(f"--interval {args.interval:g} --count {args.count}: give seconds above 0 and 1 to 100000 samples")
    watch(args.interval, args.count, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
