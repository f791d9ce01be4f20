import subprocess
import sys
import time

from lampi_load.search.background import BackgroundRecorder


class Sleeper(BackgroundRecorder):
    """A real child process standing for a recorder; `ignore_term` makes it one that SIGTERM does not end."""

    def __init__(self, ignore_term=False):
        self.ignore_term = ignore_term

    def start(self):
        code = "import signal, time\n"
        if self.ignore_term:
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        code += "print('ready', flush=True)\ntime.sleep(60)\n"
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        self.process.stdout.readline()  # its handler is in place
        return self


def test_stop_ends_the_process_and_forgets_it():
    recorder = Sleeper().start()
    process = recorder.process
    recorder.stop()
    assert process.poll() is not None
    assert recorder.process is None
    recorder.stop()  # a second stop is harmless


def test_stop_kills_a_process_that_ignores_sigterm():
    recorder = Sleeper(ignore_term=True).start()
    recorder.stop_wait_s = 0.5
    process = recorder.process
    began = time.monotonic()
    recorder.stop()
    assert process.returncode == -9
    assert time.monotonic() - began < 5


def test_as_a_context_manager_it_stops_on_leaving():
    with Sleeper() as recorder:
        process = recorder.process
        assert process.poll() is None
    assert process.poll() is not None
