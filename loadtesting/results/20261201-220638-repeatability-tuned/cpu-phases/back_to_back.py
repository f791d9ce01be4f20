"""The page of Python timed back to back on this CPU for 1 s (the median of each 50 ms), after 2 s asleep; four
times."""

import os
import statistics
import time

from lampi_load.search.speed import python_ms

os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
for _rep in range(4):
    time.sleep(2)
    t0 = time.perf_counter()
    out = []
    while time.perf_counter() - t0 < 1.0:
        b = time.perf_counter()
        xs = []
        while time.perf_counter() - b < 0.05:
            xs.append(python_ms())
        out.append(round(statistics.median(xs), 2))
    print(out)
