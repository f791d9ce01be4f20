"""`./manage.py loadtestingdata`: creates the fake users and devices the load tests sign in as."""

import os
import time

from django.contrib.auth.hashers import get_hasher
from django.core.management.base import BaseCommand, CommandError

from lampi import hash_sets, seeding


def whole_number(name: str, value) -> int:
    """`value` as an int, or a CommandError naming the option."""
    try:
        return int(value)
    except ValueError:
        raise CommandError(f"--{name} must be a whole number, not {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Creates users user_000000.. (password: the username reversed), each owning one LAMPI 1e0000000000 + n. "
        "Creates only what is missing, and re-hashes a stored password the site would re-hash at its next login: "
        "run it again after an interruption or a change of hasher. Hashes come from the shipped set of the "
        "configured hasher (lampi/data/hash_sets/) when there is one, else they are computed on all cores."
    )

    def add_arguments(self, parser):
        # Checked in handle(), so bad values are a one-line CommandError rather than argparse's usage text.
        parser.add_argument("--count", default=10_000, help="number of accounts (default 10000)")
        parser.add_argument("--start", default=0, help="number of the first account (default 0)")

    def handle(self, *args, **options):
        count, start = whole_number("count", options["count"]), whole_number("start", options["start"])
        started = time.perf_counter()
        try:
            seeding.check_range(start, count)
            hash_set = self.hash_set(start + count, verbose=options["verbosity"] > 0)
            tally = seeding.seed(start, count, hash_set, progress=options["verbosity"] > 0)
        except seeding.SeedingError as error:
            raise CommandError(error) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted: run the command again to create the rest.") from None
        precomputed = tally.created + tally.refreshed - tally.hashed
        self.stdout.write(
            f"{tally.created} users created with their devices, {tally.devices_added} devices added to existing "
            f"users, {tally.refreshed} stale password hashes refreshed, {tally.present} already present, in "
            f"{time.perf_counter() - started:.1f} s ({tally.hashed} passwords hashed, {precomputed} hashes from the "
            "shipped set)."
        )

    def hash_set(self, end: int, verbose: bool) -> hash_sets.HashSet | None:
        """The shipped hashes of the configured hasher, saying when some or all passwords will be hashed instead."""
        cores = os.cpu_count()
        try:
            found = hash_sets.shipped(get_hasher())
        except hash_sets.NoHashSet as reason:
            if verbose:
                self.stdout.write(f"{reason}: any password to set is hashed on {cores} cores.")
            return None
        if end > len(found) and verbose:
            self.stdout.write(
                f"The precomputed hashes ({found.name}) stop at user_{len(found) - 1:06d}: any password to set "
                f"after it is hashed on {cores} cores."
            )
        return found
