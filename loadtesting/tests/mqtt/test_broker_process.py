"""The broker read from /proc: found by its port, its limits, its CPU time, against a real Mosquitto."""

import json
import time

import pytest

from lampi_load.mqtt import broker_process
from testing.mosquitto import Mosquitto
from testing.ports import free_port


def test_the_broker_is_found_by_its_port_with_its_limits(tmp_path):
    with Mosquitto(tmp_path / "broker", settings={"max_connections": 7}) as broker:
        pid, expected = broker_process.listening_pid(broker.port), broker.process.pid
        limits = broker_process.limits(pid)
    assert pid == expected
    assert limits["open_files"]["soft"] > 0
    assert limits["open_files"]["hard"] >= limits["open_files"]["soft"]
    assert limits["max_connections"] == [7]
    assert limits["config"] == str(broker.config)


def test_nothing_listening_is_none():
    assert broker_process.listening_pid(free_port()) is None


def test_cpu_share_comes_from_the_recorded_cpu_seconds(mosquitto, tmp_path):
    log = tmp_path / "cpu.jsonl"
    recorder = broker_process.CpuRecorder(mosquitto.port, log, every=0.1).start()
    # Finding the broker reads every process's descriptors: slow on a machine holding 100,000 sockets.
    deadline = time.monotonic() + 10
    while (not log.exists() or len(log.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        time.sleep(0.1)
    recorder.stop()
    samples = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(samples) >= 3
    assert {sample["pid"] for sample in samples} == {mosquitto.process.pid}
    assert 0 <= broker_process.cpu_share(log, 0, float("inf")) < 100  # an idle broker
    assert broker_process.cpu_share(log, 0, 1) is None  # no samples in that window


def test_cpu_share_is_the_cpu_seconds_over_the_wall_seconds(tmp_path):
    log = tmp_path / "cpu.jsonl"
    samples = [(10, 1, 1.0), (12, 1, 1.5), (14, 1, 2.0), (15, 2, 0.01), (17, 2, 0.21)]
    log.write_text("".join(json.dumps({"t": t, "pid": pid, "cpu_s": cpu}) + "\n" for t, pid, cpu in samples))
    assert broker_process.cpu_share(log, 10, 14) == 25.0
    assert broker_process.cpu_share(log, 10, 17) == pytest.approx(10.0)  # a restart: only the new process counts
