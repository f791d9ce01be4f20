"""The broker chart of an MQTT search, from its $SYS log and the broker's CPU samples."""

import json

from lampi_load.reports import broker_chart


def test_rates_and_cpu_share_from_the_raw_samples(tmp_path):
    assert broker_chart.rates([(0.0, 0.0), (10.0, 500.0), (20.0, 0.0), (30.0, 100.0)]) == [(10.0, 50.0), (30.0, 10.0)]
    samples = [
        {"t": 100.0, "pid": 7, "cpu_s": 1.0},
        {"t": 101.0, "pid": 7, "cpu_s": 1.25},
        {"t": 102.0, "pid": 8, "cpu_s": 0.1},  # restarted: not a negative share
        {"t": 104.0, "pid": 8, "cpu_s": 1.1},
    ]
    (tmp_path / "broker_cpu.jsonl").write_text("".join(json.dumps(sample) + "\n" for sample in samples))
    assert broker_chart.cpu_percent(tmp_path / "broker_cpu.jsonl") == [(101.0, 25.0), (104.0, 50.0)]
    assert broker_chart.cpu_percent(tmp_path / "absent.jsonl") == []


def test_the_chart_is_drawn_with_the_moments(tmp_path):
    rows = []
    for t in range(0, 60, 2):
        rows += [
            {"t": 1000.0 + t, "topic": "$SYS/broker/clients/connected", "value": str(t * 10)},
            {"t": 1000.0 + t, "topic": "$SYS/broker/messages/received", "value": str(t * t)},
            {"t": 1000.0 + t, "topic": "$SYS/broker/heap/current", "value": str(1e6 + t * 1e4)},
        ]
    (tmp_path / "sys.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    cpu = [{"t": 1000.0 + t, "pid": 1, "cpu_s": t * 0.3} for t in range(60)]
    (tmp_path / "broker_cpu.jsonl").write_text("".join(json.dumps(sample) + "\n" for sample in cpu))
    moments = {
        "minimal": {"users": 50, "start": 1000.0, "end": 1005.0},
        "max_without_error": {"users": 500, "start": 1030.0, "end": 1050.0},
    }
    (tmp_path / "verdict.json").write_text(json.dumps({"started_at": 1000.0, "moments": moments}))
    assert broker_chart.main([str(tmp_path)]) == 0
    assert (tmp_path / "broker.png").stat().st_size > 10_000


def test_a_folder_without_a_sys_log_is_one_line(tmp_path, capsys):
    assert broker_chart.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("broker_chart: error:")
