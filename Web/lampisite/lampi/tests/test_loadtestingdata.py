"""`./manage.py loadtestingdata`: the exact set of fake accounts, idempotent, complete after an interruption."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from lampi.models import Lampi
from lampi.seeding import fake_device_id, fake_password, fake_username
from lampi_load import accounts
from testing.site_database import SiteDatabase

from .factories import make_lampi, make_user

SITE_DIR = Path(__file__).resolve().parents[2]
FAST = "django.contrib.auth.hashers.MD5PasswordHasher"
SLOW = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
BAD_INPUTS = [["--count", "-1"], ["--count", "abc"], ["--start", "-3"], ["--start", "248489627877370"]]


@pytest.fixture
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = [FAST]


def accounts_in_database():
    """(username, device id) pairs, one per user and device: a user without a device shows with None."""
    return sorted(get_user_model().objects.values_list("username", "lampis__device_id"))


def expected(ns):
    return sorted((fake_username(n), fake_device_id(n)) for n in ns)


def snapshot():
    users = get_user_model().objects.order_by("id").values_list("id", "username", "password", "date_joined")
    lampis = Lampi.objects.order_by("device_id").values_list("device_id", "user_id", "association_code", "created_at")
    return list(users), list(lampis)


def test_naming_agrees_with_the_load_tests():
    for n in [0, 1, 233, 9999, 123_456]:
        assert fake_username(n) == accounts.fake_username(n)
        assert fake_password(n) == accounts.fake_password(n)
        assert fake_device_id(n) == accounts.fake_device_id(n)
    assert (fake_username(233), fake_password(233), fake_device_id(233)) == (
        "user_000233",
        "332000_resu",
        "1e00000000e9",
    )


@pytest.mark.django_db
def test_creates_each_user_with_exactly_its_device(fast_hasher):
    call_command("loadtestingdata", count=45, verbosity=0)
    assert accounts_in_database() == expected(range(45))
    user = get_user_model().objects.get(username="user_000044")
    assert user.password.startswith("md5$"), "hashed with the site's configured hasher"
    assert user.check_password("440000_resu")


@pytest.mark.django_db
def test_start_seeds_only_its_range(fast_hasher):
    call_command("loadtestingdata", "--start", "233", "--count", "2", verbosity=0)
    assert accounts_in_database() == [("user_000233", "1e00000000e9"), ("user_000234", "1e00000000ea")]


@pytest.mark.django_db
def test_rerun_changes_nothing(fast_hasher, capsys):
    call_command("loadtestingdata", count=30, verbosity=0)
    before = snapshot()
    call_command("loadtestingdata", count=30, verbosity=0)
    assert snapshot() == before
    assert "0 users created with their devices, 0 devices added to existing users, 30 already present" in (
        capsys.readouterr().out
    )


@pytest.mark.django_db
def test_rerun_completes_a_larger_range_and_a_user_without_device(fast_hasher):
    call_command("loadtestingdata", count=10, verbosity=0)
    hand_made = make_user("user_000012", password="kept as it is")
    before = snapshot()
    call_command("loadtestingdata", count=25, verbosity=0)
    assert accounts_in_database() == expected(range(25))
    users, lampis = snapshot()
    assert (users[:10], lampis[:10]) == (before[0][:10], before[1][:10])
    hand_made.refresh_from_db()
    assert hand_made.check_password("kept as it is")


@pytest.mark.django_db
def test_device_owned_by_someone_else_is_an_error_and_writes_nothing(fast_hasher):
    make_lampi(fake_device_id(7))
    with pytest.raises(CommandError, match="Device 1e0000000007 belongs to parked_device_user, not user_000007"):
        call_command("loadtestingdata", count=10, verbosity=0)
    assert not get_user_model().objects.filter(username__startswith="user_").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("arguments", BAD_INPUTS)
def test_bad_input_is_a_command_error_and_writes_nothing(fast_hasher, arguments):
    with pytest.raises(CommandError) as error:
        call_command("loadtestingdata", *arguments)
    assert "\n" not in str(error.value)
    assert not get_user_model().objects.exists()
    assert not Lampi.objects.exists()


@pytest.mark.django_db
def test_seeded_user_signs_in_through_the_login_form_with_csrf():
    # The site's own hasher (the profile's): the password hash is the one the login page checks.
    call_command("loadtestingdata", start=233, count=1, verbosity=0)
    client = Client(enforce_csrf_checks=True)
    form = client.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = client.post(
        "/login/", {"username": "user_000233", "password": "332000_resu", "csrfmiddlewaretoken": token}
    )
    assert (response.status_code, response["Location"]) == (302, "/lampi/")
    assert b"1e00000000e9" in client.get("/lampi/").content


# ---------------------------------------------------------------- The real command, in its own process


def site_env(database: SiteDatabase, hasher: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "lampisite.settings",
        **database.env,
        "LAMPI_PASSWORD_HASHERS": hasher,
    }


def manage(*arguments, env, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "manage.py", *arguments]
    return subprocess.run(command, cwd=SITE_DIR, env=env, capture_output=True, text=True, timeout=300, **kwargs)


def accounts_stored(database: SiteDatabase) -> list[tuple]:
    sql = "SELECT username, device_id FROM auth_user LEFT JOIN lampi_lampi ON lampi_lampi.user_id = auth_user.id"
    return sorted(database.rows(sql))


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    database = SiteDatabase.create(tmp_path_factory.mktemp("seeding"))
    manage("migrate", "-v0", env=site_env(database, FAST), check=True)
    yield database
    database.drop()


@pytest.fixture
def migrated_copy(tmp_path, migrated):
    database = migrated.copy(tmp_path)
    yield database
    database.drop()


@pytest.mark.parametrize("arguments", BAD_INPUTS)
def test_bad_input_on_the_command_line_is_one_line_and_a_failure(migrated, arguments):
    result = manage("loadtestingdata", *arguments, env=site_env(migrated, FAST))
    assert result.returncode == 1
    assert re.fullmatch(r"CommandError: [^\n]+\n", result.stderr), result.stderr
    assert accounts_stored(migrated) == []


@pytest.mark.slow
def test_killed_run_then_rerun_leaves_exactly_the_full_set(migrated_copy):
    database = migrated_copy
    count = 100
    command = [sys.executable, "manage.py", "loadtestingdata", f"--count={count}"]
    run = subprocess.Popen(
        command, cwd=SITE_DIR, env=site_env(database, SLOW), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not database.rows("SELECT count(*) FROM auth_user")[0][0]:
            assert run.poll() is None, "the seeding ended before any batch was seen"
            assert time.monotonic() < deadline, "no batch committed within 120 s"
            time.sleep(0.05)
    finally:
        run.kill()  # kill -9, mid-way: some batches committed, others being hashed or written
        run.wait()
    seeded = len(accounts_stored(database))
    assert 0 < seeded < count, f"{seeded} accounts when killed: not mid-way"

    result = manage("loadtestingdata", f"--count={count}", env=site_env(database, f"{FAST},{SLOW}"))
    assert result.returncode == 0, result.stderr
    assert f"{count - seeded} users created" in result.stdout
    assert accounts_stored(database) == expected(range(count))
