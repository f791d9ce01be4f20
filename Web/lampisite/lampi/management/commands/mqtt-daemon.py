"""`./manage.py mqtt-daemon`: runs the site's MQTT daemon until interrupted."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from lampi.mqtt_daemon import MqttDaemon


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
        # SIGTERM (systemd, `make down`) ends the loop cleanly, as Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda signum, frame: daemon.stop())
        try:
            daemon.run()
        except KeyboardInterrupt:
            daemon.stop()
