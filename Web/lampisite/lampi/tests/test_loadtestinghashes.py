"""`./manage.py loadtestinghashes`: writes the digests of the configured hasher, resuming an interrupted run."""

import pytest
from django.core.management import CommandError, call_command

from lampi import hash_sets
from lampi.fake_accounts import fake_password, fake_salt

from .hashers import QuickPBKDF2PasswordHasher

QUICK = "lampi.tests.hashers.QuickPBKDF2PasswordHasher"


def test_writes_a_set_the_seeding_uses_and_resumes_a_partial_one(settings, tmp_path):
    settings.PASSWORD_HASHERS = [QUICK]
    hasher = QuickPBKDF2PasswordHasher()
    first_two = b"".join(hash_sets.digest_of(hasher.encode(fake_password(n), fake_salt(n))) for n in range(2))
    # As a kill leaves it: two whole digests and the start of a third.
    partial = tmp_path / "pbkdf2_sha256-i1000.bin.partial"
    partial.write_bytes(first_two + b"\x00" * 5)
    call_command("loadtestinghashes", "--count", "7", "--directory", str(tmp_path), verbosity=0)
    assert not partial.exists()
    found = hash_sets.shipped(hasher, tmp_path)
    assert len(found) == 7
    assert found.digests.startswith(first_two)
    for n in range(7):
        assert found.encoded(n) == hasher.encode(fake_password(n), fake_salt(n)), f"account {n}"


def test_a_hasher_outside_both_families_is_a_command_error(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with pytest.raises(CommandError, match="MD5PasswordHasher has no precomputed sets"):
        call_command("loadtestinghashes", "--count", "3", "--directory", str(tmp_path), verbosity=0)
    assert list(tmp_path.iterdir()) == []
