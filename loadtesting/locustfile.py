"""A person using the LAMPI site: signs in with a seeded fake account, then browses their lamp.

    locust -f loadtesting/locustfile.py --host http://127.0.0.1:8080
Add `,loadtesting/hone_in.py` to -f to let the hone-in search drive the user count.
"""

import logging
import random

from geventhttpclient.useragent import RetriesExceeded
from locust import FastHttpUser, TaskSet, between, events, task

from lampi_load.accounts import fake_device_id, login_form

logger = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def add_account_options(parser):
    parser.add_argument(
        "--fake-users",
        type=int,
        default=10_000,
        help="How many seeded fake users to pick from (default 10000)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        help="Seconds a request may take before it counts as failed, so a hung server shows (default 30)",
    )
    parser.add_argument(
        "--fake-user-start", type=int, default=0, help="Number of the first seeded fake user (default 0)"
    )


def status_failure(response) -> str:
    """A failure message naming the cause: the HTTP status, or for no response (status 0) the error's kind, so a
    timeout and a refused connection are separate rows."""
    if response.status_code:
        return f"status {response.status_code}"
    error = response.error
    if isinstance(error, RetriesExceeded):
        # geventhttpclient wraps the last attempt's error (a timeout, a reset) and the URL, which varies.
        error = getattr(error, "original", None) or error
    return f"no response ({type(error).__name__ if error else 'unknown'})"


class LampiBrowsing(TaskSet):
    """Signs in once through the real login form, then visits the home page, device list and device page."""

    def on_start(self):
        options = self.user.environment.parsed_options
        first = options.fake_user_start if options else 0
        count = options.fake_users if options else 10_000
        self.n = random.randrange(first, first + count)
        self.device_id = fake_device_id(self.n)
        self.signed_in = False
        self.sign_in()

    def sign_in(self):
        with self.client.get("/login/", name="/login/", catch_response=True) as page:
            form = login_form(self.n, page.text)
            if page.status_code != 200:
                page.failure(status_failure(page))
                return
            if not form:
                page.failure("login page has no CSRF token")
                return
        # What a browser sends with a form POST: a site whose CSRF check refuses browsers must fail here too.
        origin = self.user.host.rstrip("/")
        headers = {"Origin": origin, "Referer": f"{origin}/login/"}
        with self.client.post("/login/", form, headers=headers, name="/login/ [POST]", catch_response=True) as r:
            # Django answers a wrong password with the login page again, status 200: not a success. A right one
            # redirects to the device list, which must show this user's device.
            if 'id="device-list"' in (r.text or "") and self.device_id in r.text:
                self.signed_in = True
            else:
                # One row per cause in Locust's failures table: the account goes to the log, not the message.
                logger.debug("login as %s failed with status %s", form["username"], r.status_code)
                r.failure(f"login failed (status {r.status_code}, no device list)")

    def visit(self, path, name, must_contain):
        if not self.signed_in:
            self.sign_in()
            return
        with self.client.get(path, name=name, catch_response=True) as response:
            missing = [text for text in must_contain if text not in (response.text or "")]
            if response.status_code != 200:
                response.failure(status_failure(response))
            elif missing:
                response.failure(f"page lacks {missing[0]!r}")

    @task(100)
    def home(self):
        self.visit("/", "/", ['id="device-list"', self.device_id])

    @task(80)
    def device_list(self):
        self.visit("/lampi", "/lampi", ['id="device-list"', self.device_id])

    @task(75)
    def device_page(self):
        self.visit(f"/lampi/device/{self.device_id}", "/lampi/device/[id]", [self.device_id, 'id="mqtt-config"'])


class LampiWebUser(FastHttpUser):
    """One person with a browser; waits 0.5-10 s between pages as people do.

    FastHttpUser (geventhttpclient) costs the generator several times less CPU per request than HttpUser
    (requests), so one generator core drives more users before it, not the server, becomes the bottleneck.
    """

    tasks = [LampiBrowsing]
    wait_time = between(0.5, 10)


@events.test_start.add_listener
def apply_request_timeout(environment, **kwargs):
    # FastHttpUser reads its timeouts from class attributes when each user starts. Set them at test start, not
    # init: a worker (from --processes or started by hand) holds the master's options only once the first spawn
    # message has copied them into its parsed_options, just before it fires test_start.
    options = environment.parsed_options
    if options is not None:
        LampiWebUser.network_timeout = LampiWebUser.connection_timeout = options.request_timeout
