"""Recorders that run as child processes beside a search (sadc, the speed watch), and how they end.

Each is bounded by its own sample count, so one whose owner was killed before `stop()` ends by itself; `stop()`
ends it sooner and keeps what it wrote.
"""

import subprocess


class BackgroundRecorder:
    """A child process writing a recording; subclasses set `process` in `start()` and return `self`."""

    process: subprocess.Popen | None = None
    stop_wait_s = 10.0
    """Seconds `stop()` waits after SIGTERM before it kills the process."""

    def start(self) -> "BackgroundRecorder":
        raise NotImplementedError

    def stop(self) -> None:
        """Ends the process with SIGTERM (its file stays); kills it if it is still there `stop_wait_s` later."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_wait_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
