"""`make demo` as a user types it: no DEMO_* variable but the documented size knob, on the real stack.

The stack gets free loopback ports, a run folder and a database of its own (stack_env), in the suite's profile.
"""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from testing.stacks import REPO, live_processes_mentioning

pytestmark = pytest.mark.slow

# Seconds a smoke demo may take on this 2-core machine under a test suite: two 45 s searches and their set-up.
DEMO_TIMEOUT = 600


class Demo:
    """`make demo` running in its own session (as from a terminal), its output collected line by line."""

    def __init__(self, env: dict):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "demo"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            # As from a terminal: a test run started in the background (CI may be) inherits SIGINT ignored, and a
            # shell cannot trap a signal ignored when it started, so Ctrl-C would reach nobody.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no line with {text!r} within {timeout:.0f} s:\n{self.output[-3000:]}")
            time.sleep(0.2)

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the whole foreground process group, as a terminal sends it."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError(f"make demo still ran after {timeout:.0f} s:\n{self.output[-3000:]}") from None
        finally:
            self.reader.join(10)


@pytest.fixture
def demo_env(stack_env, tmp_path):
    """The environment a user's shell would have, with the documented smoke size and the test's own stack."""
    env = {name: value for name, value in stack_env.items() if not name.startswith("DEMO_")}
    # Results go under the test's folder, not the checkout.
    return {**env, "DEMO_SCALE": "smoke", "LAMPI_RESULTS_DIR": str(tmp_path / "results")}


# In the baseline's run only: `make demo` with no variable is the baseline, and demo.sh does the same in any
# profile; what the tuned profile changes (its stack, its site under Locust and a browser) has tests in both runs.
# Run in both, it cost the suite 2.5 minutes of its 25.
@pytest.mark.profile_independent
def test_demo_stops_the_stack_on_ctrl_c_and_a_rerun_gives_both_verdicts(demo_env):
    run_dir = demo_env["LAMPI_RUN_DIR"]
    interrupted = Demo(demo_env)
    try:
        interrupted.wait_for_line("searching for the largest HTTP load", timeout=300)
        interrupted.interrupt()
        assert interrupted.wait(timeout=120) != 0, interrupted.output[-4000:]
    finally:
        if interrupted.process.poll() is None:
            os.killpg(interrupted.process.pid, signal.SIGKILL)
    assert "stopping the stack" in interrupted.output
    assert not live_processes_mentioning(run_dir), interrupted.output[-3000:]

    demo = Demo(demo_env)
    assert demo.wait(timeout=DEMO_TIMEOUT) == 0, demo.output[-5000:]
    output = demo.output
    # The re-run found every fake user of the interrupted run in place.
    assert (
        "0 users created with their devices, 0 devices added to existing users, 0 stale password hashes "
        "refreshed, 200 already present" in output
    )
    table = output.split("demo: verdicts", 1)[1].splitlines()
    header = next(line for line in table if "HTTP users" in line)
    assert "MQTT devices" in header
    assert any(line.startswith("max without error") for line in table)
    reports = [line.split("report ", 1)[1].split(";")[0] for line in table if ": report " in line]
    assert len(reports) == 2
    assert all(Path(report).is_file() for report in reports)
    assert all(Path(report).is_relative_to(demo_env["LAMPI_RESULTS_DIR"]) for report in reports)
    assert "stopping the stack" in output
    assert not live_processes_mentioning(run_dir)


def test_a_mistyped_demo_size_is_a_one_line_error_before_anything_starts(demo_env):
    env = {**demo_env, "DEMO_SCALE": "huge"}
    failed = subprocess.run(["bash", "scripts/demo.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert failed.returncode == 2
    assert failed.stderr.strip() == "demo: error: DEMO_SCALE must be full or smoke, not 'huge'"
    assert not Path(demo_env["LAMPI_RUN_DIR"]).exists()
