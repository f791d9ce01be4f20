"""Brings the stack up in order, waits until every part answers, and takes it down again."""

import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from . import postgres
from .config import REPO, VENV_BIN, Config, StackError
from .probes import http_ok, mqtt_connack, port_is_free
from .processes import last_line, running_pid, start, stop

SITE = REPO / "Web" / "lampisite"
# Seconds every part together may take to answer after it started.
READY_TIMEOUT = 90


@dataclass(frozen=True)
class Part:
    """One server process: its pid file name, the program its command line shows, how it is stopped."""

    name: str
    program: str
    stop_signal: int = signal.SIGTERM


# In start order; `down` stops them in reverse.
PARTS = [
    Part("postgresql", "postgres", signal.SIGINT),  # SIGINT: PostgreSQL's fast shutdown
    Part("memcached", "memcached"),
    Part("mosquitto", "mosquitto"),
    Part("uwsgi", "uwsgi"),  # die-on-term in the ini: SIGTERM stops it instead of reloading
    Part("nginx", "nginx"),
    Part("mqtt-daemon", "mqtt-daemon"),
]


def which(program: str) -> str:
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if not found:
        raise StackError(f"{program} is not installed (make setup)")
    return found


def running(config: Config) -> dict[str, int]:
    """The parts whose pid files name a live process, with their pids."""
    pids = {part.name: running_pid(config.run_dir, part.name, part.program) for part in PARTS}
    return {name: pid for name, pid in pids.items() if pid}


def addresses(config: Config) -> list[tuple[str, str]]:
    return [
        ("site", f"http://127.0.0.1:{config.http_port}/"),
        ("MQTT", f"mqtt://127.0.0.1:{config.mqtt_port}"),
        ("WebSockets", f"ws://127.0.0.1:{config.ws_port}/mqtt"),
    ]


def up(config: Config) -> str:
    """Starts every part and returns when all answer; on any failure stops what it started and raises."""
    if config.run_dir.exists() and running(config):
        return f"the stack already runs (profile {config.saved().profile}); make status, or make down to stop it"
    config.render()
    ports = {"LAMPI_HTTP_PORT": config.http_port, "LAMPI_MQTT_PORT": config.mqtt_port, "LAMPI_WS_PORT": config.ws_port}
    if config.uses_memcached:
        ports["LAMPI_MEMCACHED_PORT"] = config.memcached_port
    for variable, port in ports.items():
        if not port_is_free(port):
            raise StackError(f"port {port} on 127.0.0.1 is taken ({variable}): stop what uses it or choose another")
    config.save()
    try:
        _start_all(config)
    except BaseException:
        down(config)
        raise
    return "the stack runs (profile {}, logs in {}):\n{}".format(
        config.profile, config.run_dir, "\n".join(f"  {name:<11}{url}" for name, url in addresses(config))
    )


class Launcher:
    """Starts parts in the run folder, pinned to the configured CPUs; remembers them to say if one has exited."""

    def __init__(self, config: Config):
        self.config = config
        self.pin = ["taskset", "-c", config.server_cpus] if config.server_cpus else []
        self.started: dict[str, subprocess.Popen] = {}

    def __call__(self, name: str, argv: list[str], **kwargs) -> None:
        self.started[name] = start(self.config.run_dir, name, [*self.pin, *argv], **kwargs)

    def check_alive(self) -> None:
        """Raises StackError naming the first part that exited, with its log's last line."""
        for name, process in self.started.items():
            if process.poll() is not None:
                log = self.config.run_dir / f"{name}.log"
                raise StackError(f"{name} exited on start ({process.returncode}): {last_line(log)[:200]} (see {log})")


def start_stores(config: Config, launch: Launcher) -> None:
    """PostgreSQL and memcached, when the profile uses them; returns once PostgreSQL has the site's database."""
    run, env = config.run_dir, config.django_env()
    if config.uses_postgresql:
        data_dir = postgres.prepare(run)
        launch("postgresql", postgres.server_argv(data_dir))
        postgres.wait_and_create_database(
            run, env.get("LAMPI_DB_NAME") or "lampi", lambda: launch.check_alive() is None
        )
    if config.uses_memcached:
        options = [line.split() for line in (run / "memcached.conf").read_text().splitlines()]
        launch(
            "memcached",
            [which("memcached"), *(word for line in options if line and line[0][0] == "-" for word in line)],
        )


def _start_all(config: Config) -> None:
    run, env = config.run_dir, config.django_env()
    # One open file per connection: the servers inherit the highest limit this user may set.
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    python = str(VENV_BIN / "python")
    launch = Launcher(config)
    # sar is not started here, but the load tests record with sysstat while they run.
    binaries = {name: which(name) for name in ["nginx", "mosquitto", "sar", *(["taskset"] if launch.pin else [])]}
    start_stores(config, launch)

    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--clear"]):
        result = subprocess.run([python, "manage.py", *command], cwd=SITE, env=env, capture_output=True, text=True)
        (run / "manage.log").open("a").write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise StackError(f"manage.py {command[0]} failed: {last_line(run / 'manage.log')[:200]}")

    launch("mosquitto", [binaries["mosquitto"], "-c", str(run / "mosquitto.conf")])
    launch("uwsgi", [str(VENV_BIN / "uwsgi"), "--ini", str(run / "uwsgi.ini")], env=env, cwd=SITE)
    nginx = [binaries["nginx"], "-c", str(run / "nginx.conf"), "-e", str(run / "nginx-error.log"), "-g", "daemon off;"]
    launch("nginx", nginx)
    launch("mqtt-daemon", [python, "manage.py", "mqtt-daemon"], env=env, cwd=SITE)

    checks = {
        "nginx -> uwsgi (login page)": lambda: http_ok(f"http://127.0.0.1:{config.http_port}/login/"),
        "mosquitto (MQTT)": lambda: mqtt_connack("127.0.0.1", config.mqtt_port),
        "mosquitto (WebSockets)": lambda: mqtt_connack("127.0.0.1", config.ws_port, "websockets"),
    }
    deadline = time.monotonic() + READY_TIMEOUT
    while checks:
        launch.check_alive()
        checks = {name: check for name, check in checks.items() if not check()}
        if checks and time.monotonic() > deadline:
            raise StackError(f"{', '.join(checks)} did not answer within {READY_TIMEOUT} s (logs in {run})")
        if checks:
            time.sleep(0.3)
    launch.check_alive()


def down(config: Config) -> list[str]:
    """Stops the parts that pid files in the run folder name, in reverse start order; returns their names."""
    if not config.run_dir.exists():
        return []
    stopped = [part.name for part in reversed(PARTS) if stop(config.run_dir, part.name, part.program, part.stop_signal)]
    config.state_file.unlink(missing_ok=True)
    return stopped


def manage(config: Config, arguments: list[str]) -> int:
    """Runs manage.py with the settings the stack was rendered with; returns its exit code."""
    if not (config.run_dir / "lampisite.env").exists():
        raise StackError(f"no stack settings in {config.run_dir}: make up first")
    return subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *arguments], cwd=SITE, env=config.django_env()
    ).returncode


def status(config: Config) -> str:
    saved = config.saved()
    pids = running(config) if config.run_dir.exists() else {}
    if not pids:
        return f"the stack is not running (run folder {config.run_dir})"
    lines = [f"profile {saved.profile}, run folder {config.run_dir}"]
    lines += [f"  {part.name:<12}{'pid ' + str(pids[part.name]) if part.name in pids else '-'}" for part in PARTS]
    lines += [f"  {name:<12}{url}" for name, url in addresses(saved)]
    return "\n".join(lines)
