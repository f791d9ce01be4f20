"""Precomputed password hashes of the fake accounts, one file per hasher identity, shipped in lampi/data/hash_sets/.

A fake account's hash depends only on its password, its salt and the hasher's parameters; with the salt derived
from the username (fake_accounts.fake_salt), the hashes are the same on every machine. A set stores only the raw
digest of each account, user n at offset n x digest size; the encoded string (algorithm, parameters, salt, digest)
is rebuilt exactly as the hasher's encode() would write it. `./manage.py loadtestinghashes` computes a set.
"""

import base64
import random
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.hashers import Argon2PasswordHasher, PBKDF2PasswordHasher

from .fake_accounts import fake_password, fake_salt

DIRECTORY = Path(__file__).resolve().parent / "data" / "hash_sets"


def identity(hasher) -> str | None:
    """The algorithm and parameters the hashes depend on, as a file name stem; None for a hasher without sets."""
    if isinstance(hasher, PBKDF2PasswordHasher):
        return f"{hasher.algorithm}-i{hasher.iterations}"
    if isinstance(hasher, Argon2PasswordHasher):
        p = hasher.params()
        costs = f"m{p.memory_cost}-t{p.time_cost}-p{p.parallelism}"
        return f"{hasher.algorithm}-{p.type.name.lower()}-v{p.version}-{costs}-h{p.hash_len}"
    return None


def digest_size(hasher) -> int:
    """Bytes of one raw digest."""
    if isinstance(hasher, PBKDF2PasswordHasher):
        return hasher.digest().digest_size
    return hasher.params().hash_len


def encode(hasher, n: int, digest: bytes) -> str:
    """What hasher.encode(fake_password(n), fake_salt(n)) returns, built from the digest without hashing."""
    salt = fake_salt(n, hasher.salt_entropy)
    if isinstance(hasher, PBKDF2PasswordHasher):
        return f"{hasher.algorithm}${hasher.iterations}${salt}${base64.b64encode(digest).decode('ascii')}"
    # argon2-cffi's encoding: unpadded standard base64 of the salt's bytes and of the digest.
    p = hasher.params()
    parameters = f"m={p.memory_cost},t={p.time_cost},p={p.parallelism}"
    return (
        f"{hasher.algorithm}$argon2{p.type.name.lower()}$v={p.version}${parameters}${b64(salt.encode())}${b64(digest)}"
    )


def digest_of(encoded: str) -> bytes:
    """The raw digest in an encoded hash of either family: its last `$` field, base64."""
    field = encoded.rsplit("$", 1)[1]
    return base64.b64decode(field + "=" * (-len(field) % 4))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def path_for(hasher, directory: Path = DIRECTORY) -> Path | None:
    """Where the set of `hasher` is (or would be written); None for a hasher without sets."""
    stem = identity(hasher)
    return None if stem is None else directory / f"{stem}.bin"


@dataclass(frozen=True)
class HashSet:
    """The digests of accounts 0 to len - 1 for one hasher identity."""

    hasher: object
    digests: bytes
    name: str

    def __len__(self) -> int:
        return len(self.digests) // digest_size(self.hasher)

    def encoded(self, n: int) -> str:
        """Account n's encoded hash; IndexError beyond the set."""
        if not 0 <= n < len(self):
            raise IndexError(f"Account {n} is not in the set of {len(self)}.")
        size = digest_size(self.hasher)
        return encode(self.hasher, n, self.digests[n * size : (n + 1) * size])

    def verifies(self, ns) -> bool:
        """Whether the hasher, as a login would, accepts each account's password against its stored hash."""
        return all(self.hasher.verify(fake_password(n), self.encoded(n)) for n in ns)


class NoHashSet(LookupError):
    """No usable shipped set for the configured hasher: the passwords are hashed instead."""


def shipped(hasher, directory: Path = DIRECTORY) -> HashSet:
    """The shipped set for `hasher`, after checking one random account of it with a real hash; else NoHashSet."""
    path = path_for(hasher, directory)
    name = identity(hasher) or f"{type(hasher).__module__}.{type(hasher).__qualname__}"
    if path is None or not path.exists():
        raise NoHashSet(f"No precomputed password hashes for {name}")
    found = HashSet(hasher, path.read_bytes(), path.name)
    # One real hash (0.24 s with PBKDF2) guards against a hasher that shares the identity but not the encoding.
    if not len(found) or not found.verifies([random.randrange(len(found))]):
        raise NoHashSet(f"The precomputed password hashes in {path.name} do not verify with {name}")
    return found
