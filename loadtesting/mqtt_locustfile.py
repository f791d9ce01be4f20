"""LAMPI devices as the cloud broker sees them: one Locust user per device, acting as the device's bridge.

    locust -f loadtesting/mqtt_locustfile.py --host mqtt://127.0.0.1:1883 --mqtt-profile normal
Each device connects as `<device id>_broker` (persistent session, last will "0" on its bridge-state topic),
announces itself, then publishes what loadtesting/mqtt-model.md says a person using the lamp causes. All the
devices of a process share one event loop (lampi_load/mqtt/loop.py, made cheaper by mqtt/paho_speedups.py). Add
`,loadtesting/hone_in.py` to -f to let the hone-in search drive the device count. Distributed (`--processes N`, or
workers started by hand with `--worker`), the master hands each worker its own slice of the device ids at the
test's start. Past one broker's open-file limit, `--host` takes several brokers, comma-separated: worker i connects
to broker i (modulo their number).
"""

import logging
import random
import sys
import time

import gevent
from locust import User, constant, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from lampi_load.accounts import fake_device_id
from lampi_load.mqtt import model, paho_speedups
from lampi_load.mqtt.backoff import Backoff
from lampi_load.mqtt.broker import brokers, source_addresses
from lampi_load.mqtt.devices import BrokerDrops, Devices, IdSlices
from lampi_load.mqtt.loop import raise_open_file_limit

logger = logging.getLogger("lampi_load.mqtt")


@events.init_command_line_parser.add_listener
def add_device_options(parser):
    group = parser.add_argument_group("LAMPI devices", "Used by loadtesting/mqtt_locustfile.py")
    group.add_argument("--mqtt-devices", type=int, default=10_000, help="Seeded fake devices to pick from")
    group.add_argument("--mqtt-device-start", type=int, default=0, help="Number of the first fake device")
    group.add_argument("--mqtt-profile", choices=sorted(model.PROFILES), default="normal", help="Usage profile")
    group.add_argument("--mqtt-timeout", type=float, default=10.0, help="Seconds until an unacknowledged op fails")
    group.add_argument(
        "--mqtt-source-addresses",
        default="auto",
        help="Local addresses to spread connections over, each good for ~28,000: auto (127.0.1.1-16 for a loopback "
        "broker, else the kernel's choice), none, or a list such as 127.0.1.1-127.0.1.8,127.0.2.1",
    )
    group.add_argument(
        "--mqtt-drops-acceptable",
        action="store_true",
        help="Messages the broker drops ($SYS/broker/publish/messages/dropped) are listed, not failures",
    )


@events.init.add_listener
def check_setup(environment, **kwargs):
    try:
        if environment.host:
            for broker in brokers(environment.host):
                source_addresses(environment.parsed_options.mqtt_source_addresses, broker.host)
        # Thousands of devices per process need paho's per-message costs cut (measured in mqtt-results.md).
        paho_speedups.install()
    except (ValueError, paho_speedups.PahoVersionError) as error:
        sys.exit(f"mqtt_locustfile: {error}")
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(IdSlices.MESSAGE, IdSlices.receive)
    if not isinstance(environment.runner, MasterRunner):
        limit = raise_open_file_limit()
        logger.info("open-file limit %d: this process can hold about %d devices", limit, limit - 100)


@events.test_start.add_listener
def hand_out_id_slices(environment, **kwargs):
    if isinstance(environment.runner, MasterRunner):
        IdSlices.hand_out(environment.runner)


@events.test_start.add_listener
def watch_broker(environment, **kwargs):
    # One watch per test, in the process that keeps the totals (the master, or the only process).
    if not isinstance(environment.runner, WorkerRunner) and environment.host:
        BrokerDrops.watch(environment)


@events.test_stop.add_listener
def close_devices(environment, **kwargs):
    Devices.close(environment)
    BrokerDrops.close(environment)


class LampiDevice(User):
    """One LAMPI's bridge to the cloud: connects, announces the lamp's state, then follows a person's use."""

    wait_time = constant(0)  # pauses happen in `use`, where a dropped connection can cut them short
    backoff = (Backoff.FIRST, Backoff.LONGEST)
    """First and longest pause (s) before reconnecting, after a failed connect or a dropped connection; each try
    doubles it, with jitter (lampi_load/mqtt/backoff.py)."""

    def on_start(self):
        options = self.environment.parsed_options
        self.profile = model.PROFILES[options.mqtt_profile]
        self.devices = Devices.of(self.environment)
        if not self.devices.free_numbers:
            if not self.devices.orphan:  # (an orphan worker said why once)
                logger.error("every device id is in use: raise --mqtt-devices")
            raise StopUser()
        self.number = self.devices.free_numbers.pop()
        self.device_id = fake_device_id(self.number)
        self.state_topic = model.topic(model.BRIDGE_STATE[0], self.device_id)
        self.connection = self.devices.loop.connection(f"{self.device_id}_broker", clean_session=False)
        self.connection.client.will_set(self.state_topic, "0", qos=1, retain=True)
        self.reconnect_backoff = Backoff(*self.backoff)
        self.come_online()

    def on_stop(self):
        if not hasattr(self, "connection"):
            return  # stopped before it had a device id
        if self.connection.connected.is_set():
            # A bridge stopped on purpose says so: the broker discards the will on a clean DISCONNECT.
            self.connection.client.publish(self.state_topic, "0", qos=1, retain=True)
        self.connection.disconnect()
        self.devices.loop.forget(self.connection)
        self.devices.free_numbers.append(self.number)

    def send(self, message, payload: bytes, client: str = "") -> None:
        template, qos, retain = message
        if self.connection.connected.is_set():
            self.connection.publish(template, model.topic(template, self.device_id, client), payload, qos, retain)

    def come_online(self, after_drop: bool = False):
        backoff = self.reconnect_backoff
        if after_drop:
            # A dropped device waits too: else a restarted broker meets every device at once, and two devices
            # holding one id kick each other off as fast as the broker accepts them.
            backoff.dropped(time.monotonic())
            gevent.sleep(backoff.pause())
        while not (self.connection.connect() and self.connection.connected.wait(self.devices.loop.timeout)):
            gevent.sleep(backoff.pause())
        backoff.connected(time.monotonic())
        self.send(model.BRIDGE_STATE, b"1")
        for client in model.LAMP_CLIENTS:
            self.send(model.CONNECTION_STATE, b"1", client)
        self.send(model.LAMP_CHANGED, model.lamp_state("lamp_service"))
        if not self.connection.session_present:
            topics = [(model.topic(template, self.device_id), qos) for template, qos in model.DOWNSTREAM]
            self.connection.subscribe("devices/[id]/lamp/+", topics)

    @task
    def use(self):
        profile = self.profile
        pause = random.expovariate(1 / profile.pause) if profile.random_pause else profile.pause
        if self.connection.down.wait(pause):
            self.come_online(after_drop=True)
            return
        phone = random.random() < profile.phone_share
        client = "lamp_bt_peripheral" if phone else "lamp_ui"
        if phone:
            self.send(model.BLUETOOTH, model.bluetooth_state(True))
        messages = 1
        if random.random() < profile.drag_share:
            messages = round(profile.drag_rate * random.uniform(*profile.drag_seconds))
        for _ in range(messages):
            self.send(model.LAMP_CHANGED, model.lamp_state(client))
            # A drag stops when the connection drops, so the device starts its backoff at once.
            if messages > 1 and self.connection.down.wait(1 / profile.drag_rate):
                break
        if phone:
            self.send(model.BLUETOOTH, model.bluetooth_state(False))
