"""Benchmark locustfile: the same flood of publishes through our shared event loop and through Locust's MqttUser.

Run by mqtt_vs_mqttuser.py. Pick the user class by name; settings come from the environment:
BENCH_PORT (broker port on 127.0.0.1), BENCH_QOS (0, 1 or 2), BENCH_WINDOW (unacknowledged messages a client
may have, paho's own default 20), BENCH_PACED=1 (one message every 10 s per client instead of a flood).
Every client publishes the same payload to the same topic, so MqttUser's table (one row per topic) stays short.
"""

import os
import sys
import time
import uuid
from pathlib import Path

import gevent
from locust import User, constant, events, task
from locust.contrib.mqtt import MqttUser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lampi_load.mqtt import paho_speedups  # noqa: E402
from lampi_load.mqtt.broker import BrokerAddress  # noqa: E402
from lampi_load.mqtt.loop import DeviceLoop, raise_open_file_limit  # noqa: E402
from lampi_load.mqtt.model import lamp_state  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "1883"))
QOS = int(os.environ.get("BENCH_QOS", "1"))
WINDOW = int(os.environ.get("BENCH_WINDOW", "20"))
PACED = os.environ.get("BENCH_PACED") == "1"
PAYLOAD = lamp_state("lamp_ui")
TOPIC = "bench/lamp/changed"

loop: DeviceLoop | None = None
raise_open_file_limit()


def get_loop(environment) -> DeviceLoop:
    global loop
    if loop is None:
        paho_speedups.install()  # as the MQTT locustfile does

        def report(request_type, name, start, length, exception):
            environment.events.request.fire(
                request_type=request_type,
                name=name,
                response_time=(time.perf_counter() - start) * 1000,
                response_length=length,
                exception=exception,
                context={},
            )

        address = BrokerAddress("tcp", "127.0.0.1", PORT)
        loop = DeviceLoop(address, report, client_class=paho_speedups.FastClient)
    return loop


@events.test_stop.add_listener
def close_loop(environment, **kwargs):
    if loop is not None:
        loop.close()


class LoopFlood(User):
    """Our client: one Connection on the process's shared event loop."""

    wait_time = constant(10 if PACED else 0)

    def on_start(self):
        self.connection = get_loop(self.environment).connection(f"loop-{uuid.uuid4().hex[:12]}")
        while not (self.connection.connect() and self.connection.connected.wait(10)):
            gevent.sleep(1)

    @task
    def flood(self):
        room = 1 if PACED else WINDOW - len(self.connection.inflight)
        for _ in range(room):
            self.connection.publish(TOPIC, TOPIC, PAYLOAD, QOS)
        if not room:
            gevent.sleep(0.1)  # the window is full: the same short nap for every contender


class MqttUserFlood(MqttUser):
    """Locust's own MQTT user: one paho client with its own network loop (a greenlet under gevent) per user."""

    port = PORT
    wait_time = constant(10 if PACED else 0)

    @task
    def flood(self):
        if PACED:  # as MqttUser is meant to be used: publish, connected or not
            self.client.publish(TOPIC, PAYLOAD, qos=QOS)
            return
        # A fair flood waits for CONNACK: MqttUser counts each message sent before it as two failures.
        room = WINDOW - len(self.client._publish_requests) if self.client.is_connected() else 0
        for _ in range(room):
            self.client.publish(TOPIC, PAYLOAD, qos=QOS)
        if not room:
            gevent.sleep(0.1)
