"""Small MQTT helpers the site shares: topic names and one-shot publishing from a web request."""

import json
import logging
import uuid

import paho.mqtt.client as mqtt
from django.conf import settings

logger = logging.getLogger(__name__)


def associated_topic(device_id: str) -> str:
    """Where the cloud tells a device whether a person owns it (QoS 2, retained)."""
    return f"devices/{device_id}/lamp/associated"


def association_payload(lampi) -> str:
    """The retained association message: the code to show while parked, else just `associated`."""
    if lampi.is_parked:
        return json.dumps({"associated": False, "code": lampi.association_code})
    return json.dumps({"associated": True})


def publish_once(topic: str, payload: str, *, qos: int = 2, retain: bool = True) -> bool:
    """Connects, publishes one message, waits for the broker's acknowledgement, disconnects.

    Returns False (and logs why) when the broker is unreachable or slow: callers keep their own state and
    the device learns it on its next connection, when the daemon republishes.
    """
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"lampi-web-{uuid.uuid4().hex[:12]}")
    timeout = settings.MQTT_PUBLISH_TIMEOUT
    try:
        client.connect(settings.MQTT_BROKER_HOST, settings.MQTT_BROKER_PORT, keepalive=int(timeout) + 5)
    except OSError as error:
        logger.warning(
            "MQTT broker %s:%s unreachable, %s not published: %s",
            settings.MQTT_BROKER_HOST,
            settings.MQTT_BROKER_PORT,
            topic,
            error,
        )
        return False
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=timeout)
        if not info.is_published():
            logger.warning("MQTT broker did not acknowledge %s within %.0f s", topic, timeout)
            return False
        return True
    except (RuntimeError, ValueError) as error:
        logger.warning("MQTT publish of %s failed: %s", topic, error)
        return False
    finally:
        client.disconnect()
        client.loop_stop()
