"""The proof: a buoy fleet's manifest (what was sent) against the database (what the sink stored), stage by stage.

The manifest is what `python -m lampi_load.buoys run` writes: its plan (devices, messages, measures, duration,
run, qos), the device ids, and the publisher's figures. `./manage.py fleet-verify MANIFEST` runs this.
"""

import statistics
import time
from collections import defaultdict
from types import SimpleNamespace

from django.db.models import Count, Max, Min

from fleet.models import Measurement, Rejected

# Lost, duplicated or out-of-order sequence numbers shown per device; the counts are always complete.
SHOWN = 20


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of `values` (all zero when empty), rounded to the millisecond: the publisher's own
    figures in the manifest have the same form (lampi_load.buoys.publisher, the other side of the manifest)."""
    if len(values) < 2:
        values = (values or [0.0]) * 2
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    figures = {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": max(values)}
    return {key: round(value, 3) for key, value in figures.items()}


def wait_for_storage(manifest: dict, settle: float, limit: float = 600.0) -> int:
    """Measures stored so far, once all arrived or the count stood still for `settle` s (at most `limit` s)."""
    plan = SimpleNamespace(**manifest["plan"])
    expected = plan.devices * plan.messages * len(plan.measures)
    measures = Measurement.objects.filter(device__in=manifest["device_ids"])
    started = changed = time.monotonic()
    last = -1
    while True:
        stored = measures.count()
        now = time.monotonic()
        if stored != last:
            last, changed = stored, now
        if stored >= expected or now - changed >= settle or now - started >= limit:
            return stored
        time.sleep(0.5)


def out_of_order(messages: list[dict]) -> list[int]:
    """Sequence numbers that reached the sink after a later one of the same device."""
    late, highest = [], -1
    for message in sorted(messages, key=lambda m: (m["received"], m["seq"])):
        if message["seq"] < highest:
            late.append(message["seq"])
        highest = max(highest, message["seq"])
    return late


def delivery_report(manifest: dict) -> dict:
    """Per device and in total: sent, stored, lost, duplicated, out of order; latencies; the limiting stage."""
    plan, publisher = SimpleNamespace(**manifest["plan"]), manifest["publisher"]
    per_message = len(plan.measures)
    ids = manifest["device_ids"]
    by_device = defaultdict(list)
    rows = (
        Measurement.objects.filter(device__in=ids)
        .values("device", "seq")
        .annotate(n=Count("id"), sent=Min("sent_at"), received=Min("received_at"), stored=Max("stored_at"))
        .order_by()
    )
    for row in rows:
        by_device[row["device"]].append(row)
    duplicates = defaultdict(list)
    for device, seq in Rejected.objects.filter(reason=Rejected.DUPLICATE, device__in=ids).values_list("device", "seq"):
        duplicates[device].append(seq)

    devices, latency, sink_lag, write_lag = {}, [], [], []
    for device in ids:
        messages = by_device[device]
        measures = {m["seq"]: m["n"] for m in messages if m["seq"] < plan.messages}
        lost = [seq for seq in range(plan.messages) if seq not in measures]
        incomplete = [seq for seq, n in measures.items() if n < per_message]
        late = out_of_order(messages)
        devices[device] = {
            "sent": plan.messages * per_message,
            "stored": sum(measures.values()),
            "lost": lost,
            "incomplete": incomplete,
            "duplicates": sorted(duplicates[device]),
            "out_of_order": late,
        }
        for m in messages:
            latency.append(m["stored"] - m["sent"])
            sink_lag.append(m["received"] - m["sent"])
            write_lag.append(m["stored"] - m["received"])

    sent = sum(d["sent"] for d in devices.values())
    stored = sum(d["stored"] for d in devices.values())
    last_stored = max((m["stored"] for messages in by_device.values() for m in messages), default=publisher["started"])
    took = publisher["seconds"]
    stages = {
        "publisher": {
            "target_s": plan.duration,
            "took_s": took,
            # Within 5 % (or half a second) of the schedule.
            "kept_pace": took <= plan.duration * 1.05 + 0.5,
            "lateness_s": publisher["lateness_s"],
            "puback_s": publisher["puback_s"],
            "unacknowledged": publisher["unacknowledged"],
            "disconnects": publisher["disconnects"],
        },
        "broker": {
            "dropped": publisher["dropped_after"] - publisher["dropped_before"],
            "dropped_current": publisher["dropped_current"],
        },
        "sink": {"received_minus_sent_s": percentiles(sink_lag)},
        "database": {"stored_minus_received_s": percentiles(write_lag)},
    }
    report = {
        "run": plan.run,
        "qos": plan.qos,
        "totals": {
            "devices": plan.devices,
            "messages_sent": plan.devices * plan.messages,
            "measures_sent": sent,
            "measures_stored": stored,
            "measures_lost": sent - stored,
            "messages_lost": sum(len(d["lost"]) for d in devices.values()),
            "messages_incomplete": sum(len(d["incomplete"]) for d in devices.values()),
            "duplicates": sum(len(d["duplicates"]) for d in devices.values()),
            "out_of_order": sum(len(d["out_of_order"]) for d in devices.values()),
            "malformed_during_run": Rejected.objects.filter(
                reason=Rejected.MALFORMED, received_at__gte=publisher["started"]
            ).count(),
        },
        "end_to_end_s": percentiles(latency),
        "throughput": {
            "publish_measures_per_s": round(sent / max(took, 1e-9)),
            "stored_measures_per_s": round(stored / max(last_stored - publisher["started"], 1e-9)),
            "drain_s": round(max(0.0, last_stored - publisher["finished"]), 3),
        },
        "stages": stages,
        "devices": devices,
    }
    report["limited_by"] = limiting_stage(stages)
    report["ok"] = report["totals"]["measures_lost"] == 0
    return report


def limiting_stage(stages: dict) -> str:
    """One sentence: which stage held the run back."""
    publisher = stages["publisher"]
    if not publisher["kept_pace"]:
        return f"publisher: took {publisher['took_s']} s for a {publisher['target_s']} s schedule"
    sink, database = stages["sink"]["received_minus_sent_s"], stages["database"]["stored_minus_received_s"]
    if stages["broker"]["dropped"]:
        return (
            f"broker: dropped {stages['broker']['dropped']} messages ($SYS/broker/publish/messages/dropped), "
            f"its queue for the sink full while the sink ran p99 {sink['p99']} s behind"
        )
    if sink["p99"] >= database["p99"]:
        return f"sink intake: p99 {sink['p99']} s from publish to receipt (broker queue and sink reading)"
    return f"database: p99 {database['p99']} s from receipt to the batch write (batching and write speed)"


def render(report: dict) -> str:
    """The report as text: totals, stages, then only the devices with something to say."""
    t, e, th, st = report["totals"], report["end_to_end_s"], report["throughput"], report["stages"]
    lines = [
        f"Fleet run {report['run']} (QoS {report['qos']}): {'OK, every measure stored' if report['ok'] else 'LOSS'}",
        f"  measures sent {t['measures_sent']}, stored {t['measures_stored']}, lost {t['measures_lost']}",
        f"  messages lost {t['messages_lost']}, incomplete {t['messages_incomplete']}, duplicates {t['duplicates']}, "
        f"out of order {t['out_of_order']}, malformed on the topic during the run {t['malformed_during_run']}",
        f"  end to end (publish -> stored) s: {fmt(e)}",
        f"  throughput: published {th['publish_measures_per_s']} measures/s, stored {th['stored_measures_per_s']} "
        f"measures/s, last write {th['drain_s']} s after the last publish",
        f"  publisher: {st['publisher']['took_s']} s for {st['publisher']['target_s']} s target, lateness s "
        f"{fmt(st['publisher']['lateness_s'])}, PUBACK s {fmt(st['publisher']['puback_s'])}, "
        f"{st['publisher']['unacknowledged']} unacknowledged, {st['publisher']['disconnects']} disconnects",
        f"  broker: {st['broker']['dropped']} dropped"
        + ("" if st["broker"]["dropped_current"] else " (no $SYS update after the drain: may be short)"),
        f"  sink (received - sent) s: {fmt(st['sink']['received_minus_sent_s'])}",
        f"  database (stored - received) s: {fmt(st['database']['stored_minus_received_s'])}",
        f"  limited by {report['limited_by']}",
    ]
    troubled = 0
    for device, d in report["devices"].items():
        problems = [
            f"{key.replace('_', ' ')} {len(d[key])}: {d[key][:SHOWN]}{' ...' if len(d[key]) > SHOWN else ''}"
            for key in ("lost", "incomplete", "duplicates", "out_of_order")
            if d[key]
        ]
        if problems:
            troubled += 1
            if troubled <= SHOWN:
                lines.append(f"  {device}: stored {d['stored']}/{d['sent']}; " + "; ".join(problems))
    if troubled > SHOWN:
        lines.append(f"  ... and {troubled - SHOWN} more devices with problems (report.json lists them all)")
    return "\n".join(lines)


def fmt(quantiles: dict) -> str:
    return " ".join(f"{key} {value}" for key, value in quantiles.items())
