"""`./manage.py fleet-verify MANIFEST`: proves a buoy fleet run's delivery against the database."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fleet.delivery import delivery_report, render, wait_for_storage


class Command(BaseCommand):
    help = (
        "Compares a buoy fleet run's manifest.json (what `python -m lampi_load.buoys run` sent) with the measures "
        "the sink stored: waits until storage stands still, writes report.json beside the manifest, prints the "
        "report, and fails when any measure was lost."
    )

    def add_arguments(self, parser):
        parser.add_argument("manifest", type=Path, help="the run's manifest.json")
        parser.add_argument("--settle", type=float, default=10.0, help="verify once storage stood still this long (s)")

    def handle(self, *args, manifest: Path, settle: float, **options):
        try:
            sent = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CommandError(f"cannot read the manifest {manifest}: {error}") from None
        if "device_ids" not in sent:
            raise CommandError(
                f"{manifest} is not a buoy fleet manifest (no device_ids): write one with lampi_load.buoys"
            )
        wait_for_storage(sent, settle)
        report = delivery_report(sent)
        (manifest.parent / "report.json").write_text(json.dumps(report, indent=1))
        self.stdout.write(render(report))
        if not report["ok"]:
            raise CommandError(f"{report['totals']['measures_lost']} measures lost (report.json lists them)")
