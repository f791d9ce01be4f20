"""The buoy fleet test end to end: real broker, `manage.py fleet-sink`, `python -m lampi_load.buoys` and
`manage.py fleet-verify` as processes, a migrated database of the profile's engine. Exact counts, loss detection,
and restarts of the broker and the sink."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.mosquitto import Mosquitto

REPO = Path(__file__).resolve().parents[3]
MANAGE = REPO / "Web" / "lampisite" / "manage.py"
# Short waits: the fixture broker publishes $SYS every second, and a small fleet is stored within a second.
FAST = ["--sys-wait", "5", "--settle", "3", "--drain", "20"]

pytestmark = pytest.mark.slow


@pytest.fixture
def site_env(site_database):
    """Environment for the site's commands: a freshly migrated database, DEBUG off."""
    env = dict(os.environ, **site_database.env, LAMPI_DEBUG="0")
    env["PYTHONPATH"] = str(REPO / "loadtesting")
    subprocess.run([sys.executable, MANAGE, "migrate", "-v0"], env=env, check=True, timeout=60)
    return env


class Sink:
    """`manage.py fleet-sink` as a child process, logging to a file."""

    def __init__(self, env: dict, broker: Mosquitto, log: Path):
        self.env = env | {"LAMPI_MQTT_HOST": broker.host, "LAMPI_MQTT_PORT": str(broker.port)}
        self.log = log
        self.process = None

    def start(self) -> "Sink":
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("a") as log:
            self.process = subprocess.Popen([sys.executable, MANAGE, "fleet-sink"], env=self.env, stderr=log)
        deadline = time.monotonic() + 15
        while "subscribed to" not in self.log.read_text()[offset:]:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "fleet-sink did not subscribe within 15 s"
            time.sleep(0.05)
        return self

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(15)


@pytest.fixture
def sink(site_env, mosquitto, tmp_path):
    sink = Sink(site_env, mosquitto, tmp_path / "sink.log").start()
    yield sink
    sink.stop()


def persistent_broker(workdir: Path) -> Mosquitto:
    """A broker that saves its sessions and queues across a restart."""
    return Mosquitto(workdir, persistence=True)


def fleet(env: dict, broker: Mosquitto, *args: str, wait: bool = True):
    """Runs `python -m lampi_load.buoys`; the finished process (or the running one with wait=False)."""
    command = [sys.executable, "-m", "lampi_load.buoys", *args]
    if args[0] == "run":
        command += ["--host", broker.host, "--port", str(broker.port)]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_small_fleet_is_stored_exactly(site_env, site_database, mosquitto, sink, tmp_path):
    out = tmp_path / "run"
    run = fleet(
        site_env, mosquitto, "run", "--devices", "5", "--messages", "20", "--duration", "1", "--out", str(out), *FAST
    )
    assert run.returncode == 0, run.stdout + run.stderr
    totals = report(out)["totals"]
    assert totals["measures_sent"] == totals["measures_stored"] == 5 * 20 * 9
    assert totals["measures_lost"] == totals["duplicates"] == totals["malformed_during_run"] == 0
    counts = site_database.rows("SELECT COUNT(*), COUNT(DISTINCT device) FROM fleet_measurement")
    assert counts == [(900, 5)]
    assert "OK, every measure stored" in run.stdout


def test_deleted_measures_are_reported_lost(site_env, site_database, mosquitto, sink, tmp_path):
    out = tmp_path / "run"
    run = fleet(
        site_env, mosquitto, "run", "--devices", "3", "--messages", "10", "--duration", "0.5", "--out", str(out), *FAST
    )
    assert run.returncode == 0, run.stdout + run.stderr
    device = json.loads((out / "manifest.json").read_text())["plan"]
    device = f"{device['prefix']}-{device['run']}-0001"
    site_database.execute("DELETE FROM fleet_measurement WHERE device = %s AND seq IN (3, 7)", [device])
    site_database.execute("DELETE FROM fleet_measurement WHERE device = %s AND seq = 5 AND name = 'ph'", [device])

    verify = [sys.executable, MANAGE, "fleet-verify", str(out / "manifest.json"), "--settle", "0"]
    again = subprocess.run(verify, env=site_env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1
    assert again.stderr.strip().endswith("19 measures lost (report.json lists them)")
    checked = report(out)
    assert checked["totals"]["measures_lost"] == 2 * 9 + 1
    assert checked["devices"][device]["lost"] == [3, 7]
    assert checked["devices"][device]["incomplete"] == [5]
    assert f"{device}: stored 71/90; lost 2: [3, 7]; incomplete 1: [5]" in again.stdout


def test_broker_restart_mid_run_loses_nothing(site_env, tmp_path):
    with persistent_broker(tmp_path / "broker") as broker:
        sink = Sink(site_env, broker, tmp_path / "sink.log").start()
        try:
            out = tmp_path / "run"
            args = ["run", "--devices", "5", "--messages", "40", "--duration", "4", "--out", str(out), *FAST]
            publisher = fleet(site_env, broker, *args, wait=False)
            time.sleep(1.5)
            broker.restart(downtime=0.5)
            stdout, _ = publisher.communicate(timeout=60)
        finally:
            sink.stop()
        assert publisher.returncode == 0, stdout
        checked = report(out)
        assert checked["totals"]["measures_stored"] == 5 * 40 * 9
        assert checked["stages"]["publisher"]["disconnects"] >= 5
        assert checked["stages"]["broker"]["dropped"] == 0
        assert "went away" in sink.log.read_text()


def test_sink_killed_mid_run_loses_nothing(site_env, mosquitto, sink, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--devices", "5", "--messages", "40", "--duration", "4", "--out", str(out), *FAST]
    publisher = fleet(site_env, mosquitto, *args, wait=False)
    time.sleep(1.5)
    # No flush, no acknowledgement: what the sink held is resent by the broker to the next sink on the session.
    sink.stop(signal.SIGKILL)
    time.sleep(1)
    sink.start()
    stdout, _ = publisher.communicate(timeout=60)
    assert publisher.returncode == 0, stdout
    checked = report(out)
    assert checked["totals"]["measures_stored"] == 5 * 40 * 9
    assert "session present: True" in sink.log.read_text()
