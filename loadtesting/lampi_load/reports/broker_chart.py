"""The broker over an MQTT search, as one chart: devices connected, messages/s, the broker's CPU and heap.

    python -m lampi_load.reports.broker_chart RESULTS_DIR
Reads `sys.jsonl` (Mosquitto's `$SYS` topics, `lampi_load.mqtt.sys_log`), `broker_cpu.jsonl` (the broker's CPU
seconds, `lampi_load.mqtt.broker_process.CpuRecorder`; absent when the broker was not a process on this machine)
and `verdict.json`'s moments; writes `broker.png` beside them, the three moments shaded as in `timeline.png`.
"""

import argparse
import json
import sys
from pathlib import Path

from lampi_load.mqtt.sys_log import COUNTERS, GAUGES, read
from lampi_load.reports.render import draw_panels


def rates(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Per-second rates between successive samples of a counter (a restart's drop to 0 is skipped)."""
    return [
        (t2, (v2 - v1) / (t2 - t1))
        for (t1, v1), (t2, v2) in zip(points, points[1:], strict=False)
        if t2 > t1 and v2 >= v1
    ]


def cpu_percent(path: Path) -> list[tuple[float, float]]:
    """The broker's share of one core (%) between successive CpuRecorder samples of one process."""
    if not path.exists():
        return []
    samples = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        (b["t"], 100 * (b["cpu_s"] - a["cpu_s"]) / (b["t"] - a["t"]))
        for a, b in zip(samples, samples[1:], strict=False)
        if a.get("pid") == b.get("pid") and b["t"] > a["t"]
    ]


def draw(results_dir: Path) -> Path:
    """Writes broker.png into `results_dir`; raises FileNotFoundError without sys.jsonl or verdict.json."""
    series = read(results_dir / "sys.jsonl")
    verdict = json.loads((results_dir / "verdict.json").read_text())
    moments = verdict.get("moments", {})
    start = verdict.get("started_at") or min((points[0][0] for points in series.values() if points), default=0.0)
    panels = [
        ("devices connected", [("clients", series.get(GAUGES["clients connected"], []))]),
        (
            "messages/s",
            [
                ("received", rates(series.get(COUNTERS["messages received/s"], []))),
                ("sent", rates(series.get(COUNTERS["messages sent/s"], []))),
            ],
        ),
        ("broker CPU (% of a core)", [("CPU", cpu_percent(results_dir / "broker_cpu.jsonl"))]),
        ("heap (MB)", [("heap", [(t, v / 1e6) for t, v in series.get(GAUGES["heap bytes"], [])])]),
    ]
    lines = [
        (label, [(name, [t - start for t, _ in points], [v for _, v in points]) for name, points in series])
        for label, series in panels
    ]
    path = results_dir / "broker.png"
    draw_panels(lines, moments, start, "seconds since the search started", path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="an MQTT search's results folder")
    args = parser.parse_args(argv)
    try:
        print(draw(args.results_dir))
    except FileNotFoundError as error:
        print(f"broker_chart: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
