"""The broker as a process on this machine, from /proc: which one listens on the port, its limits, its CPU time.

`$SYS` says how many clients and how much heap; only the process says how much of its core the broker used and
which limit (open files, `max_connections`) it would meet first. Linux only; a broker on another host is not found
(None), and the report says so.
"""

import json
import os
import threading
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
LISTEN = "0A"  # the TCP state in /proc/net/tcp


def listening_pid(port: int) -> int | None:
    """The process whose socket listens on TCP `port` (any address), or None (another host, or not readable)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        path = PROC / "net" / table
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            fields = line.split()
            if fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for process in PROC.iterdir():  # bounded: the processes of this machine
        if not process.name.isdigit():
            continue
        try:
            for fd in (process / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(process.name)
        except OSError:
            continue  # gone, or not ours to read
    return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used; OSError when it is gone."""
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def limits(pid: int) -> dict:
    """The broker's open-file limit (soft, hard) and each `max_connections` of its config file (-1: none)."""
    found: dict = {"pid": pid}
    for line in (PROC / str(pid) / "limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            found["open_files"] = {"soft": int(soft), "hard": int(hard)}
    arguments = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    if b"-c" in arguments[:-1]:
        config = Path(arguments[arguments.index(b"-c") + 1].decode())
        if not config.is_absolute():
            config = Path(os.readlink(PROC / str(pid) / "cwd")) / config
        found["config"] = str(config)
        try:
            lines = config.read_text().splitlines()
        except OSError:
            lines = []
        # Per listener in Mosquitto 2: each listener's own (a line before any listener sets none).
        found["max_connections"] = [int(line.split()[1]) for line in lines if line.startswith("max_connections ")]
    return found


class CpuRecorder:
    """Writes the broker's cumulative CPU seconds once a second to a JSON-lines file, on a thread, until stopped.

    A broker restarted meanwhile is a new process: it is found again by its port, and each sample names its pid.
    """

    def __init__(self, port: int, out: Path, every: float = 1.0):
        self.port, self.out, self.every = port, out, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-cpu", daemon=True)

    def start(self) -> "CpuRecorder":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pid = None
        with self.out.open("w") as log:
            while not self._stop.is_set():  # ends with stop(); one pass a second
                try:
                    pid = pid or listening_pid(self.port)
                    if pid is not None:
                        sample = {"t": round(time.time(), 3), "pid": pid, "cpu_s": cpu_seconds(pid)}
                        log.write(json.dumps(sample) + "\n")
                        log.flush()
                except OSError:
                    pid = None  # gone (restarted?): look again next time
                self._stop.wait(self.every)


def cpu_share(path: Path, start: float, end: float) -> float | None:
    """Percent of one core the broker used within [start, end], from a CpuRecorder log (None: too few samples).

    Over a restart the counter starts again: only the samples of the process at `end` count."""
    samples = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    inside = [sample for sample in samples if start <= sample["t"] <= end]
    inside = [sample for sample in inside if sample.get("pid") == inside[-1].get("pid")] if inside else []
    if len(inside) < 2 or inside[-1]["t"] <= inside[0]["t"]:
        return None
    return 100 * (inside[-1]["cpu_s"] - inside[0]["cpu_s"]) / (inside[-1]["t"] - inside[0]["t"])
