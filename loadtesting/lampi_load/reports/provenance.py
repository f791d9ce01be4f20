"""Where a run's figures came from: the code (git commit, dirty or not), the command, the machine, and the CPUs
each process of the load generator and of the server was allowed to run on.

The hone-in shape writes this as `provenance.json` into every run folder, beside verdict.json.
"""

import os
import subprocess
import sys
from pathlib import Path

from lampi_load.runs.locust_run import REPO, machine_description

# Processes of the local stack, by their command name, whose pinning explains a run's CPU figures.
SERVER_COMMANDS = ("uwsgi", "nginx", "postgres", "memcached", "mosquitto")


def git_state(repo: Path = REPO) -> dict:
    """The checked-out commit and whether the work tree had changes; commit None outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def children(pid: int) -> list[int]:
    """The process's descendants, from /proc (its --processes workers, for a Locust master)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return [descendant for child in found for descendant in (child, *children(child))]


def affinity(pid: int) -> str | None:
    """The CPUs the process may run on, as the kernel lists them (`0-1`, `1`); None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(
        (line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("Cpus_allowed_list")), None
    )


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def pinning(server_here: bool) -> dict:
    """CPUs allowed per process: this Locust process and its children, and (when the server runs on this
    machine) every process of the stack's kinds, by `name pid`."""
    own = os.getpid()
    pins = {f"locust {pid}": affinity(pid) for pid in (own, *children(own))}
    if server_here:
        for proc in Path("/proc").glob("[0-9]*"):
            name = command_name(int(proc.name))
            if name.startswith(SERVER_COMMANDS):
                pins[f"{name} {proc.name}"] = affinity(int(proc.name))
    return {name: cpus for name, cpus in pins.items() if cpus is not None}


def provenance(server_here: bool) -> dict:
    """Everything a results file needs to say what produced a run's figures."""
    return {
        **git_state(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "machine": machine_description(),
        "cpus_allowed": pinning(server_here),
    }
