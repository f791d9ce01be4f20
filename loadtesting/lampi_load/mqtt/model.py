"""What one LAMPI sends to the cloud broker through its bridge, per loadtesting/mqtt-model.md.

Topics, payloads, QoS and retain as the device uses them, and two usage profiles (normal and worst) with the
message rate each implies, so the locustfile and the search agree on what a device should produce.
"""

import json
import random
from dataclasses import dataclass

# What each upstream message is: topic template, QoS, retain. Names in Locust's table are the templates.
BRIDGE_STATE = ("$SYS/broker/connection/[id]_broker/state", 1, True)
CONNECTION_STATE = ("devices/[id]/lamp/connection/[client]/state", 2, True)
LAMP_CHANGED = ("devices/[id]/lamp/changed", 1, True)
BLUETOOTH = ("devices/[id]/lamp/bluetooth", 0, False)
# What the cloud sends down, which the bridge subscribes to (its `in` topics).
DOWNSTREAM = [("devices/[id]/lamp/set_config", 1), ("devices/[id]/lamp/associated", 2)]
LAMP_CLIENTS = ("lamp_service", "lamp_ui", "lamp_bt_peripheral")


def topic(template: str, device_id: str, client: str = "") -> str:
    return template.replace("[id]", device_id).replace("[client]", client)


def lamp_state(client: str) -> bytes:
    """A `lamp/changed` payload as lamp_service writes it: floats at full precision, about 135 bytes."""
    state = {
        "color": {"h": random.random(), "s": random.random()},
        "brightness": random.random(),
        "on": random.random() < 0.9,
        "client": client,
    }
    return json.dumps(state).encode()


def bluetooth_state(connected: bool) -> bytes:
    """A `lamp/bluetooth` payload: the phone's connection and its signal strength."""
    return json.dumps({"connected": connected, "rssi": random.randint(-90, -40) if connected else None}).encode()


@dataclass(frozen=True)
class Profile:
    """How a person uses the lamp: one interaction after each pause, a tap or a slider drag."""

    pause: float
    """Mean seconds between interactions (exponentially distributed in `normal`, fixed in `worst`)."""
    random_pause: bool
    """Exponential pauses (people act independently) or fixed ones (everyone at once)."""
    drag_share: float
    """Fraction of interactions that drag a slider; the rest are taps (on/off), one message each."""
    drag_seconds: tuple[float, float]
    """A drag lasts uniformly between these many seconds."""
    drag_rate: float
    """`lamp/changed` messages per second while a finger moves the slider."""
    phone_share: float
    """Fraction of interactions made from the phone app: Bluetooth connects (and reports RSSI), then disconnects."""

    def messages_per_interaction(self) -> float:
        drag = self.drag_rate * sum(self.drag_seconds) / 2
        return self.drag_share * drag + (1 - self.drag_share) + 2 * self.phone_share

    def seconds_per_interaction(self) -> float:
        return self.pause + self.drag_share * sum(self.drag_seconds) / 2

    def rate(self) -> float:
        """Mean messages per second one device publishes in steady use (after its connect burst)."""
        return self.messages_per_interaction() / self.seconds_per_interaction()

    def dispersion(self) -> float:
        """Variance over mean of the number of messages a fleet publishes in a window.

        Interactions come at random, each a burst of N messages (a drag is 15-45): a compound Poisson count, whose
        variance over mean is E[N^2] / E[N], not the 1 of independent messages. A fixed pause (`worst`) makes the
        count more regular than that, so there this is an upper bound: the search judges fewer levels, never
        falsely more.
        """
        low, high = self.drag_seconds
        drag = self.drag_rate * (low + high) / 2
        drag_square = self.drag_rate**2 * ((low + high) ** 2 / 4 + (high - low) ** 2 / 12)
        taps = 1 - self.drag_share
        burst, burst_square = self.drag_share * drag + taps, self.drag_share * drag_square + taps
        bluetooth = 2 * self.phone_share  # a phone interaction adds two messages: E[(B + 2P)^2] = E[B^2] + 4p E[B] + 4p
        return (burst_square + 2 * bluetooth * burst + 2 * bluetooth) / (burst + bluetooth)


PROFILES = {
    # A busy evening: each lamp is touched every 5 minutes or so, most often a tap, sometimes a drag.
    "normal": Profile(pause=300, random_pause=True, drag_share=0.4, drag_seconds=(1, 3), drag_rate=15, phone_share=0.2),
    # Everyone drags a slider at once, lets go for a second, grabs it again.
    "worst": Profile(pause=1, random_pause=False, drag_share=1.0, drag_seconds=(2, 4), drag_rate=20, phone_share=0),
}
# Sent once per (re)connection: the bridge's "1", three connection states, the retained lamp state.
CONNECT_MESSAGES = 1 + len(LAMP_CLIENTS) + 1
