"""Servers started in the background and found again through pid files in the run folder."""

import os
import signal
import subprocess
import time
from pathlib import Path


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return False  # PermissionError: /proc hides other users' processes (hidepid), so it is not ours
    return state not in {"Z", "X"}


EXEC_WAIT = 1.0
"""Seconds to wait for a live process's empty command line to appear. The kernel shows none while a process execs
(from dropping the old program to laying out the new one's arguments), and `up` stops what it started within a
millisecond when a part dies on start: a part caught mid-exec (the MQTT daemon, after taskset, 14 times in 200
tries) was taken for a stranger's reused pid and left running."""


def command_line(pid: int) -> str:
    """The process's command line, arguments joined by spaces; "" once it is gone, or if it is not ours to read. A
    kernel thread's, always empty, takes `EXEC_WAIT` to say so (a pid file naming one: a reused pid)."""
    deadline = time.monotonic() + EXEC_WAIT
    while True:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return ""
        if cmdline or not alive(pid) or time.monotonic() > deadline:
            return cmdline.replace(b"\0", b" ").decode(errors="replace")
        time.sleep(0.01)


def running_pid(run_dir: Path, name: str, program: str) -> int | None:
    """The pid in `name`'s pid file if that process still runs `program`; stale pid files are removed."""
    path = pid_file(run_dir, name)
    try:
        pid = int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    cmdline = command_line(pid)
    if alive(pid) and program in cmdline:
        return pid
    # The process is gone, or the pid was reused by something that is not ours: never signal it.
    path.unlink(missing_ok=True)
    return None


def start(run_dir: Path, name: str, argv: list[str], *, env=None, cwd=None) -> subprocess.Popen:
    """Starts argv in its own session (it outlives `make up`), logging to run/<name>.log; writes its pid file."""
    with open(run_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    pid_file(run_dir, name).write_text(f"{process.pid}\n")
    return process


def stop(run_dir: Path, name: str, program: str, sig: int = signal.SIGTERM, timeout: float = 20) -> bool:
    """Stops `name` if its pid file names a live `program`: `sig`, then SIGKILL after `timeout` s. True if it ran."""
    pid = running_pid(run_dir, name, program)
    if pid is None:
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.1)
    pid_file(run_dir, name).unlink(missing_ok=True)
    return True


def last_line(path: Path) -> str:
    """The last non-blank line of a log, to explain a failure in one line."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""
