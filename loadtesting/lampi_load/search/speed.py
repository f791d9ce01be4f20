"""How fast the server's CPUs were, measured the same way just before and just after a search.

A saturated server's maximum moves with its speed, and shared virtual machines change speed with their neighbours,
so two searches of one stack that disagree may have met two different machines. The reference shows how far the
CPUs' own speed moved: it times the two password hashes the LAMPI logins cost, on the CPUs the server is pinned to,
and the search records it before and after (provenance.json, "speed_reference"; the report shows it): evidence
about the machine, not a correction of a maximum. On this project's 2-core VM it read 17.3 to
20.1 ms per Argon2id hash over 20 minutes of one benchmark run, while that run's maxima agreed within the search's
resolution (loadtesting/http-results.md).

    python -m lampi_load.search.speed      # prints one reference, as JSON, for the CPUs this process may use
"""

import gc
import hashlib
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import argon2.low_level

REPEATS = 9
"""Hashes of each kind per reference: about 0.2 s of each on a 2-core EPYC VM; their median, so one preempted
hash does not move it."""

PBKDF2_ITERATIONS = 100_000
"""A tenth of Django 5.2's PBKDF2-SHA256 (the baseline's login hash): CPU alone."""

IDLE_BUSY_PCT = 10.0
"""The server's CPUs count as idle under this busy share: a reference waits for it (a failing last level leaves a
backlog the server still works through after the users stop)."""

IDLE_WAIT_S = 10.0
"""... for at most this many seconds (the tuned stack's full backlog of 1,024 requests drains in about 4 s at 240
requests/s); the reference records how busy the CPUs still were."""

LOADTESTING = Path(__file__).resolve().parents[2]
logger = logging.getLogger("lampi_load.search.speed")


def argon2id_ms() -> float:
    """One Argon2id hash at the tuned profile's parameters (m=19 MiB, t=2, p=1: lampisite/hashers.py), in ms: CPU
    and memory bandwidth, as a tuned login."""
    started = time.perf_counter()
    argon2.low_level.hash_secret_raw(
        b"reference", b"lampi-reference!", time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32,
        type=argon2.low_level.Type.ID,
    )  # fmt: skip
    return (time.perf_counter() - started) * 1000


def pbkdf2_ms() -> float:
    """One PBKDF2-SHA256 hash of PBKDF2_ITERATIONS, in ms."""
    started = time.perf_counter()
    hashlib.pbkdf2_hmac("sha256", b"reference", b"lampi-reference!", PBKDF2_ITERATIONS)
    return (time.perf_counter() - started) * 1000


def python_ms() -> float:
    """A page's worth of pure Python, in ms: 600 device rows built, sorted, rendered to HTML and through JSON, as a
    Django view does (with the collector off, so a collection does not land in one run). On the project's VM a
    neighbour slowed the caches and memory more than arithmetic: the server's CPU per request rose about 50% while
    a PBKDF2 loop on its CPU held within 8%, and this page read 1.4 ms at a search's fastest levels and up to 2.5 ms
    at its slowest (loadtesting/http-results.md)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        devices = [
            {"user": f"user_{n:06d}", "device_id": f"{0x1E0000000000 + n:012x}", "on": n % 2 == 0, "hue": n % 360}
            for n in range(600)
        ]
        devices.sort(key=lambda device: (device["on"], device["device_id"]), reverse=True)
        "".join(
            f'<li class="device{" on" if device["on"] else ""}"><a href="/lampi/device/{device["device_id"]}">'
            f"{device['user'].title()}</a> {device['hue'] / 360:.3f}</li>"
            for device in devices
        )
        json.loads(json.dumps(devices))
        elapsed = time.perf_counter() - started
    finally:
        if collecting:
            gc.enable()
    return elapsed * 1000


def reference_here() -> dict:
    """The reference on the CPUs this process may use: {"argon2id_ms": median, "pbkdf2_ms": median, "python_ms":
    median}."""
    argon2id_ms()  # the first allocates the 19 MiB
    return {
        "argon2id_ms": round(statistics.median(argon2id_ms() for _ in range(REPEATS)), 2),
        "pbkdf2_ms": round(statistics.median(pbkdf2_ms() for _ in range(REPEATS)), 2),
        "python_ms": round(statistics.median(python_ms() for _ in range(REPEATS)), 2),
    }


def server_cpus(cpus_allowed: dict[str, str]) -> str | None:
    """The CPUs the server may run on, from provenance's `cpus_allowed` (`"uwsgi 4991": "0"`, ...) when every
    server process shares one list (`make up` pins them all to $LAMPI_SERVER_CPUS); None when they differ or none
    runs here."""
    lists = {cpus for name, cpus in cpus_allowed.items() if not name.startswith("locust ")}
    return lists.pop() if len(lists) == 1 else None


def cpu_list(cpus: str) -> set[int]:
    """`0`, `0-1`, `0,2-3` (a taskset list) as CPU numbers."""
    numbers = set()
    for part in cpus.split(","):
        first, _, last = part.strip().partition("-")
        numbers.update(range(int(first), int(last or first) + 1))
    return numbers


def busy_pct(cpus: str | None, seconds: float = 0.25) -> float:
    """The share of time `cpus` (None: all) were busy over the next `seconds`, in percent, from /proc/stat."""

    wanted = cpu_list(cpus) if cpus else None

    def ticks() -> tuple[int, int]:
        busy = total = 0
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu" or (wanted is not None and int(name[3:]) not in wanted):
                continue
            values = [int(value) for value in fields[:8]]
            idle = values[3] + values[4]  # idle and iowait
            busy, total = busy + sum(values) - idle, total + sum(values)
        return busy, total

    busy_before, total_before = ticks()
    time.sleep(seconds)
    busy_after, total_after = ticks()
    return 100 * (busy_after - busy_before) / max(total_after - total_before, 1)


def wait_idle(cpus: str | None) -> float:
    """Waits until `cpus` are under IDLE_BUSY_PCT busy, at most IDLE_WAIT_S; returns their last busy share (%)."""
    deadline = time.monotonic() + IDLE_WAIT_S
    busy = busy_pct(cpus)
    while busy >= IDLE_BUSY_PCT and time.monotonic() < deadline:
        busy = busy_pct(cpus)
    return busy


def measure(cpus: str | None = None) -> dict | None:
    """The reference on `cpus` (a taskset list; None: any CPU), once they are idle, in a process of its own so that
    it runs there and not on the load generator's CPUs: {"cpus": "0" or "any", "busy_pct": the CPUs' busy share
    just before, "argon2id_ms": ..., "pbkdf2_ms": ...}. None, with a warning logged, when it could not run."""
    busy = wait_idle(cpus)
    command = [sys.executable, "-m", "lampi_load.search.speed"]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=LOADTESTING)
        figures = json.loads(done.stdout) if done.returncode == 0 else None
        problem = done.stderr.strip().splitlines()[-1:] if figures is None else []
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as error:
        figures, problem = None, [type(error).__name__]
    if figures is None:
        logger.warning("no speed reference on CPUs %s: %s", cpus or "any", problem[0] if problem else "no output")
        return None
    return {"cpus": cpus or "any", "busy_pct": round(busy, 1), **figures}


def change_pct(before: dict | None, after: dict | None) -> float | None:
    """How much slower (positive) or faster the CPUs were after than before, in percent: the larger change of the
    two hashes' times, keeping its sign. None when either reference is missing."""
    if not before or not after:
        return None
    changes = [100 * (after[key] / before[key] - 1) for key in ("argon2id_ms", "pbkdf2_ms") if before.get(key)]
    return round(max(changes, key=abs), 1) if changes else None


def describe(reference: dict | None) -> str:
    """One line for a report: `argon2id 19.8 ms, PBKDF2 24.1 ms before; 21.0 and 24.3 ms after (6.1% slower), on
    CPUs 0`; "" when there is none."""
    if not reference or not reference.get("before"):
        return ""
    before, after = reference["before"], reference.get("after")
    line = f"argon2id {before['argon2id_ms']:.1f} ms, PBKDF2 {before['pbkdf2_ms']:.1f} ms before"
    if after:
        change = change_pct(before, after)
        trend = "no change" if not change else f"{abs(change):.1f}% {'slower' if change > 0 else 'faster'}"
        line += f"; {after['argon2id_ms']:.1f} and {after['pbkdf2_ms']:.1f} ms after ({trend})"
    return f"{line}, on CPUs {before['cpus']}"


if __name__ == "__main__":
    print(json.dumps(reference_here()))
