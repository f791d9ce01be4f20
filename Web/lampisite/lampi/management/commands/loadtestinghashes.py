"""`./manage.py loadtestinghashes`: computes the shipped password hashes of the fake accounts for the site's hasher."""

import os
from pathlib import Path

from django.contrib.auth.hashers import get_hasher
from django.core.management.base import BaseCommand, CommandError

from lampi import hash_sets
from lampi.hashing import Hashers, ProgressBar
from lampi.management.commands.loadtestingdata import whole_number

# Accounts per batch sent to a hashing process: a few seconds of PBKDF2, so progress shows often.
BATCH_SIZE = 20


class Command(BaseCommand):
    help = (
        "Hashes the passwords of accounts 0..count-1 with the site's configured hasher on all cores and writes their "
        "digests to lampi/data/hash_sets/<hasher identity>.bin, which loadtestingdata then uses instead of hashing. "
        "An interrupted run resumes from its .partial file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", default=10_000, help="number of accounts (default 10000)")
        parser.add_argument(
            "--directory", default=hash_sets.DIRECTORY, help="where to write (default: the shipped sets)"
        )

    def handle(self, *args, **options):
        count = whole_number("count", options["count"])
        if count < 1:
            raise CommandError(f"--count must be 1 or more, not {count}.")
        hasher = get_hasher()
        path = hash_sets.path_for(hasher, Path(options["directory"]))
        if path is None:
            raise CommandError(
                f"{type(hasher).__name__} has no precomputed sets: only the PBKDF2 and Argon2 families do."
            )
        partial = path.with_name(path.name + ".partial")
        size = hash_sets.digest_size(hasher)
        done = partial.stat().st_size // size if partial.exists() else 0
        with open(partial, "ab") as out:
            out.truncate(done * size)  # a digest cut short by a kill is written again
            batches = (list(range(i, min(i + BATCH_SIZE, count))) for i in range(done, count, BATCH_SIZE))
            bar = ProgressBar(total=count, initial=done, unit="hash", desc=path.name, disable=options["verbosity"] < 1)
            with Hashers(hasher) as hashers, bar:
                for hashed in hashers.map(batches):
                    out.write(b"".join(hash_sets.digest_of(hashed[n]) for n in sorted(hashed)))
                    out.flush()
                    bar.update(len(hashed))
        os.replace(partial, path)
        self.stdout.write(f"{count} password hashes of {hash_sets.identity(hasher)} in {path}.")
