"""The broker's own failures, as Locust sees failures: messages Mosquitto dropped while the devices saw nothing.

A client whose messages the broker accepted and then dropped (a subscriber's queue full, `max_queued_messages`)
is told nothing: its PUBACK came. Mosquitto counts them in `$SYS/broker/publish/messages/dropped`, a counter it
publishes every `sys_interval` seconds when it changed. A DropWatch follows it on its own connection and hands each
increase to `on_dropped(count)`, which the locustfile turns into one Locust failure per dropped message, so a level
during which the broker drops fails with the broker's own figure, and the search needs nothing of its own.
"""

import logging
import os
import time
from collections.abc import Callable

import gevent

from lampi_load.mqtt.backoff import Backoff
from lampi_load.mqtt.broker import BrokerAddress
from lampi_load.mqtt.loop import DeviceLoop
from lampi_load.mqtt.sys_log import DROPPED

logger = logging.getLogger("lampi_load.mqtt.broker_watch")


class DropWatch:
    """Follows the broker's dropped-message counter on its own event loop; reconnects (with backoff) if dropped.

    The first value after subscribing is retained history, not news: it is the baseline. A value below the last
    means the broker restarted (its counters start again at 0): all of it is new.
    """

    TOPIC = DROPPED

    def __init__(self, address: BrokerAddress, on_dropped: Callable[[int], None], *, timeout: float = 10.0):
        self.on_dropped = on_dropped
        self.last: int | None = None
        self.loop = DeviceLoop(address, self._report, timeout=timeout, connect_name="broker watch")
        self.connection = self.loop.connection(f"lampi-load-watch-{os.getpid()}-{id(self):x}")
        self.connection.client.on_message = self._on_message
        self._stopped = False
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> "DropWatch":
        """Connects and subscribes; raises ConnectionError when the broker does not answer within the timeout."""
        if not self._connect():
            raise ConnectionError(f"the broker watch got no CONNACK within {self.loop.timeout:g} s")
        self._greenlet = gevent.spawn(self._stay_connected)
        return self

    def close(self) -> None:
        self._stopped = True
        if self._greenlet is not None:
            self._greenlet.kill()
        self.loop.close(grace=1.0)

    def _connect(self) -> bool:
        connection = self.connection
        if not (connection.connect() and connection.connected.wait(self.loop.timeout)):
            return False
        connection.subscribe("$SYS dropped", [(DROPPED, 0)])
        return True

    def _stay_connected(self) -> None:
        backoff = Backoff()
        while not self._stopped:  # ends with close(); each pass waits for a drop and then at least a second
            if not self.connection.down.wait(60):
                continue
            backoff.dropped(time.monotonic())
            gevent.sleep(backoff.pause())
            if self._connect():
                backoff.connected(time.monotonic())

    def _on_message(self, client, userdata, message) -> None:
        try:
            value = int(float(message.payload))
        except ValueError:
            return
        last, self.last = self.last, value
        if last is None and message.retain:
            return  # the count before this run
        new = value - (last or 0) if last is None or value >= last else value
        if new > 0:
            self.on_dropped(new)

    def _report(self, request_type, name, start, length, exception) -> None:
        # The watch's own CONNECT and SUBSCRIBE are not the devices' traffic: not in Locust's table.
        if exception is not None:
            logger.warning("broker watch: %s %s failed: %s", request_type, name, exception)
