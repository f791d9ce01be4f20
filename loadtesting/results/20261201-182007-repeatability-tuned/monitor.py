"""What ran beside the three searches (not part of the kit): every 5 s, an Argon2id hash (19 MiB, t=2) and a
PBKDF2-SHA256 of 10,000 iterations, median of 3 each, on CPU 0 and on CPU 1, each in a process pinned there at
real-time priority (SCHED_FIFO 50, so neither the server nor Locust delays it); and the CPU ticks each command
name used in those 5 s (/proc/*/stat, utime + stime; kernel workers change names, so their figures are not
deltas). One JSON line each, to monitor.jsonl.

    .venv/bin/python monitor.py SECONDS OUT.jsonl      # as root, started with the benchmark (commands in README.md)
"""

import hashlib
import json
import multiprocessing
import os
import sys
import time

import argon2.low_level

INTERVAL = 5.0


def argon2id_ms() -> float:
    started = time.perf_counter()
    argon2.low_level.hash_secret_raw(
        b"reference", b"lampi-reference!", time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32,
        type=argon2.low_level.Type.ID,
    )  # fmt: skip
    return (time.perf_counter() - started) * 1000


def pbkdf2_ms() -> float:
    started = time.perf_counter()
    hashlib.pbkdf2_hmac("sha256", b"reference", b"lampi-reference!", 10_000)
    return (time.perf_counter() - started) * 1000


def prober(cpu: int, queue, stop_at: float) -> None:
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    argon2id_ms()
    due = time.time()
    while time.time() < stop_at:
        due += INTERVAL
        a2 = sorted(argon2id_ms() for _ in range(3))[1]
        pb = sorted(pbkdf2_ms() for _ in range(3))[1]
        queue.put({"t": time.time(), "cpu": cpu, "a2": a2, "pb": pb})
        time.sleep(max(0, due - time.time()))


def ticks() -> dict[str, int]:
    by_command: dict[str, int] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        command = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        by_command[command] = by_command.get(command, 0) + int(fields[11]) + int(fields[12])
    return by_command


def main() -> None:
    seconds, path = float(sys.argv[1]), sys.argv[2]
    stop_at = time.time() + seconds
    queue = multiprocessing.Queue()
    for cpu in (0, 1):
        multiprocessing.Process(target=prober, args=(cpu, queue, stop_at), daemon=True).start()
    os.sched_setaffinity(0, {1})
    with open(path, "a", buffering=1) as out:
        before, due = ticks(), time.time()
        while time.time() < stop_at:
            due += INTERVAL
            time.sleep(max(0, due - time.time()))
            while not queue.empty():
                out.write(json.dumps(queue.get()) + "\n")
            now = ticks()
            used = {name: now[name] - before.get(name, 0) for name in now if now[name] > before.get(name, 0)}
            before = now
            out.write(json.dumps({"t": time.time(), "ticks": used}) + "\n")


if __name__ == "__main__":
    main()
