"""A private PostgreSQL cluster in the run folder, on a unix socket only (the tuned profile's database)."""

import os
import pwd
import subprocess
import time
from pathlib import Path

from .config import StackError

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name), reverse=True)
# The bootstrap superuser of the private cluster, which the site connects as (trust over the private socket).
DB_USER = "lampi"


def binary(name: str) -> str:
    for bin_dir in BIN_DIRS:
        if (bin_dir / name).exists():
            return str(bin_dir / name)
    raise StackError(f"PostgreSQL's {name} is not installed (make setup)")


def as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: root runs it as the postgres user, anyone else as themselves."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def prepare(run_dir: Path) -> Path:
    """Creates the cluster on first use; returns its data folder. Its socket folder is run/postgresql."""
    socket_dir = run_dir / "postgresql"
    data_dir = socket_dir / "data"
    socket_dir.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(socket_dir, postgres.pw_uid, postgres.pw_gid)
        reach = subprocess.run([*as_postgres(), "test", "-w", str(socket_dir)], check=False)
        if reach.returncode != 0:
            raise StackError(f"the postgres user cannot reach {socket_dir}: put LAMPI_RUN_DIR where it can")
    if (data_dir / "PG_VERSION").exists():
        return data_dir
    initdb = [binary("initdb"), "-D", str(data_dir), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--locale=C"]
    result = subprocess.run([*as_postgres(), *initdb, "--no-sync"], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"initdb failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    # The rendered settings (the role's template) are included after initdb's own.
    with open(data_dir / "postgresql.conf", "a") as conf:
        conf.write(f"include '{run_dir / 'postgresql.conf'}'\n")
    return data_dir


def server_argv(data_dir: Path) -> list[str]:
    return [*as_postgres(), binary("postgres"), "-D", str(data_dir)]


def wait_and_create_database(run_dir: Path, name: str, is_running, timeout: float = 60) -> None:
    """Waits until the server accepts connections, then creates the site's database unless it exists."""
    socket_dir = str(run_dir / "postgresql")
    deadline = time.monotonic() + timeout
    while subprocess.run([binary("pg_isready"), "-q", "-h", socket_dir, "-U", DB_USER], check=False).returncode != 0:
        if not is_running() or time.monotonic() > deadline:
            raise StackError(f"postgresql did not start (see {run_dir}/postgresql.log)")
        time.sleep(0.2)
    result = subprocess.run(
        [binary("createdb"), "-h", socket_dir, "-U", DB_USER, name], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise StackError(f"createdb {name} failed: {result.stderr.strip()}")
