"""`./manage.py loadtestingdata`: the exact set of fake accounts, signing in at a login's real cost, idempotent,
complete after an interruption, and quick to refuse or show progress whatever the count."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher
from django.core.management import CommandError, call_command
from django.test import Client

from lampi.fake_accounts import fake_salt
from lampi.models import Lampi
from lampi.seeding import fake_device_id, fake_password, fake_username
from lampi_load import accounts
from testing.site_database import SiteDatabase

from .factories import make_lampi, make_user

SITE_DIR = Path(__file__).resolve().parents[2]
FAST = "django.contrib.auth.hashers.MD5PasswordHasher"
# Slow enough to kill mid-way, and without a shipped set, so the seeding hashes on all cores.
UNSHIPPED = "lampi.tests.hashers.UnshippedPBKDF2PasswordHasher"
OVER_RANGE = [["--count", "999999999999"], ["--start", "999999", "--count", "2"], ["--start", "248489627877370"]]
BAD_INPUTS = [["--count", "-1"], ["--count", "abc"], ["--start", "-3"], *OVER_RANGE]


@pytest.fixture
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = [FAST]


def accounts_in_database():
    """(username, device id) pairs, one per user and device: a user without a device shows with None."""
    return sorted(get_user_model().objects.values_list("username", "lampis__device_id"))


def expected(ns):
    return sorted((fake_username(n), fake_device_id(n)) for n in ns)


def summary(created: int, devices: int, refreshed: int, present: int) -> str:
    """The start of the command's closing line."""
    return (
        f"{created} users created with their devices, {devices} devices added to existing users, "
        f"{refreshed} stale password hashes refreshed, {present} already present"
    )


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
    assert not get_hasher().must_update(user.password), "a salt Django keeps at login"


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
    assert summary(created=0, devices=0, refreshed=0, present=30) in capsys.readouterr().out


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
@pytest.mark.parametrize("arguments", OVER_RANGE)
def test_a_range_past_user_999999_is_refused_at_once(fast_hasher, arguments):
    started = time.perf_counter()
    with pytest.raises(CommandError, match=r"--start \+ --count must be at most 1,000,000: usernames have six"):
        call_command("loadtestingdata", *arguments)
    assert time.perf_counter() - started < 1, "refused before any planning"
    assert not get_user_model().objects.exists()


def sign_in(n: int) -> Client:
    """A client signed in as fake user n through the real login form, CSRF checked; fails if the login fails."""
    client = Client(enforce_csrf_checks=True)
    form = client.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = client.post(
        "/login/", {"username": fake_username(n), "password": fake_password(n), "csrfmiddlewaretoken": token}
    )
    assert (response.status_code, response["Location"]) == (302, "/lampi/"), f"{fake_username(n)} did not sign in"
    return client


def stored_hash(n: int) -> str:
    return get_user_model().objects.get(username=fake_username(n)).password


def real_hash(n: int) -> str:
    """What the site's hasher (the profile's) computes for fake user n: one real hash."""
    hasher = get_hasher()
    return hasher.encode(fake_password(n), fake_salt(n, hasher.salt_entropy))


@pytest.mark.django_db
def test_seeded_user_signs_in_through_the_login_form_and_its_hash_is_kept():
    # The site's own hasher (the profile's), its hashes taken from the shipped set.
    call_command("loadtestingdata", start=233, count=1, verbosity=0)
    seeded = stored_hash(233)
    assert seeded == real_hash(233), "the very string the configured hasher writes"
    assert not get_hasher().must_update(seeded)
    client = sign_in(233)
    assert b"1e00000000e9" in client.get("/lampi/").content
    assert stored_hash(233) == seeded, "not re-hashed at login"


@pytest.mark.django_db
def test_accounts_past_the_shipped_set_are_hashed_and_sign_in(capsys):
    call_command("loadtestingdata", start=9999, count=2, verbosity=0)
    assert "(1 passwords hashed, 1 hashes from the shipped set)" in capsys.readouterr().out
    assert [stored_hash(9999), stored_hash(10_000)] == [real_hash(9999), real_hash(10_000)]


@pytest.mark.django_db
def test_rerun_refreshes_a_hash_the_login_would_rehash(capsys):
    # Django 5.1's iterations: Django 5.2 re-hashes it at the first login (a hash and a write per user).
    older = PBKDF2PasswordHasher().encode(fake_password(0), "an0lderSaltOf22chars00", iterations=870_000)
    get_user_model().objects.create(username=fake_username(0), password=older)
    call_command("loadtestingdata", count=1, verbosity=0)
    assert summary(created=0, devices=1, refreshed=1, present=0) in capsys.readouterr().out
    refreshed = stored_hash(0)
    assert refreshed == real_hash(0)
    sign_in(0)
    assert stored_hash(0) == refreshed, "not re-hashed at login"


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
        command, cwd=SITE_DIR, env=site_env(database, UNSHIPPED), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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
    assert accounts_stored(database) == expected(range(seeded)), "whole accounts only, in order"

    result = manage("loadtestingdata", f"--count={count}", env=site_env(database, f"{FAST},{UNSHIPPED}"))
    assert result.returncode == 0, result.stderr
    # The killed run's hashes are another algorithm's now: the re-run refreshes them too.
    assert summary(created=count - seeded, devices=0, refreshed=seeded, present=0) in result.stdout
    assert accounts_stored(database) == expected(range(count))


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def test_a_million_accounts_show_progress_at_once_in_bounded_memory_and_stop_cleanly_on_ctrl_c(migrated_copy):
    command = [sys.executable, "manage.py", "loadtestingdata", "--count=1000000"]
    run = subprocess.Popen(
        command, cwd=SITE_DIR, env=site_env(migrated_copy, FAST), stderr=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        started, bar = time.monotonic(), b""
        os.set_blocking(run.stderr.fileno(), False)
        # Until the bar counts accounts done: the planning streams, it does not come first.
        while not re.search(rb"Seeding: +\d+%\|[^|]*\| [1-9]\d*/1000000 \[\d\d:\d\d<", bar):
            assert run.poll() is None, bar.decode()
            assert time.monotonic() - started < 10, f"no progress within 10 s: {bar.decode()!r}"
            time.sleep(0.05)
            bar += run.stderr.read() or b""
        first_progress = time.monotonic() - started
        time.sleep(2)
        peak = peak_memory_mb(run.pid)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=30)
    finally:
        run.kill()
        run.wait()
    # Django's start-up is most of it; the old planning of a million accounts took about 10 s before its bar.
    assert first_progress < 4, f"first progress after {first_progress:.1f} s"
    assert peak < 150, f"{peak:.0f} MB at its peak"
    assert (run.returncode, err.decode().splitlines()[-1]) == (
        1,
        "CommandError: Interrupted: run the command again to create the rest.",
    )
    seeded = len(accounts_stored(migrated_copy))
    assert 0 < seeded < 1_000_000
    assert accounts_stored(migrated_copy) == expected(range(seeded)), "whole accounts only, in order"
