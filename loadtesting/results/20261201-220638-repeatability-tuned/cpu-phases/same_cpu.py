"""The watch's reading on CPU 0 with CPU 0 otherwise idle, and with a normal-priority process keeping it busy
(as a saturated server does), alternating every 10 s: does the reference read faster on a busy core?"""

import os
import statistics
import subprocess
import sys
import time

from lampi_load.search.speed import python_ms

os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
readings = {"idle": [], "busy": []}
for _cycle in range(int(sys.argv[1])):
    for kind in ("idle", "busy"):
        spinner = (
            subprocess.Popen(["chrt", "-o", "0", "taskset", "-c", "0", sys.executable, "-c", "while True: pass"])
            if kind == "busy"
            else None
        )
        time.sleep(1)
        end = time.monotonic() + 9
        while time.monotonic() < end:
            readings[kind].append(statistics.mean(python_ms() for _ in range(3)))
            time.sleep(0.5)
        if spinner:
            spinner.kill()
            spinner.wait()
for kind, values in readings.items():
    values.sort()
    print(
        kind,
        len(values),
        "mean",
        round(statistics.mean(values), 2),
        "median",
        round(statistics.median(values), 2),
        "p10",
        round(values[len(values) // 10], 2),
        "p90",
        round(values[len(values) * 9 // 10], 2),
    )
