"""One command for the MQTT hone-in search: checks the broker, runs Locust headless with the $SYS logger beside
it, writes the report.

    python -m lampi_load.runs.mqtt --host mqtt://127.0.0.1:1883 --time-limit 300
Everything after `--` goes to Locust unchanged (for example `-- --hone-hold 30 --processes 2`).
"""

import argparse
import ipaddress
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from lampi_load.mqtt import broker_process
from lampi_load.mqtt.broker import BrokerAddress, brokers
from lampi_load.mqtt.model import PROFILES
from lampi_load.mqtt.sys_log import DROPPED, markdown, read, summarise
from lampi_load.reports import broker_chart
from lampi_load.reports.render import render
from lampi_load.runs import locust_run

LOADTESTING = Path(__file__).resolve().parents[2]
REPO = LOADTESTING.parent
# Devices connect by the hundred: the probe reaches 10,000 in 50 s; each level ramps 4,000 devices in 20 s and
# holds 20 s.
HONE_DEFAULTS = ["--hone-spawn-rate", "200", "--hone-hold", "20"]


def preflight(address: BrokerAddress) -> None:
    """Raises ConnectionError, with one line, unless the broker answers a CONNECT within 5 s."""
    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport=address.transport)
    if address.transport == "websockets":
        client.ws_set_options(path=address.path)
    client.on_connect = lambda client, userdata, flags, reason_code, properties: connected.set()
    try:
        client.connect(address.host, address.port)
    except OSError as error:
        raise ConnectionError(f"cannot reach the broker at {address.host}:{address.port} ({error})") from None
    client.loop_start()
    try:
        if not connected.wait(5):
            raise ConnectionError(f"no CONNACK from {address.host}:{address.port} within 5 s")
    finally:
        client.disconnect()
        client.loop_stop()


def locust_command(args, results_dir: Path, extra: list[str]) -> list[str]:
    options = ["--mqtt-profile", args.profile, *HONE_DEFAULTS]
    if args.judge_throughput:
        # A level whose devices publish far less than the model says fails too (a broker silently slowing down).
        profile = PROFILES[args.profile]
        options += ["--hone-expected-rps-per-user", f"{profile.rate():.4f}"]
        options += ["--hone-expected-dispersion", f"{profile.dispersion():.1f}"]
    return locust_run.locust_command("mqtt_locustfile.py", args, results_dir, options, extra)


def broker_health(results_dir: Path) -> str:
    """A markdown section: the $SYS summary over each of the search's moments."""
    moments = json.loads((results_dir / "verdict.json").read_text()).get("moments", {})
    lines = ["", "## Broker health ($SYS) at the moments", ""]
    for moment, window in moments.items():
        summary = summarise(results_dir / "sys.jsonl", window["start"], window["end"])
        lines += [f"### {moment.replace('_', ' ')} ({window['users']} devices)", "", markdown(summary), ""]
    return "\n".join(lines)


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (so its broker process can be read from /proc)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def broker_limits(pid: int | None, results_dir: Path, brokers: int = 1) -> dict:
    """Writes broker.json: the (first) broker's process and limits, or why they are unknown, and how many brokers
    share the devices (each generator process takes one of them)."""
    found = {"pid": None, "why": "the broker is not a process on this machine"} if pid is None else {}
    if pid is not None:
        try:
            found = broker_process.limits(pid)
        except OSError as error:
            found = {"pid": pid, "why": f"cannot read /proc/{pid}: {error}"}
    found["brokers"] = brokers
    (results_dir / "broker.json").write_text(json.dumps(found, indent=2) + "\n")
    return found


def limit_reached(limits: dict, devices: int | float | None) -> str:
    """The lowest of the broker's limits a failing level of `devices` met (within 2%, less a few for its own
    listeners and the watches), or ""."""
    if devices is None:
        return ""
    candidates = [(f"max_connections {value:,}", value) for value in limits.get("max_connections", []) if value > 0]
    if "open_files" in limits:
        candidates.append((f"open-file limit {limits['open_files']['soft']:,}", limits["open_files"]["soft"]))
    met = [(value, name) for name, value in candidates if devices >= 0.98 * value - 10]
    return min(met)[1] if met else ""  # the lowest: the one met first


def last_before(points: list[tuple[float, float]], moment: float, default: float | None = None) -> float | None:
    """The value a $SYS series had at `moment`: its last update until then."""
    values = [value for t, value in points if t <= moment]
    return values[-1] if values else default


def broker_per_level(results_dir: Path, limits: dict) -> str:
    """A markdown section: the broker's CPU share, heap and drops at each judged level, and the limit that ended
    the search (if one did)."""
    verdict = json.loads((results_dir / "verdict.json").read_text())
    sys_log = results_dir / "sys.jsonl"
    series = read(sys_log) if sys_log.exists() else {}
    heap, clients = series.get("$SYS/broker/heap/current", []), series.get("$SYS/broker/clients/connected", [])
    dropped = series.get(DROPPED, [])
    lines = ["", "## The broker at each level", ""]
    if limits.get("pid") is None:
        lines += [f"Broker CPU and limits not recorded: {limits['why']}.", ""]
    else:
        files = limits.get("open_files", {"soft": "?", "hard": "?"})
        per_listener = limits.get("max_connections") or "none"
        shared = limits.get("brokers", 1)
        watched = (
            f" (the first of {shared} brokers: its figures below are for the devices it held, from its $SYS clients)"
            if shared > 1
            else ""
        )
        lines += [
            f"Broker process {limits['pid']}{watched}: open files {files['soft']} (hard {files['hard']}), "
            f"max_connections per listener {per_listener}.",
            "",
        ]
    lines += [
        "| devices | passed | broker CPU in the hold (% of a core) | broker CPU per device message | heap "
        "| heap per client "
        "| dropped |",
        "|---|---|---|---|---|---|---|",
    ]
    costs = {}
    hold = verdict.get("settings", {}).get("hold", 0)
    for level in verdict.get("levels", []):
        # Over the level's hold, as its requests/s: N devices steady, without the ramp's fewer devices and connects.
        since = max(level["start"], level["end"] - hold)
        cpu = broker_process.cpu_share(results_dir / "broker_cpu.jsonl", since, level["end"])
        level_heap, level_clients = last_before(heap, level["end"]), last_before(clients, level["end"])
        # The watched broker's share of the devices: all of them, or (several brokers) what its $SYS counts.
        share = 1.0 if limits.get("brokers", 1) == 1 else (level_clients / level["users"] if level_clients else None)
        per_client = level_heap / level_clients if level_heap and level_clients else None
        drops = last_before(dropped, level["end"], 0.0) - last_before(dropped, level["start"], 0.0)
        # µs of the broker's CPU per message the devices sent (their requests/s in the hold): it includes what the
        # broker does for each (deliveries to subscribers, retained state), which is what a projection needs.
        known = cpu is not None and level["rps"] and share
        per_message = cpu / 100 * 1e6 / (level["rps"] * share) if known else None
        costs[level["users"]] = (cpu, per_message, per_client, share)
        cells = [
            f"{level['users']:,}",
            "yes" if level["passed"] else "no",
            f"{cpu:.0f}" if cpu is not None else "?",
            f"{per_message:.0f} µs" if per_message is not None else ("-" if cpu is not None else "?"),
            f"{level_heap:,.0f} B" if level_heap else "?",
            f"{per_client:,.0f} B" if per_client else "?",
            f"{drops:,.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    best = verdict.get("max_users_without_error")
    cpu, per_message, per_client, share = costs.get(best, (None, None, None, None))
    if best and cpu and share:
        # Linear in devices at this profile's message rate: what the broker's core and memory would allow.
        memory = f"; its heap grows about {per_client / 1e3:.1f} kB per device" if per_client else ""
        each = f" ({per_message:.0f} µs per device message)" if per_message is not None else ""
        lines += [
            "",
            f"At {best * share:,.0f} devices the broker used {cpu:.0f}% of its core{each}: at this profile's rate its"
            f" core would be full near {best * share * 100 / cpu:,.0f} devices{memory}.",
        ]
    failing = verdict.get("failing_level")
    on_watched = None
    if failing is not None:
        _, _, _, share = costs.get(failing["users"], (None, None, None, None))
        on_watched = failing["users"] * share if share else None
    met = limit_reached(limits, on_watched)
    if met:
        lines += ["", f"**The search ended at the broker's {met}.**"]
    elif verdict.get("first_failing_users") is not None:
        reason = verdict.get("failure_reason") or "failures"
        lines += ["", f"No limit of the broker's was reached: the first failing level failed with {reason}."]
    return "\n".join(lines) + "\n"


def argument_parser() -> argparse.ArgumentParser:
    host = os.environ.get("LAMPI_MQTT_URL", "mqtt://127.0.0.1:1883")
    parser = locust_run.argument_parser(__doc__.splitlines()[0], host, "broker", 300, "mqtt")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="normal", help="device usage profile")
    parser.add_argument(
        "--judge-throughput",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also fail a level whose messages/s fall under 80%% of the model's rate, where its hold expects enough "
        "messages for that to be no accident (drags come in bursts: the normal profile needs about 12,400)",
    )
    return parser


def main(argv=None) -> int:
    argv, extra = locust_run.split_locust_args(argv)
    options = argument_parser()
    args = options.parse_args(argv)
    if args.time_limit <= 0:
        options.error("--time-limit must be positive")
    try:
        addresses = brokers(args.host)
        for address in addresses:
            preflight(address)
    except (ValueError, ConnectionError) as error:
        print(f"mqtt_search: error: {error}", file=sys.stderr)
        return 2

    results_dir, command = locust_run.start_run(
        "mqtt_search", "lampi_load.runs.mqtt", args, argv, extra, locust_command
    )
    sys_log = [
        sys.executable,
        "-m",
        "lampi_load.mqtt.sys_log",
        "--host",
        args.host.split(",")[0],  # the first broker's $SYS: the others' are alike
        "--out",
        str(results_dir / "sys.jsonl"),
    ]
    logger = subprocess.Popen([*sys_log, "--duration", str(args.time_limit + locust_run.GRACE)], cwd=LOADTESTING)
    address = addresses[0]  # the broker watched: its CPU, heap and limits
    pid = broker_process.listening_pid(address.port) if is_loopback(address.host) else None
    broker_limits(pid, results_dir, len(addresses))  # broker.json, which the report reads
    cpu = broker_process.CpuRecorder(address.port, results_dir / "broker_cpu.jsonl").start() if pid else None
    try:
        found = locust_run.run_search("mqtt_search", command, results_dir, args.time_limit)
    finally:
        logger.terminate()
        logger.wait(timeout=10)
        if cpu is not None:
            cpu.stop()
    if not found:
        return 1
    print(f"mqtt_search: report {write_report(results_dir)}")
    return 0


def write_report(results_dir: Path) -> Path:
    """report.md: the search's report, then the broker over time (broker.png), its $SYS health at the moments and
    (where broker.json was recorded) the broker at each level."""
    report = render(results_dir)
    broker_chart.draw(results_dir)
    with report.open("a") as handle:
        chart = "![devices, messages/s, broker CPU and heap over time, the moments shaded](broker.png)"
        handle.write(f"\n## The broker over time\n\n{chart}\n")
        handle.write(broker_health(results_dir))
        if (results_dir / "broker.json").exists():
            handle.write(broker_per_level(results_dir, json.loads((results_dir / "broker.json").read_text())))
    return report


if __name__ == "__main__":
    sys.exit(main())
