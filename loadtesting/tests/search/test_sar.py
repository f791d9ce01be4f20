"""sysstat capture and slicing, on a real short sadc recording."""

import time

import pytest

from lampi_load.search.sar import SAR_VIEWS, SadcRecorder, averages, slice_moments


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """About four seconds of real sadc data with some CPU work in the middle."""
    path = tmp_path_factory.mktemp("sar") / "sa.bin"
    with SadcRecorder(path):
        start = time.time()
        time.sleep(1.5)
        busy_until = time.monotonic() + 1.5
        while time.monotonic() < busy_until:  # bounded busy loop: CPU for sar to see
            sum(range(10_000))
        time.sleep(1.5)
        end = time.time()
    return path, start, end


def test_sadc_stops_and_leaves_a_readable_file(recording):
    path, _, _ = recording
    assert path.stat().st_size > 0


def test_a_recorder_with_a_count_ends_by_itself(tmp_path):
    # Its owner never calls stop(): it was killed (a Ctrl-C that ended Locust mid-search).
    recorder = SadcRecorder(tmp_path / "sa.bin", count=2).start()
    try:
        assert recorder.process.wait(timeout=15) == 0
    finally:
        recorder.stop()
    assert (tmp_path / "sa.bin").stat().st_size > 0


def test_every_view_has_averages_for_a_window(recording, tmp_path):
    path, start, end = recording
    summary = slice_moments(path, {"minimal": {"start": start, "end": end}}, tmp_path)
    assert set(summary["minimal"]) == set(SAR_VIEWS)
    cpu = summary["minimal"]["cpu"][0]
    assert cpu["CPU"] == "all"
    busy = 100 - float(cpu["%idle"])
    assert busy > 5, f"sar saw {busy}% busy during a busy loop"
    tcp_columns = {key for row in summary["minimal"]["tcp"] for key in row}
    assert {"active/s", "retrans/s", "orsts/s"} <= tcp_columns  # both TCP and ETCP tables parsed
    listing = (tmp_path / "sar-minimal.txt").read_text()
    assert "$ sar -u -P ALL -s" in listing
    assert {row["CPU"] for row in summary["minimal"]["cpu"]} >= {"all", "0"}
    assert "Average:" in listing


def test_averages_reads_each_table_with_its_own_header():
    text = """Linux 6.1 (host) \t2026-11-22 \t_x86_64_\t(2 CPU)

12:00:00     active/s passive/s    iseg/s    oseg/s
12:00:01         1.00      2.00      3.00      4.00
Average:         1.00      2.00      3.00      4.00

12:00:00     atmptf/s  estres/s retrans/s isegerr/s   orsts/s
12:00:01         0.00      0.00      5.00      0.00      6.00
Average:         0.00      0.00      5.00      0.00      6.00
"""
    assert averages(text) == [
        {"active/s": "1.00", "passive/s": "2.00", "iseg/s": "3.00", "oseg/s": "4.00"},
        {"atmptf/s": "0.00", "estres/s": "0.00", "retrans/s": "5.00", "isegerr/s": "0.00", "orsts/s": "6.00"},
    ]
