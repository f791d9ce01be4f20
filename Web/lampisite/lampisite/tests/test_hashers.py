"""The tuned profile's password hasher stores Argon2id at OWASP's parameters and round-trips passwords."""

import argon2
from django.contrib.auth.hashers import check_password, identify_hasher, make_password

OWASP = ["lampisite.hashers.OwaspArgon2PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def test_hash_is_argon2id_with_owasp_parameters(settings):
    settings.PASSWORD_HASHERS = OWASP
    encoded = make_password("000000_resu")
    parameters = argon2.extract_parameters(encoded.removeprefix("argon2"))
    assert parameters.type is argon2.Type.ID
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (19 * 1024, 2, 1)
    assert check_password("000000_resu", encoded)
    assert not check_password("user_000000", encoded)


def test_no_rehash_needed_for_its_own_hashes(settings):
    settings.PASSWORD_HASHERS = OWASP
    encoded = make_password("000000_resu")
    assert not identify_hasher(encoded).must_update(encoded)


def test_pbkdf2_hashes_still_verify_and_are_upgraded_on_login(settings):
    settings.PASSWORD_HASHERS = list(reversed(OWASP))
    old = make_password("000000_resu")
    settings.PASSWORD_HASHERS = OWASP
    upgraded = []
    assert check_password("000000_resu", old, setter=upgraded.append)
    assert upgraded == ["000000_resu"]
