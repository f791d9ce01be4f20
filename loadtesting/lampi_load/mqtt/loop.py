"""Thousands of paho-mqtt clients on one event loop, inside a gevent process such as Locust's.

paho's socket callbacks (`on_socket_open`, `on_socket_register_write`, ...) keep every client's socket in one
epoll set, watched by gevent's hub as a single descriptor; one greenlet wakes when some socket is ready or some
client has bytes to send, calls `loop_read`/`loop_write` on those clients (writes batched: one `loop_write` a
pass for all that a device queued since the last) and `loop_misc` on all once a second. Once connected over TCP
a client's socket is a plain one (no gevent wrapper: epoll already says when it is ready), and paho's per-message
extras nobody here uses are skipped (a Condition per publish, a ReasonCode and Properties per QoS 0 write or
3.1.1 acknowledgement).
Each operation is reported once through `report(request_type, name, start, length, exception)`: CONNECT from
opening the TCP connection to CONNACK (failed without a CONNACK `timeout` s after the CONNECT was queued), PUBLISH
at the socket write (QoS 0), PUBACK (QoS 1) or PUBCOMP (QoS 2), SUBSCRIBE at SUBACK; any of them unanswered for
`timeout` s fails.
"""

import logging
import resource
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import gevent
import paho.mqtt.client as mqtt
import paho.mqtt.client as paho_client
from gevent.event import Event
from gevent.hub import get_hub
from gevent.monkey import get_original
from gevent.socket import socket as GeventSocket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

# Locust's monkey-patching removes select.epoll (gevent cannot make it cooperative): use the original.
Epoll, EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP = get_original(
    "select", ["epoll", "EPOLLIN", "EPOLLOUT", "EPOLLERR", "EPOLLHUP"]
)
PlainSocket = get_original("socket", "socket")
logger = logging.getLogger("lampi_load.mqtt.loop")
Report = Callable[[str, str, float, int, Exception | None], None]


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens: `mqtt://HOST:PORT`, `ws://HOST:PORT/path` or plain `HOST[:PORT]`."""

    transport: str
    host: str
    port: int
    path: str = "/mqtt"

    @classmethod
    def parse(cls, url: str) -> "BrokerAddress":
        url = (url or "").strip()
        if not url:
            raise ValueError("no broker address: pass --host mqtt://HOST:PORT (or ws://HOST:PORT/path)")
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        defaults = {"mqtt": 1883, "tcp": 1883, "ws": 80}
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in defaults or not parts.hostname or port == -1 or (parts.path and parts.scheme != "ws"):
            raise ValueError(f"bad broker address {url!r}: use mqtt://HOST:PORT, ws://HOST:PORT/path or HOST[:PORT]")
        transport = "websockets" if parts.scheme == "ws" else "tcp"
        return cls(transport, parts.hostname, port or defaults[parts.scheme], parts.path or "/mqtt")


def raise_open_file_limit() -> int:
    """Raises this process's open-file limit to the hard limit (one descriptor per connection); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


class UnwaitedCondition:
    """The condition paho makes for every publish (`MQTTMessageInfo`), for clients nobody waits on.

    A Fleet reports each message through its callbacks and never calls `wait_for_publish`; a real Condition per
    message was a tenth of the generator's CPU at QoS 1. Waiting is refused with a clear error: on the Fleet's one
    OS thread it could only ever block every connection of the process.
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
        raise RuntimeError("wait_for_publish() is not available in a process with a Fleet: use its report")


class PahoThreading:
    """What paho sees as `threading` once a Fleet exists in the process: C re-entrant locks, gevent's threads.

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


class FleetClient(mqtt.Client):
    """paho's client on a plain socket once connected over TCP.

    The connect itself goes through gevent's socket (it waits without blocking the process); after that the Fleet's
    epoll says when the socket is ready, so gevent's cooperative wrapper around every send and recv (three recv per
    PUBACK) is pure cost. WebSockets keep gevent's socket: paho's handshake blocks on it.
    """

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


class Connection:
    """One MQTT client driven by a Fleet; `publish` and `subscribe` are timed until the broker acknowledges."""

    def __init__(self, fleet: "Fleet", client_id: str, *, clean_session: bool = True, keepalive: int = 60):
        self.fleet = fleet
        self.client_id = client_id
        self.client = FleetClient(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            transport=fleet.address.transport,
        )
        if fleet.address.transport == "websockets":
            self.client.ws_set_options(path=fleet.address.path)
        # A LAMPI bridge's own window: at most 20 unacknowledged QoS>0 messages (mosquitto's bridge default).
        self.client.max_inflight_messages_set(20)
        self.client.connect_async(fleet.address.host, fleet.address.port, keepalive)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_acknowledged
        self.client.on_subscribe = self._on_subscribed
        self.client.on_socket_open = lambda client, userdata, sock: fleet._open(self, sock)
        self.client.on_socket_close = lambda client, userdata, sock: fleet._close(sock)
        self.client.on_socket_register_write = lambda client, userdata, sock: fleet._want_write(sock, True)
        self.client.on_socket_unregister_write = lambda client, userdata, sock: fleet._want_write(sock, False)
        self.connected = Event()
        self.down = Event()  # set while not connected, so a waiting device wakes up when its connection drops
        self.down.set()
        self.session_present = False
        self.closing = False
        self.inflight: dict[int, tuple[str, str, float, int]] = {}  # mid -> (request type, name, start, length)
        self.unwritten: deque[tuple[int, mqtt.MQTTMessageInfo]] = deque()  # QoS 0 publishes, in paho's send order
        self._connect_started: float | None = None

    # ------------------------------------------------------------------ operations
    def connect(self) -> bool:
        """Opens the socket and sends CONNECT; the CONNECT request is reported at CONNACK (or its timeout)."""
        self.closing = False
        self._connect_started = start = time.perf_counter()
        try:
            self.client.reconnect()
        except OSError as error:
            self._connect_started = None
            if error.errno == 24:  # EMFILE
                error = OSError(f"too many open files (limit {raise_open_file_limit()}): raise `ulimit -Hn`")
            self.fleet.report("CONNECT", self.fleet.connect_name, start, 0, error)
            return False
        self.fleet._deadline(self, "connect", start)
        return True

    def publish(self, name: str, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        """Publishes and reports under `name` when the broker has it (QoS 0: when the socket took it)."""
        start = time.perf_counter()
        info = self.client.publish(topic, payload, qos, retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.fleet.report("PUBLISH", name, start, 0, ConnectionError(mqtt.error_string(info.rc)))
            return
        self.inflight[info.mid] = ("PUBLISH", name, start, len(payload))
        self.fleet.inflight += 1
        self.fleet._deadline(self, info.mid, start)
        if qos == 0:
            self.unwritten.append((info.mid, info))

    def subscribe(self, name: str, topics: list[tuple[str, int]]) -> None:
        start = time.perf_counter()
        rc, mid = self.client.subscribe(topics)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self.fleet.report("SUBSCRIBE", name, start, 0, ConnectionError(mqtt.error_string(rc)))
            return
        self.inflight[mid] = ("SUBSCRIBE", name, start, 0)
        self.fleet.inflight += 1
        self.fleet._deadline(self, mid, start)

    def disconnect(self) -> None:
        """A clean DISCONNECT: the broker discards the last will."""
        self.closing = True
        if self.client.socket() is not None:
            self.client.disconnect()
            self.write()

    def write(self) -> None:
        """Sends what paho queued, then reports the QoS 0 messages that went out.

        For every QoS 0 write it tells `on_publish` about, paho builds a ReasonCode and a Properties object (about
        20 µs, a third of the CPU of a QoS 0 message): the callback is off while writing, and each message's own
        MQTTMessageInfo says whether it was sent. QoS 1 and 2 acknowledgements arrive in `loop_read`, with it on.
        """
        client = self.client
        client.on_publish = None
        try:
            client.loop_write()
        finally:
            client.on_publish = self._on_acknowledged
        self._report_written()

    def _report_written(self) -> None:
        unwritten = self.unwritten
        while unwritten and unwritten[0][1].is_published():
            self._on_acknowledged(self.client, None, unwritten.popleft()[0])

    # ------------------------------------------------------------------ paho callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        start, self._connect_started = self._connect_started, None
        error = ConnectionRefusedError(f"CONNACK {reason_code}") if reason_code.is_failure else None
        if start is not None:
            self.fleet.report("CONNECT", self.fleet.connect_name, start, 0, error)
        if error is None:
            self.session_present = flags.session_present
            self.down.clear()
            self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        was_connected = self.connected.is_set()
        self.connected.clear()
        # What went out before the connection closed (a clean DISCONNECT goes out last) is done; paho drops the rest,
        # and their deadlines report them.
        self._report_written()
        self.unwritten.clear()
        self.down.set()
        if not self.closing and was_connected:
            lost = ConnectionError(f"connection lost: {reason_code}")
            self.fleet.report("DISCONNECT", self.fleet.connect_name, time.perf_counter(), 0, lost)

    def _on_acknowledged(self, client, userdata, mid, reason_code=None, properties=None):
        entry = self.inflight.pop(mid, None)
        if entry is None:
            return  # already reported as timed out
        self.fleet.inflight -= 1
        request_type, name, start, length = entry
        error = None
        if reason_code is not None and reason_code.is_failure:
            error = RuntimeError(f"broker refused: {reason_code}")
        self.fleet.report(request_type, name, start, length, error)

    def _on_subscribed(self, client, userdata, mid, reason_codes, properties):
        entry = self.inflight.pop(mid, None)
        if entry is not None:
            self.fleet.inflight -= 1
            refused = [code for code in reason_codes if code.is_failure]
            error = RuntimeError(f"SUBACK refused: {refused}") if refused else None
            self.fleet.report("SUBSCRIBE", entry[1], entry[2], 0, error)

    def _on_ready(self, mask: int) -> None:
        if mask & (EPOLLIN | EPOLLERR | EPOLLHUP):
            self.client.loop_read()
        if mask & EPOLLOUT and self.client.socket() is not None:
            self.write()


class Fleet:
    """The one event loop of a process: every Connection's socket in one epoll set, served by one greenlet."""

    def __init__(self, address: BrokerAddress, report: Report, *, timeout: float = 10.0, connect_name: str = "connect"):
        self.address = address
        self.report = report
        self.timeout = timeout
        self.connect_name = connect_name
        self.connections: set[Connection] = set()
        self.inflight = 0
        self.slowest_pass = 0.0
        self._epoll = Epoll()
        self._by_fd: dict[int, Connection] = {}
        self._deadlines: deque = deque()
        self._to_write: set[Connection] = set()  # queued bytes, not yet tried
        self._polling_out: set[int] = set()  # fds whose socket was full: epoll tells when it drains
        self._wake = Event()
        self._watcher = get_hub().loop.io(self._epoll.fileno(), 1)
        self._watcher.start(self._wake.set)
        paho_client.threading = PahoThreading
        self._greenlet = gevent.spawn(self._run)

    def connection(self, client_id: str, **options) -> Connection:
        connection = Connection(self, client_id, **options)
        self.connections.add(connection)
        return connection

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)

    def close(self, grace: float = 2.0) -> None:
        """Disconnects every connection cleanly, waits up to `grace` s for the sockets to close, ends the loop."""
        for connection in list(self.connections):
            connection.disconnect()
        deadline = time.monotonic() + grace
        while self._by_fd and time.monotonic() < deadline:
            gevent.sleep(0.05)
        self._greenlet.kill()
        self._watcher.close()
        self._epoll.close()

    # ------------------------------------------------------------------ socket callbacks
    def _open(self, connection: Connection, sock) -> None:
        self._by_fd[sock.fileno()] = connection
        self._epoll.register(sock.fileno(), EPOLLIN)

    def _close(self, sock) -> None:
        fd = sock.fileno()
        self._polling_out.discard(fd)
        if self._by_fd.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    def _want_write(self, sock, write: bool) -> None:
        fd = sock.fileno()
        if write and fd in self._by_fd:
            self._to_write.add(self._by_fd[fd])
            self._wake.set()
        elif not write and fd in self._polling_out:
            self._polling_out.discard(fd)
            self._epoll.modify(fd, EPOLLIN)

    def _flush(self) -> None:
        """Writes what each client queued; a socket that is full is left to epoll to report writable."""
        connections, self._to_write = self._to_write, set()
        for connection in connections:
            client = connection.client
            if client.want_write():
                connection.write()
            sock = client.socket()
            if client.want_write() and sock is not None and sock.fileno() not in self._polling_out:
                self._polling_out.add(sock.fileno())
                self._epoll.modify(sock.fileno(), EPOLLIN | EPOLLOUT)

    def _deadline(self, connection: Connection, key, start: float) -> None:
        self._deadlines.append((start + self.timeout, connection, key, start))

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        next_misc = time.monotonic() + 1
        while True:
            self._wake.wait(max(0.0, next_misc - time.monotonic()))
            self._wake.clear()
            began = time.perf_counter()
            self._flush()
            for fd, mask in self._epoll.poll(0, len(self._by_fd) + 1):
                connection = self._by_fd.get(fd)
                if connection is not None:
                    connection._on_ready(mask)
            if time.monotonic() >= next_misc:
                next_misc = time.monotonic() + 1
                for connection in list(self.connections):
                    if connection.client.socket() is not None:
                        connection.client.loop_misc()
                self._expire(time.perf_counter())
            self.slowest_pass = max(self.slowest_pass, time.perf_counter() - began)
            gevent.sleep(0)  # let the device greenlets publish

    def _expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            _, connection, key, start = self._deadlines.popleft()
            if key == "connect":
                if connection._connect_started == start:
                    connection._connect_started = None
                    error = TimeoutError(f"no CONNACK within {self.timeout:g} s")
                    self.report("CONNECT", self.connect_name, start, 0, error)
                    connection.closing = True
                    connection.client.disconnect()
                continue
            entry = connection.inflight.get(key)
            if entry is not None and entry[2] == start and connection.client.socket() is not None:
                connection.client.loop_read()  # an acknowledgement that arrived but is not read yet is no timeout
                entry = connection.inflight.get(key)
            if entry is not None and entry[2] == start:
                del connection.inflight[key]
                self.inflight -= 1
                self.report(entry[0], entry[1], start, 0, TimeoutError(f"not acknowledged within {self.timeout:g} s"))

    def oldest_inflight_age(self) -> float:
        """Seconds the oldest unacknowledged operation has waited (0 when none)."""
        now = time.perf_counter()
        for _, connection, key, start in self._deadlines:
            entry = connection.inflight.get(key) if key != "connect" else None
            if entry is not None and entry[2] == start:
                return now - start
        return 0.0
