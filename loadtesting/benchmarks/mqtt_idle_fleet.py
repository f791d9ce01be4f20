"""What an idle fleet costs the generator: N devices of the normal profile in one Locust process, steady state.

    python loadtesting/benchmarks/mqtt_idle_fleet.py --devices 19800 --measure 30
Starts its own Mosquitto on free loopback ports, runs the real mqtt_locustfile.py (one process) until every device
is connected plus `--settle` s, then measures `--measure` s: the generator's and the broker's CPU (share of one
core, from /proc), and at the end Locust's failure count. Prints JSON. Optionally `--profile FILE` records the
measured window with py-spy (raw format, for flame graphs).
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "loadtesting")]
from lampi_load.mqtt.broker_process import cpu_seconds  # noqa: E402
from testing.mosquitto import Mosquitto  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--spawn-rate", type=int, default=500)
    parser.add_argument("--settle", type=float, default=15, help="seconds after the last connect before measuring")
    parser.add_argument("--measure", type=float, default=30)
    parser.add_argument("--profile", type=Path, help="py-spy raw output for the measured window")
    args = parser.parse_args()
    ramp = args.devices / args.spawn_rate
    run_time = int(ramp + args.settle + args.measure + 20)
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "broker") as broker:
        csv_prefix = Path(tmp) / "run"
        command = [str(BIN / "locust"), "-f", str(REPO / "loadtesting" / "mqtt_locustfile.py"), "--headless"]
        command += ["--host", f"mqtt://{broker.host}:{broker.port}", "-u", str(args.devices)]
        command += ["-r", str(args.spawn_rate), "-t", f"{run_time}s", "--mqtt-devices", str(args.devices)]
        command += ["--csv", str(csv_prefix), "--only-summary"]
        log = Path(tmp) / "locust.log"
        with log.open("w") as log_file:
            locust = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file, cwd=REPO)
        try:
            time.sleep(ramp + args.settle)
            start, generator0, broker0 = time.monotonic(), cpu_seconds(locust.pid), cpu_seconds(broker.process.pid)
            if args.profile:
                spy = [str(BIN / "py-spy"), "record", "-p", str(locust.pid), "-d", str(int(args.measure))]
                subprocess.run([*spy, "-r", "50", "-f", "raw", "-o", str(args.profile), "--nonblocking"], check=True)
            else:
                time.sleep(args.measure)
            elapsed = time.monotonic() - start
            generator = 100 * (cpu_seconds(locust.pid) - generator0) / elapsed
            broker_cpu = 100 * (cpu_seconds(broker.process.pid) - broker0) / elapsed
            connected = [line for line in log.read_text().splitlines() if "generator:" in line][-1:]
        finally:
            locust.wait(timeout=run_time + 120)
        with (csv_prefix.parent / "run_stats.csv").open(newline="") as handle:
            rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}
    total = rows[("", "Aggregated")]
    print(
        json.dumps(
            {
                "devices": args.devices,
                "generator_cpu_percent": round(generator, 1),
                "broker_cpu_percent": round(broker_cpu, 1),
                "requests": int(total["Request Count"]),
                "failures": int(total["Failure Count"]),
                "connects": int(rows[("CONNECT", "[id]_broker")]["Request Count"]),
                "last_generator_line": connected[0].split("generator: ", 1)[1] if connected else None,
                "load_average": os.getloadavg(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
