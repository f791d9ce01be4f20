"""Times `./manage.py loadtestingdata` on a temporary SQLite file against its targets and prints a markdown table.

Targets: a re-run on the full database within 10 s; a fresh run within 1.3x of the ideal (N hashes spread
evenly over all cores). For scale, the naive loop (get_or_create + set_password per user) on a sample.

    cd Web/lampisite && ../../.venv/bin/python benchmarks/seeding.py --count 1000
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


def manage(*arguments: str) -> tuple[float, float]:
    """Wall-clock and CPU seconds (its hashing workers included) of `manage.py <arguments>`, start-up included."""
    started, cpu = time.perf_counter(), cpu_of_children()
    subprocess.run([sys.executable, "manage.py", *arguments], cwd=SITE_DIR, check=True)
    return time.perf_counter() - started, cpu_of_children() - cpu


def one_hash() -> tuple[float, float]:
    """Median wall-clock and CPU seconds of one password hash with the configured hasher."""
    from django.contrib.auth.hashers import make_password

    times = []
    for _ in range(5):
        started, cpu = time.perf_counter(), time.process_time()
        make_password("000000_resu")
        times.append((time.perf_counter() - started, time.process_time() - cpu))
    return statistics.median(wall for wall, _ in times), statistics.median(cpu for _, cpu in times)


def naive(start: int, sample: int) -> float:
    """Seconds the one-user-at-a-time loop takes for `sample` accounts."""
    from django.contrib.auth import get_user_model

    from lampi.models import Lampi
    from lampi.seeding import fake_device_id, fake_password, fake_username

    started = time.perf_counter()
    for n in range(start, start + sample):
        user, _ = get_user_model().objects.get_or_create(username=fake_username(n))
        user.set_password(fake_password(n))
        user.save()
        Lampi.objects.get_or_create(device_id=fake_device_id(n), defaults={"user": user})
    return time.perf_counter() - started


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="accounts of the fresh run (default 10000)")
    parser.add_argument("--sample", type=int, default=100, help="accounts of the naive loop (default 100)")
    parser.add_argument("--hasher", help="dotted path of the password hasher (default: the site's settings)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(DJANGO_SETTINGS_MODULE="lampisite.settings", LAMPI_DB_NAME=f"{tmp}/db.sqlite3")
        if args.hasher:
            os.environ["LAMPI_PASSWORD_HASHERS"] = args.hasher
        sys.path.insert(0, str(SITE_DIR))
        import django

        django.setup()
        from django.contrib.auth.hashers import get_hasher

        manage("migrate", "-v0")
        fresh, fresh_cpu = manage("loadtestingdata", f"--count={args.count}")
        rerun, _ = manage("loadtestingdata", f"--count={args.count}")
        hash_seconds, hash_cpu = one_hash()
        naive_seconds = naive(args.count, args.sample) * args.count / args.sample
    cores = os.cpu_count()
    ideal = args.count * hash_seconds / cores
    n = f"{args.count:,}"
    print(
        f"""
| Measure | Seconds | CPU seconds | Target |
|---|---:|---:|---|
| Fresh run, {n} accounts, empty database | {fresh:.1f} | {fresh_cpu:.1f} | {fresh / ideal:.2f}x the ideal (<= 1.3x) |
| Re-run on the full database | {rerun:.1f} | | <= 10 s |
| One hash ({type(get_hasher()).__name__}) | {hash_seconds:.3f} | {hash_cpu:.3f} | |
| Ideal: {n} x one hash / {cores} cores | {ideal:.1f} | {args.count * hash_cpu:.1f} | |
| Naive get_or_create + set_password, {args.sample} scaled to {n} | {naive_seconds:.1f} | | |

On a shared machine the wall-clock ratio mixes in others' load; the CPU seconds of the fresh run over those
of {n} hashes ({fresh_cpu / (args.count * hash_cpu):.2f}x) show the seeding's own overhead.

Command: `cd {Path.cwd()} && {shlex.join([sys.executable, *sys.argv])}`
Machine: {cpu_model()}, {cores} cores, load average {load:.2f} at the start; Python {platform.python_version()}.
"""
    )


if __name__ == "__main__":
    main()
