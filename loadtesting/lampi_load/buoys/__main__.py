"""Fleet stress test: N devices x M messages x K measures over MQTT, then proof that every measure was stored.

    python -m lampi_load.buoys run --devices 30 --messages 100 --duration 100     # publish, then verify
    ./manage.py fleet-verify <run folder>/manifest.json                           # verify again later

Run it from loadtesting/ with `./manage.py fleet-sink` running against the same broker and database (the
LAMPI_MQTT_* and LAMPI_DB_* variables the site reads). `run` writes manifest.json (what was sent) under --out,
then runs the site's `manage.py fleet-verify` on it, which writes report.json (the proof) beside it, prints the
report, and exits 1 when any measure was lost.

Not Locust: this test is a fixed amount of work on a fixed schedule whose verdict is a comparison with the
database after the run, not a request rate held against response times. Locust's users, spawn rate and
stats table would all have to be worked around; one event loop with one paho client per device, plus the
manifest, is the whole test.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from lampi_load.buoys.publisher import WATER_QUALITY, BuoyPlan, run_fleet
from lampi_load.results import results_root

MANAGE = Path(__file__).resolve().parents[3] / "Web" / "lampisite" / "manage.py"


def verify(manifest: Path, settle: float) -> bool:
    """`manage.py fleet-verify`, the site's side of the proof, on this run's manifest; whether nothing was lost."""
    command = [sys.executable, str(MANAGE), "fleet-verify", str(manifest), "--settle", str(settle)]
    return subprocess.run(command).returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lampi_load.buoys", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="publish the fleet's messages, then manage.py fleet-verify (unless --no-verify)"
    )
    run.add_argument("--host", default=os.environ.get("LAMPI_MQTT_HOST", "127.0.0.1"), help="broker host")
    run.add_argument("--port", type=int, default=int(os.environ.get("LAMPI_MQTT_PORT", "1883")), help="broker port")
    run.add_argument("--devices", type=int, default=30, help="devices, one MQTT client each")
    run.add_argument("--messages", type=int, default=100, help="messages per device")
    run.add_argument("--measures", default=",".join(WATER_QUALITY), help="measure names per message (comma-separated)")
    run.add_argument("--duration", type=float, default=100.0, help="seconds over which messages are paced evenly")
    run.add_argument("--topic", default="aws/0/{device_id}/data/", help="topic template")
    run.add_argument("--qos", type=int, choices=[0, 1], default=1, help="publish QoS")
    run.add_argument("--prefix", default="buoy", help="device ids are <prefix>-<run>-<index>")
    run.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last PUBACKs")
    run.add_argument("--sys-wait", type=float, default=25.0, help="seconds to wait for two more $SYS passes")
    run.add_argument("--no-verify", action="store_true", help="only publish and write the manifest")
    run.add_argument("--settle", type=float, default=10.0, help="verify once storage stood still this long")
    run.add_argument("--out", type=Path, help="folder for manifest.json and report.json (default: a new run folder)")
    args = parser.parse_args(argv)

    if args.devices < 1 or args.messages < 1 or args.duration <= 0:
        parser.error("--devices and --messages must be 1 or more, --duration more than 0")
    measures = [name.strip() for name in args.measures.split(",") if name.strip()]
    plan = BuoyPlan(args.devices, args.messages, measures, args.duration, args.topic, args.qos, prefix=args.prefix)
    out = args.out or results_root() / f"fleet-{plan.run}"  # the plan's run id names the devices too
    out.mkdir(parents=True, exist_ok=True)
    manifest = run_fleet(args.host, args.port, plan, drain=args.drain, sys_wait=args.sys_wait)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(
        f"published {plan.devices * plan.messages} messages in {manifest['publisher']['seconds']} s; {out}", flush=True
    )
    if args.no_verify:
        return 0
    return 0 if verify(out / "manifest.json", args.settle) else 1


if __name__ == "__main__":
    sys.exit(main())
