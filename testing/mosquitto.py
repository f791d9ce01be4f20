"""A real Mosquitto broker on free loopback ports, with an MQTT (TCP) and a WebSockets listener."""

import os
import shutil
import subprocess
import time
from pathlib import Path

from .ports import free_port, wait_for_port

HOST = "127.0.0.1"


class Mosquitto:
    """Runs `mosquitto -c <generated config>` as a child process; `restart()` keeps the same ports."""

    def __init__(self, workdir: Path, *, persistence: bool = False, settings: dict[str, object] | None = None):
        """`settings` are more mosquitto.conf lines (`max_queued_messages`: 10, ...), in the TCP listener's block."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed: run `make setup`")
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = free_port()
        self.ws_port = free_port()
        self.config = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            f"listener {self.port} {HOST}",
            "protocol mqtt",
            # Here, listener settings such as max_connections apply to the TCP listener; global ones anywhere.
            *(f"{name} {value}" for name, value in (settings or {}).items()),
            f"listener {self.ws_port} {HOST}",
            "protocol websockets",
            "sys_interval 1",
            "max_keepalive 3600",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # Started as root, Mosquitto switches to the `mosquitto` user, which cannot write to the test's
            # folder: it would run with no log and no persistence, silently. Stay root instead.
            lines.append("user root")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}/mqtt"

    def start(self) -> "Mosquitto":
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.host, self.port)
            wait_for_port(self.host, self.ws_port)
        except TimeoutError as error:
            self.stop()
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"mosquitto did not start: {log}") from error
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        time.sleep(downtime)
        self.start()

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
