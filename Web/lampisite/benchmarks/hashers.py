"""CPU and wall time of one password check with each hasher the profiles use: what one login costs the server.

    cd Web/lampisite && ../../.venv/bin/python benchmarks/hashers.py --rounds 10
Prints a markdown table, the command and the machine.
"""

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the site, as manage.py has it
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lampisite.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import Argon2PasswordHasher, PBKDF2PasswordHasher  # noqa: E402

from lampisite.hashers import OwaspArgon2PasswordHasher  # noqa: E402

HASHERS = [PBKDF2PasswordHasher, Argon2PasswordHasher, OwaspArgon2PasswordHasher]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="checks timed per hasher (default 10)")
    args = parser.parse_args()
    rows = []
    for hasher_class in HASHERS:
        hasher = hasher_class()
        encoded = hasher.encode("000000_resu", hasher.salt())
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.rounds):
            assert hasher.verify("000000_resu", encoded)
        rows.append(
            (
                hasher_class.__name__,
                (time.process_time() - cpu) / args.rounds,
                (time.perf_counter() - wall) / args.rounds,
            )
        )
    reference = rows[0][1]
    print("| hasher | CPU s per check | wall s per check | CPU vs PBKDF2 |\n|---|---|---|---|")
    for name, cpu, wall in rows:
        print(f"| {name} | {cpu:.3f} | {wall:.3f} | {cpu / reference:.2f}x |")
    print(f"\n`cd Web/lampisite && ../../.venv/bin/python benchmarks/hashers.py {shlex.join(sys.argv[1:])}`")
    print(f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")


if __name__ == "__main__":
    main()
