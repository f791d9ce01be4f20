"""The fleet sink against a real Mosquitto: measures stored once, malformed and duplicate messages counted."""

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from django.db import OperationalError

from fleet.models import Measurement, Rejected
from fleet.sink import FleetSink, parse

# The sink writes from its own thread: the test database must be committed for it to write rows.
pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "aws/0/buoy-1/data/"


def message(seq: int, device: str = "buoy-1", **measures) -> bytes:
    measures = measures or {"ph": 7.2, "temperature": 11.5}
    return json.dumps({"device": device, "seq": seq, "sent": time.time(), "measures": measures}).encode()


@pytest.fixture
def sink(mosquitto):
    sink = FleetSink(mosquitto.host, mosquitto.port, client_id="test_sink", batch_wait=0.05)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not sink.subscribed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.subscribed, "sink did not subscribe within 10 s"
    yield sink
    sink.stop()
    thread.join(10)
    assert not thread.is_alive(), "sink did not stop within 10 s"


def publish(broker, *payloads: bytes, topic: str = TOPIC) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    for payload in payloads:
        info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except OperationalError:
            pass  # the test database is shared-cache in-memory SQLite: a writing sink locks its tables
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        time.sleep(0.05)


def test_every_measure_is_stored_with_its_times(mosquitto, sink):
    publish(mosquitto, message(0), message(1, ph=6.9))
    wait_for(lambda: Measurement.objects.count() == 3)
    rows = list(Measurement.objects.values_list("device", "seq", "name", "value"))
    assert rows == [("buoy-1", 0, "ph", 7.2), ("buoy-1", 0, "temperature", 11.5), ("buoy-1", 1, "ph", 6.9)]
    row = Measurement.objects.first()
    assert row.sent_at <= row.received_at <= row.stored_at


def test_a_redelivered_message_is_counted_as_duplicate_not_stored_twice(mosquitto, sink):
    publish(mosquitto, message(0))
    wait_for(lambda: Measurement.objects.count() == 2)
    # The same message again after its batch was committed (a QoS 1 redelivery), and twice in one batch.
    publish(mosquitto, message(0), message(1), message(1))
    wait_for(lambda: Rejected.objects.count() == 2)
    assert Measurement.objects.count() == 4
    assert set(Rejected.objects.values_list("reason", "device", "seq")) == {
        ("duplicate", "buoy-1", 0),
        ("duplicate", "buoy-1", 1),
    }
    assert sink.counts["duplicates"] == 2
    assert sink.counts["messages"] == 2


def test_malformed_messages_are_counted_and_never_stored(mosquitto, sink):
    bad = [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"device": "buoy-1", "seq": 1}).encode(),
        json.dumps({"device": "buoy-1", "seq": -1, "sent": 0, "measures": {"ph": 7}}).encode(),
        json.dumps({"device": "buoy-1", "seq": 2, "sent": 0, "measures": {"ph": "seven"}}).encode(),
        json.dumps({"device": "", "seq": 3, "sent": 0, "measures": {"ph": 7}}).encode(),
    ]
    publish(mosquitto, *bad, message(9))
    wait_for(lambda: Measurement.objects.count() == 2 and Rejected.objects.count() == len(bad))
    assert set(Rejected.objects.values_list("reason", flat=True)) == {"malformed"}
    assert set(Measurement.objects.values_list("seq", flat=True)) == {9}
    assert sink.counts["malformed"] == len(bad)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"{}", KeyError),
        (b'{"device": 1, "seq": 0, "sent": 0, "measures": {"a": 1}}', ValueError),
        (b'{"device": "d", "seq": true, "sent": 0, "measures": {"a": 1}}', ValueError),
        (b'{"device": "d", "seq": 0, "sent": 0, "measures": {}}', ValueError),
        (b'"text"', TypeError),
    ],
)
def test_parse_rejects_what_is_not_a_fleet_message(payload, error):
    with pytest.raises(error):
        parse(payload)
