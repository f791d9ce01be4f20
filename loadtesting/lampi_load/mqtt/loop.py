"""Thousands of paho-mqtt clients on one event loop (a DeviceLoop), inside a gevent process such as Locust's.

paho's socket callbacks (`on_socket_open`, `on_socket_register_write`, ...) keep every client's socket in one
epoll set, watched by gevent's hub as a single descriptor; one greenlet wakes when some socket is ready or some
client has bytes to send, calls `loop_read`/`loop_write` on those clients (writes batched: one `loop_write` a
pass for all that a device queued since the last) and `loop_misc` (paho's keepalive check) on a tenth of them
each second, so on each once every MISC_SLICES s. A QoS 0 write is
reported from its MQTTMessageInfo instead of paho's callback (which builds a ReasonCode and Properties per write).
The speed-ups that reach into paho's private parts are in paho_speedups.py: pass its FastClient as `client_class`
after `paho_speedups.install()`.
Each operation is reported once through `report(request_type, name, start, length, exception)`: CONNECT from
opening the TCP connection to CONNACK (failed without a CONNACK `timeout` s after the CONNECT was queued), PUBLISH
at the socket write (QoS 0), PUBACK (QoS 1) or PUBCOMP (QoS 2), SUBSCRIBE at SUBACK; any of them unanswered for
`timeout` s fails.
"""

import itertools
import logging
import resource
import time
from collections import deque
from collections.abc import Callable

import gevent
import paho.mqtt.client as mqtt
from gevent.event import Event
from gevent.hub import get_hub
from gevent.monkey import get_original

from lampi_load.mqtt.broker import BrokerAddress

# Locust's monkey-patching removes select.epoll (gevent cannot make it cooperative): use the original.
Epoll, EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP = get_original(
    "select", ["epoll", "EPOLLIN", "EPOLLOUT", "EPOLLERR", "EPOLLHUP"]
)
logger = logging.getLogger("lampi_load.mqtt.loop")
# paho's keepalive check (`loop_misc`, a PINGREQ once a connection was idle for its keepalive) on every connection
# each second was most of an idle fleet's cost (profiled with py-spy: 15% of the generator's CPU at 10,000 devices).
# Each connection is checked every MISC_SLICES s instead: its PINGREQ goes out at most that late, well within the
# 1.5 keepalives Mosquitto waits (a keepalive must be at least 2 * MISC_SLICES).
MISC_SLICES = 10
Report = Callable[[str, str, float, int, Exception | None], None]


def raise_open_file_limit() -> int:
    """Raises this process's open-file limit to the hard limit (one descriptor per connection); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


class Connection:
    """One MQTT client driven by a DeviceLoop; `publish` and `subscribe` are timed until the broker acknowledges.

    It owns its client and what it has in flight; the loop owns the sockets, the deadlines and the clock.
    """

    def __init__(self, loop: "DeviceLoop", client_id: str, *, clean_session: bool = True, keepalive: int = 60):
        if keepalive < 2 * MISC_SLICES:
            raise ValueError(f"keepalive {keepalive} s is too short for a check every {MISC_SLICES} s")
        self.loop = loop
        self.client_id = client_id
        self.client = loop.client_class(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            transport=loop.address.transport,
        )
        if loop.address.transport == "websockets":
            self.client.ws_set_options(path=loop.address.path)
        # A LAMPI bridge's own window: at most 20 unacknowledged QoS>0 messages (mosquitto's bridge default).
        self.client.max_inflight_messages_set(20)
        self.client.connect_async(loop.address.host, loop.address.port, keepalive, bind_address=loop.next_source())
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_acknowledged
        self.client.on_subscribe = self._on_subscribed
        self.client.on_socket_open = lambda client, userdata, sock: loop.watch(self, sock)
        self.client.on_socket_close = lambda client, userdata, sock: loop.unwatch(sock)
        self.client.on_socket_register_write = lambda client, userdata, sock: loop.want_write(sock, True)
        self.client.on_socket_unregister_write = lambda client, userdata, sock: loop.want_write(sock, False)
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
            self.loop.report("CONNECT", self.loop.connect_name, start, 0, error)
            return False
        self.loop.expect(self, "connect", start)
        return True

    def publish(self, name: str, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        """Publishes and reports under `name` when the broker has it (QoS 0: when the socket took it)."""
        start = time.perf_counter()
        info = self.client.publish(topic, payload, qos, retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.loop.report("PUBLISH", name, start, 0, ConnectionError(mqtt.error_string(info.rc)))
            return
        self.inflight[info.mid] = ("PUBLISH", name, start, len(payload))
        self.loop.expect(self, info.mid, start)
        if qos == 0:
            self.unwritten.append((info.mid, info))

    def subscribe(self, name: str, topics: list[tuple[str, int]]) -> None:
        start = time.perf_counter()
        rc, mid = self.client.subscribe(topics)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self.loop.report("SUBSCRIBE", name, start, 0, ConnectionError(mqtt.error_string(rc)))
            return
        self.inflight[mid] = ("SUBSCRIBE", name, start, 0)
        self.loop.expect(self, mid, start)

    def disconnect(self) -> None:
        """A clean DISCONNECT: the broker discards the last will. What is still unacknowledged is abandoned with the
        device, as Locust abandons a stopped user's request: never reported as a timeout 10 s later, inside
        whatever the next level of a search is."""
        self.closing = True
        if self.client.socket() is not None:
            self.client.disconnect()
            self.write()
        self.inflight.clear()

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
            self.loop.report("CONNECT", self.loop.connect_name, start, 0, error)
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
        start, self._connect_started = self._connect_started, None
        if start is not None and not self.closing:
            # Closed before its CONNACK: Mosquitto refuses this way past `max_connections` (and logs "denied").
            refused = ConnectionRefusedError(f"closed by the broker before CONNACK: {reason_code}")
            self.loop.report("CONNECT", self.loop.connect_name, start, 0, refused)
        elif not self.closing and was_connected:
            lost = ConnectionError(f"connection lost: {reason_code}")
            self.loop.report("DISCONNECT", self.loop.connect_name, time.perf_counter(), 0, lost)

    def _on_acknowledged(self, client, userdata, mid, reason_code=None, properties=None):
        entry = self.inflight.pop(mid, None)
        if entry is None:
            return  # already reported as timed out
        request_type, name, start, length = entry
        error = None
        if reason_code is not None and reason_code.is_failure:
            error = RuntimeError(f"broker refused: {reason_code}")
        self.loop.report(request_type, name, start, length, error)

    def _on_subscribed(self, client, userdata, mid, reason_codes, properties):
        entry = self.inflight.pop(mid, None)
        if entry is not None:
            refused = [code for code in reason_codes if code.is_failure]
            error = RuntimeError(f"SUBACK refused: {refused}") if refused else None
            self.loop.report("SUBSCRIBE", entry[1], entry[2], 0, error)

    # ------------------------------------------------------------------ called by the loop
    def serve(self, mask: int) -> None:
        """Reads and writes what epoll's `mask` says the socket is ready for."""
        if mask & (EPOLLIN | EPOLLERR | EPOLLHUP):
            self.client.loop_read()
        if mask & EPOLLOUT and self.client.socket() is not None:
            self.write()

    def expire(self, key, start: float) -> None:
        """The deadline of the operation `key` ("connect" or a message id) begun at `start` has passed: reports it
        failed unless it was answered meanwhile."""
        timeout = self.loop.timeout
        if key == "connect":
            if self._connect_started == start:
                self._connect_started = None
                self.loop.report(
                    "CONNECT", self.loop.connect_name, start, 0, TimeoutError(f"no CONNACK within {timeout:g} s")
                )
                self.closing = True
                self.client.disconnect()
            return
        entry = self.inflight.get(key)
        if entry is not None and entry[2] == start and self.client.socket() is not None:
            self.client.loop_read()  # an acknowledgement that arrived but is not read yet is no timeout
            entry = self.inflight.get(key)
        if entry is not None and entry[2] == start:
            del self.inflight[key]
            self.loop.report(entry[0], entry[1], start, 0, TimeoutError(f"not acknowledged within {timeout:g} s"))

    def waiting_since(self, key, start: float) -> bool:
        """Whether the operation `key` begun at `start` still waits for its answer."""
        entry = self.inflight.get(key) if key != "connect" else None
        return entry is not None and entry[2] == start


class DeviceLoop:
    """The one event loop of a process: every Connection's socket in one epoll set, served by one greenlet.

    `client_class` is paho's Client or a subclass (paho_speedups.FastClient); `report` is called once per operation;
    `source_addresses` spread the connections over several local addresses (past one address's ~28,000 ports).
    """

    def __init__(
        self,
        address: BrokerAddress,
        report: Report,
        *,
        timeout: float = 10.0,
        connect_name: str = "connect",
        client_class: type[mqtt.Client] = mqtt.Client,
        source_addresses: list[str] | None = None,
    ):
        self.address = address
        # Connections take the source addresses in turn ("": the kernel's choice), each keeping its own.
        self._sources = itertools.cycle(source_addresses or [""])
        self.report = report
        self.timeout = timeout
        self.connect_name = connect_name
        self.client_class = client_class
        self.connections: set[Connection] = set()
        self._misc_slices: list[set[Connection]] = [set() for _ in range(MISC_SLICES)]
        self._misc_turn = itertools.cycle(range(MISC_SLICES))
        self._slice_of: dict[Connection, set[Connection]] = {}
        self._slowest_pass = 0.0
        self._epoll = Epoll()
        self._by_fd: dict[int, Connection] = {}
        self._deadlines: deque = deque()
        self._to_write: set[Connection] = set()  # queued bytes, not yet tried
        self._polling_out: set[int] = set()  # fds whose socket was full: epoll tells when it drains
        self._wake = Event()
        self._watcher = get_hub().loop.io(self._epoll.fileno(), 1)
        self._watcher.start(self._wake.set)
        self._greenlet = gevent.spawn(self._run)

    def connection(self, client_id: str, **options) -> Connection:
        connection = Connection(self, client_id, **options)
        self.connections.add(connection)
        misc_slice = min(self._misc_slices, key=len)
        misc_slice.add(connection)
        self._slice_of[connection] = misc_slice
        return connection

    def next_source(self) -> str:
        """The local address the next connection binds to ("" for the kernel's choice)."""
        return next(self._sources)

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        self._slice_of.pop(connection, set()).discard(connection)

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

    def inflight(self) -> int:
        """Operations sent and not yet answered, over every connection."""
        return sum(len(connection.inflight) for connection in self.connections)

    def take_slowest_pass(self) -> float:
        """Seconds the slowest pass of the loop took since the last call."""
        slowest, self._slowest_pass = self._slowest_pass, 0.0
        return slowest

    # ------------------------------------------------------------------ called by the connections
    def watch(self, connection: Connection, sock) -> None:
        """paho opened `sock` for `connection`: epoll watches it for reading."""
        self._by_fd[sock.fileno()] = connection
        self._epoll.register(sock.fileno(), EPOLLIN)

    def unwatch(self, sock) -> None:
        """paho is closing `sock`: epoll forgets it."""
        fd = sock.fileno()
        self._polling_out.discard(fd)
        if self._by_fd.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    def want_write(self, sock, write: bool) -> None:
        """paho has bytes queued for `sock` (or none any more): the next pass writes them."""
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

    def expect(self, connection: Connection, key, start: float) -> None:
        """`connection` began operation `key` at `start`: it fails unless answered within the timeout."""
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
                    connection.serve(mask)
            if time.monotonic() >= next_misc:
                next_misc = time.monotonic() + 1
                for connection in list(self._misc_slices[next(self._misc_turn)]):
                    if connection.client.socket() is not None:
                        connection.client.loop_misc()
                self.expire(time.perf_counter())
            self._slowest_pass = max(self._slowest_pass, time.perf_counter() - began)
            gevent.sleep(0)  # let the device greenlets publish

    def expire(self, now: float) -> None:
        """Hands every deadline due by `now` to its connection."""
        while self._deadlines and self._deadlines[0][0] <= now:
            _, connection, key, start = self._deadlines.popleft()
            connection.expire(key, start)

    def oldest_inflight_age(self) -> float:
        """Seconds the oldest unacknowledged operation has waited (0 when none)."""
        now = time.perf_counter()
        for _, connection, key, start in self._deadlines:
            if connection.waiting_since(key, start):
                return now - start
        return 0.0
