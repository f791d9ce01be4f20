"""One command for the HTTP hone-in search: checks the target, runs Locust headless, writes the report.

    python -m lampi_load.runs.http --host http://127.0.0.1:8080 --time-limit 600
Everything after `--` goes to Locust unchanged (for example `-- --hone-hold 20 --processes 2`).
"""

import os
import sys
from pathlib import Path

import requests

from lampi_load.accounts import login_form
from lampi_load.reports.render import render
from lampi_load.runs import locust_run


class PreflightError(RuntimeError):
    """The target cannot be load-tested as it is; the message says what to do."""


def preflight(host: str, fake_user_start: int) -> None:
    """Fails fast, with one line, when the site is down or the fake users are not seeded."""
    session = requests.Session()
    try:
        page = session.get(f"{host}/login/", timeout=10)
    except requests.RequestException as error:
        raise PreflightError(f"cannot reach {host}/login/ ({type(error).__name__}); start the stack: make up") from None
    form = login_form(fake_user_start, page.text)
    if page.status_code != 200 or not form:
        raise PreflightError(f"{host}/login/ answered {page.status_code} without a login form: is this the LAMPI site?")
    signed_in = session.post(f"{host}/login/", form, headers={"Origin": host, "Referer": page.url}, timeout=60)
    if not signed_in.url.rstrip("/").endswith("/lampi"):
        raise PreflightError(
            f"{form['username']} cannot sign in at {host}: seed the fake users with ./manage.py loadtestingdata"
        )


def locust_command(args, results_dir: Path, extra: list[str]) -> list[str]:
    return locust_run.locust_command("locustfile.py", args, results_dir, [], extra)


def main(argv=None) -> int:
    argv, extra = locust_run.split_locust_args(argv)
    host = os.environ.get("LAMPI_URL", "http://127.0.0.1:8080")
    parser = locust_run.argument_parser(__doc__.splitlines()[0], host, "site URL", 600, "http")
    args = parser.parse_args(argv)
    if args.time_limit <= 0:
        parser.error("--time-limit must be positive")
    args.host = args.host.rstrip("/")

    try:
        preflight(args.host, fake_user_start=0)
    except PreflightError as error:
        print(f"http_search: error: {error}", file=sys.stderr)
        return 2

    results_dir, command = locust_run.start_run(
        "http_search", "lampi_load.runs.http", args, argv, extra, locust_command
    )
    if not locust_run.run_search("http_search", command, results_dir, args.time_limit):
        return 1
    report = render(results_dir)
    print(f"http_search: report {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
