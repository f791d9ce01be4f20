"""The stack's processes as its pid files name them (scripts/lampi_stack/processes.py), on real child processes."""

import os
import signal
import sys

from lampi_stack.processes import pid_file, running_pid, start, stop


def test_a_part_caught_while_it_execs_is_still_found_by_its_pid_file(tmp_path):
    # `up` stops what it started within a millisecond when a part dies on start, while the last one started may
    # still be exec'ing from taskset into Python: its command line is empty then, and that part was taken for a
    # stranger's reused pid and left running (the MQTT daemon, 14 times in 200 tries by hand; a part read at once
    # after its start, as here, nearly every time).
    missed, cpu = [], str(min(os.sched_getaffinity(0)))
    for attempt in range(150):
        process = start(tmp_path, "part", ["taskset", "-c", cpu, sys.executable, "-c", "import time; time.sleep(9)"])
        try:
            if running_pid(tmp_path, "part", "time.sleep") != process.pid:
                missed.append(attempt)
        finally:
            process.kill()
            process.wait()
    assert not missed, f"{len(missed)} of 150 parts not found just after their start"


def test_a_pid_file_naming_another_program_is_stale_and_its_process_is_left_alone(tmp_path):
    stranger = start(tmp_path, "part", [sys.executable, "-c", "import time; time.sleep(9)"])
    try:
        assert running_pid(tmp_path, "part", "mosquitto") is None
        assert not pid_file(tmp_path, "part").exists()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_ends_the_part_and_removes_its_pid_file(tmp_path):
    part = start(tmp_path, "part", [sys.executable, "-c", "import time; time.sleep(9)"])
    assert stop(tmp_path, "part", "time.sleep", signal.SIGTERM, timeout=5)
    assert part.wait(timeout=5) == -signal.SIGTERM
    assert not pid_file(tmp_path, "part").exists()
    assert not stop(tmp_path, "part", "time.sleep")
    assert os.path.exists(tmp_path / "part.log")
