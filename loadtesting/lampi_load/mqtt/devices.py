"""What the LAMPI devices of one Locust process share, kept on Locust's environment: the event loop, the device
ids not in use, and a watch on the generator's own load."""

import logging
import random
import time

import gevent
import paho.mqtt.client as mqtt

from lampi_load.mqtt import paho_speedups
from lampi_load.mqtt.broker import BrokerAddress
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

        address = BrokerAddress.parse(environment.host)
        # The locustfile switches the speed-ups on (paho_speedups.install()); without them, paho's own client.
        client_class = paho_speedups.FastClient if paho_speedups.installed() else mqtt.Client
        self.loop = DeviceLoop(
            address, report, timeout=options.mqtt_timeout, connect_name="[id]_broker", client_class=client_class
        )
        slices = options.mqtt_id_slices or options.processes or 1
        index = max(getattr(environment.runner, "worker_index", 0), 0) % slices
        first = options.mqtt_device_start
        # Picked without replacement: two connections with one client id would keep kicking each other off.
        self.free_numbers = list(range(first + index, first + options.mqtt_devices, slices))
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
            "CPU %.0f%%%s",
            connected,
            loop.inflight(),
            oldest,
            slowest * 1000,
            cpu,
            ": THE GENERATOR IS THE BOTTLENECK, add --processes" if busy else "",
        )
