"""The local stack for tests: `make up` on free loopback ports in a temporary run folder, `make down` after.

The fixtures here are registered for testing/ by testing/conftest.py; another suite registers them by importing
them into its own conftest.py. The stacks start in the profile LAMPI_PROFILE names, as `make up` would.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from lampi_stack.processes import alive
from testing.ports import free_port
from testing.site_profile import PROFILE

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# Stack variables for a site that refuses every browser's login on a port other than 80, as the stack did with
# Debian's uwsgi_params of 2026 (issue 11): NGINX hands Django the host without the port, so Django's CSRF check
# finds the browser's Origin (http://127.0.0.1:PORT) foreign. A client that sends no Origin still signs in.
REFUSES_BROWSERS = {"nginx_uwsgi_http_host": "$host"}


def make(target: str, env: dict) -> subprocess.CompletedProcess:
    """`make TARGET` in the repository with `env`; at most 300 s."""
    return subprocess.run(
        ["make", "--no-print-directory", target], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def manage(env: dict, *arguments: str) -> subprocess.CompletedProcess:
    """manage.py with the settings of the stack `env` names (`lampi_stack manage`), e.g. its seeding command."""
    return subprocess.run(
        [sys.executable, "-m", "lampi_stack", "manage", *arguments],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO / "scripts")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def live_processes_mentioning(text: str) -> list[str]:
    """Command lines of live (not zombie) processes that mention `text` in their command line or their environment:
    what a stack left behind. The environment too, because the site's processes (`manage.py mqtt-daemon`) name their
    run folder only there, in LAMPI_RUN_DIR."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
            continue
        try:
            environ = "\0" + (proc / "environ").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            # Only its owner may read it (PostgreSQL runs as postgres): the command line still counts.
            environ = ""
        if (text in cmdline or f"\0LAMPI_RUN_DIR={text}\0" in environ) and alive(int(proc.name)):
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


def with_stack_vars(env: dict, **variables) -> dict:
    """`env` with Ansible variables added to LAMPI_STACK_VARS (they win over the profile's and local-vars.yml)."""
    return {**env, "LAMPI_STACK_VARS": json.dumps({**json.loads(env.get("LAMPI_STACK_VARS") or "{}"), **variables})}


def site_url(env: dict) -> str:
    return f"http://{HOST}:{env['LAMPI_HTTP_PORT']}"


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


@contextmanager
def running(env: dict):
    """`make up` with `env`, yielding what it printed; `make down` afterwards, whatever happened inside."""
    started = make("up", env)
    try:
        assert started.returncode == 0, started.stderr
        yield started.stdout
    finally:
        make("down", env)


@pytest.fixture
def stack(stack_env):
    """`make up` with `stack_env`, pinned to CPU 0; `make down` afterwards whatever the test did."""
    stack_env = {**stack_env, "LAMPI_SERVER_CPUS": "0"}
    with running(stack_env) as output:
        yield stack_env, output


@pytest.fixture
def stack_refusing_browsers(stack_env):
    """A running stack whose NGINX hands Django the host without its port (REFUSES_BROWSERS): a browser's login
    on it is a 403. Yields its environment (site_url(env) is the site); `make down` afterwards."""
    env = with_stack_vars(stack_env, **REFUSES_BROWSERS)
    with running(env):
        yield env
