"""The cloud side of LAMPI's MQTT: learns of devices from their bridges and tells them who owns them.

A LAMPI's bridge publishes "1", its last will "0", on `$SYS/broker/connection/<id>_broker/state`.
A device never seen before is created under the parked user and told its association code; a known device
is told again whether it is associated, since its retained copy may predate a change.
"""

import logging
import re

import paho.mqtt.client as mqtt
from django.db import close_old_connections

from .models import DEVICE_ID_PATTERN, Lampi, get_parked_user
from .mqtt import associated_topic, association_payload

logger = logging.getLogger(__name__)

BRIDGE_STATE_TOPIC = "$SYS/broker/connection/+/state"
LAMP_CHANGED_TOPIC = "devices/+/lamp/changed"
BRIDGE_STATE_RE = re.compile(r"^\$SYS/broker/connection/(?P<device_id>[^/]+)_broker/state$")
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)


class MqttDaemon:
    """One paho client, reconnecting forever; `run()` blocks until `stop()` or Ctrl-C."""

    def __init__(self, host: str, port: int, *, client_id: str = "lampi_mqtt_daemon", keepalive: int = 30):
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        # Back off from 1 s to 30 s between attempts while the broker is away.
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self.on_connect
        self.client.on_connect_fail = self.on_connect_fail
        self.client.on_disconnect = self.on_disconnect
        self.client.message_callback_add(BRIDGE_STATE_TOPIC, self.on_bridge_state)
        self.client.message_callback_add(LAMP_CHANGED_TOPIC, self.on_lamp_changed)

    def run(self) -> None:
        logger.info("MQTT daemon connecting to %s:%s", self.host, self.port)
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_forever(retry_first_connection=True)

    def stop(self) -> None:
        self.client.disconnect()

    # ------------------------------------------------------------ connection
    def on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            logger.error("MQTT broker %s:%s refused the daemon: %s", self.host, self.port, reason_code)
            return
        logger.info("MQTT daemon connected to %s:%s", self.host, self.port)
        client.subscribe([(BRIDGE_STATE_TOPIC, 1), (LAMP_CHANGED_TOPIC, 1)])

    def on_connect_fail(self, client, userdata):
        logger.warning("MQTT broker %s:%s unreachable; retrying", self.host, self.port)

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        if reason_code != 0:
            logger.warning("MQTT broker %s:%s went away (%s); reconnecting", self.host, self.port, reason_code)

    # ------------------------------------------------------------ messages
    def on_bridge_state(self, client, userdata, message):
        match = BRIDGE_STATE_RE.match(message.topic)
        if not match or message.payload != b"1":
            return
        device_id = match["device_id"]
        if not DEVICE_ID_RE.match(device_id):
            logger.warning("ignoring bridge %r: not a 12-hex-digit device id", device_id)
            return
        lampi = self.device_connected(device_id)
        client.publish(associated_topic(device_id), association_payload(lampi), qos=2, retain=True)

    def on_lamp_changed(self, client, userdata, message):
        # The site keeps no lamp state: browsers subscribe to the device directly. Logged for tracing only.
        logger.debug("%s: %s", message.topic, message.payload[:200])

    @staticmethod
    def device_connected(device_id: str) -> Lampi:
        """The device's row, created under the parked user the first time its bridge connects."""
        # The daemon lives for weeks: drop database connections the server has since closed.
        close_old_connections()
        lampi, created = Lampi.objects.select_related("user").get_or_create(
            device_id=device_id, defaults={"user": get_parked_user()}
        )
        if created:
            logger.info("new device %s parked, association code %s", device_id, lampi.association_code[:6])
        return lampi
