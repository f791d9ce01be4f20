"""Alternates: the page timed on CPU 0 with CPU 1 idle, then with CPU 1 spinning, 2 s each (the spinner inherits
this process's real-time priority: CPU 1 is busy either way it is scheduled)."""

import os
import statistics
import subprocess
import sys
import time

from lampi_load.search.speed import python_ms

os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
spin = "import time\nt=time.time()\nwhile time.time()-t<2.2: sum(i*i for i in range(1000))"
alone, paired = [], []
for _rep in range(int(sys.argv[1])):
    for kind in ("alone", "paired"):
        p = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", spin]) if kind == "paired" else None
        time.sleep(0.2)
        t0 = time.perf_counter()
        xs = []
        while time.perf_counter() - t0 < 1.5:
            xs.append(python_ms())
        (alone if kind == "alone" else paired).append(statistics.mean(xs))
        if p:
            p.wait()
        time.sleep(0.5)
print("alone ", [round(x, 2) for x in alone])
print("paired", [round(x, 2) for x in paired])
print("ratio of means", round(statistics.mean(paired) / statistics.mean(alone), 2))
