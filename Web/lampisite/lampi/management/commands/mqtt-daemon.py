"""`./manage.py mqtt-daemon`: runs the site's MQTT daemon until interrupted."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from lampi.mqtt_daemon import MqttDaemon


class Terminated(BaseException):
    """SIGTERM, raised wherever the daemon is, as Ctrl-C raises KeyboardInterrupt (and, like it, no `except
    Exception` in paho's callbacks or Django's code takes it for an error of theirs)."""


def terminate(signum, frame):
    raise Terminated


class Command(BaseCommand):
    help = (
        "Listens to LAMPI bridges connecting to the broker, creates unknown devices under the parked user, "
        "and publishes each device's association state. Retries a broker that is down or goes away."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.MQTT_BROKER_HOST, help="broker host (LAMPI_MQTT_HOST)")
        parser.add_argument(
            "--port", type=int, default=settings.MQTT_BROKER_PORT, help="broker TCP port (LAMPI_MQTT_PORT)"
        )

    def handle(self, *args, host, port, **options):
        daemon = MqttDaemon(host, port)
        try:
            # SIGTERM (systemd, `make down`) ends the daemon as Ctrl-C does: by an exception, wherever it is. A
            # handler that only called stop() was lost when it ran before connect_async() or within a reconnect,
            # both of which reset paho's state: the daemon then ran on until killed.
            signal.signal(signal.SIGTERM, terminate)
            daemon.run()
        except (KeyboardInterrupt, Terminated):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one, while it says goodbye, is the same request
            daemon.stop()
