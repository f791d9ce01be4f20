"""The speed watch: real references timed beside a search, and each level's median of them."""

import io
import json
import time

import pytest

from lampi_load.search import speed_watch


def test_a_watch_writes_its_header_then_real_samples():
    out = io.StringIO()
    speed_watch.watch(0.05, 3, out)
    header, *samples = [json.loads(line) for line in out.getvalue().splitlines()]
    assert header["priority"] in ("fifo", "normal")
    assert header["interval_s"] == 0.05
    assert len(samples) == 3
    # Real work: a page of Python and a 19 MiB Argon2id hash take measurable time on any machine.
    assert all(0 < sample["python_ms"] < 2000 and 1 < sample["argon2id_ms"] < 2000 for sample in samples)
    assert samples[0]["t"] <= samples[1]["t"] <= samples[2]["t"]


def test_levels_get_the_medians_of_the_samples_inside_them(tmp_path):
    path = tmp_path / "speed.jsonl"
    lines = [{"priority": "fifo", "interval_s": 5}]
    lines += [{"t": t, "python_ms": p, "argon2id_ms": a} for t, p, a in [(10, 2.0, 20), (15, 4.0, 22), (20, 3.0, 21)]]
    lines += [{"t": 40, "python_ms": 6.0, "argon2id_ms": 30}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + '\n{"t": 45, "pyth')  # cut by the watch's end
    levels = [
        {"users": 100, "phase": "probed", "start": 9, "end": 21},
        {"users": 90, "phase": "down", "start": 35, "end": 44},
        {"users": 80, "phase": "usable", "start": 50, "end": 60},
    ]
    record = speed_watch.by_level(path, levels, "0")
    assert record["priority"] == "fifo"
    assert record["cpus"] == "0"
    assert [(row["users"], row["python_ms"], row["argon2id_ms"], row["samples"]) for row in record["levels"]] == [
        (100, 3.0, 21, 3),
        (90, 6.0, 30, 1),
        (80, None, None, 0),
    ]
    assert record["python_spread_pct"] == 100.0
    line = speed_watch.describe(record)
    assert line == (
        "Python reference 3.0-6.0 ms across the levels (100% apart), Argon2id 21.0-30.0 ms; sampled every 5 s at "
        "fifo priority on CPUs 0; judged on a machine 30% or more slower than at the fastest level: 90 users"
    )


def test_levels_judged_on_a_slower_machine_are_named():
    rows = [(2077, 1.97), (1979, 1.92), (1791, 1.47), (1838, 1.38), (1435, 2.54), (1300, None)]
    record = {
        "cpus": "0",
        "priority": "fifo",
        "interval_s": 5,
        "python_spread_pct": 84.1,
        "levels": [{"users": users, "python_ms": ms, "argon2id_ms": 20.0} for users, ms in rows],
    }
    # 1.38 ms the fastest: 1.79 ms and over is 30% slower.
    assert speed_watch.slow_levels(record) == [2077, 1979, 1435]
    assert speed_watch.describe(record).endswith(
        "; judged on a machine 30% or more slower than at the fastest level: 2077, 1979, 1435 users"
    )
    assert speed_watch.slow_levels(None) == []


def test_nothing_to_describe_without_samples(tmp_path):
    record = speed_watch.by_level(tmp_path / "absent.jsonl", [{"users": 1, "phase": "up", "start": 0, "end": 1}], None)
    assert record["cpus"] == "any"
    assert record["python_spread_pct"] is None
    assert speed_watch.describe(record) == ""
    assert speed_watch.describe(None) == ""


def test_the_watch_process_runs_on_the_cpus_given_and_stops(tmp_path):
    watch = speed_watch.SpeedWatch(tmp_path / "speed.jsonl", "0", seconds=60, interval=0.2).start()
    try:
        deadline = time.monotonic() + 20
        while len(speed_watch.read(watch.path)[1]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        with open(f"/proc/{watch.process.pid}/status") as status:
            allowed = next(line for line in status if line.startswith("Cpus_allowed_list:")).split()[1]
    finally:
        process = watch.process
        watch.stop()
    assert allowed == "0"
    assert len(speed_watch.read(watch.path)[1]) >= 2
    assert process.poll() is not None


def test_a_watch_ends_by_itself_after_its_count(tmp_path):
    watch = speed_watch.SpeedWatch(tmp_path / "speed.jsonl", None, seconds=0.3, interval=0.1).start()
    assert watch.process.wait(timeout=30) == 0
    assert len(speed_watch.read(watch.path)[1]) == 3


@pytest.mark.parametrize("argv", [["--interval", "0"], ["--count", "0"]])
def test_absurd_options_are_one_line(argv, capsys):
    with pytest.raises(SystemExit):
        speed_watch.main(argv)
    assert "give seconds above 0 and 1 to 100000 samples" in capsys.readouterr().err
