"""The MQTT daemon against a real Mosquitto: devices announced by their bridges, a broker that goes away."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from lampi.models import Lampi
from lampi.mqtt_daemon import MqttDaemon
from testing.mqtt_recorder import MqttRecorder
from testing.ports import free_port

from .factories import make_lampi, make_user

# The daemon writes from its own thread: the test database must be committed for it to see and write rows.
pytestmark = pytest.mark.django_db(transaction=True)

SITE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def daemon(mosquitto):
    daemon = MqttDaemon(mosquitto.host, mosquitto.port)
    connected = threading.Event()
    daemon.client.on_subscribe = lambda *args: connected.set()
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    assert connected.wait(10), "daemon did not subscribe within 10 s"
    yield daemon
    daemon.stop()
    thread.join(10)
    assert not thread.is_alive(), "daemon did not stop within 10 s"


def announce_bridge(broker, device_id: str, state: str = "1") -> None:
    """What a LAMPI's bridge does on connecting: a retained state on its $SYS connection topic."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{device_id}_broker")
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(f"$SYS/broker/connection/{device_id}_broker/state", state, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def associated(device_id):
    topic = f"devices/{device_id}/lamp/associated"
    return lambda message: message.topic == topic


def test_unknown_device_is_created_parked_and_told_its_code(mosquitto, daemon):
    with MqttRecorder(mosquitto.host, mosquitto.port, ["devices/+/lamp/associated"]) as recorder:
        announce_bridge(mosquitto, "b827eb000001")
        message = recorder.wait_for(associated("b827eb000001"))
    lampi = Lampi.objects.get(device_id="b827eb000001")
    assert lampi.is_parked
    assert json.loads(message.payload) == {"associated": False, "code": lampi.association_code}
    assert message.qos == 2
    # Retained, so a device whose bridge reconnects later still finds its code.
    with MqttRecorder(mosquitto.host, mosquitto.port, ["devices/b827eb000001/lamp/associated"]) as late:
        assert late.wait_for(lambda m: m.retain).payload == message.payload


def test_known_owned_device_is_told_it_is_associated(mosquitto, daemon):
    make_lampi("b827eb000002", user=make_user("alice"))
    with MqttRecorder(mosquitto.host, mosquitto.port, ["devices/+/lamp/associated"]) as recorder:
        announce_bridge(mosquitto, "b827eb000002")
        message = recorder.wait_for(associated("b827eb000002"))
    assert json.loads(message.payload) == {"associated": True}
    assert Lampi.objects.count() == 1


def test_disconnect_and_bad_ids_create_nothing(mosquitto, daemon):
    with MqttRecorder(mosquitto.host, mosquitto.port, ["devices/+/lamp/associated"]) as recorder:
        announce_bridge(mosquitto, "b827eb000003", state="0")
        announce_bridge(mosquitto, "NOT-A-DEVICE")
        announce_bridge(mosquitto, "b827eb000004")  # a good one last, to know the others were handled
        recorder.wait_for(associated("b827eb000004"))
    assert list(Lampi.objects.values_list("device_id", flat=True)) == ["b827eb000004"]


def test_daemon_survives_broker_restart(mosquitto, daemon):
    mosquitto.restart(downtime=1.5)
    # Reconnects (backoff starts at 1 s) and resubscribes, then handles devices as before.
    deadline = time.monotonic() + 20
    with MqttRecorder(mosquitto.host, mosquitto.port, ["devices/+/lamp/associated"]) as recorder:
        while time.monotonic() < deadline and not Lampi.objects.filter(device_id="b827eb000005").exists():
            announce_bridge(mosquitto, "b827eb000005")
            time.sleep(0.5)
        recorder.wait_for(associated("b827eb000005"))


@pytest.mark.slow
def test_command_retries_while_broker_is_down_then_exits_cleanly(site_database):
    env = {**os.environ, **site_database.env, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mqtt-daemon", "--host", "127.0.0.1", "--port", str(port)],
        cwd=SITE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = ""
    try:
        # Its first retry, then more: a fixed wait lost the race against a slow start on a busy machine, and a
        # SIGTERM before the command sets its handler kills it (-15).
        while output.count("retrying") < 2:
            line = process.stdout.readline()
            assert line, output
            output += line
    finally:
        process.terminate()
        output += process.communicate(timeout=15)[0]
    assert process.returncode == 0, output
    assert f"MQTT broker 127.0.0.1:{port} unreachable; retrying" in output
    assert "Traceback" not in output


SIGNALLED_AT = """
import os, signal, sys
import django
django.setup()
import paho.mqtt.client as mqtt
from django.core.management import call_command
method, port = sys.argv[1], int(sys.argv[2])
real = getattr(mqtt.Client, method)
def signalled(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # as `make down` or systemd would, just as paho starts (re)connecting
    return real(self, *args, **kwargs)
setattr(mqtt.Client, method, signalled)
call_command("mqtt-daemon", host="127.0.0.1", port=port)
print("ended")
"""


@pytest.mark.parametrize("method", ["connect_async", "reconnect"])
def test_sigterm_as_paho_starts_connecting_ends_the_command(site_database, method):
    # Both reset paho's state: a handler that only asked paho to stop lost a SIGTERM that came just before them,
    # and the daemon retried an absent broker until killed (by `down`, 20 s later). The real command and a real
    # signal; only its moment is chosen.
    env = {**os.environ, **site_database.env, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", SIGNALLED_AT, method, str(free_port())]
    try:
        result = subprocess.run(command, cwd=SITE_DIR, env=env, capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"SIGTERM at {method} did not end the daemon within 10 s: {error.stderr}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ended"
    assert "Traceback" not in result.stderr
