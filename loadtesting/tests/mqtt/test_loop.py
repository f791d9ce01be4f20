"""The shared event loop without Locust: broker addresses, the model's arithmetic, the loop and the paho speed-ups
under gevent."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lampi_load.mqtt import paho_speedups
from lampi_load.mqtt.broker import BrokerAddress, brokers, source_addresses
from lampi_load.mqtt.model import PROFILES, Profile, lamp_state

LOADTESTING = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1884", BrokerAddress("tcp", "127.0.0.1", 1884)),
        ("mqtt://broker.example", BrokerAddress("tcp", "broker.example", 1883)),
        ("127.0.0.1", BrokerAddress("tcp", "127.0.0.1", 1883)),
        ("localhost:50001", BrokerAddress("tcp", "localhost", 50001)),
        ("ws://127.0.0.1:9001/mqtt", BrokerAddress("websockets", "127.0.0.1", 9001, "/mqtt")),
        ("ws://127.0.0.1:9001", BrokerAddress("websockets", "127.0.0.1", 9001, "/mqtt")),
        ("ws://h:50002/ws", BrokerAddress("websockets", "h", 50002, "/ws")),
    ],
)
def test_broker_addresses_parse(url, expected):
    assert BrokerAddress.parse(url) == expected


@pytest.mark.parametrize(
    "url", ["", "http://127.0.0.1:8080", "mqtt://127.0.0.1:port", "mqtt://:1883", "mqtt://h:1883/x", "h:99999"]
)
def test_bad_broker_addresses_say_what_to_use(url):
    with pytest.raises(ValueError, match="mqtt://HOST:PORT"):
        BrokerAddress.parse(url)


def test_profiles_rates_match_the_model_document():
    assert PROFILES["normal"].rate() == pytest.approx(13 / 300.8)
    assert PROFILES["worst"].rate() == pytest.approx(15)


def test_lamp_state_is_about_the_size_the_model_says():
    assert 120 <= len(lamp_state("lamp_bt_peripheral")) <= 170


# Run under gevent's monkey-patching, with the paho speed-ups on, as in a Locust process: connects one device over
# TCP and one over WebSockets, publishes at QoS 1 and QoS 0 from each, and prints what the loop reported, what a
# subscriber received and which sockets paho ended up with.
LOOP_UNDER_GEVENT = """
from gevent import monkey; monkey.patch_all()
import json, sys
import gevent
from lampi_load.mqtt import paho_speedups
from lampi_load.mqtt.broker import BrokerAddress, brokers, source_addresses
from lampi_load.mqtt.loop import DeviceLoop
from lampi_load.mqtt.paho_speedups import FastClient, PlainSocket

paho_speedups.install()
reports, received = [], []
fleets = [DeviceLoop(BrokerAddress.parse(url), lambda *report: reports.append(report[:2] + (report[4],)),
                     client_class=FastClient)
          for url in sys.argv[1:]]
listener = fleets[0].connection("fleet-test-listener")
listener.client.on_message = lambda client, userdata, message: received.append(message.topic)
listener.connect()
assert listener.connected.wait(10), "no CONNACK"
listener.subscribe("devices/#", [("devices/#", 1)])
gevent.sleep(0.5)
connections = [fleet.connection(f"fleet-test-{n}") for n, fleet in enumerate(fleets)]
for n, connection in enumerate(connections):
    connection.connect()
    assert connection.connected.wait(10), "no CONNACK"
    for qos in (1, 0):
        connection.publish(f"qos{qos}", f"devices/{n}/qos{qos}", b"{}", qos)
# A device that stops right after a QoS 0 publish: the message goes out before the DISCONNECT, and counts.
leaving = fleets[0].connection("fleet-test-leaving")
leaving.connect()
assert leaving.connected.wait(10), "no CONNACK"
leaving.publish("leaving", "devices/2/qos0", b"{}", 0)
# ... and a QoS 1 message it stops before its PUBACK is read: abandoned, never a timeout.
leaving.publish("abandoned", "devices/2/qos1", b"{}", 1)
leaving.disconnect()
gevent.sleep(1)
fleets[0].expire(float("inf"))  # every deadline now: anything still unreported would fail here
try:
    connections[0].client.publish("t", b"x", 1).wait_for_publish(1)
    refused = ""
except RuntimeError as error:
    refused = str(error)
print(json.dumps({
    "reports": [[kind, name, repr(error)] for kind, name, error in reports],
    "received": sorted(received),
    "plain": [isinstance(connection.client.socket(), PlainSocket) for connection in connections],
    "refused": refused,
}))
for fleet in fleets:
    fleet.close()
"""


def test_loop_under_gevent_uses_plain_tcp_sockets_and_reports_every_message_once(mosquitto):
    script = [sys.executable, "-c", LOOP_UNDER_GEVENT, f"mqtt://{mosquitto.host}:{mosquitto.port}", mosquitto.ws_url]
    done = subprocess.run(script, capture_output=True, text=True, timeout=60, cwd=LOADTESTING)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not [report for report in result["reports"] if "Timeout" in report[2]], result["reports"]
    published = sorted(report for report in result["reports"] if report[0] == "PUBLISH" and report[1] != "abandoned")
    assert (
        published
        == [["PUBLISH", "leaving", "None"]] + [["PUBLISH", "qos0", "None"]] * 2 + [["PUBLISH", "qos1", "None"]] * 2
    )
    assert [report for report in result["reports"] if report[0] == "CONNECT"] == [["CONNECT", "connect", "None"]] * 4
    # The abandoned message may have gone out before the DISCONNECT: delivered or not, it is no failure.
    assert [topic for topic in result["received"] if topic != "devices/2/qos1"] == [
        "devices/0/qos0",
        "devices/0/qos1",
        "devices/1/qos0",
        "devices/1/qos1",
        "devices/2/qos0",
    ]
    # TCP gets the plain socket (no gevent wrapper on every send and recv); WebSockets keep gevent's for paho's
    # blocking handshake.
    assert result["plain"] == [True, False]
    assert "wait_for_publish() is not available" in result["refused"]


def test_several_brokers_are_one_comma_separated_host():
    assert brokers("mqtt://127.0.0.1:1883,127.0.0.1:1884") == [
        BrokerAddress("tcp", "127.0.0.1", 1883),
        BrokerAddress("tcp", "127.0.0.1", 1884),
    ]
    with pytest.raises(ValueError, match="bad broker address 'http://x'"):
        brokers("mqtt://127.0.0.1:1883,http://x")


@pytest.mark.parametrize(
    ("spec", "host", "expected"),
    [
        ("auto", "127.0.0.1", [f"127.0.1.{n}" for n in range(1, 17)]),
        ("auto", "broker.example", []),
        ("auto", "::1", []),
        ("none", "127.0.0.1", []),
        ("127.0.2.1-127.0.2.3, 127.0.3.1", "127.0.0.1", ["127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.3.1"]),
    ],
)
def test_source_addresses_spread_loopback_connections_by_default(spec, host, expected):
    assert source_addresses(spec, host) == expected


@pytest.mark.parametrize("spec", ["127.0.2.3-127.0.2.1", "127.0.2", "127.0.0.0-127.255.255.255", ""])
def test_bad_source_addresses_are_one_line(spec):
    with pytest.raises(ValueError, match="bad --mqtt-source-addresses .*: use auto, none"):
        source_addresses(spec, "127.0.0.1")


def test_dispersion_is_one_for_single_taps_and_the_burst_for_fixed_drags():
    taps = Profile(pause=10, random_pause=True, drag_share=0, drag_seconds=(1, 3), drag_rate=15, phone_share=0)
    assert taps.dispersion() == pytest.approx(1.0)
    drags = Profile(pause=10, random_pause=True, drag_share=1, drag_seconds=(2, 2), drag_rate=15, phone_share=0)
    assert drags.dispersion() == pytest.approx(30.0)  # every interaction is exactly 30 messages
    # The normal profile's bursts make a hold's count about 31 times as variable as independent messages would.
    assert 25 < PROFILES["normal"].dispersion() < 35


def test_speedups_refuse_a_paho_they_were_not_written_for():
    paho_speedups.check_version(paho_speedups.WRITTEN_FOR[0])
    with pytest.raises(paho_speedups.PahoVersionError, match="paho-mqtt 9.9.9 is installed, but .* was written for"):
        paho_speedups.check_version("9.9.9")
