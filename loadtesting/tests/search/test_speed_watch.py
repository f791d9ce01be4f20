"""The speed watch: real references timed beside a search, and what each level's samples say."""

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
    assert header["argon2id_every"] == speed_watch.ARGON2ID_EVERY > 3
    assert len(samples) == 3
    # Real work: a page of Python and a 19 MiB Argon2id hash take measurable time on any machine.
    assert all(0 < sample["python_ms"] < 2000 for sample in samples)
    assert 1 < samples[0]["argon2id_ms"] < 2000
    assert [sample.get("argon2id_ms") for sample in samples[1:]] == [None, None]
    assert samples[0]["t"] <= samples[1]["t"] <= samples[2]["t"]


def test_levels_get_the_mean_of_the_samples_inside_them(tmp_path):
    path = tmp_path / "speed.jsonl"
    lines = [{"priority": "fifo", "interval_s": 5}]
    lines += [{"t": 10, "python_ms": 2.0, "argon2id_ms": 20}, {"t": 15, "python_ms": 5.0}]
    lines += [{"t": 20, "python_ms": 2.0, "argon2id_ms": 21}, {"t": 40, "python_ms": 6.0, "argon2id_ms": 30}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + '\n{"t": 45, "pyth')  # cut by the watch's end
    levels = [
        {"users": 100, "phase": "probed", "start": 9, "end": 21},
        {"users": 90, "phase": "down", "start": 35, "end": 44},
        {"users": 80, "phase": "usable", "start": 50, "end": 60},
    ]
    roles = {"max": levels[0], "failing": levels[1], "usable": levels[0], "not_usable": None}
    record = speed_watch.by_level(path, levels, "0", roles=roles)
    assert record["priority"] == "fifo"
    assert record["cpus"] == "0"
    # The mean of 2, 5 and 2 ms (a median would say 2); the median of the hashes taken.
    assert [
        (row["users"], row["python_ms"], row["argon2id_ms"], row["samples"], row["roles"]) for row in record["levels"]
    ] == [
        (100, 3.0, 20.5, 3, ["max", "usable"]),
        (90, 6.0, 30, 1, ["failing"]),
        (80, None, None, 0, []),
    ]
    assert record["python_spread_pct"] == 100.0
    line = speed_watch.describe(record)
    assert line == (
        "Python reference 3.0-6.0 ms across the levels (100% apart), Argon2id 20.5-30.0 ms; sampled every 5 s at "
        "fifo priority on CPUs 0; failing side judged on a machine 30% or more slower: 90 users failed at 6.00 ms "
        "against 100 passing at 3.00 ms"
    )


def test_an_edge_whose_failing_side_ran_on_a_slower_machine_is_named():
    rows = [
        (1718, 1.61, None),
        (1803, 1.40, "max"),
        (1893, 1.85, "failing"),  # 32% slower than its passing neighbour: named
        (744, 2.32, None),
        (616, 2.42, "usable"),
        (677, 2.45, "not_usable"),  # 1% slower: a light level reads slower, and its neighbour did too
    ]
    record = {
        "cpus": "0",
        "priority": "fifo",
        "interval_s": 1,
        "python_spread_pct": 75.0,
        "levels": [
            {"users": users, "python_ms": ms, "argon2id_ms": 20.0, "roles": [role] if role else []}
            for users, ms, role in rows
        ],
    }
    assert speed_watch.slow_edges(record) == [{"passed": 1803, "passed_ms": 1.40, "failed": 1893, "failed_ms": 1.85}]
    assert speed_watch.describe(record).endswith(
        "; failing side judged on a machine 30% or more slower: 1893 users failed at 1.85 ms against 1803 passing "
        "at 1.40 ms"
    )
    # A failing level on a faster machine than its passing neighbour failed for the load: nothing to say.
    record["levels"][2]["python_ms"] = 1.20
    assert speed_watch.slow_edges(record) == []
    # Records without roles (from before them), or none at all.
    for row in record["levels"]:
        del row["roles"]
    record["levels"][2]["python_ms"] = 3.0
    assert speed_watch.slow_edges(record) == []
    assert speed_watch.slow_edges(None) == []


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
