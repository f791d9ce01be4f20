"""Locust workers started by hand, as a load-generator host starts them, for tests that run a master beside them."""

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def hand_started_workers(command: list[str], count: int, cwd: Path) -> Iterator[list[subprocess.Popen]]:
    """Starts `count` copies of the worker `command` (output discarded). On leaving, waits up to 15 s for each (a
    master that ends its test tells its workers to quit) and stops any still running, so none is left behind."""
    started = [
        subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)
    ]
    try:
        yield started
    finally:
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait(timeout=15)
