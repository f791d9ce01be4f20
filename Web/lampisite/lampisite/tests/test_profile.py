"""The suite runs the site in the profile LAMPI_PROFILE names (testing/site_profile.py), on real servers: the
profile's database, the place it keeps signed-in sessions, and the hasher of new passwords."""

import pymemcache
import pytest
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection

from lampi.tests.factories import make_user
from testing.site_profile import PROFILE

# Each profile's database vendor, session engine, and the start of a new password's hash.
PROFILES = {
    "baseline": ("sqlite", "django.contrib.sessions.backends.db", "pbkdf2_sha256$"),
    # Argon2id at OWASP's parameters: 19 MiB, 2 iterations, 1 lane.
    "tuned": ("postgresql", "django.contrib.sessions.backends.cached_db", "argon2$argon2id$v=19$m=19456,t=2,p=1$"),
}
VENDOR, SESSION_ENGINE, HASH_START = PROFILES[PROFILE]

pytestmark = pytest.mark.django_db


def sign_in(client) -> str:
    """Signs a new user in through the login form; returns the session key."""
    make_user("alice", password="correct horse battery")
    response = client.post("/login/", {"username": "alice", "password": "correct horse battery"})
    assert (response.status_code, response["Location"]) == (302, "/lampi/")
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_the_database_is_the_profiles():
    assert connection.vendor == VENDOR
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_new_password_is_hashed_by_the_profiles_first_hasher():
    assert make_user(password="correct horse battery").password.startswith(HASH_START)


def test_a_session_is_written_to_the_database_and_read_from_memcached_when_cached(client):
    assert settings.SESSION_ENGINE == SESSION_ENGINE
    key = sign_in(client)
    assert Session.objects.filter(session_key=key).exists()
    if SESSION_ENGINE.endswith(".cached_db"):
        # The memcached server itself holds the session, under the key Django's cache gives it.
        memcached = pymemcache.Client(settings.CACHES["default"]["LOCATION"])
        cached = cache.make_key(KEY_PREFIX + key)
        assert memcached.get(cached) is not None
        # An evicted entry costs one database read, not the sign-in: it was written through.
        memcached.delete(cached)
        assert client.get("/lampi/").status_code == 200
        assert memcached.get(cached) is not None
