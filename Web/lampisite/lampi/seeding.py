"""Seeding the fake accounts (see fake_accounts): creates what a range lacks and refreshes stale password hashes.

The range is walked in chunks, so memory stays bounded whatever the count and the progress bar starts at once.
A password hash comes from the shipped set when it covers the account (hash_sets), else it is computed on all
cores (hashing). Each write is one transaction: Ctrl-C or kill -9 leaves whole accounts, and a re-run goes on.
"""

import signal
import threading
from collections import deque
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import get_hasher, identify_hasher, is_password_usable
from django.db import transaction

from .fake_accounts import ACCOUNTS_MAX, DEVICE_ID_BASE, fake_device_id, fake_password, fake_username
from .hash_sets import HashSet
from .hashing import QUEUED_PER_WORKER, Hashers, ProgressBar
from .models import Lampi

__all__ = ["fake_device_id", "fake_password", "fake_username", "seed", "SeedingError", "Tally"]

# Accounts looked up per query, and written per transaction when their hashes are precomputed (below SQLite's
# limit on query parameters; about 0.1 s of writing).
CHUNK_SIZE = 1000
# Accounts hashed and written per transaction when hashing: about 5 s of PBKDF2, so Ctrl-C and kill -9 lose little.
BATCH_SIZE = 20


class SeedingError(ValueError):
    """A range that cannot be seeded as asked; nothing was written."""


@dataclass
class Tally:
    """What a seeding did, in accounts."""

    created: int = 0
    """Users created with their devices."""
    devices_added: int = 0
    """Devices created for users that existed without theirs (an older, interrupted seeding or a hand-made user)."""
    refreshed: int = 0
    """Users whose stored hash Django would have re-hashed at their next login, now hashed as the site hashes."""
    present: int = 0
    """Accounts complete and current already."""
    hashed: int = 0
    """Of the created and refreshed, those whose hash was computed rather than taken from the shipped set."""


def check_range(start: int, count: int) -> None:
    """SeedingError unless [start, start + count) is a range of fake accounts the naming convention can express."""
    for name, value in (("count", count), ("start", start)):
        if value < 0:
            raise SeedingError(f"--{name} must be 0 or more, not {value}.")
    if start + count > ACCOUNTS_MAX:
        raise SeedingError(
            f"--start + --count must be at most {ACCOUNTS_MAX:,}: usernames have six digits (user_000000 to "
            f"user_{ACCOUNTS_MAX - 1}), and {start:,} + {count:,} is {start + count:,}."
        )


def check_devices(start: int, count: int) -> None:
    """SeedingError if a device of the range belongs to anyone but its fake user."""
    # Device ids are 12 lowercase hex digits, so the string order is the numeric order.
    in_range = Lampi.objects.filter(device_id__gte=fake_device_id(start), device_id__lt=fake_device_id(start + count))
    for device_id, owner in in_range.values_list("device_id", "user__username").iterator(chunk_size=CHUNK_SIZE):
        n = int(device_id, 16) - DEVICE_ID_BASE
        if owner != fake_username(n):
            raise SeedingError(
                f"Device {device_id} belongs to {owner}, not {fake_username(n)}: "
                "delete it, or seed another range with --start."
            )


def is_stale(encoded: str, preferred) -> bool:
    """Whether a successful login would re-hash and save this stored hash (Django's hashers.check_password)."""
    if not is_password_usable(encoded):
        return False
    try:
        hasher = identify_hasher(encoded)
    except ValueError:  # no configured hasher reads it: a login fails rather than re-hashes
        return False
    return hasher.algorithm != preferred.algorithm or preferred.must_update(encoded)


@dataclass
class Survey:
    """What one chunk of the range lacks, by account number."""

    new_users: list[int]
    new_devices: list[int]
    stale: list[int]
    present: int


def survey(ns: range, hasher) -> Survey:
    """Looks up the users and devices of accounts `ns` (at most CHUNK_SIZE) in two queries."""
    names = [fake_username(n) for n in ns]
    passwords = dict(get_user_model().objects.filter(username__in=names).values_list("username", "password"))
    owned = set(Lampi.objects.filter(device_id__in=[fake_device_id(n) for n in ns]).values_list("device_id", flat=True))
    todo = Survey([], [], [], 0)
    for n in ns:
        if fake_username(n) not in passwords:
            todo.new_users.append(n)
            continue
        if fake_device_id(n) not in owned:
            todo.new_devices.append(n)
        if is_stale(passwords[fake_username(n)], hasher):
            todo.stale.append(n)
        elif fake_device_id(n) in owned:
            todo.present += 1
    return todo


def write(hashes: dict[int, str], stale: set[int], devices: list[int]) -> None:
    """In one transaction: creates the users of `hashes` not in `stale`, re-sets the passwords of those in `stale`,
    and creates the devices of the new users and of `devices`."""
    if not hashes and not devices:
        return
    User = get_user_model()
    new = [n for n in hashes if n not in stale]
    with transaction.atomic():
        User.objects.bulk_create(User(username=fake_username(n), password=hashes[n]) for n in new)
        for n in stale:
            User.objects.filter(username=fake_username(n)).update(password=hashes[n])
        owners = [fake_username(n) for n in new + devices]
        ids = dict(User.objects.filter(username__in=owners).values_list("username", "id"))
        Lampi.objects.bulk_create(
            Lampi(device_id=fake_device_id(n), user_id=ids[fake_username(n)]) for n in new + devices
        )


def seed(
    start: int, count: int, hash_set: HashSet | None, *, workers: int | None = None, progress: bool = True
) -> Tally:
    """Completes accounts [start, start + count): SeedingError before any write if the range cannot be seeded."""
    check_range(start, count)
    tally = Tally()
    hasher = get_hasher()
    covered = len(hash_set) if hash_set is not None else 0
    bar = ProgressBar(total=count, unit="account", desc="Seeding", disable=not progress)
    with bar, Hashers(hasher, workers) as pool, Interruption() as interruption:
        check_devices(start, count)
        queued: deque = deque()
        for first in range(start, start + count, CHUNK_SIZE):
            todo = survey(range(first, min(first + CHUNK_SIZE, start + count)), hasher)
            tally.created += len(todo.new_users)
            tally.devices_added += len(todo.new_devices)
            tally.refreshed += len(todo.stale)
            tally.present += todo.present
            to_hash = todo.new_users + todo.stale
            ready = [n for n in to_hash if n < covered]
            write({n: hash_set.encoded(n) for n in ready}, set(todo.stale), todo.new_devices)
            # Each account advances the bar once; a stale user when its new hash is written, device or not.
            bar.update(len(set(todo.new_devices) - set(todo.stale)) + todo.present + len(ready))
            interruption.check()
            unready = [n for n in to_hash if n >= covered]
            tally.hashed += len(unready)
            for i in range(0, len(unready), BATCH_SIZE):
                batch = unready[i : i + BATCH_SIZE]
                queued.append((pool.submit(batch), set(todo.stale) & set(batch)))
                while queued and (len(queued) >= QUEUED_PER_WORKER * pool.workers or queued[0][0].done()):
                    finish(queued.popleft(), bar)
                    interruption.check()
        while queued:
            finish(queued.popleft(), bar)
            interruption.check()
    return tally


class Interruption:
    """Holds a Ctrl-C until the write under way has committed, then raises KeyboardInterrupt (`check()`).

    A KeyboardInterrupt raised in the middle of a query can land in one of the Python functions Django registers
    with SQLite, which reports it as an OperationalError, not as an interruption. A second Ctrl-C is not held.
    """

    def __enter__(self) -> "Interruption":
        self.asked = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum, frame) -> None:
        self.asked = True
        signal.signal(signal.SIGINT, self.previous)

    def check(self) -> None:
        """Raises KeyboardInterrupt if Ctrl-C came since the last check."""
        if self.asked:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def finish(hashing, bar) -> None:
    """Writes one hashed batch once its hashes are ready."""
    future, stale = hashing
    hashes = future.result()
    write(hashes, stale, [])
    bar.update(len(hashes))
