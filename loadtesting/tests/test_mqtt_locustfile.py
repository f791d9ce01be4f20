"""The MQTT locustfile, run by the real Locust against the real broker of the `mosquitto` fixture.

Each run is bounded by Locust's --run-time and by the subprocess timeout.
"""

import contextlib
import csv
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
import paho.mqtt.subscribe as subscribe
import pytest

from lampi_load.accounts import fake_device_id
from lampi_load.mqtt.backoff import Backoff
from testing.locust_workers import hand_started_workers
from testing.mosquitto import Mosquitto
from testing.mqtt_recorder import MqttRecorder
from testing.ports import free_port

REPO = Path(__file__).resolve().parents[2]
LOCUST = str(Path(sys.executable).parent / "locust")
LOCUSTFILE = str(REPO / "loadtesting" / "mqtt_locustfile.py")
pytestmark = pytest.mark.slow


def locust(host: str, tmp_path: Path, *args: str) -> list[str]:
    return [LOCUST, "-f", LOCUSTFILE, "--headless", "--host", host, "--csv", str(tmp_path / "run"), *args]


def stats(tmp_path: Path) -> dict[tuple[str, str], dict]:
    with (tmp_path / "run_stats.csv").open(newline="") as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def retained(mosquitto, topic: str, count: int) -> list:
    return subscribe.simple(topic, hostname=mosquitto.host, port=mosquitto.port, msg_count=count, retained=True)


def test_devices_publish_the_model_with_its_qos_and_no_failure(mosquitto, tmp_path):
    with MqttRecorder(mosquitto.host, mosquitto.port, ["devices/#", "$SYS/broker/connection/#"]) as recorder:
        command = locust(f"mqtt://127.0.0.1:{mosquitto.port}", tmp_path, "-u", "50", "-r", "50", "-t", "10s")
        run = subprocess.run([*command, "--mqtt-profile", "worst", "--mqtt-devices", "50"], timeout=60, cwd=REPO)
    assert run.returncode == 0
    rows = stats(tmp_path)
    assert rows[("", "Aggregated")]["Failure Count"] == "0"
    assert rows[("CONNECT", "[id]_broker")]["Request Count"] == "50"
    assert int(rows[("PUBLISH", "devices/[id]/lamp/changed")]["Request Count"]) > 50 * 5
    # A subscriber at QoS 2 gets each message at the QoS it was published with.
    qos_by_kind = {}
    for message in recorder.messages:
        kind = message.topic.split("/")[-1] if message.topic.startswith("devices/") else "bridge"
        qos_by_kind.setdefault(kind, set()).add(message.qos)
    assert qos_by_kind == {"changed": {1}, "state": {2}, "bridge": {1}}
    devices = {message.topic.split("/")[1] for message in recorder.messages if message.topic.startswith("devices/")}
    assert devices == {fake_device_id(n) for n in range(50)}
    # Spread over the loopback source addresses (auto: 127.0.1.1-16), one connection after the other.
    sources = re.findall(r"New client connected from ([0-9.]+):\d+ as 1e", mosquitto.log.read_text())
    assert sorted(set(sources)) == sorted(f"127.0.1.{n}" for n in range(1, 17))
    changed = json.loads(next(m.payload for m in recorder.messages if m.topic.endswith("/changed")))
    assert set(changed) == {"color", "brightness", "on", "client"}
    # Retained: each lamp's state, its clients' connection states, and its bridge's "0" after a clean stop.
    device = fake_device_id(7)
    assert retained(mosquitto, f"devices/{device}/lamp/changed", 1).retain
    states = retained(mosquitto, f"devices/{device}/lamp/connection/+/state", 3)
    assert {message.payload for message in states} == {b"1"}
    assert retained(mosquitto, f"$SYS/broker/connection/{device}_broker/state", 1).payload == b"0"


def test_a_killed_device_leaves_its_last_will(mosquitto, tmp_path):
    topic = f"$SYS/broker/connection/{fake_device_id(0)}_broker/state"
    with MqttRecorder(mosquitto.host, mosquitto.port, [topic]) as recorder:
        command = locust(f"{mosquitto.host}:{mosquitto.port}", tmp_path, "-u", "1", "-t", "30s")
        process = subprocess.Popen([*command, "--mqtt-devices", "1"], cwd=REPO)
        try:
            recorder.wait_for(lambda message: message.payload == b"1", timeout=20)
        finally:
            process.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker must publish the will
            process.wait(timeout=10)
        will = recorder.wait_for(lambda message: message.payload == b"0", timeout=10)
    assert will.qos == 1
    assert retained(mosquitto, topic, 1).payload == b"0"


def test_a_broker_restart_fails_connections_and_every_device_comes_back_within_the_backoff(mosquitto, tmp_path):
    command = locust(f"mqtt://127.0.0.1:{mosquitto.port}", tmp_path, "-u", "20", "-r", "20", "-t", "25s")
    process = subprocess.Popen([*command, "--mqtt-profile", "worst", "--mqtt-devices", "20"], cwd=REPO)
    try:
        time.sleep(6)
        stopped = time.monotonic()
        mosquitto.restart(downtime=3)
        back = time.monotonic()
        # The broker kept nothing (no persistence): each bridge's retained "1" now is its reconnection.
        with MqttRecorder(mosquitto.host, mosquitto.port, ["$SYS/broker/connection/+/state"]) as recorder:
            bound = Backoff().bound(back - stopped)
            recorder.wait_for(lambda message: len(online(recorder)) == 20, timeout=bound + 5)
            came_back = time.monotonic()
    finally:
        process.wait(timeout=60)
    assert process.returncode == 1  # Locust's exit code when anything failed
    # Within the backoff's bound of the broker's return (plus a CONNACK's and the recorder's own latency).
    assert came_back - back < bound + 2
    rows = stats(tmp_path)
    assert int(rows[("DISCONNECT", "[id]_broker")]["Failure Count"]) == 20
    reconnects = rows[("CONNECT", "[id]_broker")]
    assert int(reconnects["Request Count"]) - int(reconnects["Failure Count"]) == 40
    # Refused while the broker was away: each device tried at least once, and no device stormed it (a try every
    # 1-2 s at the fastest: at most 3 in about 4 s of outage).
    assert 20 <= int(reconnects["Failure Count"]) <= 20 * 3


def test_a_kicked_device_waits_its_backoff_before_reconnecting(mosquitto, tmp_path):
    device = fake_device_id(0)
    with MqttRecorder(mosquitto.host, mosquitto.port, [f"$SYS/broker/connection/{device}_broker/state"]) as recorder:
        command = locust(f"mqtt://127.0.0.1:{mosquitto.port}", tmp_path, "-u", "1", "-t", "12s")
        process = subprocess.Popen([*command, "--mqtt-devices", "1"], cwd=REPO)
        try:
            recorder.wait_for(lambda message: message.payload == b"1", timeout=20)
            # Another client takes the device's id (and leaves): the broker closes the device's connection.
            kicked = time.monotonic()
            publish.single("thief", b"", hostname=mosquitto.host, port=mosquitto.port, client_id=f"{device}_broker")
            left = time.monotonic()
            back = recorder.wait_for(lambda message: message.payload == b"1" and message.timestamp > left, 10)
        finally:
            process.wait(timeout=30)
    first_pause = Backoff().first  # the locustfile's devices use the defaults
    assert first_pause / 2 <= back.timestamp - kicked < first_pause + 1


def online(recorder: MqttRecorder) -> set[str]:
    return {message.topic for message in recorder.messages if message.payload == b"1"}


@pytest.mark.parametrize("accepted", [False, True], ids=["failed", "flagged"])
def test_messages_the_broker_drops_fail_the_run_with_its_own_figure(tmp_path, accepted):
    # A site daemon that subscribed at QoS 1 and stopped reading: the broker queues 10 for it, then drops. The
    # devices get every PUBACK; only $SYS says what was lost.
    with Mosquitto(tmp_path / "broker", settings={"max_queued_messages": 10}) as broker, stalled_subscriber(broker):
        command = locust(f"mqtt://{broker.host}:{broker.port}", tmp_path, "-u", "10", "-r", "10", "-t", "10s")
        flag = ["--mqtt-drops-acceptable"] if accepted else []
        run = subprocess.run([*command, "--mqtt-profile", "worst", "--mqtt-devices", "10", *flag], timeout=60, cwd=REPO)
        time.sleep(1.5)  # the broker's last $SYS update (sys_interval 1)
        dropped = int(retained(broker, "$SYS/broker/publish/messages/dropped", 1).payload)
    rows = stats(tmp_path)
    row = rows[("BROKER", "messages dropped ($SYS, accepted)" if accepted else "messages dropped ($SYS)")]
    counted = int(row["Request Count"])
    # Every drop the broker reported while the test ran; the last update (sys_interval 1 s) and the users' stop may
    # come after the watch closed: on a busy machine (CI's) that tail reached 1.5 s of the devices' messages.
    assert 0 < counted <= dropped
    assert counted >= dropped - 20 * 10 * 3  # at most the devices' last 3 s of messages, of about 10 s
    if accepted:
        assert run.returncode == 0
        assert rows[("", "Aggregated")]["Failure Count"] == "0"
    else:
        assert run.returncode == 1
        assert int(row["Failure Count"]) == counted
        assert int(rows[("", "Aggregated")]["Failure Count"]) == counted


def test_connections_the_broker_refuses_fail_at_once(tmp_path):
    # Past max_connections Mosquitto closes the socket before CONNACK (and logs "denied"): no 10 s timeout wait.
    with Mosquitto(tmp_path / "broker", settings={"max_connections": 5}) as broker:
        command = locust(f"mqtt://{broker.host}:{broker.port}", tmp_path, "-u", "8", "-r", "8", "-t", "4s")
        run = subprocess.run([*command, "--mqtt-devices", "8"], timeout=60, cwd=REPO)
        denied = broker.log.read_text().count("denied: max_connections exceeded")
    assert run.returncode == 1
    connects = stats(tmp_path)[("CONNECT", "[id]_broker")]
    # Mosquitto lets max_connections + 1 in (the drop watch and five devices): the other three are refused, each
    # once in 4 s (a refused device waits out its timeout and then its backoff).
    assert int(connects["Failure Count"]) == denied == 3
    errors = (tmp_path / "run_failures.csv").read_text()
    assert "closed by the broker before CONNACK" in errors


@contextlib.contextmanager
def stalled_subscriber(broker: Mosquitto):
    """A client subscribed to every device's messages at QoS 1 that never reads a message."""
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stalled-site-daemon")
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(broker.host, broker.port)
    client.subscribe("devices/#", qos=1)
    deadline = time.monotonic() + 10
    while not subscribed.is_set() and time.monotonic() < deadline:
        client.loop(0.1)
    assert subscribed.is_set(), "the stalled subscriber got no SUBACK within 10 s"
    try:
        yield client
    finally:
        client.socket().close()


@pytest.mark.parametrize("mode", ["--processes 2", "master and two hand-started workers"])
def test_each_worker_takes_its_own_ids_and_broker(tmp_path, mode):
    with Mosquitto(tmp_path / "one") as one, Mosquitto(tmp_path / "two") as two:
        host = f"mqtt://{one.host}:{one.port},mqtt://{two.host}:{two.port}"
        # Its own master port (workers connect to --master-port): never another run's master.
        port = str(free_port())
        command = locust(host, tmp_path, "-u", "4", "-r", "4", "-t", "4s", "--mqtt-devices", "4")
        command += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port]
        # Workers started by hand get no kit option, as the Ansible loadgen role starts them.
        worker = [LOCUST, "-f", LOCUSTFILE, "--worker", "--master-host", "127.0.0.1", "--master-port", port]
        by_hand = 0 if mode == "--processes 2" else 2
        if by_hand:
            command += ["--master", "--expect-workers", str(by_hand)]
        else:
            command += ["--processes", "2", "--master-port", port]
        with hand_started_workers(worker, by_hand, REPO):
            run = subprocess.run(command, timeout=60, cwd=REPO)
        devices = [re.findall(r"connected from \S+ as (1e\w+)", broker.log.read_text()) for broker in (one, two)]
    assert run.returncode == 0
    # Two devices on each broker, each device on one only: each worker had its own slice of the ids.
    assert sorted(map(len, devices)) == [2, 2]
    assert sorted(devices[0] + devices[1]) == [f"{fake_device_id(n)}_broker" for n in range(4)]


def test_a_worker_that_joins_after_the_start_ends_the_search_instead_of_passing_its_levels(mosquitto, tmp_path):
    # Locust hands a late worker users at once, but it got no device ids at the test's start (IdSlices): its users
    # stop, and a level would run fewer devices than it names. The search must not call that level a pass.
    port = str(free_port())
    results = tmp_path / "search"
    command = locust(f"mqtt://{mosquitto.host}:{mosquitto.port}", tmp_path, "--mqtt-devices", "8")
    command[2] += f",{REPO / 'loadtesting' / 'hone_in.py'}"
    command += ["--master", "--expect-workers", "1", "--master-bind-host", "127.0.0.1", "--master-bind-port", port]
    command += ["--hone-levels", "4,4,4,4", "--hone-spawn-rate", "4", "--hone-ramp", "0.5", "--hone-settle", "1"]
    command += ["--hone-hold", "8", "--hone-time-limit", "60", "--hone-sar", "off", "--hone-results-dir", str(results)]
    worker = [LOCUST, "-f", command[2], "--worker", "--master-host", "127.0.0.1", "--master-port", port]
    with hand_started_workers(worker, 1, REPO):
        master = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            # A device, not the master's broker watch: the test has started and handed out its id slices.
            while not re.search(r"connected from \S+ as 1e\w+_broker", mosquitto.log.read_text()):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert time.monotonic() < deadline, "no device connected within 30 s"
            with hand_started_workers(worker, 1, REPO):  # the late one
                _, errors = master.communicate(timeout=90)
        finally:
            if master.poll() is None:
                master.kill()
                master.wait()
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["status"] == "users-lost", errors[-2000:]
    short = verdict["short_level"]
    assert short["users"] == 4
    assert short["held"] < 4, short
    assert len(verdict["levels"]) < 4
    assert "so it is not judged and the search ends here" in errors


def test_websockets_transport_carries_the_devices(mosquitto, tmp_path):
    with MqttRecorder(mosquitto.host, mosquitto.port, ["devices/+/lamp/changed"]) as recorder:
        command = locust(mosquitto.ws_url, tmp_path, "-u", "10", "-r", "10", "-t", "5s")
        run = subprocess.run([*command, "--mqtt-profile", "worst", "--mqtt-devices", "10"], timeout=60, cwd=REPO)
        recorder.wait_for(timeout=5)
    assert run.returncode == 0
    assert stats(tmp_path)[("", "Aggregated")]["Failure Count"] == "0"


def test_bad_source_addresses_are_one_clear_line(mosquitto, tmp_path):
    command = locust(f"mqtt://{mosquitto.host}:{mosquitto.port}", tmp_path, "-u", "1", "-t", "1s")
    run = subprocess.run(
        [*command, "--mqtt-source-addresses", "127.0.1.9-127.0.1.1"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0
    assert "mqtt_locustfile: bad --mqtt-source-addresses '127.0.1.9-127.0.1.1'" in run.stderr


def test_a_bad_host_is_one_clear_line(tmp_path):
    run = subprocess.run(
        locust("http://127.0.0.1:8080", tmp_path, "-u", "1", "-t", "1s"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert run.returncode != 0
    assert "mqtt_locustfile: bad broker address 'http://127.0.0.1:8080'" in run.stderr


def test_the_searchs_steps_warn_of_a_high_spawn_rate_once(mosquitto, tmp_path):
    # 400 devices/s over two workers is 200 per worker each second: Locust's master warns of every such step.
    port = str(free_port())
    command = locust(f"mqtt://{mosquitto.host}:{mosquitto.port}", tmp_path, "--mqtt-devices", "3000")
    command[2] += f",{REPO / 'loadtesting' / 'hone_in.py'}"
    command += ["--hone-spawn-rate", "400", "--hone-time-limit", "8", "--hone-max-users", "3000", "--hone-sar", "off"]
    command += ["--hone-results-dir", str(tmp_path / "search"), "--processes", "2", "--master-bind-host", "127.0.0.1"]
    command += ["--master-bind-port", port, "--master-port", port]
    run = subprocess.run(command, capture_output=True, text=True, timeout=90, cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("Your selected spawn rate is very high") == 1
