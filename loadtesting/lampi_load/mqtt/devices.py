"""What the LAMPI devices of one Locust process share, kept on Locust's environment: the event loop, the device
ids not in use, a watch on the generator's own load, and (in the process that keeps the totals) a watch on the
messages the broker dropped."""

import logging
import os
import random
import time

import gevent
import paho.mqtt.client as mqtt
from locust.runners import WorkerRunner

from lampi_load.mqtt import paho_speedups
from lampi_load.mqtt.broker import brokers, source_addresses
from lampi_load.mqtt.broker_watch import DropWatch
from lampi_load.mqtt.loop import DeviceLoop

logger = logging.getLogger("lampi_load.mqtt")


class Devices:
    """What the devices of one process share: the event loop and the device ids not in use."""

    def __init__(self, environment):
        options = environment.parsed_options

        def report(request_type, name, start, length, exception):
            elapsed = (time.perf_counter() - start) * 1000
            environment.events.request.fire(
                request_type=request_type,
                name=name,
                response_time=elapsed,
                response_length=length,
                exception=exception,
                context={},
            )

        # One process: every id. A worker: the slice its master handed it at the test's start (IdSlices).
        index, slices = getattr(environment, "lampi_id_slice", (0, 1))
        self.orphan = isinstance(environment.runner, WorkerRunner) and not hasattr(environment, "lampi_id_slice")
        if self.orphan:
            # Every id is some other worker's: its devices would kick theirs off. It starts none.
            logger.error(
                "no device ids from the master (this worker joined after the test started): it starts no device"
            )
        # Several brokers: process i takes broker i (modulo their number).
        addresses = brokers(environment.host)
        address = addresses[index % len(addresses)]
        # The locustfile switches the speed-ups on (paho_speedups.install()); without them, paho's own client.
        client_class = paho_speedups.FastClient if paho_speedups.installed() else mqtt.Client
        self.loop = DeviceLoop(
            address,
            report,
            timeout=options.mqtt_timeout,
            connect_name="[id]_broker",
            client_class=client_class,
            source_addresses=source_addresses(options.mqtt_source_addresses, address.host),
        )
        first = options.mqtt_device_start
        # Picked without replacement: two connections with one client id would keep kicking each other off.
        self.free_numbers = [] if self.orphan else list(range(first + index, first + options.mqtt_devices, slices))
        random.shuffle(self.free_numbers)

    @classmethod
    def close(cls, environment) -> None:
        """Disconnects this process's devices and ends their loop (at the end of a test)."""
        devices = getattr(environment, "lampi_devices", None)
        if devices is not None:
            environment.lampi_devices = None
            devices.loop.close()

    @classmethod
    def of(cls, environment) -> "Devices":
        """This process's devices, made when the first device starts."""
        if getattr(environment, "lampi_devices", None) is None:
            environment.lampi_devices = cls(environment)
            gevent.spawn(watch_generator, environment, environment.lampi_devices)
        return environment.lampi_devices


class IdSlices:
    """The master hands each worker its own slice of the device ids at every test's start: worker k of n (in the
    order they connected) takes ids first+k, first+k+n, ... and broker k (modulo their number). The same for
    `--processes` children and for workers started by hand on other hosts, so two workers never hold one id (two
    connections with one client id kick each other off) and need no option of their own."""

    MESSAGE = "lampi_id_slice"

    @classmethod
    def hand_out(cls, runner) -> None:
        """On the master, before its spawn messages (a worker handles its messages in order)."""
        workers = runner.clients.ready + runner.clients.running + runner.clients.spawning
        workers.sort(key=lambda worker: runner.get_worker_index(worker.id))
        for position, worker in enumerate(workers):
            runner.send_message(cls.MESSAGE, {"index": position, "slices": len(workers)}, client_id=worker.id)

    @classmethod
    def receive(cls, environment, msg, **kwargs) -> None:
        """On a worker: keeps the slice for this test's devices (made when its first device starts)."""
        environment.lampi_id_slice = (msg.data["index"], msg.data["slices"])
        logger.info("device ids: slice %d of %d", *environment.lampi_id_slice)


class BrokerDrops:
    """Each message a broker dropped becomes one Locust request of type BROKER: a failure, or with
    `--mqtt-drops-acceptable` a success listed under its own name (flagged, not failed)."""

    FAILED = "messages dropped ($SYS)"
    ACCEPTED = "messages dropped ($SYS, accepted)"
    MOST_PER_UPDATE = 100_000
    """Events fired for one update at most (about 1 s of CPU): a level this far gone fails anyway."""

    @classmethod
    def watch(cls, environment) -> None:
        """Starts the watch for this test (afresh if a test starts again); a watch that cannot connect fails."""
        cls.close(environment)
        accepted = environment.parsed_options.mqtt_drops_acceptable

        def on_dropped(count: int) -> None:
            (logger.info if accepted else logger.warning)("the broker dropped %d messages", count)
            exception = None if accepted else BrokerDropped(f"the broker dropped messages ({DropWatch.TOPIC})")
            for _ in range(min(count, cls.MOST_PER_UPDATE)):
                environment.events.request.fire(
                    request_type="BROKER",
                    name=cls.ACCEPTED if accepted else cls.FAILED,
                    response_time=0,
                    response_length=0,
                    exception=exception,
                    context={},
                )

        environment.lampi_drop_watches = []
        try:
            for address in brokers(environment.host):
                environment.lampi_drop_watches.append(DropWatch(address, on_dropped).start())
        except ConnectionError as error:
            # Unwatched, a level could pass while the broker drops: that is a failure of its own.
            environment.events.request.fire(
                request_type="BROKER",
                name="drop watch",
                response_time=0,
                response_length=0,
                exception=error,
                context={},
            )

    @classmethod
    def close(cls, environment) -> None:
        watches, environment.lampi_drop_watches = getattr(environment, "lampi_drop_watches", []), []
        for watch in watches:
            watch.close()


class BrokerDropped(Exception):
    """The broker accepted a message and then dropped it (a subscriber's queue was full)."""


def watch_generator(environment, watched: Devices, every: float = 10.0) -> None:
    """Logs the generator's own load, so a slow generator is never mistaken for a slow broker."""
    while getattr(environment, "lampi_devices", None) is watched:
        gevent.sleep(every)
        loop = watched.loop
        cpu = environment.runner.current_cpu_usage
        oldest = loop.oldest_inflight_age()
        slowest = loop.take_slowest_pass()
        connected = sum(connection.connected.is_set() for connection in loop.connections)
        busy = cpu >= 90 or slowest > 0.1
        (logger.warning if busy else logger.info)(
            "generator: %d devices connected, %d unacknowledged (oldest %.1f s), slowest loop pass %.0f ms, "
            "CPU %.0f%% (process %d)%s",
            connected,
            loop.inflight(),
            oldest,
            slowest * 1000,
            cpu,
            os.getpid(),
            ": THE GENERATOR IS THE BOTTLENECK, add --processes" if busy else "",
        )
