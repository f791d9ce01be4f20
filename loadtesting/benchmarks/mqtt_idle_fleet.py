"""What an idle fleet costs the generator: N devices of the normal profile, steady state.

    python loadtesting/benchmarks/mqtt_idle_fleet.py --devices 19800 --measure 30
    python loadtesting/benchmarks/mqtt_idle_fleet.py --devices 100000 --brokers 6 --processes 6
Starts its own Mosquittos on free loopback ports, runs the real mqtt_locustfile.py (one process, or `--processes`
of them, process i on broker i) until every device is connected plus `--settle` s, then measures `--measure` s:
the generator's and the brokers' CPU (share of one core, all their processes, from /proc), and at the end Locust's
failure count. Prints JSON and keeps the raw output in a new run folder under loadtesting/output/ (`--out` to put
it elsewhere): result.json (the figures, the commit, the command and the machine), Locust's log and its CSV files.
Optionally `--profile FILE` records the measured window of a single process with py-spy (raw format, for flame
graphs).
"""

import argparse
import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "loadtesting")]
from lampi_load.mqtt.broker_process import cpu_seconds  # noqa: E402
from lampi_load.reports.provenance import children, provenance  # noqa: E402
from lampi_load.results import new_run_dir  # noqa: E402
from testing.mosquitto import Mosquitto  # noqa: E402
from testing.ports import free_port  # noqa: E402

BIN = Path(sys.executable).parent


def generator_lines(log: Path) -> dict[str, str]:
    """Each generator process's latest `generator:` line (logged every 10 s), by its process id."""
    latest = {}
    for line in log.read_text().splitlines():
        if "generator: " in line and "(process " in line:
            latest[line.rsplit("(process ", 1)[1].split(")")[0]] = line.split("generator: ", 1)[1]
    return latest


def connected_devices(log: Path, processes: int) -> int:
    """Devices connected over all processes (0 until every process has logged)."""
    latest = generator_lines(log)
    return sum(int(line.split()[0]) for line in latest.values()) if len(latest) >= processes else 0


def total_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--spawn-rate", type=int, default=500)
    parser.add_argument("--settle", type=float, default=15, help="seconds after the last connect before measuring")
    parser.add_argument("--measure", type=float, default=30)
    parser.add_argument("--brokers", type=int, default=1, help="Mosquittos, each on its own port")
    parser.add_argument("--processes", type=int, default=1, help="Locust processes (--processes)")
    parser.add_argument("--profile", type=Path, help="py-spy raw output for the measured window")
    parser.add_argument("--out", type=Path, help="folder for the raw output (default: a new run folder)")
    args = parser.parse_args()
    for name, good, advice in [
        ("devices", args.devices >= 1, "give at least 1"),
        ("spawn-rate", args.spawn_rate >= 1, "give at least 1 device per second"),
        ("settle", args.settle >= 0, "give seconds, 0 or more"),
        ("measure", args.measure > 0, "give seconds above 0"),
        ("brokers", args.brokers >= 1, "give at least 1"),
        # A process given no device never logs a `generator:` line, and the wait for every device would run out.
        ("processes", 1 <= args.processes <= args.devices, f"give 1 to --devices ({args.devices})"),
    ]:
        if not good:
            parser.error(f"--{name} {getattr(args, name.replace('-', '_')):g}: {advice}")
    out = args.out or new_run_dir(f"idle-fleet-{args.devices}")
    out.mkdir(parents=True, exist_ok=True)
    ramp = args.devices / args.spawn_rate
    run_time = int(3 * ramp + 60 + args.settle + args.measure + 20)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        brokers = [stack.enter_context(Mosquitto(Path(tmp) / f"broker{n}")) for n in range(args.brokers)]
        csv_prefix = Path(tmp) / "run"
        command = [str(BIN / "locust"), "-f", str(REPO / "loadtesting" / "mqtt_locustfile.py"), "--headless"]
        command += ["--host", ",".join(f"mqtt://{broker.host}:{broker.port}" for broker in brokers)]
        command += ["-u", str(args.devices), "-r", str(args.spawn_rate), "-t", f"{run_time}s"]
        command += ["--mqtt-devices", str(args.devices), "--csv", str(csv_prefix), "--only-summary"]
        if args.processes > 1:
            # A master port of its own (the forked workers connect to --master-port), never another run's.
            port = str(free_port())
            command += ["--processes", str(args.processes), "--master-bind-host", "127.0.0.1"]
            command += ["--master-bind-port", port, "--master-port", port]
        log = Path(tmp) / "locust.log"
        with log.open("w") as log_file:
            locust = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file, cwd=REPO)
        try:
            # Until every device is connected (a busy machine connects slower than asked), then the settling time.
            deadline = time.monotonic() + 3 * ramp + 60
            while connected_devices(log, args.processes) < args.devices and time.monotonic() < deadline:
                time.sleep(1)
            time.sleep(args.settle)
            generators = [locust.pid, *children(locust.pid)]
            broker_pids = [broker.process.pid for broker in brokers]
            start, generator0, broker0 = time.monotonic(), total_cpu(generators), total_cpu(broker_pids)
            if args.profile:
                spy = [str(BIN / "py-spy"), "record", "-p", str(locust.pid), "-d", str(int(args.measure))]
                subprocess.run([*spy, "-r", "50", "-f", "raw", "-o", str(args.profile), "--nonblocking"], check=True)
            else:
                time.sleep(args.measure)
            elapsed = time.monotonic() - start
            generator = 100 * (total_cpu(generators) - generator0) / elapsed
            broker_cpu = 100 * (total_cpu(broker_pids) - broker0) / elapsed
            broker_files = [len(os.listdir(f"/proc/{pid}/fd")) for pid in broker_pids]  # about its connections
            connected = list(generator_lines(log).values())
        finally:
            locust.terminate()  # Locust stops its users and writes its CSV on SIGTERM
            locust.wait(timeout=300)
        with (csv_prefix.parent / "run_stats.csv").open(newline="") as handle:
            rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}
        with (csv_prefix.parent / "run_failures.csv").open(newline="") as handle:
            failures = sorted(csv.DictReader(handle), key=lambda row: -int(row["Occurrences"]))[:5]
        for raw in [log, *csv_prefix.parent.glob("run_*.csv")]:
            shutil.copy(raw, out / raw.name)
    total = rows[("", "Aggregated")]
    result = {
        "devices": args.devices,
        "generator_cpu_percent": round(generator, 1),
        "broker_cpu_percent": round(broker_cpu, 1),
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "connects": int(rows[("CONNECT", "[id]_broker")]["Request Count"]),
        "top_failures": [f"{row['Occurrences']}x {row['Method']}: {row['Error']}" for row in failures],
        "brokers": args.brokers,
        "broker_open_files": broker_files,
        "processes": args.processes,
        "last_generator_lines": connected,
        "load_average": os.getloadavg(),
        **provenance(server_here=False),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    print(f"raw output in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
