"""`make up` / `make down`: the real stack on free loopback ports, in a temporary run folder (testing/stacks.py).

The stacks start in the profile LAMPI_PROFILE names, as `make up` would, unless a test names its own.
"""

import re
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from lampi_stack.config import Config
from lampi_stack.processes import alive
from testing.mqtt_recorder import MqttRecorder
from testing.site_profile import PROFILE
from testing.stacks import HOST, in_profile, live_processes_mentioning, make


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
    assert not [pid for pid in pids if alive(pid)]
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


# It starts the tuned profile whatever the suite's is: the same test in both runs, so in the baseline's only.
@pytest.mark.slow
@pytest.mark.profile_independent
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
