"""Runs the test suite in the profile LAMPI_PROFILE names (a pytest plugin, loaded by pyproject.toml's addopts).

The baseline needs nothing: the settings' defaults are its SQLite, database sessions and PBKDF2. Another profile
changes some of the site's LAMPI_* settings. This plugin renders them with ansible/local.yml as `make up` does,
starts the private PostgreSQL cluster and the memcached they point at, and exports them before pytest-django
reads the settings; the site's processes that tests start inherit them. The servers stop when pytest ends.
"""

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from lampi_stack import stack
from lampi_stack.config import Config, StackError
from testing.ports import free_port, wait_for_port

# The profile the suite runs in: the site's settings and the stacks that tests start follow it.
PROFILE = os.environ.get("LAMPI_PROFILE") or "baseline"
# The settings this plugin exported: what the profile changes from the baseline.
EXPORTED: dict[str, str] = {}


def profile_settings(config: Config) -> dict[str, str]:
    """The site's settings that `config`'s profile changes from the baseline's, both rendered in its run folder."""
    baseline = dataclasses.replace(config, profile="baseline")
    baseline.render()
    before = baseline.django_env()
    config.render()
    return {name: value for name, value in config.django_env().items() if before.get(name) != value}


def start_servers(config: Config) -> None:
    """The profile's PostgreSQL and memcached, as `make up` starts them; returns once both answer."""
    launch = stack.Launcher(config)
    stack.start_stores(config, launch)
    if config.uses_memcached:
        try:
            wait_for_port("127.0.0.1", config.memcached_port)
        except TimeoutError:
            launch.check_alive()  # names memcached and its log's last line if it exited
            raise StackError(f"memcached did not answer on port {config.memcached_port}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before pytest-django's own hook, which sets Django up: the settings are read once, then."""
    options = early_config.known_args_namespace
    if PROFILE == "baseline" or options.help or options.version:
        return
    # The postgres user must reach the socket folder: pytest's own temporary folders are private to root.
    run_dir = Path(tempfile.mkdtemp(prefix="lampi-tests-"))
    run_dir.chmod(0o755)
    env = {"LAMPI_PROFILE": PROFILE, "LAMPI_RUN_DIR": str(run_dir), "LAMPI_MEMCACHED_PORT": str(free_port())}

    def stop() -> None:
        stack.down(Config(run_dir))
        shutil.rmtree(run_dir, ignore_errors=True)

    try:
        config = Config.from_env(env)
        EXPORTED.update(profile_settings(config))
        start_servers(config)
    except BaseException as error:
        # pytest runs no cleanup when its configuration fails: stop what started here and now.
        stop()
        if isinstance(error, StackError):
            raise pytest.UsageError(f"testing.site_profile: {error}") from None
        raise
    early_config.add_cleanup(stop)
    os.environ.update(EXPORTED)


def pytest_report_header() -> list[str]:
    changes = ", ".join(f"{name}={value}" for name, value in sorted(EXPORTED.items()))
    return [f"profile: {PROFILE}" + (f" ({changes})" if changes else "")]


# Fixtures through which a test meets the profile: the site's database and settings (pytest-django's), a database
# of the profile's engine for the site's processes, a stack started in the profile.
PROFILE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_setup",
    "client",
    "admin_client",
    "live_server",
    "settings",
    "django_user_model",
    "site_database",
    "stack_env",
}


def uses_the_profile(item: pytest.Item) -> bool:
    """Whether the profile can change what `item` tests: it uses the site's database or settings, a stack, or
    says so with the `profile` marker; not if its `profile_independent` marker says the site it uses is only a
    target (the search's own mechanics, Locust's distribution)."""
    markers = {mark.name for mark in item.iter_markers()}
    if "profile_independent" in markers:
        return False
    return bool({"django_db", "profile"} & markers) or bool(PROFILE_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside the baseline, runs only the tests the profile can change: the others (the MQTT generator against a
    bare Mosquitto, the search's state machine, ansible-lint...) ran in the baseline run, and would again the same."""
    if PROFILE == "baseline":
        return
    kept = [item for item in items if uses_the_profile(item)]
    deselected = [item for item in items if not uses_the_profile(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
