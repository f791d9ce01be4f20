"""The MQTT search command: its preflight, and one short real search against the fixture's broker."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lampi_load.mqtt.model import PROFILES
from lampi_load.runs import mqtt as mqtt_search
from testing.mqtt_recorder import MqttRecorder


def test_a_bad_host_is_one_line(capsys, tmp_path):
    assert mqtt_search.main(["--host", "http://127.0.0.1:8080", "--results-root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("mqtt_search: error: bad broker address")


def test_a_broker_that_is_down_is_one_line(capsys, tmp_path):
    assert mqtt_search.main(["--host", "mqtt://127.0.0.1:1", "--results-root", str(tmp_path)]) == 2
    assert "cannot reach the broker at 127.0.0.1:1" in capsys.readouterr().err


def test_every_broker_of_several_is_checked_before_the_search(capsys, mosquitto, tmp_path):
    host = f"mqtt://{mosquitto.host}:{mosquitto.port},mqtt://127.0.0.1:1"
    assert mqtt_search.main(["--host", host, "--results-root", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "mqtt_search: error: cannot reach the broker at 127.0.0.1:1 ([Errno 111] Connection refused)"
    )


@pytest.mark.slow
def test_a_short_search_writes_a_report_with_broker_health(mosquitto, tmp_path):
    hone = ["--hone-spawn-rate", "20", "--hone-ramp", "0.5", "--hone-settle", "1", "--hone-hold", "5"]
    hone += ["--hone-max-users", "20"]
    host = f"mqtt://{mosquitto.host}:{mosquitto.port}"
    root = tmp_path / "results"
    argv = ["--host", host, "--time-limit", "40", "--results-root", str(root), "--", *hone, "--hone-sar", "off"]
    assert mqtt_search.main(argv) == 0
    (results,) = root.iterdir()
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["max_users_without_error"] == 20
    report = (results / "report.md").read_text()
    assert "## Broker health ($SYS) at the moments" in report
    assert "![devices, messages/s, broker CPU and heap over time" in report
    assert (results / "broker.png").stat().st_size > 10_000
    assert "| clients connected |" in report
    assert "python -m lampi_load.runs.mqtt --host" in (results / "command.txt").read_text()
    # The broker's own process: its limits in the run folder, its CPU share and heap at each level.
    assert json.loads((results / "broker.json").read_text())["pid"] == mosquitto.process.pid
    per_level = report[report.index("## The broker at each level") :]
    assert "| 20 | yes |" in per_level
    assert "| ? |" not in per_level.split("| 20 | yes |")[1].splitlines()[0]


@pytest.mark.slow
def test_a_broker_restart_fails_its_level_and_the_search_goes_on(mosquitto, tmp_path):
    # Probe 0-4 s to 20 devices; level 20: from 10 (at once), settle 1 s, ramp 2 s, hold 10 s.
    hone = ["--hone-spawn-rate", "5", "--hone-ramp", "2", "--hone-settle", "1", "--hone-hold", "10"]
    hone += ["--hone-max-users", "20"]
    root = tmp_path / "results"
    argv = ["--host", f"mqtt://{mosquitto.host}:{mosquitto.port}", "--time-limit", "90", "--results-root", str(root)]
    search = ThreadPoolExecutor(1).submit(mqtt_search.main, [*argv, "--", *hone, "--hone-sar", "off"])
    # While the 20 devices (and the $SYS logger and the drop watch) are connected: restart the broker.
    with MqttRecorder(mosquitto.host, mosquitto.port, ["$SYS/broker/clients/connected"]) as recorder:
        recorder.wait_for(lambda message: int(message.payload) >= 22, timeout=60)
    time.sleep(4)  # past the level's settle and ramp (22 seen at the probe's end or the ramp's): in its hold
    mosquitto.restart(downtime=1)
    assert search.result(timeout=200) == 0
    (results,) = root.iterdir()
    verdict = json.loads((results / "verdict.json").read_text())
    levels = verdict["levels"]
    failed = next(n for n, level in enumerate(levels) if not level["passed"])
    assert levels[failed]["users"] == 20
    assert "connection lost" in levels[failed]["reason"] or "CONNECT" in levels[failed]["reason"]
    # The devices came back within their backoff, and the search went on to pass levels again and to converge.
    assert any(level["passed"] for level in levels[failed + 1 :])
    assert verdict["status"] == "converged"
    # The broker's CPU is followed into its new process.
    per_level = (results / "report.md").read_text().split("## The broker at each level")[1]
    passed_after = next(level["users"] for level in levels[failed + 1 :] if level["passed"])
    assert f"| {passed_after} | yes | ? |" not in per_level


def test_the_verdict_names_the_broker_limit_that_ended_the_search():
    limits = {"open_files": {"soft": 20_000, "hard": 20_000}, "max_connections": [-1]}
    assert mqtt_search.limit_reached(limits, 19_900) == "open-file limit 20,000"
    assert mqtt_search.limit_reached({**limits, "max_connections": [5_000]}, 5_000) == "max_connections 5,000"
    assert mqtt_search.limit_reached({**limits, "max_connections": [19_000]}, 19_900) == "max_connections 19,000"
    assert mqtt_search.limit_reached(limits, 1_000) == ""
    assert mqtt_search.limit_reached({"pid": None}, 19_900) == ""


def test_the_search_judges_throughput_with_the_profiles_rate_and_burstiness(tmp_path):
    args = mqtt_search.argument_parser().parse_args(["--profile", "normal"])
    command = mqtt_search.locust_command(args, tmp_path, [])
    rate = command[command.index("--hone-expected-rps-per-user") + 1]
    dispersion = command[command.index("--hone-expected-dispersion") + 1]
    assert float(rate) == pytest.approx(PROFILES["normal"].rate(), rel=1e-3)
    assert float(dispersion) == pytest.approx(PROFILES["normal"].dispersion(), abs=0.05)
    args = mqtt_search.argument_parser().parse_args(["--no-judge-throughput"])
    assert "--hone-expected-rps-per-user" not in mqtt_search.locust_command(args, tmp_path, [])


def test_the_brokers_cpu_per_message_is_the_holds(tmp_path):
    # A level judged over t 0-40 s (a 20 s ramp, then a 20 s hold at 100 device messages/s): the broker spends 10% of
    # a core in the ramp and 50% in the hold. Its cost per message is the hold's, like the requests/s it divides by.
    level = {"users": 1000, "passed": True, "start": 0.0, "end": 40.0, "rps": 100.0}
    verdict = {"levels": [level], "settings": {"hold": 20.0}, "max_users_without_error": 1000}
    (tmp_path / "verdict.json").write_text(json.dumps(verdict))
    cpu = [{"t": float(t), "pid": 7, "cpu_s": 0.1 * min(t, 20) + 0.5 * max(t - 20, 0)} for t in range(41)]
    (tmp_path / "broker_cpu.jsonl").write_text("".join(json.dumps(sample) + "\n" for sample in cpu))
    section = mqtt_search.broker_per_level(tmp_path, {"pid": 7, "open_files": {"soft": 1024, "hard": 1024}})
    assert "| 1,000 | yes | 50 | 5000 µs |" in section
    assert "the broker used 50% of its core (5000 µs per device message)" in section


def test_a_run_with_processes_gets_a_master_port_of_its_own(tmp_path):
    # Not Locust's default 5557, which another run on this machine may hold.
    args = mqtt_search.argument_parser().parse_args([])
    command = mqtt_search.locust_command(args, tmp_path, ["--processes", "2"])
    port = command[command.index("--master-bind-port") + 1]
    assert command[command.index("--master-port") + 1] == port != "5557"
    joined = mqtt_search.locust_command(args, tmp_path, ["--processes=2"])
    assert joined[joined.index("--master-port") + 1] != "5557"
    # The user's own ports win whole: never our bind port with their master port.
    for given in (["--master-bind-port", "6000"], ["--master-port", "6000"]):
        command = mqtt_search.locust_command(args, tmp_path, ["--processes", "2", *given])
        assert command.count(given[0]) == 1
        assert {"--master-bind-port", "--master-port"} - {given[0]} - set(command)


def test_with_several_brokers_the_watched_ones_figures_are_for_its_own_devices(tmp_path):
    # Two brokers; the watched one held 500 of a level's 1,000 devices ($SYS clients/connected), which sent 100
    # messages/s in all: its 50% of a core is 10,000 µs per message of its own 50/s, and its core fills near 1,000.
    level = {"users": 1000, "passed": True, "start": 0.0, "end": 40.0, "rps": 100.0}
    verdict = {"levels": [level], "settings": {"hold": 20.0}, "max_users_without_error": 1000}
    (tmp_path / "verdict.json").write_text(json.dumps(verdict))
    cpu = [{"t": float(t), "pid": 7, "cpu_s": 0.5 * t} for t in range(41)]
    (tmp_path / "broker_cpu.jsonl").write_text("".join(json.dumps(sample) + "\n" for sample in cpu))
    clients = {"topic": "$SYS/broker/clients/connected", "t": 39.0, "value": "500"}
    (tmp_path / "sys.jsonl").write_text(json.dumps(clients) + "\n")
    limits = {"pid": 7, "open_files": {"soft": 20_000, "hard": 20_000}, "brokers": 2}
    section = mqtt_search.broker_per_level(tmp_path, limits)
    assert "the first of 2 brokers" in section
    assert "| 1,000 | yes | 50 | 10000 µs |" in section
    assert "At 500 devices the broker used 50% of its core" in section
    assert "full near 1,000 devices" in section
