"""The fleet's ingest sink: stores every measure published on the fleet's topics, in batches.

Delivery is at least once, end to end: the sink acknowledges a QoS 1 message (manual PUBACK) only after the
batch holding it is committed, and keeps a persistent session (fixed client id, clean start off, a session
expiry), so whatever the broker sent to a sink that died, or queued while it was away, arrives again. A copy
of a message already stored hits the unique (device, seq, name) constraint and is recorded as a duplicate.
The session is MQTT 5 because only there does the sink itself raise the broker's in-flight limit for it
(Receive Maximum): Mosquitto's default of 20 unacknowledged messages would cap a batching sink at 100 msg/s.
"""

import json
import logging
import time
from collections import Counter

import paho.mqtt.client as mqtt
from django.db import connection, transaction
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .models import Measurement, Rejected

logger = logging.getLogger(__name__)

# Seconds between progress lines in the log.
PROGRESS_EVERY = 5.0
# Seconds between attempts to reach a broker that is down.
RECONNECT_DELAY = 0.5


def parse(payload: bytes) -> tuple[str, int, float, dict[str, float]]:
    """(device, seq, sent, measures) of a fleet message; ValueError, KeyError or TypeError if it is not one."""
    data = json.loads(payload)
    device, seq, sent, measures = data["device"], data["seq"], data["sent"], data["measures"]
    if not isinstance(device, str) or not 0 < len(device) <= 64:
        raise ValueError(f"device must be a string of 1 to 64 characters, not {device!r:.70}")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError(f"seq must be a non-negative integer, not {seq!r:.30}")
    if not isinstance(sent, int | float) or isinstance(sent, bool):
        raise ValueError(f"sent must be a number of seconds, not {sent!r:.30}")
    if not isinstance(measures, dict) or not measures:
        raise ValueError("measures must be a non-empty object")
    for name, value in measures.items():
        if len(name) > 40 or not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"measure {name!r:.50} must be a name of up to 40 characters with a number")
    return device, seq, float(sent), measures


class RowCounter:
    """A database execute wrapper that adds up the rows each statement changed."""

    def __init__(self):
        self.rows = 0

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        self.rows += max(context["cursor"].rowcount, 0)
        return result


class FleetSink:
    """One paho client in a loop of its own: `run()` returns after `stop()`, `duration` or `idle_exit` s."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        topic: str = "aws/0/+/data/",
        qos: int = 1,
        client_id: str = "fleet_sink",
        batch_size: int = 500,
        batch_wait: float = 0.2,
        session_expiry: int = 86_400,
    ):
        self.host, self.port, self.topic, self.qos = host, port, topic, qos
        self.batch_size, self.batch_wait = batch_size, batch_wait
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_disconnect = self.on_disconnect
        self.client.on_message = self.on_message
        self.connect_properties = Properties(PacketTypes.CONNECT)
        self.connect_properties.SessionExpiryInterval = session_expiry
        self.connect_properties.ReceiveMaximum = 65535
        self.pending: dict[tuple[str, int], list[Measurement]] = {}
        self.pending_rows = 0
        self.rejected: list[Rejected] = []
        self.acks: list[int] = []
        self.oldest = 0.0
        self.last_message = time.monotonic()
        self.counts = Counter()
        self.running = False
        self.subscribed = False

    # ------------------------------------------------------------ MQTT
    def on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            logger.error("broker %s:%s refused the sink: %s", self.host, self.port, reason_code)
            return
        logger.info("connected to %s:%s (session present: %s)", self.host, self.port, flags.session_present)
        client.subscribe(self.topic, qos=self.qos)

    def on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subscribed = True
        logger.info("subscribed to %s at QoS %s", self.topic, reason_codes[0].value)

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        # Message ids belong to a connection: the broker resends what was unacknowledged on the next one.
        self.acks.clear()
        if self.running:
            logger.warning("broker %s:%s went away (%s); reconnecting", self.host, self.port, reason_code)

    def on_message(self, client, userdata, message):
        received = time.time()
        self.last_message = time.monotonic()
        self.counts["received"] += 1
        if message.qos:
            self.acks.append(message.mid)
        if not self.pending and not self.rejected:
            self.oldest = self.last_message
        try:
            device, seq, sent, measures = parse(message.payload)
        except (ValueError, KeyError, TypeError) as error:
            self.counts["malformed"] += 1
            logger.warning("malformed message on %s: %s: %s", message.topic, type(error).__name__, error)
            self.rejected.append(self.reject(Rejected.MALFORMED, message, received, detail=f"{error}"[:200]))
        else:
            if (device, seq) in self.pending:
                self.counts["duplicates"] += 1
                self.rejected.append(self.reject(Rejected.DUPLICATE, message, received, device, seq))
            else:
                self.pending[device, seq] = [
                    Measurement(device=device, seq=seq, name=name, value=value, sent_at=sent, received_at=received)
                    for name, value in measures.items()
                ]
                self.pending_rows += len(measures)
        if self.pending_rows >= self.batch_size:
            self.flush()

    @staticmethod
    def reject(reason, message, received, device="", seq=None, detail=""):
        return Rejected(
            reason=reason, topic=message.topic[:200], device=device, seq=seq, detail=detail, received_at=received
        )

    # ------------------------------------------------------------ database
    def flush(self) -> None:
        """Writes the pending measures and rejections in one transaction, then acknowledges their messages."""
        if self.pending or self.rejected:
            stored_at = time.time()
            rows = [row for rows in self.pending.values() for row in rows]
            for row in rows:
                row.stored_at = stored_at
            inserted = RowCounter()
            with transaction.atomic():
                with connection.execute_wrapper(inserted):
                    Measurement.objects.bulk_create(rows, ignore_conflicts=True)
                redelivered = self.find_duplicates(stored_at) if inserted.rows < len(rows) else 0
                Rejected.objects.bulk_create(self.rejected)
            self.counts["stored"] += inserted.rows
            self.counts["messages"] += len(self.pending) - redelivered
            self.counts["duplicates"] += redelivered
            self.pending.clear()
            self.pending_rows = 0
            self.rejected.clear()
        for mid in self.acks:
            self.client.ack(mid, 1)
        self.acks.clear()

    def find_duplicates(self, stored_at: float) -> int:
        """Records the pending messages stored by an earlier batch (redelivered copies) as duplicates."""
        fresh = set(Measurement.objects.filter(stored_at=stored_at).values_list("device", "seq").distinct())
        redelivered = self.pending.keys() - fresh
        for device, seq in redelivered:
            received = self.pending[device, seq][0].received_at
            self.rejected.append(
                Rejected(reason=Rejected.DUPLICATE, topic="", device=device, seq=seq, received_at=received)
            )
        return len(redelivered)

    # ------------------------------------------------------------ loop
    def run(self, *, duration: float | None = None, idle_exit: float | None = None) -> Counter:
        """Stores messages until `stop()`, for at most `duration` s, or until `idle_exit` s without a message."""
        if connection.vendor == "sqlite":
            # Readers (the verify step) do not block the writer, and commits cost one fsync less.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
        self.client.connect_async(self.host, self.port, clean_start=False, properties=self.connect_properties)
        self.running = True
        started = self.last_message = next_progress = time.monotonic()
        next_connect = 0.0
        while self.running:
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                break
            if idle_exit is not None and self.subscribed and now - self.last_message >= idle_exit:
                logger.info("no message for %.0f s: stopping", idle_exit)
                break
            if self.client.socket() is None and now >= next_connect:
                next_connect = now + RECONNECT_DELAY
                try:
                    self.client.reconnect()
                except OSError as error:
                    logger.warning("broker %s:%s unreachable (%s); retrying", self.host, self.port, error)
            if self.client.socket() is not None:
                self.client.loop(timeout=min(self.batch_wait, 0.05))
            else:
                time.sleep(0.05)
            if (self.pending or self.rejected) and time.monotonic() - self.oldest >= self.batch_wait:
                self.flush()
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY
                logger.info("progress: %s", self.summary())
        self.running = False
        self.flush()
        self.client.disconnect()
        logger.info("stopped: %s", self.summary())
        return self.counts

    def stop(self) -> None:
        """Ends `run()` after the current step; it flushes and acknowledges before returning."""
        self.running = False

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['received']} messages received, {c['messages']} stored ({c['stored']} measures), "
            f"{c['duplicates']} duplicates, {c['malformed']} malformed, {self.pending_rows} measures pending"
        )
