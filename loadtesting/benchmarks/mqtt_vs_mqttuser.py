"""Our shared-event-loop MQTT client against Locust's MqttUser and bare paho, on one private broker, same run.

    .venv/bin/python loadtesting/benchmarks/mqtt_vs_mqttuser.py --seconds 20 --out loadtesting/output/bench
Starts Mosquitto on free loopback ports, pins it to CPU 1 and every load generator to CPU 0 (taskset), then:
throughput (acknowledged messages/s: 100 clients each keeping up to 20 QoS 1 (100 QoS 0) messages
unacknowledged, topping up every 0.1 s, the same 120-byte payload) for our client, MqttUser and bare paho; and
connections (N clients, one QoS 1 message every 10 s each) for ours and MqttUser, counting failures when nothing
is wrong with the broker (false ones).
"""

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "loadtesting")]
from lampi_load.mqtt.broker_process import cpu_seconds  # noqa: E402
from lampi_load.reports.provenance import git_state  # noqa: E402
from lampi_load.runs.locust_run import machine_description  # noqa: E402
from testing.mosquitto import Mosquitto  # noqa: E402

BENCH = Path(__file__).resolve().parent
LOCUST = str(Path(sys.executable).parent / "locust")
CONTENDERS = {"ours": "LoopFlood", "MqttUser": "MqttUserFlood"}


def machine() -> str:
    """The machine line, with this benchmark's own pinning and the load average as it starts."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"{machine_description(server_cpus='1', loadgen_cpus='0')}; load average {load}"


def locust_run(broker, user_class: str, users: int, rate: float, seconds: float, env: dict, csv_dir: Path) -> dict:
    """One headless Locust on CPU 0: totals by request kind, and the steady window's msgs/s and CPU per message.

    The window starts 3 s after all users are started and ends 1 s before the run does; Locust's start-up and
    ramp cost no CPU in it. The CPU share says how much of its core the generator got (the machine is shared).
    """
    prefix = csv_dir / f"{user_class}-{users}-{time.monotonic_ns()}"
    command = ["taskset", "-c", "0", LOCUST, "-f", str(BENCH / "mqtt_flood.py"), user_class, "--headless"]
    command += ["-u", str(users), "-r", str(rate), "-t", f"{seconds:.0f}s", "--host", "127.0.0.1"]
    command += ["--csv", str(prefix), "--only-summary", "--stop-timeout", "5"]
    environ = {**os.environ, "BENCH_PORT": str(broker.port), **env}
    process = subprocess.Popen(command, env=environ, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    window = []
    time.sleep(2 + users / rate + 3)  # Locust's start-up, the ramp, then steady state
    for pause in (0, seconds - users / rate - 4):
        time.sleep(pause)
        window.append((time.time(), cpu_seconds(process.pid)))
    process.wait(timeout=seconds + 120)
    result = {"ok": 0, "failed": 0, "connects": 0, "errors": []}
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                continue
            requests, failures = int(row["Request Count"]), int(row["Failure Count"])
            if "connect" in row["Name"]:
                result["connects"] += requests - failures
            elif "publish" in row["Name"] or row["Type"] == "PUBLISH":
                result["ok"] += requests - failures
            result["failed"] += failures
    with open(f"{prefix}_failures.csv", newline="") as handle:
        result["errors"] = [
            f"{row['Occurrences']}x {row['Name']}: {row['Error'][:90]}" for row in csv.DictReader(handle)
        ]
    with open(f"{prefix}_stats_history.csv", newline="") as handle:
        history = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]

    def ok_at(epoch: float) -> int:
        row = min(history, key=lambda row: abs(float(row["Timestamp"]) - epoch))
        return int(row["Total Request Count"]) - int(row["Total Failure Count"])

    (t1, cpu1), (t2, cpu2) = window
    messages = ok_at(t2) - ok_at(t1)
    result["rate"] = messages / (t2 - t1)
    result["cpu_us"] = (cpu2 - cpu1) / max(messages, 1) * 1e6
    result["cpu_share"] = (cpu2 - cpu1) / (t2 - t1)
    return result


def bare_run(broker, qos: int, clients: int, window: int, seconds: float) -> dict:
    """The bare paho publisher's msgs/s, CPU per message and CPU share over its measured window."""
    command = ["taskset", "-c", "0", sys.executable, str(BENCH / "mqtt_bare_paho.py"), "--port", str(broker.port)]
    command += ["--qos", str(qos), "--clients", str(clients), "--window", str(window), "--seconds", str(seconds)]
    output = subprocess.run(command, cwd=REPO, timeout=seconds + 60, capture_output=True, text=True, check=True)
    return json.loads(output.stdout)


def median_run(results: list[dict]) -> dict:
    """The median of each figure over rounds; failures summed."""
    median = {key: statistics.median(result[key] for result in results) for key in ("rate", "cpu_us", "cpu_share")}
    return {**median, "failed": sum(result.get("failed", 0) for result in results)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="length of each throughput case")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the throughput cases (median)")
    parser.add_argument("--clients", type=int, default=100, help="clients in the throughput cases")
    parser.add_argument("--connections", type=int, nargs="+", default=[3000, 10000], help="connection-case sizes")
    parser.add_argument("--spawn-rate", type=float, default=300, help="clients started per second (connections)")
    parser.add_argument("--hold", type=float, default=10, help="seconds all connections are held")
    parser.add_argument(
        "--cases", nargs="+", choices=["throughput", "connections"], default=["throughput", "connections"]
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument(
        "--out", type=Path, help="folder for the raw output: tables.md and runs.jsonl (every run of every round)"
    )
    args = parser.parse_args(argv)
    state = git_state()
    commit = f"{(state['commit'] or 'unknown')[:7]}{' (dirty)' if state['dirty'] else ''}"
    lines = [
        f"Machine: {machine()}",
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`",
        "",
        f"Commit: {commit}",
        "",
    ]
    raw: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "broker") as broker:
        subprocess.run(["taskset", "-pc", "1", str(broker.process.pid)], check=True, capture_output=True)
        lines += [
            "| QoS | generator | acked msgs/s | CPU share it got | CPU µs/msg | msgs/s per full core | "
            "x MqttUser | of bare paho | failures |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for qos in (1, 0) if "throughput" in args.cases else ():
            # paho's own window is 20 unacknowledged QoS>0 messages (deeper queues cost it per ack); QoS 0 is done at
            # the socket write, so a deeper queue keeps the socket busy between the 0.1 s naps of a flood.
            window = 20 if qos else 100
            env = {"BENCH_QOS": str(qos), "BENCH_WINDOW": str(window)}
            rounds: dict[str, list[dict]] = {name: [] for name in [*CONTENDERS, "bare paho"]}
            for _ in range(args.rounds):  # interleaved, so a neighbour's burst of CPU hits every contender alike
                for name, cls in CONTENDERS.items():
                    rounds[name].append(
                        locust_run(broker, cls, args.clients, args.clients, args.seconds, env, Path(tmp))
                    )
                    raw.append({"case": "throughput", "qos": qos, "generator": name, **rounds[name][-1]})
                rounds["bare paho"].append(bare_run(broker, qos, args.clients, window, args.seconds))
                raw.append({"case": "throughput", "qos": qos, "generator": "bare paho", **rounds["bare paho"][-1]})
            runs = {name: median_run(results) for name, results in rounds.items()}
            for name, run in runs.items():
                per_core = 1e6 / run["cpu_us"]
                lines.append(
                    f"| {qos} | {name} | {run['rate']:,.0f} | {run['cpu_share']:.0%} | {run['cpu_us']:.0f} | "
                    f"{per_core:,.0f} | {per_core * runs['MqttUser']['cpu_us'] / 1e6:.2f} | "
                    f"{per_core * runs['bare paho']['cpu_us'] / 1e6:.0%} | {run.get('failed', 0)} |"
                )
                print(lines[-1], flush=True)
        lines += [
            "",
            "| connections | contender | connected (CONNACK) | messages acknowledged | failures | "
            "failures / requests | top failure |",
            "|---|---|---|---|---|---|---|",
        ]
        for count in args.connections if "connections" in args.cases else ():
            seconds = count / args.spawn_rate + args.hold
            for name, cls in CONTENDERS.items():
                run = locust_run(broker, cls, count, args.spawn_rate, seconds, {"BENCH_PACED": "1"}, Path(tmp))
                raw.append({"case": "connections", "connections": count, "generator": name, **run})
                total = run["ok"] + run["connects"] + run["failed"]
                top = run["errors"][0] if run["errors"] else "-"
                lines.append(
                    f"| {count:,} | {name} | {run['connects']:,} | {run['ok']:,} | {run['failed']:,} | "
                    f"{run['failed'] / max(total, 1):.1%} | {top} |"
                )
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "tables.md").write_text(text)
        (args.out / "runs.jsonl").write_text("".join(json.dumps(record) + "\n" for record in raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
