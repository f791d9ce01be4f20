"""Fleet benchmarks: each run gets a throwaway broker, SQLite database and `fleet-sink`, then the fleet command.

    .venv/bin/python loadtesting/benchmarks/fleet_bench.py target            # 30 x 100 x 9 published in 3 s
    .venv/bin/python loadtesting/benchmarks/fleet_bench.py thousand          # 1,000 x 100 x 9 at QoS 1
    .venv/bin/python loadtesting/benchmarks/fleet_bench.py search --qos 0    # largest fleet without loss

The search keeps the original test's pace per device (one message of 9 measures a second) and grows the fleet:
doubling from --start devices until a run loses a measure (or --cap), then bisecting down to a 10 % gap,
at most --probes runs. `--broker-queue` is Mosquitto's max_queued_messages, the backlog it keeps for a
subscriber before it drops: 1000 is Mosquitto's default, 0 means no limit. Every run's report.json stays
in <stamp>-fleet-bench/ under $LAMPI_RESULTS_DIR (else loadtesting/output/); one line per run is printed and
appended to runs.jsonl there.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "loadtesting")]

from lampi_load.results import new_run_dir  # noqa: E402
from testing.mosquitto import Mosquitto  # noqa: E402

MANAGE = REPO / "Web" / "lampisite" / "manage.py"


def start_broker(workdir: Path, queue: int) -> Mosquitto:
    """A broker keeping `queue` messages per subscriber; retried, as another process may take its free port."""
    for attempt in range(3):
        broker = Mosquitto(workdir / str(attempt))
        broker.config.write_text(broker.config.read_text() + f"max_queued_messages {queue}\n")
        try:
            return broker.start()
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def run_once(results: Path, name: str, args: argparse.Namespace, fleet_args: list[str]) -> dict:
    """One broker, database, sink and fleet run; the report's headline figures."""
    out = results / name
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        broker = start_broker(Path(tmp) / "mosquitto", args.broker_queue)
        env = dict(
            os.environ,
            LAMPI_DB_NAME=str(Path(tmp) / "fleet.sqlite3"),
            LAMPI_DEBUG="0",
            LAMPI_MQTT_HOST=broker.host,
            LAMPI_MQTT_PORT=str(broker.port),
            PYTHONPATH=str(REPO / "loadtesting"),
        )
        subprocess.run([sys.executable, MANAGE, "migrate", "-v0"], env=env, check=True, timeout=120)
        try:
            log = (Path(tmp) / "sink.log").open("w")
            sink = subprocess.Popen([sys.executable, MANAGE, "fleet-sink"], env=env, stderr=log)
            try:
                deadline = time.monotonic() + 30
                while "subscribed to" not in (Path(tmp) / "sink.log").read_text():
                    if time.monotonic() > deadline or sink.poll() is not None:
                        raise RuntimeError("fleet-sink did not subscribe within 30 s")
                    time.sleep(0.1)
                command = [sys.executable, "-m", "lampi_load.buoys", "run", "--out", str(out), "--sys-wait", "5"]
                started = time.monotonic()
                subprocess.run(command + fleet_args, env=env, stdout=subprocess.DEVNULL, timeout=3600)
                wall = time.monotonic() - started
            finally:
                sink.send_signal(signal.SIGTERM)
                sink.wait(60)
        finally:
            broker.stop()
    report = json.loads((out / "report.json").read_text())
    totals, stages = report["totals"], report["stages"]
    row = {
        "name": name,
        "command": "python -m lampi_load.buoys run " + " ".join(fleet_args),
        "broker_queue": args.broker_queue,
        "qos": report["qos"],
        "devices": totals["devices"],
        "measures_sent": totals["measures_sent"],
        "measures_lost": totals["measures_lost"],
        "duplicates": totals["duplicates"],
        "broker_dropped": stages["broker"]["dropped"],
        "publish_s": stages["publisher"]["took_s"],
        "kept_pace": stages["publisher"]["kept_pace"],
        "last_write_after_s": report["throughput"]["drain_s"],
        "stored_per_s": report["throughput"]["stored_measures_per_s"],
        "end_to_end_p50_s": report["end_to_end_s"]["p50"],
        "end_to_end_p99_s": report["end_to_end_s"]["p99"],
        "limited_by": report["limited_by"],
        "wall_s": round(wall, 1),
    }
    print(json.dumps(row), flush=True)
    with (results / "runs.jsonl").open("a") as runs:
        runs.write(json.dumps(row) + "\n")
    return row


def search(results: Path, args: argparse.Namespace) -> None:
    """Doubles, then bisects, the fleet at one message a second per device; prints the largest lossless."""
    best, worst, devices = 0, None, args.start
    for probe in range(args.probes):
        fleet_args = ["--devices", str(devices), "--messages", str(args.messages), "--duration", str(args.messages)]
        row = run_once(results, f"search-qos{args.qos}-{probe}-{devices}", args, fleet_args + ["--qos", str(args.qos)])
        if row["measures_lost"] == 0:
            best = devices
        else:
            worst = devices
        if worst is None:
            if devices >= args.cap:
                break
            devices = min(devices * 2, args.cap)
        elif worst - best <= max(1, worst // 10):
            break
        else:
            devices = (best + worst) // 2
    print(f"QoS {args.qos}: largest lossless fleet {best} devices; first loss at {worst or 'none up to the cap'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=["target", "thousand", "search"])
    parser.add_argument("--broker-queue", type=int, default=1000, help="Mosquitto max_queued_messages")
    parser.add_argument("--qos", type=int, choices=[0, 1], default=1)
    parser.add_argument("--duration", type=float, help="publishing seconds (target: 3, thousand: 100)")
    parser.add_argument("--start", type=int, default=500, help="search: first fleet size")
    parser.add_argument("--cap", type=int, default=8000, help="search: largest fleet tried")
    parser.add_argument("--messages", type=int, default=30, help="search: messages per device (= seconds)")
    parser.add_argument("--probes", type=int, default=8, help="search: most runs")
    args = parser.parse_args()
    results = new_run_dir("fleet-bench")
    qos = ["--qos", str(args.qos)]
    if args.scenario == "target":
        run_once(results, "target", args, ["--devices", "30", "--duration", str(args.duration or 3)] + qos)
    elif args.scenario == "thousand":
        run_once(results, "thousand", args, ["--devices", "1000", "--duration", str(args.duration or 100)] + qos)
    else:
        search(results, args)


if __name__ == "__main__":
    main()
