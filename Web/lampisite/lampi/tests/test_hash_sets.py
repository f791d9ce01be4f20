"""The shipped password hashes: exactly what the real hashers compute, for salts Django keeps at login."""

import random

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from lampi import hash_sets
from lampi.fake_accounts import fake_password, fake_salt
from lampisite.hashers import OwaspArgon2PasswordHasher

from .hashers import QuickPBKDF2PasswordHasher

SHIPPED_ACCOUNTS = 10_000
# Accounts recomputed per set with the real hasher: PBKDF2 costs 0.24 s of CPU each, Argon2 (OWASP) about 0.03 s.
SAMPLES = {"pbkdf2_sha256-i1000000": 3, "argon2-id-v19-m19456-t2-p1-h32": 12}
# The hashers the profiles use first: Django 5.2's default (baseline) and OWASP's Argon2id (tuned).
PROFILE_HASHERS = [PBKDF2PasswordHasher(), OwaspArgon2PasswordHasher()]


def test_each_profiles_hasher_has_a_full_shipped_set_and_nothing_else_is_shipped():
    names = sorted(path.name for path in hash_sets.DIRECTORY.iterdir())
    assert names == sorted(hash_sets.path_for(hasher).name for hasher in PROFILE_HASHERS)
    for hasher in PROFILE_HASHERS:
        assert len(hash_sets.shipped(hasher)) == SHIPPED_ACCOUNTS


@pytest.mark.parametrize("hasher", PROFILE_HASHERS, ids=hash_sets.identity)
def test_a_random_sample_of_the_shipped_set_is_what_the_real_hasher_computes(hasher):
    found = hash_sets.shipped(hasher)
    ns = [0, SHIPPED_ACCOUNTS - 1, *random.sample(range(1, SHIPPED_ACCOUNTS - 1), SAMPLES[hash_sets.identity(hasher)])]
    for n in ns:
        encoded = found.encoded(n)
        assert encoded == hasher.encode(fake_password(n), fake_salt(n)), f"account {n}"
        assert not hasher.must_update(encoded), f"account {n}: Django would re-hash it at login"


def test_salts_are_derived_per_account_and_as_long_as_djangos():
    salts = [fake_salt(n) for n in range(1000)]
    assert len(set(salts)) == 1000
    assert {len(salt) for salt in salts} == {len(PBKDF2PasswordHasher().salt())} == {22}
    assert fake_salt(233) == fake_salt(233)
    assert len(fake_salt(233, entropy=256)) == 43


def test_a_rebuilt_hash_equals_encode_for_each_family():
    for hasher in [QuickPBKDF2PasswordHasher(), OwaspArgon2PasswordHasher()]:
        encoded = hasher.encode(fake_password(7), fake_salt(7))
        assert hash_sets.encode(hasher, 7, hash_sets.digest_of(encoded)) == encoded
        assert len(hash_sets.digest_of(encoded)) == hash_sets.digest_size(hasher)


def test_a_set_that_does_not_verify_is_not_used(tmp_path):
    hasher = QuickPBKDF2PasswordHasher()
    hash_sets.path_for(hasher, tmp_path).write_bytes(bytes(hash_sets.digest_size(hasher) * 3))
    with pytest.raises(hash_sets.NoHashSet, match="do not verify with pbkdf2_sha256-i1000$"):
        hash_sets.shipped(hasher, tmp_path)


def test_a_hasher_outside_both_families_has_no_set():
    from django.contrib.auth.hashers import MD5PasswordHasher

    assert hash_sets.identity(MD5PasswordHasher()) is None
    with pytest.raises(hash_sets.NoHashSet, match="MD5PasswordHasher"):
        hash_sets.shipped(MD5PasswordHasher())
