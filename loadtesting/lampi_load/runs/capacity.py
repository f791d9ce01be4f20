"""The capacity study end to end: baseline, each change alone, the changes added one by one, tuned; compared.

Every configuration is searched one after another on the same machine with the same CPU pinning.

    python -m lampi_load.runs.capacity --time-limit 600 --fake-users 1000            # every configuration
    python -m lampi_load.runs.capacity --configs baseline,tuned                      # just the headline ratio
    python -m lampi_load.runs.capacity --configs cumulative      # baseline, argon2id, argon2id+sessions, ..., tuned
For each configuration it restarts the local stack (`make up` with LAMPI_PROFILE and LAMPI_STACK_VARS), seeds
the fake users into that configuration's own database (hashed by its own hasher, so no login rehashes), runs
`lampi_load.runs.http`, and at the end writes comparison.md and comparison.png beside the runs.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from lampi_load.results import new_run_dir

LOADTESTING = Path(__file__).resolve().parents[2]
REPO = LOADTESTING.parent
OWASP_ARGON2 = ["lampisite.hashers.OwaspArgon2PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]

# The baseline, the tuned profile (every change that helped, together), then each change alone on top of the
# baseline (Ansible variables, as in ansible/profiles/*.yml): the headline ratio first, should time run short.
# The last field names the configuration's database: one per (engine, hasher), seeded once and shared, so every
# user's stored hash matches the hasher in use.
CONFIGS: dict[str, tuple[str, dict, str]] = {
    "baseline": ("baseline", {}, "sqlite-pbkdf2"),
    "tuned": ("tuned", {}, "pg-argon2"),
    "argon2id": ("baseline", {"lampisite_password_hashers": OWASP_ARGON2}, "sqlite-argon2"),
    "cached-sessions": (
        "baseline",
        {
            "lampisite_session_engine": "django.contrib.sessions.backends.cached_db",
            "lampisite_cache_backend": "memcached",
        },
        "sqlite-pbkdf2",
    ),
    "postgresql": ("baseline", {"lampisite_db_engine": "postgresql", "lampisite_db_conn_max_age": 600}, "pg-pbkdf2"),
    "uwsgi": ("baseline", {"uwsgi_processes": 4, "uwsgi_threads": 4, "uwsgi_listen": 1024}, "sqlite-pbkdf2"),
    "nginx": ("baseline", {"nginx_worker_connections": 4096, "nginx_keepalive_timeout": 30}, "sqlite-pbkdf2"),
}

# The cumulative series: the tuned profile's own variables (ansible/profiles/tuned.yml), added to the baseline a
# group at a time (the login's cost first, then the per-request costs, then the servers' queues and limits), so
# its last step is the tuned profile itself.
TUNED = yaml.safe_load((REPO / "ansible" / "profiles" / "tuned.yml").read_text())
TUNED_STEPS: dict[str, list[str]] = {
    "argon2id": ["lampisite_password_hashers"],
    "sessions": ["lampisite_session_engine", "lampisite_cache_backend", "memcached_max_connections"],
    "postgresql": ["lampisite_db_engine", "lampisite_db_conn_max_age", "postgresql_max_connections"],
    "uwsgi": ["uwsgi_processes", "uwsgi_threads", "uwsgi_listen", "uwsgi_max_requests"],
    "nginx": ["nginx_worker_processes", "nginx_worker_connections", "nginx_keepalive_timeout", "nginx_edge_redirects"],
}


def cumulative_configs() -> dict[str, tuple[str, dict, str]]:
    """`argon2id+sessions`, `argon2id+sessions+postgresql`, ...: the baseline with the tuned profile's first n
    steps, for n from 2 until one short of all (one step is `argon2id` alone; all of them is `tuned`)."""
    configs, overrides, names = {}, {}, []
    for step, variables in TUNED_STEPS.items():
        overrides = {**overrides, **{variable: TUNED[variable] for variable in variables}}
        names.append(step)
        engine = "pg" if overrides.get("lampisite_db_engine") == "postgresql" else "sqlite"
        configs["+".join(names)] = ("baseline", overrides, f"{engine}-argon2")
    return dict(list(configs.items())[1:-1])


CUMULATIVE = cumulative_configs()
CONFIGS.update(CUMULATIVE)
# Shorthands for --configs.
GROUPS = {"cumulative": ["baseline", "argon2id", *CUMULATIVE, "tuned"]}


def stack_env(name: str, args) -> dict[str, str]:
    """The environment of the stack and the search for one configuration."""
    profile, overrides, database = CONFIGS[name]
    db_name = (
        f"lampi_{database[3:].replace('-', '_')}"
        if database.startswith("pg-")
        else str(REPO / "run" / f"{database}.db")
    )
    env = {**os.environ, "LAMPI_PROFILE": profile, "LAMPI_STACK_VARS": json.dumps(overrides), "LAMPI_DB_NAME": db_name}
    env.update({"LAMPI_SERVER_CPUS": args.server_cpus, "LAMPI_LOADGEN_CPUS": args.loadgen_cpus})
    return env


def run(command: list, env: dict, cwd: Path = REPO) -> None:
    print(f"capacity: $ {' '.join(map(str, command))}", flush=True)
    subprocess.run(command, env=env, cwd=cwd, check=True)


def search(name: str, args, out: Path) -> list[Path]:
    """Restarts the stack as `name`, seeds it, searches it `args.repeat` times one after the other; returns the
    searches' results folders."""
    env = stack_env(name, args)
    stack_env_vars = {**env, "PYTHONPATH": str(REPO / "scripts")}
    run([sys.executable, "-m", "lampi_stack", "down"], stack_env_vars)
    run([sys.executable, "-m", "lampi_stack", "up"], stack_env_vars)
    run([sys.executable, "-m", "lampi_stack", "manage", "loadtestingdata", "--count", args.fake_users], stack_env_vars)
    folders = []
    for repeat in range(1, args.repeat + 1):
        label = name if repeat == 1 else f"{name}-{repeat}"
        http_search = [sys.executable, "-m", "lampi_load.runs.http", "--host", args.host]
        http_search += ["--time-limit", args.time_limit, "--name", label, "--results-root", out, "--"]
        run([*http_search, "--fake-users", args.fake_users, *args.locust_args], env, cwd=LOADTESTING)
        folders.append(max(out.glob(f"*-{label}"), key=lambda path: path.stat().st_mtime))
    return folders


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    alone = [name for name in CONFIGS if "+" not in name]
    parser.add_argument(
        "--configs",
        default=",".join(alone),
        help=f"comma-separated, from: {', '.join(CONFIGS)}; or {', '.join(GROUPS)} (default: {', '.join(alone)})",
    )
    parser.add_argument("--time-limit", default="600", help="seconds each search may take (default 600)")
    parser.add_argument("--fake-users", default="1000", help="fake users to seed and sign in as (default 1000)")
    parser.add_argument("--host", default="http://127.0.0.1:8080", help="the local stack's site URL")
    parser.add_argument("--server-cpus", default="0" if (os.cpu_count() or 1) >= 2 else "", help="taskset list")
    parser.add_argument("--loadgen-cpus", default="1" if (os.cpu_count() or 1) >= 2 else "", help="taskset list")
    parser.add_argument("--out", type=Path, help="folder for the runs (default <results root>/<stamp>-capacity)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="searches of each configuration, one after the other (default 1)"
    )
    parser.add_argument("locust_args", nargs="*", help="after --: passed to Locust (e.g. -- --hone-hold 20)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    names = [config for name in names for config in GROUPS.get(name, [name])]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown or not names:
        parser.error(f"unknown configuration {', '.join(unknown) or '(none)'}; choose from {', '.join(CONFIGS)}")
    if not 1 <= args.repeat <= 10:
        parser.error(f"--repeat {args.repeat}: give 1 to 10 searches per configuration")
    out = args.out.resolve() if args.out else new_run_dir("capacity")
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m lampi_load.runs.capacity " + shlex.join(sys.argv[1:] if argv is None else argv)
    (out / "command.txt").write_text(command + "\n")
    results = {}
    try:
        for name in names:
            for repeat, folder in enumerate(search(name, args, out), start=1):
                results[name if repeat == 1 else f"{name}-{repeat}"] = folder
    except subprocess.CalledProcessError as error:
        print(f"capacity: error: {' '.join(map(str, error.cmd[:4]))}... exited {error.returncode}", file=sys.stderr)
        return 1
    finally:
        stop = [sys.executable, "-m", "lampi_stack", "down"]
        subprocess.run(stop, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "scripts")})
        if results:
            compare = [sys.executable, "-m", "lampi_load.reports.compare", "--out", str(out)]
            subprocess.run([*compare, *(f"{name}={folder}" for name, folder in results.items())], cwd=LOADTESTING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
