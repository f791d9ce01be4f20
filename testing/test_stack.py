"""`make up` / `make down`: the real stack on free loopback ports, in a temporary run folder.

The stacks start in the profile LAMPI_PROFILE names, as `make up` would, unless a test names its own.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
import yaml

from lampi_stack.config import Config
from testing.mqtt_recorder import MqttRecorder
from testing.ports import free_port
from testing.site_profile import PROFILE

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def make(target: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", target], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def is_alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) not in {"Z", "X"}
    except FileNotFoundError:
        return False


def live_processes_mentioning(text: str) -> list[str]:
    """Command lines of live (not zombie) processes that mention `text`: what a stack left behind."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
            continue
        if text in cmdline and proc.name.isdigit() and is_alive(int(proc.name)):
            found.append(f"{proc.name}: {cmdline}")
    return found


def in_profile(env: dict, profile: str) -> dict:
    """`env` for a stack in `profile`, with a database of its own: a SQLite file beside its run folder, or the
    default database of the private PostgreSQL cluster in its run folder."""
    settings = yaml.safe_load((REPO / "ansible" / "profiles" / f"{profile}.yml").read_text())
    env = {name: value for name, value in env.items() if name != "LAMPI_DB_NAME"}
    if settings["lampisite_db_engine"] == "sqlite":
        env["LAMPI_DB_NAME"] = str(Path(env["LAMPI_RUN_DIR"]).parent / "db.sqlite3")
    return {**env, "LAMPI_PROFILE": profile}


@pytest.fixture
def stack_env():
    """Environment for a stack of its own in the suite's profile: run folder, database and ports nobody else uses."""
    http, mqtt, ws, memcached = (str(free_port()) for _ in range(4))
    # A run folder the postgres user can reach (pytest's own is private to root).
    run_root = Path(tempfile.mkdtemp(prefix="lampi-stack-"))
    run_root.chmod(0o755)
    env = {
        **os.environ,
        "LAMPI_RUN_DIR": str(run_root / "run"),
        "LAMPI_HTTP_PORT": http,
        "LAMPI_MQTT_PORT": mqtt,
        "LAMPI_WS_PORT": ws,
        "LAMPI_MEMCACHED_PORT": memcached,
    }
    yield in_profile(env, PROFILE)
    shutil.rmtree(run_root, ignore_errors=True)


@pytest.fixture
def stack(stack_env):
    """`make up` with `stack_env`, pinned to CPU 0; `make down` afterwards whatever the test did."""
    stack_env = {**stack_env, "LAMPI_SERVER_CPUS": "0"}
    started = make("up", stack_env)
    try:
        assert started.returncode == 0, started.stderr
        yield stack_env, started.stdout
    finally:
        make("down", stack_env)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """What the stack printed on standard error, without make's own `*** Error` line."""
    # `make:` at top level, `make[2]:` under `make test` (CI): both are make's, not the stack's.
    return [line for line in result.stderr.splitlines() if not re.match(r"make(\[\d+\])?:", line)]


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


def check_stack_serves_and_stops(stack_env, output):
    run_dir = Path(stack_env["LAMPI_RUN_DIR"])
    site = f"http://{HOST}:{stack_env['LAMPI_HTTP_PORT']}"
    assert site in output
    assert f"ws://{HOST}:{stack_env['LAMPI_WS_PORT']}/mqtt" in output

    assert get(f"{site}/login/") == 200
    assert get(f"{site}/static/lampi/site.css") == 200
    with MqttRecorder(HOST, int(stack_env["LAMPI_MQTT_PORT"]), ["stack-test/#"]) as recorder:
        publish.single("stack-test/tcp", "1", hostname=HOST, port=int(stack_env["LAMPI_MQTT_PORT"]))
        ws_port = int(stack_env["LAMPI_WS_PORT"])
        publish.single("stack-test/ws", "2", hostname=HOST, port=ws_port, transport="websockets")
        recorder.wait_for(lambda message: message.topic == "stack-test/tcp")
        recorder.wait_for(lambda message: message.topic == "stack-test/ws")

    again = make("up", stack_env)
    assert again.returncode == 0
    assert "already runs" in again.stdout
    status = make("status", stack_env).stdout
    pids = [int(path.read_text()) for path in run_dir.glob("*.pid")]
    assert all(f"pid {pid}" in status for pid in pids)
    assert "mqtt-daemon" in status

    stopped = make("down", stack_env)
    assert stopped.returncode == 0, stopped.stderr
    assert not [pid for pid in pids if is_alive(pid)]
    assert not live_processes_mentioning(str(run_dir))
    assert "not running" in make("status", stack_env).stdout
    return pids


# Each profile's stack: whether Django answers the root redirect (its security headers are on it; the tuned
# profile's NGINX answers it), and how many servers run (the tuned profile adds PostgreSQL and memcached).
STACKS = {"baseline": (True, 4), "tuned": (False, 6)}


@pytest.mark.slow
def test_up_serves_the_site_and_the_broker_and_down_stops_every_process(stack):
    stack_env, output = stack
    by_django, servers = STACKS[PROFILE]
    assert redirect_of(f"http://{HOST}:{stack_env['LAMPI_HTTP_PORT']}/") == (302, "/lampi/", by_django)
    pinned = {
        path.name: (
            Path(f"/proc/{path.read_text().strip()}/status").read_text().split("Cpus_allowed_list:")[1].split()[0]
        )
        for path in Path(stack_env["LAMPI_RUN_DIR"]).glob("*.pid")
    }
    assert set(pinned.values()) == {"0"}, pinned
    pids = check_stack_serves_and_stops(stack_env, output)
    assert len(pids) == servers


def test_the_callers_environment_does_not_change_the_profiles_settings(tmp_path, monkeypatch):
    # The baseline leaves the password hashers and the cache empty: the settings' defaults, not the shell's (nor
    # those a tuned test run exports). Settings no profile names still pass.
    (tmp_path / "lampisite.env").write_text("# rendered\nLAMPI_DB_ENGINE=sqlite\n")
    monkeypatch.setenv("LAMPI_DB_ENGINE", "postgresql")
    monkeypatch.setenv("LAMPI_PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
    monkeypatch.setenv("LAMPI_CACHE_LOCATION", "127.0.0.1:11211")
    monkeypatch.setenv("LAMPI_DB_TIMEOUT", "30")
    env = Config(tmp_path).django_env()
    assert env["LAMPI_DB_ENGINE"] == "sqlite"
    assert "LAMPI_PASSWORD_HASHERS" not in env
    assert "LAMPI_CACHE_LOCATION" not in env
    assert env["LAMPI_DB_TIMEOUT"] == "30"


def test_a_taken_port_is_a_one_line_error_and_starts_nothing(stack_env):
    with socket.create_server((HOST, int(stack_env["LAMPI_MQTT_PORT"]))):
        failed = make("up", stack_env)
    assert failed.returncode != 0
    [error] = error_lines(failed)
    assert stack_env["LAMPI_MQTT_PORT"] in error
    assert "LAMPI_MQTT_PORT" in error
    assert not live_processes_mentioning(stack_env["LAMPI_RUN_DIR"])


@pytest.mark.slow
def test_a_part_dying_on_start_is_named_and_the_rest_is_stopped(stack_env):
    # uWSGI reads UWSGI_* variables as options: an unknown user makes it exit at once, after Mosquitto started.
    env = {**stack_env, "UWSGI_UID": "no-such-user-for-lampi"}
    try:
        failed = make("up", env)
        left_running = live_processes_mentioning(stack_env["LAMPI_RUN_DIR"])
    finally:
        make("down", env)
    assert failed.returncode != 0
    [error] = error_lines(failed)
    assert error.startswith("up: error: uwsgi exited on start"), error
    assert not left_running


def redirect_of(url: str) -> tuple[int, str, bool]:
    """Status and Location of `url` without following it, and whether Django (its security headers) answered."""

    class NoFollow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    try:
        urllib.request.build_opener(NoFollow).open(url, timeout=10)
    except urllib.error.HTTPError as response:
        return response.code, response.headers["Location"], "X-Frame-Options" in response.headers
    raise AssertionError(f"{url} did not redirect")


@pytest.mark.slow
def test_tuned_profile_adds_postgresql_and_memcached(stack_env):
    env = in_profile(stack_env, "tuned")
    started = make("up", env)
    try:
        assert started.returncode == 0, started.stderr
        settings = (Path(env["LAMPI_RUN_DIR"]) / "lampisite.env").read_text()
        assert "LAMPI_DB_ENGINE=postgresql" in settings
        assert f"LAMPI_CACHE_LOCATION=127.0.0.1:{env['LAMPI_MEMCACHED_PORT']}" in settings
        # The fixed redirects are NGINX's in this profile: same answers, no Django process spent on them.
        site = f"http://{HOST}:{env['LAMPI_HTTP_PORT']}"
        assert redirect_of(f"{site}/") == (302, "/lampi/", False)
        assert redirect_of(f"{site}/lampi") == (301, "/lampi/", False)
        pids = check_stack_serves_and_stops(env, started.stdout)
        assert len(pids) == 6
    finally:
        make("down", env)
