"""`./manage.py loadtestingdata`: creates the fake users and devices the load tests sign in as."""

import time

from django.core.management.base import BaseCommand, CommandError

from lampi import seeding


def whole_number(name: str, value) -> int:
    """`value` as an int, or a CommandError naming the option."""
    try:
        return int(value)
    except ValueError:
        raise CommandError(f"--{name} must be a whole number, not {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Creates users user_000000.. (password: the username reversed), each owning one LAMPI 1e0000000000 + n. "
        "Creates only what is missing: run it again after an interruption to complete the set."
    )

    def add_arguments(self, parser):
        # Checked in handle(), so bad values are a one-line CommandError rather than argparse's usage text.
        parser.add_argument("--count", default=10_000, help="number of accounts (default 10000)")
        parser.add_argument("--start", default=0, help="number of the first account (default 0)")

    def handle(self, *args, **options):
        count, start = whole_number("count", options["count"]), whole_number("start", options["start"])
        started = time.perf_counter()
        try:
            todo = seeding.plan(start, count)
            seeding.seed(todo, progress=options["verbosity"] > 0)
        except seeding.SeedingError as error:
            raise CommandError(error) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted: run the command again to create the rest.") from None
        self.stdout.write(
            f"{len(todo.new_users)} users created with their devices, {len(todo.new_devices)} devices added to "
            f"existing users, {todo.present} already present, in {time.perf_counter() - started:.1f} s."
        )
