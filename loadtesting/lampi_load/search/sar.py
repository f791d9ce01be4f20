"""System metrics with sysstat: record with `sadc` for the length of a run, then slice with `sar`.

`sadc` writes a binary file every second; `sar -f FILE -s START -e END` reads any window of it afterwards, so
the three moments of a search are cut from one continuous recording instead of three short ones.
"""

import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from lampi_load.search.background import BackgroundRecorder

SADC_CANDIDATES = ["/usr/lib/sysstat/sadc", "/usr/lib64/sa/sadc", "/usr/libexec/sysstat/sadc"]

# The views a report shows for each moment: CPU (all and each core: the server and the load generator may be
# pinned to different ones), run queue and load, memory, disks, network, TCP.
SAR_VIEWS = {
    "cpu": ["-u", "-P", "ALL"],
    "queue": ["-q"],
    "memory": ["-r"],
    "disk": ["-d", "-p"],
    "network": ["-n", "DEV"],
    "tcp": ["-n", "TCP,ETCP"],
}

# UTC and the C locale make sar's clock columns and -s/-e arguments unambiguous.
SAR_ENV = {**os.environ, "TZ": "UTC", "LC_ALL": "C", "S_TIME_FORMAT": "ISO"}


class SysstatMissing(RuntimeError):
    """sysstat is not installed where the run needs it."""


def find_sadc() -> str:
    for candidate in [shutil.which("sadc"), *SADC_CANDIDATES]:
        if candidate and Path(candidate).exists():
            return candidate
    raise SysstatMissing("sysstat's sadc is not installed: run `make setup` (or apt-get install sysstat)")


class SadcRecorder(BackgroundRecorder):
    """Runs `sadc -S XALL <interval> [<count>] <file>` in the background; `stop()` ends it and keeps the file.
    With `count` (samples), sadc also ends by itself: a recorder whose owner was killed before `stop()` (a Ctrl-C
    that ended Locust mid-search left one recording) does not run on forever."""

    def __init__(self, path: Path, interval: int = 1, count: int | None = None):
        self.path = Path(path)
        self.interval = interval
        self.count = count

    def start(self) -> "SadcRecorder":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # XALL adds per-disk, per-partition, SNMP (TCP) and interrupt counters to the default set.
        self.process = subprocess.Popen(
            [find_sadc(), "-S", "XALL", str(self.interval), *([str(self.count)] if self.count else []), str(self.path)],
            env=SAR_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 5
        while not (self.path.exists() and self.path.stat().st_size) and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sadc exited at start: {self.process.stderr.read().decode().strip()}")
            time.sleep(0.05)
        return self


def clock(epoch: float) -> str:
    """A wall-clock instant as HH:MM:SS UTC: sar's -s/-e form, and how reports show the moments' windows."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def sar_text(sa_file: Path, view: list[str], start: float, end: float) -> str:
    """What `sar <view> -f sa_file -s start -e end` prints (UTC, C locale)."""
    command = ["sar", *view, "-f", str(sa_file), "-s", clock(start), "-e", clock(end)]
    result = subprocess.run(command, env=SAR_ENV, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def averages(text: str) -> list[dict[str, str]]:
    """The `Average:` rows of a sar listing, keyed by its column headers."""
    header: list[str] | None = None
    rows = []
    for line in text.splitlines()[1:]:  # the first line names the host and kernel
        fields = line.split()
        if len(fields) < 2:
            continue
        if not any(is_number(field) for field in fields[1:]):
            header = fields[1:]  # a new table starts (TCP,ETCP prints two)
        elif fields[0] == "Average:" and header:
            rows.append(dict(zip(header, fields[1:], strict=False)))
    return rows


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def slice_moments(sa_file: Path, moments: dict[str, dict], out_dir: Path) -> dict[str, dict[str, list]]:
    """Writes `sar-<moment>.txt` for each moment's window; returns each view's averages per moment."""
    summary: dict[str, dict[str, list]] = {}
    for moment, window in moments.items():
        parts, summary[moment] = [], {}
        for name, view in SAR_VIEWS.items():
            text = sar_text(sa_file, view, window["start"], window["end"])
            parts.append(f"$ sar {' '.join(view)} -s {clock(window['start'])} -e {clock(window['end'])}\n{text}")
            summary[moment][name] = averages(text)
        (out_dir / f"sar-{moment}.txt").write_text("\n".join(parts))
    return summary
