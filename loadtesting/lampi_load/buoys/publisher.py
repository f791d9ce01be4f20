"""Simulated buoys (water-quality sensors): one MQTT client each, all on one event loop (paho socket callbacks).

Messages are paced evenly over the target duration, device after device, so the broker sees a steady stream:
message k of D x M is device k mod D's number k div D, due at k x duration / (D x M) seconds.
"""

import contextlib
import json
import random
import secrets
import selectors
import statistics
import time
from dataclasses import asdict, dataclass, field

import paho.mqtt.client as mqtt

# The buoys' measures and the range each value is drawn from (uniformly).
WATER_QUALITY = {
    "dissolved_oxygen": (4.0, 12.0),
    "conductivity": (50.0, 1500.0),
    "liquid_level": (0.0, 5.0),
    "ph": (6.0, 9.0),
    "dissolved_solids": (30.0, 1000.0),
    "turbidity": (0.0, 50.0),
    "water_flow": (0.0, 3.0),
    "water_pressure": (1.0, 6.0),
    "temperature": (0.0, 30.0),
}
SYS_DROPPED = "$SYS/broker/publish/messages/dropped"
# Published on every $SYS pass ("<n> seconds"): dates the passes on the broker's clock.
SYS_UPTIME = "$SYS/broker/uptime"
# Seconds between housekeeping passes: keepalive pings (loop_misc) and reconnecting clients the broker dropped.
HOUSEKEEPING_EVERY = 0.5


@dataclass
class BuoyPlan:
    """What the fleet sends: the manifest's plan."""

    devices: int = 30
    messages: int = 100
    measures: list[str] = field(default_factory=lambda: list(WATER_QUALITY))
    duration: float = 100.0
    topic: str = "aws/0/{device_id}/data/"
    qos: int = 1
    run: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S-") + secrets.token_hex(2))
    prefix: str = "buoy"
    seed: int = 0

    def device_id(self, index: int) -> str:
        return f"{self.prefix}-{self.run}-{index:04d}"

    def device_ids(self) -> list[str]:
        return [self.device_id(index) for index in range(self.devices)]


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of `values` (all zero when empty), rounded to the millisecond."""
    if len(values) < 2:
        values = (values or [0.0]) * 2
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    figures = {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": max(values)}
    return {key: round(value, 3) for key, value in figures.items()}


class BuoyFleet:
    """Connects `plan.devices` clients plus a $SYS monitor, publishes the plan, and keeps the figures."""

    def __init__(self, host: str, port: int, plan: BuoyPlan):
        self.host, self.port, self.plan = host, port, plan
        self.selector = selectors.DefaultSelector()
        self.random = random.Random(plan.seed)
        self.ranges = [(name, WATER_QUALITY.get(name, (0.0, 100.0))) for name in plan.measures]
        self.clients = [self.client(plan.device_id(index)) for index in range(plan.devices)]
        self.monitor = self.client(f"{plan.prefix}-{plan.run}-sys")
        self.monitor.on_connect = lambda client, *_: client.subscribe([(SYS_DROPPED, 0), (SYS_UPTIME, 0)])
        self.monitor.on_message = self.on_sys
        self.sent_at: dict[tuple[int, int], float] = {}
        self.puback: list[float] = []
        self.lateness: list[float] = []
        self.dropped_seen: int | None = None
        self.dropped = 0
        self.uptime = 0
        self.broker_started = float("inf")
        self.failed = self.disconnects = 0
        self.closing = False

    def client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        # The broker is loopback-close: a device may have many QoS 1 messages awaiting PUBACK in a short run.
        client.max_inflight_messages_set(1000)
        client.on_socket_open = lambda client, _, sock: self.selector.register(sock, selectors.EVENT_READ, client)
        client.on_socket_close = lambda client, _, sock: self.selector.unregister(sock)
        client.on_socket_register_write = lambda client, _, sock: self.watch(sock, client, True)
        client.on_socket_unregister_write = lambda client, _, sock: self.watch(sock, client, False)
        client.on_publish = self.on_publish
        client.on_disconnect = self.on_disconnect
        return client

    def watch(self, sock, client: mqtt.Client, write: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        if sock in self.selector.get_map():
            self.selector.modify(sock, events, client)

    # ------------------------------------------------------------ callbacks
    def on_publish(self, client, userdata, mid, reason_code, properties):
        sent = self.sent_at.pop((id(client), mid), None)
        if sent is not None:
            self.puback.append(time.monotonic() - sent)

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        if reason_code != 0:
            self.disconnects += 1

    def on_sys(self, client, userdata, message):
        if message.topic == SYS_DROPPED:
            value = int(message.payload)
            if self.dropped_seen is not None:
                # A restarted broker counts from 0 again.
                self.dropped += value - self.dropped_seen if value >= self.dropped_seen else value
            self.dropped_seen = value
        else:
            uptime = int(message.payload.split()[0])
            if uptime < self.uptime:
                self.broker_started = float("inf")  # restarted
            self.uptime = uptime
            # The least delayed message gives the best estimate of when the broker started (to the second).
            self.broker_started = min(self.broker_started, time.time() - self.uptime)

    # ------------------------------------------------------------ loop
    def step(self, timeout: float) -> None:
        """Serves every socket that is ready within `timeout` s."""
        for key, events in self.selector.select(timeout):
            if events & selectors.EVENT_READ:
                key.data.loop_read()
            if events & selectors.EVENT_WRITE:
                key.data.loop_write()

    def housekeeping(self) -> None:
        for client in [*self.clients, self.monitor]:
            if client.socket() is None and not self.closing:
                # A broker still away refuses: the next pass tries again.
                with contextlib.suppress(OSError):
                    client.reconnect()
            else:
                client.loop_misc()

    def run_until(self, done, timeout: float) -> bool:
        """Runs the loop until `done()` or for `timeout` s; whether `done()` came true."""
        deadline = next_housekeeping = time.monotonic()
        deadline += timeout
        while not done():
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_EVERY
                self.housekeeping()
            self.step(min(0.05, deadline - now))
        return True

    def connect(self, timeout: float = 60.0) -> None:
        """Connects every client; RuntimeError if the broker does not accept them all within `timeout` s."""
        for client in [*self.clients, self.monitor]:
            client.connect(self.host, self.port, keepalive=60)
        everyone = [*self.clients, self.monitor]
        if not self.run_until(lambda: all(client.is_connected() for client in everyone), timeout):
            connected = sum(client.is_connected() for client in everyone)
            raise RuntimeError(f"only {connected} of {len(everyone)} clients connected within {timeout:.0f} s")

    def payload(self, index: int, seq: int) -> bytes:
        measures = {name: round(self.random.uniform(low, high), 3) for name, (low, high) in self.ranges}
        message = {"device": self.plan.device_id(index), "seq": seq, "sent": time.time(), "measures": measures}
        return json.dumps(message).encode()

    def publish(self) -> dict:
        """Publishes the plan on its schedule; the publisher's figures for the manifest."""
        plan = self.plan
        total = plan.devices * plan.messages
        interval = plan.duration / total
        started_wall, started = time.time(), time.monotonic()
        next_housekeeping = started + HOUSEKEEPING_EVERY
        dropped_before = self.dropped
        sent = 0
        while sent < total:
            now = time.monotonic()
            due = min(total, int((now - started) / interval) + 1)
            for k in range(sent, due):
                index, seq = k % plan.devices, k // plan.devices
                client = self.clients[index]
                topic = plan.topic.format(device_id=plan.device_id(index))
                info = client.publish(topic, self.payload(index, seq), plan.qos)
                if info.rc == mqtt.MQTT_ERR_SUCCESS or plan.qos:
                    # Without a connection paho keeps a QoS 1 message and sends it on reconnect.
                    self.sent_at[id(client), info.mid] = now
                else:
                    self.failed += 1
                self.lateness.append(now - started - k * interval)
            sent = max(sent, due)
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_EVERY
                self.housekeeping()
            self.step(max(0.0, min(0.01, started + sent * interval - time.monotonic())))
        finished_wall = time.time()
        return {
            "started": started_wall,
            "finished": finished_wall,
            "seconds": round(finished_wall - started_wall, 3),
            "lateness_s": percentiles(self.lateness),
            "failed": self.failed,
            "dropped_before": dropped_before,
        }

    def drain(self, timeout: float, sys_wait: float) -> dict:
        """Waits for the last PUBACKs and for a fresh $SYS pass; the rest of the publisher's figures."""
        acked = self.run_until(lambda: not self.sent_at, timeout)
        # A $SYS pass dated two seconds after the drain on the broker's clock, however late its messages come.
        drained = time.time() - self.broker_started + 2 if self.uptime else float("inf")
        sys_current = self.run_until(lambda: self.uptime >= drained, sys_wait)
        self.run_until(lambda: False, 0.2)  # the rest of that pass, dropped count included
        self.closing = True
        for client in [*self.clients, self.monitor]:
            client.disconnect()
        self.run_until(lambda: not self.selector.get_map(), 5)
        return {
            "unacknowledged": len(self.sent_at) if not acked else 0,
            "puback_s": percentiles(self.puback),
            "disconnects": self.disconnects,
            "dropped_after": self.dropped,
            # False when no full $SYS pass came within sys_wait: the dropped count may miss the last drops.
            "dropped_current": sys_current,
        }


def run_fleet(host: str, port: int, plan: BuoyPlan, *, drain: float = 60.0, sys_wait: float = 25.0) -> dict:
    """Connects, publishes and drains the fleet; the manifest of what it sent."""
    fleet = BuoyFleet(host, port, plan)
    fleet.connect()
    publisher = fleet.publish()
    publisher |= fleet.drain(drain, sys_wait)
    return {"plan": asdict(plan), "device_ids": plan.device_ids(), "publisher": publisher}
