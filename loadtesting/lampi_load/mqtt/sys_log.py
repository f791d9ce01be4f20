"""Broker health from Mosquitto's `$SYS/#` topics: record them for the length of a run, then summarise.

    python -m lampi_load.mqtt.sys_log --host mqtt://127.0.0.1:1883 --out sys.jsonl --duration 300
    python -m lampi_load.mqtt.sys_log --summary sys.jsonl
The log is JSON lines, `{"t": <epoch s>, "topic": ..., "value": ...}`, one per update (Mosquitto publishes
every `sys_interval` seconds, 10 by default; only the values that changed). Bridge-state topics under
`$SYS/broker/connection/` are devices, not broker health: they are left out.
"""

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from lampi_load.mqtt.broker import BrokerAddress

# Instantaneous values: the run's minimum, maximum and last.
GAUGES = {
    "clients connected": "$SYS/broker/clients/connected",
    "heap bytes": "$SYS/broker/heap/current",
    "stored messages": "$SYS/broker/store/messages/count",
    "retained messages": "$SYS/broker/retained messages/count",
    "subscriptions": "$SYS/broker/subscriptions/count",
}
# Counters since the broker started: per second between updates (mean and peak over the run).
COUNTERS = {
    "messages received/s": "$SYS/broker/messages/received",
    "messages sent/s": "$SYS/broker/messages/sent",
    "bytes received/s": "$SYS/broker/bytes/received",
    "bytes sent/s": "$SYS/broker/bytes/sent",
}
# Mosquitto's own one-minute moving averages, in messages per minute.
PER_MINUTE = {"messages received/s (Mosquitto 1 min avg)": "$SYS/broker/load/messages/received/1min"}
DROPPED = "$SYS/broker/publish/messages/dropped"
STOP = threading.Event()  # set by SIGTERM: a search stops the recording when its run ends


def record(address: BrokerAddress, out: Path, duration: float) -> int:
    """Writes every `$SYS` update received in `duration` seconds (or until SIGTERM) to `out`; returns how many."""
    count = 0
    with out.open("w") as log:

        def on_message(client, userdata, message):
            nonlocal count
            if not message.topic.startswith("$SYS/broker/connection/"):
                value = message.payload.decode(errors="replace")
                log.write(json.dumps({"t": round(time.time(), 3), "topic": message.topic, "value": value}) + "\n")
                count += 1

        subscribed = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport=address.transport)
        if address.transport == "websockets":
            client.ws_set_options(path=address.path)
        client.on_connect = lambda client, *args: client.subscribe("$SYS/#")
        client.on_subscribe = lambda *args: subscribed.set()
        client.on_message = on_message
        client.connect(address.host, address.port)
        client.loop_start()
        try:
            if not subscribed.wait(10):
                raise ConnectionError(f"no SUBACK from {address.host}:{address.port} within 10 s")
            STOP.wait(duration)
        finally:
            client.disconnect()
            client.loop_stop()
    return count


def read(path: Path, start: float = 0.0, end: float = float("inf")) -> dict[str, list[tuple[float, float]]]:
    """Numeric series per topic from a log, within [start, end]."""
    series: dict[str, list[tuple[float, float]]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        try:
            value = float(row["value"].split()[0])
        except (ValueError, IndexError):
            continue  # the version string and such
        if start <= row["t"] <= end:
            series.setdefault(row["topic"], []).append((row["t"], value))
    return series


def summarise(path: Path, start: float = 0.0, end: float = float("inf")) -> dict[str, dict | None]:
    """The figures that matter, each None when the broker did not report it."""
    series = read(path, start, end)
    summary: dict[str, dict | None] = {}
    for name, topic in GAUGES.items():
        values = [value for _, value in series.get(topic, [])]
        summary[name] = {"min": min(values), "max": max(values), "last": values[-1]} if values else None
    for name, topic in COUNTERS.items():
        points = series.get(topic, [])
        rates = [(v2 - v1) / (t2 - t1) for (t1, v1), (t2, v2) in zip(points, points[1:], strict=False) if t2 > t1]
        summary[name] = {"mean": sum(rates) / len(rates), "max": max(rates)} if rates else None
    for name, topic in PER_MINUTE.items():
        values = [value / 60 for _, value in series.get(topic, [])]
        summary[name] = {"min": min(values), "max": max(values), "last": values[-1]} if values else None
    dropped = [value for _, value in series.get(DROPPED, [])]
    # Mosquitto publishes a $SYS value only when it changes, and this one starts at 0: absent means none dropped.
    summary["publish dropped"] = {"total": dropped[-1] - dropped[0] if len(dropped) > 1 else (dropped or [0])[0]}
    return summary


def markdown(summary: dict[str, dict | None]) -> str:
    """The summary as a markdown table."""
    lines = ["| broker metric | figures |", "|---|---|"]
    for name, figures in summary.items():
        cells = ", ".join(f"{key} {value:,.1f}" for key, value in figures.items()) if figures else "not reported"
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host", default="mqtt://127.0.0.1:1883", help="broker: mqtt://HOST:PORT or ws://HOST:PORT/path"
    )
    parser.add_argument("--out", type=Path, help="JSON-lines file to write")
    parser.add_argument("--duration", type=float, default=60, help="seconds to record (default 60)")
    parser.add_argument("--summary", type=Path, help="only summarise this log")
    args = parser.parse_args(argv)
    if args.summary:
        print(markdown(summarise(args.summary)))
        return 0
    if not args.out:
        parser.error("--out is required when recording")
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    try:
        address = BrokerAddress.parse(args.host)
        count = record(address, args.out, args.duration)
    except (ValueError, OSError) as error:
        print(f"mqtt_sys: error: {error}", file=sys.stderr)
        return 2
    print(f"mqtt_sys: {count} updates in {args.out}")
    print(markdown(summarise(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
