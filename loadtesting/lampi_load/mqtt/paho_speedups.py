"""paho-mqtt made cheaper for thousands of clients on one gevent thread: the only module that touches paho's
private parts. The MQTT locustfile switches it on with `install()`, which refuses a paho it was not written for.

What it changes, each measured in loadtesting/mqtt-results.md:
- `threading` as paho sees it: C re-entrant locks instead of gevent's pure-Python ones, and one shared
  Condition that is never waited on instead of a new one per publish (process-wide, from `install()` on).
- `FastClient`: a plain socket once connected over TCP (no gevent wrapper on every send and recv), and MQTT 3.1.1
  acknowledgements handled without building a ReasonCode and a Properties object each.
"""

import struct
import threading

import paho.mqtt
import paho.mqtt.client as mqtt
from gevent.monkey import get_original
from gevent.socket import socket as GeventSocket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

# The paho-mqtt releases whose private methods (`_create_socket_connection`, `_handle_pubackcomp`, the
# `_in_packet` and `_out_messages` fields, the module's `threading`) these overrides were read against and tested
# with. Another release may rename them: run loadtesting/tests/mqtt and benchmarks/mqtt_vs_mqttuser.py, then add it.
WRITTEN_FOR = ("2.2.0",)
PlainSocket = get_original("socket", "socket")


class PahoVersionError(RuntimeError):
    """The installed paho-mqtt is not one the speed-ups were written for."""


def check_version(version: str = paho.mqtt.__version__) -> None:
    """Raises PahoVersionError, with one line saying what to do, unless `version` is in WRITTEN_FOR."""
    if version not in WRITTEN_FOR:
        raise PahoVersionError(
            f"paho-mqtt {version} is installed, but lampi_load/mqtt/paho_speedups.py was written for "
            f"{', '.join(WRITTEN_FOR)}: install that (make setup) or check the overrides against {version}"
        )


class UnwaitedCondition:
    """The condition paho makes for every publish (`MQTTMessageInfo`), for clients nobody waits on.

    A DeviceLoop reports each message through its callbacks and never calls `wait_for_publish`; a real Condition
    per message was a tenth of the generator's CPU at QoS 1. Waiting is refused with a clear error: on the loop's
    one OS thread it could only ever block every connection of the process.
    """

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> bool:
        return False

    def notify(self, n: int = 1) -> None:
        pass

    def notify_all(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> bool:
        raise RuntimeError("wait_for_publish() is not available once paho_speedups is installed: use the report")


class PahoThreading:
    """What paho sees as `threading` once installed: C re-entrant locks, gevent's threads.

    paho takes several locks per message; gevent makes them pure Python, about a fifth of the CPU per message. All
    clients run in one OS thread and paho never yields while holding them (its sockets are non-blocking), so
    re-entrant C locks are correct here and cannot deadlock.
    """

    Lock = RLock = get_original("_thread", "RLock")
    Thread = threading.Thread
    _unwaited = UnwaitedCondition()

    @classmethod
    def Condition(cls):  # noqa: N802 (threading's name)
        return cls._unwaited


def install() -> None:
    """Checks the paho version, then gives paho the cheaper `threading` for the rest of the process."""
    check_version()
    mqtt.threading = PahoThreading


def installed() -> bool:
    """Whether `install()` ran in this process (then FastClient is the client to use)."""
    return mqtt.threading is PahoThreading


class FastClient(mqtt.Client):
    """paho's client on a plain socket once connected over TCP, and with cheap 3.1.1 acknowledgements.

    The connect itself goes through gevent's socket (it waits without blocking the process); after that the
    DeviceLoop's epoll says when the socket is ready, so gevent's cooperative wrapper around every send and recv
    (three recv per PUBACK) is pure cost. WebSockets keep gevent's socket: paho's handshake blocks on it.
    """

    def __init__(self, *args, **kwargs):
        check_version()
        super().__init__(*args, **kwargs)

    def _create_socket_connection(self):
        sock = super()._create_socket_connection()
        if self._transport != "tcp" or not isinstance(sock, GeventSocket):
            return sock
        return PlainSocket(fileno=sock.detach())

    # MQTT 3.1.1's PUBACK and PUBCOMP carry no reason code or properties: one shared "Success" pair for them all.
    _success = (ReasonCode(PacketTypes.PUBACK), Properties(PacketTypes.PUBACK))

    def _handle_pubackcomp(self, cmd):
        """A 3.1.1 acknowledgement is the message id alone, yet paho's decoder builds a ReasonCode and a Properties
        object for each (about 20 µs, a quarter of the CPU of a QoS 1 message); anything else goes to paho."""
        packet = self._in_packet["packet"]
        if self._protocol == mqtt.MQTTv5 or len(packet) != 2:
            return super()._handle_pubackcomp(cmd)
        (mid,) = struct.unpack("!H", packet)
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, *self._success)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
