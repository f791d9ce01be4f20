"""`./manage.py fleet-sink`: stores the fleet's measures in the site's database until stopped."""

import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fleet.sink import FleetSink


class Command(BaseCommand):
    help = (
        "Subscribes to the fleet's topics with a persistent session and stores every measure in the database, "
        "in batches, acknowledging each message once it is committed. SIGTERM or Ctrl-C flushes and stops."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.MQTT_BROKER_HOST, help="broker host (LAMPI_MQTT_HOST)")
        parser.add_argument(
            "--port", type=int, default=settings.MQTT_BROKER_PORT, help="broker TCP port (LAMPI_MQTT_PORT)"
        )
        parser.add_argument("--topic", default="aws/0/+/data/", help="topic filter of the fleet's messages")
        parser.add_argument("--qos", type=int, choices=[0, 1], default=1, help="subscription QoS")
        parser.add_argument("--client-id", default="fleet_sink", help="fixed client id: names the broker session")
        parser.add_argument("--batch-size", type=int, default=500, help="measures per database write")
        parser.add_argument("--batch-wait", type=float, default=0.2, help="longest wait (s) before a write")
        parser.add_argument("--duration", type=float, help="stop after this many seconds")
        parser.add_argument("--idle-exit", type=float, help="stop after this many seconds without a message")

    def handle(self, *args, host, port, topic, qos, client_id, batch_size, batch_wait, duration, idle_exit, **options):
        if batch_size < 1 or batch_wait <= 0:
            raise CommandError("--batch-size must be 1 or more and --batch-wait more than 0 seconds")
        log = logging.getLogger("fleet")
        if not log.handlers:
            # The site's LOGGING configures the lampi logger only; the sink's progress belongs on stderr too.
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
        if settings.DEBUG:
            log.warning("DEBUG is on: every query is formatted and kept in memory; LAMPI_DEBUG=0 for long runs")
        sink = FleetSink(
            host, port, topic=topic, qos=qos, client_id=client_id, batch_size=batch_size, batch_wait=batch_wait
        )
        # SIGTERM (systemd, a test) stops as Ctrl-C does: the pending batch is written and acknowledged.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: sink.stop())
        sink.run(duration=duration, idle_exit=idle_exit)
