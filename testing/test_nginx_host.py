"""The host NGINX hands Django (HTTP_HOST): a browser's login passes the real stack on a high port and on port 80.

A browser sends its page's Origin with the login POST; Django refuses it (403) unless the Origin is the scheme and
the host it was handed, so the host must carry the port, except port 80, which the Origin leaves out too.
"""

import os
import random
import re

import pytest
import requests

from lampi_stack.probes import port_is_free
from testing.stacks import HOST, live_processes_mentioning, manage, running, site_url, with_stack_vars

pytestmark = pytest.mark.slow

# The fake account `loadtestingdata --start 233 --count 1` seeds.
USERNAME, PASSWORD = "user_000233", "332000_resu"


def seed_one_user(env: dict) -> None:
    seeded = manage(env, "loadtestingdata", "--start", "233", "--count", "1")
    assert seeded.returncode == 0, seeded.stderr[-2000:]


def login(site: str, *, as_a_browser: bool = True) -> requests.Response:
    """The login form's POST to `site` with its CSRF token and cookie, and, as a browser sends them, the Origin
    and Referer of the login page (Locust sends neither); not followed."""
    session = requests.Session()
    form = session.get(f"{site}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    headers = {"Origin": site, "Referer": f"{site}/login/"} if as_a_browser else {}
    fields = {"csrfmiddlewaretoken": token, "username": USERNAME, "password": PASSWORD}
    return session.post(f"{site}/login/", data=fields, headers=headers, allow_redirects=False, timeout=30)


def port_80_address() -> str:
    """A loopback address of this test's own (127.0.0.N) whose port 80 is free; fails with the reason if none."""
    if os.geteuid() != 0:
        pytest.fail("the port 80 case needs root (to listen on 127.0.0.N:80): run the tests as root, as CI does")
    address = f"127.0.0.{random.randrange(2, 255)}"
    if not port_is_free(80, address):
        pytest.fail(f"port 80 on {address} is taken (a server listening on *:80?): stop it to run this test")
    return address


def test_a_browsers_login_passes_nginx_on_a_high_port_and_on_port_80(stack_env):
    # One NGINX on both: the host's port follows the port each connection came in on.
    address = port_80_address()
    env = with_stack_vars(
        stack_env,
        nginx_listen=[f"{HOST}:{stack_env['LAMPI_HTTP_PORT']}", f"{address}:80"],
        lampisite_allowed_hosts=[HOST, address],
    )
    with running(env):
        seed_one_user(env)
        sites = [site_url(env), f"http://{address}"]
        answers = {}
        for site in sites:
            answer = login(site)
            answers[site] = answer.status_code, answer.headers.get("Location")
    assert answers == dict.fromkeys(sites, (302, "/lampi/"))
    assert not live_processes_mentioning(env["LAMPI_RUN_DIR"])


def test_a_host_without_the_port_refuses_a_browsers_login_but_not_one_without_origin(stack_refusing_browsers):
    # The site before issue 11's fix (testing.stacks.REFUSES_BROWSERS), and why the load tests never saw it.
    env = stack_refusing_browsers
    seed_one_user(env)
    assert login(site_url(env)).status_code == 403
    assert login(site_url(env), as_a_browser=False).status_code == 302
