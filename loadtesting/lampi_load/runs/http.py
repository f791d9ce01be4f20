"""One command for the HTTP hone-in search: checks the target, runs Locust headless, writes the report.

    python -m lampi_load.runs.http --host http://127.0.0.1:8080 --time-limit 600
Everything after `--` goes to Locust unchanged (for example `-- --hone-hold 20 --processes 2`).
"""

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import requests

from lampi_load.accounts import fake_password, fake_username
from lampi_load.reports.render import render

LOADTESTING = Path(__file__).resolve().parents[2]
REPO = LOADTESTING.parent
CSRF_TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class PreflightError(RuntimeError):
    """The target cannot be load-tested as it is; the message says what to do."""


def preflight(host: str, fake_user_start: int) -> None:
    """Fails fast, with one line, when the site is down or the fake users are not seeded."""
    session = requests.Session()
    try:
        page = session.get(f"{host}/login/", timeout=10)
    except requests.RequestException as error:
        raise PreflightError(f"cannot reach {host}/login/ ({type(error).__name__}); start the stack: make up") from None
    token = CSRF_TOKEN_RE.search(page.text)
    if page.status_code != 200 or not token:
        raise PreflightError(f"{host}/login/ answered {page.status_code} without a login form: is this the LAMPI site?")
    form = {
        "username": fake_username(fake_user_start),
        "password": fake_password(fake_user_start),
        "csrfmiddlewaretoken": token[1],
        "next": "/lampi/",
    }
    signed_in = session.post(f"{host}/login/", form, headers={"Referer": page.url}, timeout=60)
    if not signed_in.url.rstrip("/").endswith("/lampi"):
        raise PreflightError(
            f"{form['username']} cannot sign in at {host}: seed the fake users with ./manage.py loadtestingdata"
        )


def machine_description() -> str:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    pinning = os.environ.get("LAMPI_SERVER_CPUS"), os.environ.get("LAMPI_LOADGEN_CPUS")
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({cpu_model}), {memory_kb / 2**20:.1f} GiB, "
        f"Linux {platform.release()}; server CPUs {pinning[0] or 'any'}, load generator CPUs {pinning[1] or 'any'}"
    )


def locust_command(args, results_dir: Path, extra: list[str]) -> list[str]:
    command = [
        str(Path(sys.executable).parent / "locust"),
        "-f",
        f"{LOADTESTING / 'locustfile.py'},{LOADTESTING / 'hone_in.py'}",
        "--headless",
        "--only-summary",
        "--host",
        args.host,
        "--csv",
        str(results_dir / "locust"),
        "--csv-full-history",
        "--hone-results-dir",
        str(results_dir),
        "--hone-time-limit",
        str(args.time_limit),
        # A search provokes failures on purpose: Locust's own exit code would always say 1.
        "--exit-code-on-error",
        "0",
        *extra,
    ]
    cpus = os.environ.get("LAMPI_LOADGEN_CPUS")
    return ["taskset", "-c", cpus, *command] if cpus else command


def start_run(tool: str, args, argv: list[str], extra: list[str], make_command) -> tuple[Path, list[str]]:
    """Creates the run's results folder with command.txt (how to reproduce it) and machine.txt; returns the
    folder and the Locust command `make_command(args, folder, extra)` builds for it."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    # Absolute: Locust runs from the repository root, this command from anywhere.
    results_dir = args.results_root.resolve() / f"{stamp}-{args.name}"
    results_dir.mkdir(parents=True)
    command = make_command(args, results_dir, extra)
    (results_dir / "command.txt").write_text(
        f"python -m lampi_load.{tool} " + shlex.join([*argv, *(["--", *extra] if extra else [])]) + "\n"
        "# which ran: " + shlex.join(command) + "\n"
    )
    (results_dir / "machine.txt").write_text(machine_description() + "\n")
    print(f"{tool}: searching {args.host} for at most {args.time_limit:.0f} s; results in {results_dir}")
    return results_dir, command


def split_locust_args(argv=None) -> tuple[list[str], list[str]]:
    """This command's own arguments, and those after `--`, which go to Locust unchanged."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def main(argv=None) -> int:
    argv, extra = split_locust_args(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("LAMPI_URL", "http://127.0.0.1:8080"), help="site URL")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds the search may take (default 600)")
    parser.add_argument("--name", default="http", help="suffix of the results folder name")
    parser.add_argument("--results-root", type=Path, default=LOADTESTING / "results", help="where result folders go")
    args = parser.parse_args(argv)
    if args.time_limit <= 0:
        parser.error("--time-limit must be positive")
    args.host = args.host.rstrip("/")

    try:
        preflight(args.host, fake_user_start=0)
    except PreflightError as error:
        print(f"http_search: error: {error}", file=sys.stderr)
        return 2

    results_dir, command = start_run("http_search", args, argv, extra, locust_command)
    # Locust's log (the search's decisions among it) streams to this terminal as it goes.
    finished = subprocess.run(command, cwd=REPO, timeout=args.time_limit + 300)
    if finished.returncode != 0 or not (results_dir / "verdict.json").exists():
        print(f"http_search: error: Locust exited {finished.returncode} without a verdict", file=sys.stderr)
        return 1
    report = render(results_dir)
    print(f"http_search: report {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
