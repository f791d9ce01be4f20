"""The production mode: refuses to start without its secrets, and passes Django's deployment checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from testing.site_profile import EXPORTED

SITE_DIR = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    """manage.py in the suite's environment (the profile's settings) with `env` on top; None unsets a variable."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=SITE_DIR,
        env={name: value for name, value in {**os.environ, **env}.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "LAMPI_PRODUCTION": "1",
    "LAMPI_SECRET_KEY": secrets.token_urlsafe(50),
    "LAMPI_ALLOWED_HOSTS": "lampi.example.com",
}


@pytest.mark.parametrize("https", ["0", "1"])
def test_production_mode_passes_check_deploy(https):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, LAMPI_HTTPS=https)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_https_marks_cookies_secure():
    code = "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.DEBUG)"
    result = manage("shell", "-v", "0", "-c", code, **PRODUCTION, LAMPI_HTTPS="1")
    assert result.stdout.split() == ["True", "True", "False"], result.stderr


def test_production_without_secret_key_fails_with_one_clear_line():
    result = manage("check", **{**PRODUCTION, "LAMPI_SECRET_KEY": ""})
    assert result.returncode != 0
    assert "LAMPI_PRODUCTION=1 needs LAMPI_SECRET_KEY" in result.stderr


def test_local_defaults_are_debug_with_sqlite():
    code = "from django.conf import settings as s; print(s.DEBUG, s.DATABASES['default']['ENGINE'])"
    # The settings' own defaults, whatever the profile: without the settings it exported.
    result = manage("shell", "-v", "0", "-c", code, LAMPI_PRODUCTION="0", **dict.fromkeys(EXPORTED))
    assert result.stdout.split() == ["True", "django.db.backends.sqlite3"], result.stderr
