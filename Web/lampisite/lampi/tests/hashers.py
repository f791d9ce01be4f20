"""Password hashers for tests, importable by dotted path from a site process too (LAMPI_PASSWORD_HASHERS)."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class UnshippedPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 at 300,000 iterations (about 70 ms a password): no shipped set, so seeding hashes on all cores."""

    iterations = 300_000


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 at 1,000 iterations: a hasher of the PBKDF2 family whose sets a test can compute in a moment."""

    iterations = 1_000
