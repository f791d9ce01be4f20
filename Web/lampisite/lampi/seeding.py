"""The fake accounts the load tests sign in as, and the seeding that creates what is missing of them.

User n is `user_{n:06d}`, its password is its username reversed, and it owns device `0x1e0000000000 + n`.
loadtesting/lampi_load/accounts.py states the same convention for Locust; a test checks the two agree.
"""

import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import get_hasher, make_password
from django.db import transaction
from tqdm import tqdm

from .models import Lampi

DEVICE_ID_BASE = 0x1E0000000000
# The largest device id: 12 hex digits.
DEVICE_ID_MAX = 0xFFFFFFFFFFFF
# Accounts written per transaction: about 5 s of PBKDF2 hashing, so Ctrl-C and kill -9 lose little.
BATCH_SIZE = 20
# Accounts looked up per query while planning (below SQLite's limit on query parameters).
LOOKUP_SIZE = 1000


class SeedingError(ValueError):
    """A range that cannot be seeded as asked; nothing was written."""


def fake_username(n: int) -> str:
    """`user_000233` for n = 233."""
    return f"user_{n:06d}"


def fake_password(n: int) -> str:
    """The username reversed: `332000_resu`."""
    return fake_username(n)[::-1]


def fake_device_id(n: int) -> str:
    """The device user n owns: `1e00000000e9` for n = 233."""
    return f"{DEVICE_ID_BASE + n:012x}"


@dataclass
class Plan:
    """What seeding the range [start, start + count) has left to do."""

    new_users: list[int] = field(default_factory=list)
    """Accounts with neither user nor device."""
    new_devices: list[int] = field(default_factory=list)
    """Users that exist without their device (an older, interrupted seeding or a hand-made user)."""
    present: int = 0
    """Accounts complete already."""


def plan(start: int, count: int) -> Plan:
    """Finds what is missing in the range; SeedingError if the range is invalid or a device has another owner."""
    for name, value in (("count", count), ("start", start)):
        if value < 0:
            raise SeedingError(f"--{name} must be 0 or more, not {value}.")
    if DEVICE_ID_BASE + start + count - 1 > DEVICE_ID_MAX:
        limit = DEVICE_ID_MAX - DEVICE_ID_BASE + 1
        raise SeedingError(f"--start + --count must be at most {limit}: device ids have 12 hex digits.")
    todo = Plan()
    for first in range(start, start + count, LOOKUP_SIZE):
        ns = range(first, min(first + LOOKUP_SIZE, start + count))
        names, device_ids = [fake_username(n) for n in ns], [fake_device_id(n) for n in ns]
        users = set(get_user_model().objects.filter(username__in=names).values_list("username", flat=True))
        owners = dict(Lampi.objects.filter(device_id__in=device_ids).values_list("device_id", "user__username"))
        for n in ns:
            owner = owners.get(fake_device_id(n))
            if owner not in (None, fake_username(n)):
                raise SeedingError(
                    f"Device {fake_device_id(n)} belongs to {owner}, not {fake_username(n)}: "
                    "delete it, or seed another range with --start."
                )
            if fake_username(n) not in users:
                todo.new_users.append(n)
            elif owner is None:
                todo.new_devices.append(n)
            else:
                todo.present += 1
    return todo


def seed(todo: Plan, *, workers: int | None = None, progress: bool = True) -> None:
    """Creates the planned users and devices, one transaction per batch; passwords are hashed on all cores."""
    for i in range(0, len(todo.new_devices), LOOKUP_SIZE):
        write(todo.new_devices[i : i + LOOKUP_SIZE], {})
    if not todo.new_users:
        return
    batches = [todo.new_users[i : i + BATCH_SIZE] for i in range(0, len(todo.new_users), BATCH_SIZE)]
    workers = min(workers or os.cpu_count() or 1, len(batches))
    # The site's configured hasher goes to the workers, so their hashes are the ones the login page checks.
    pool = ProcessPoolExecutor(workers, initializer=start_worker, initargs=(get_hasher(), os.getpid()))
    try:
        # Submitted before tqdm starts its monitor thread, so the workers are forked from a single thread.
        hashed = pool.map(hash_passwords, batches)
        with tqdm(total=len(todo.new_users), unit="user", desc="Seeding", disable=not progress) as bar:
            for passwords in hashed:
                write(list(passwords), passwords)
                bar.update(len(passwords))
    finally:
        # On Ctrl-C, the workers finish their current batch only.
        pool.shutdown(cancel_futures=True)


def write(ns: list[int], passwords: dict[int, str]) -> None:
    """Creates users (for the numbers in `passwords`) and the devices of all `ns`, together or not at all."""
    User = get_user_model()
    with transaction.atomic():
        User.objects.bulk_create(User(username=fake_username(n), password=hashed) for n, hashed in passwords.items())
        ids = dict(User.objects.filter(username__in=[fake_username(n) for n in ns]).values_list("username", "id"))
        Lampi.objects.bulk_create(Lampi(device_id=fake_device_id(n), user_id=ids[fake_username(n)]) for n in ns)


# The hasher of this worker process, set by start_worker().
_hasher = None


def start_worker(hasher, parent: int) -> None:
    """Sets up a hashing process: the site's hasher; Ctrl-C is the parent's to handle; dies with the parent."""
    global _hasher
    _hasher = hasher
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=exit_with_parent, args=(parent,), daemon=True).start()


def exit_with_parent(parent: int) -> None:
    """Ends this worker once its parent is gone."""
    # After a kill -9 of the command, nobody would read the hashes: stop rather than hash on for minutes.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def hash_passwords(ns: list[int]) -> dict[int, str]:
    """The password hashes of fake accounts `ns`."""
    return {n: make_password(fake_password(n), hasher=_hasher) for n in ns}
