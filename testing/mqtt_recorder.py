"""A real MQTT subscriber that records what it receives, for tests to wait on with a time bound."""

import threading
import time

import paho.mqtt.client as mqtt


class MqttRecorder:
    """Subscribes to `topics` and keeps every message; use as a context manager."""

    def __init__(self, host: str, port: int, topics: list[str], *, qos: int = 2):
        self.messages: list[mqtt.MQTTMessage] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._topics = [(topic, qos) for topic in topics]
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda client, *args: client.subscribe(self._topics)
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)

    def _on_message(self, client, userdata, message):
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait_for(self, predicate=lambda message: True, timeout: float = 10.0) -> mqtt.MQTTMessage:
        """The first message (past or future) matching `predicate`; AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.topic, m.payload[:80]) for m in self.messages]
                    raise AssertionError(f"no matching MQTT message within {timeout} s; saw {seen}")
                self._changed.wait(remaining)

    def __enter__(self) -> "MqttRecorder":
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("MQTT recorder could not subscribe within 10 s")
        return self

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()
