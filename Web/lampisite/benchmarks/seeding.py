"""Times `./manage.py loadtestingdata` into an empty SQLite file against its targets and prints a markdown table.

Targets: 10,000 accounts with the site's configured hasher within 60 s (from its shipped set of hashes), a
re-run on the full database within 10 s. For scale: what hashing every password on all cores would take instead.

    cd Web/lampisite && ../../.venv/bin/python benchmarks/seeding.py
    ../../.venv/bin/python benchmarks/seeding.py --hasher lampisite.hashers.OwaspArgon2PasswordHasher  # tuned
"""

import argparse
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parents[1]


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def manage(*arguments: str) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (hashing workers included) of `manage.py <arguments>`, start-up included, and
    its last line of output."""
    started, cpu = time.perf_counter(), cpu_of_children()
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=SITE_DIR, check=True, stdout=subprocess.PIPE, text=True
    )
    lines = result.stdout.splitlines() or [""]
    return time.perf_counter() - started, cpu_of_children() - cpu, lines[-1]


def one_hash() -> float:
    """Median CPU seconds of one password hash with the configured hasher."""
    from django.contrib.auth.hashers import make_password

    times = []
    for _ in range(5):
        cpu = time.process_time()
        make_password("000000_resu")
        times.append(time.process_time() - cpu)
    return statistics.median(times)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="accounts of the fresh run (default 10000)")
    parser.add_argument("--hasher", help="dotted path of the password hasher (default: the site's settings)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(DJANGO_SETTINGS_MODULE="lampisite.settings", LAMPI_DB_NAME=f"{tmp}/db.sqlite3")
        os.environ.pop("LAMPI_DB_ENGINE", None)
        if args.hasher:
            os.environ["LAMPI_PASSWORD_HASHERS"] = args.hasher
        sys.path.insert(0, str(SITE_DIR))
        import django

        django.setup()
        from django.contrib.auth.hashers import get_hasher

        manage("migrate", "-v0")
        fresh, fresh_cpu, fresh_says = manage("loadtestingdata", f"--count={args.count}")
        rerun, rerun_cpu, rerun_says = manage("loadtestingdata", f"--count={args.count}")
        hash_cpu = one_hash()
    cores = os.cpu_count()
    n = f"{args.count:,}"
    print(
        f"""
| Measure | Seconds | CPU seconds | Target |
|---|---:|---:|---|
| Fresh run, {n} accounts, empty SQLite database | {fresh:.1f} | {fresh_cpu:.1f} | <= 60 s |
| Re-run on the full database | {rerun:.1f} | {rerun_cpu:.1f} | <= 10 s |
| For scale: {n} x one hash ({type(get_hasher()).__name__}, {hash_cpu:.3f} s) / {cores} cores | \
{args.count * hash_cpu / cores:.1f} | {args.count * hash_cpu:.1f} | |

Fresh run: {fresh_says}
Re-run: {rerun_says}

Command: `cd {Path.cwd()} && {shlex.join([sys.executable, *sys.argv])}`
Machine: {cpu_model()}, {cores} cores, load average {load:.2f} at the start; Python {platform.python_version()}.
"""
    )


if __name__ == "__main__":
    main()
