"""The one-command HTTP search refuses bad input with one line, before any load is sent."""

import subprocess
import sys
from pathlib import Path

from testing.ports import free_port

LOADTESTING = Path(__file__).resolve().parents[2]


def http_search(*args):
    command = [sys.executable, "-m", "lampi_load.runs.http", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=LOADTESTING)


def test_unreachable_site_is_one_line_error():
    result = http_search("--host", f"http://127.0.0.1:{free_port()}", "--time-limit", "5")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("http_search: error: cannot reach")
    assert "make up" in lines[0]


def test_non_positive_time_limit_is_refused():
    result = http_search("--time-limit", "0")
    assert result.returncode == 2
    assert "--time-limit must be positive" in result.stderr
