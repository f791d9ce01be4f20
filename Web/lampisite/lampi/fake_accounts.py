"""The fake accounts the load tests sign in as: their names, passwords, devices and password salts.

User n is `user_{n:06d}`, its password is its username reversed, and it owns device `0x1e0000000000 + n`.
loadtesting/lampi_load/accounts.py states the same convention for Locust; a test checks the two agree.
"""

import hashlib
import math

from django.utils.crypto import RANDOM_STRING_CHARS

DEVICE_ID_BASE = 0x1E0000000000
# Six digits in the username: user_000000 to user_999999.
ACCOUNTS_MAX = 1_000_000
# Mixed into each salt so the salts are this project's own, not anyone's sha256 of a bare username.
SALT_PREFIX = b"lampi fake account salt v1:"


def fake_username(n: int) -> str:
    """`user_000233` for n = 233."""
    return f"user_{n:06d}"


def fake_password(n: int) -> str:
    """The username reversed: `332000_resu`."""
    return fake_username(n)[::-1]


def fake_device_id(n: int) -> str:
    """The device user n owns: `1e00000000e9` for n = 233."""
    return f"{DEVICE_ID_BASE + n:012x}"


def fake_salt(n: int, entropy: int = 128) -> str:
    """User n's password salt: `entropy` bits (a hasher's salt_entropy) of base62, derived from its username.

    The same characters and length as Django's random salts (22 for 128 bits), so Django's must_update finds the
    salt long enough; derived rather than random, so a set of hashes can be computed once and shipped. These
    passwords are public by design: a known salt takes nothing away from them.
    """
    if entropy > 512:
        raise ValueError(f"A salt of {entropy} bits is more than the 512 bits of SHA-512.")
    length = math.ceil(entropy / math.log2(len(RANDOM_STRING_CHARS)))
    number = int.from_bytes(hashlib.sha512(SALT_PREFIX + fake_username(n).encode()).digest(), "big")
    digits = []
    for _ in range(length):
        number, digit = divmod(number, len(RANDOM_STRING_CHARS))
        digits.append(RANDOM_STRING_CHARS[digit])
    return "".join(digits)
