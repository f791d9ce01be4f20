"""hone_in.py's run record: what it starts beside a search is stopped, whenever the search stops.

Run in a process of its own: importing Locust patches the standard library with gevent, which must not happen
inside the test session (its ssl module is imported already)."""

import json
import subprocess
import sys
from pathlib import Path

LOADTESTING = Path(__file__).resolve().parents[1]

CLOSED_WHILE_STARTING = """
import json, sys
from types import SimpleNamespace
import hone_in

options = SimpleNamespace(hone_results_dir=sys.argv[1], hone_sar="on", hone_time_limit=5)
shape = SimpleNamespace(server_cpus=None)
record = hone_in.RunRecord(SimpleNamespace(parsed_options=options, host="http://127.0.0.1:9", shape_class=shape))

class CloseMeanwhile(hone_in.SadcRecorder):
    def start(self):
        super().start()
        # What close does first, from a test_stop that came while sadc's start waited for its file (a Ctrl-C at
        # once).
        record.closed = True
        return self

hone_in.SadcRecorder = CloseMeanwhile
record.start()
sadc = record.sadc
print(json.dumps({"sadc_started": sadc is not None, "watch": record.watch is not None,
                  "sadc_running": bool(sadc and sadc.process and sadc.process.poll() is None)}))
"""


def test_a_record_closed_while_it_starts_leaves_nothing_running(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CLOSED_WHILE_STARTING, str(tmp_path)],
        cwd=LOADTESTING, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["sadc_started"], "sadc should have started before close came"
    assert not state["watch"], "nothing starts once close has run"
    assert not state["sadc_running"], "the sadc started before close was left running"
    assert (tmp_path / "sa.bin").exists()
