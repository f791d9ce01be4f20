"""Argon2id at OWASP's recommended parameters: the tuned profile's password hasher.

OWASP's Password Storage Cheat Sheet recommends Argon2id with, at minimum, 19 MiB of memory, 2 iterations and
1 degree of parallelism. Django's own Argon2PasswordHasher uses 100 MiB and parallelism 8, which on a 2-core
server costs several times more CPU per login without a matching gain against an attacker with GPUs; PBKDF2 at
Django 5.2's 1,000,000 iterations costs about 0.24 s of one core per login. The same algorithm name ("argon2")
is kept, so Django verifies old hashes with their own stored parameters and upgrades them on login.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id, m=19 MiB, t=2, p=1 (OWASP's first recommended configuration)."""

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
