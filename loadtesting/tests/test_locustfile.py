"""The HTTP locustfile and the hone-in shape, run by the real Locust against the real site (a live server).

Each run is bounded by Locust's --run-time or the shape's --hone-time-limit, and by the subprocess timeout.
"""

import csv
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from lampi_load.reports.render import render
from lampi_load.search.machine import Verdict as SearchVerdict
from lampi_load.search.speed_watch import read as read_watch
from testing.locust_workers import hand_started_workers
from testing.ports import free_port, wait_for_port
from testing.stacks import manage, site_url

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOADTESTING = REPO / "loadtesting"
HOST = "127.0.0.1"
LOCUST = str(Path(sys.executable).parent / "locust")
UWSGI = str(Path(sys.executable).parent / "uwsgi")
# The fake users as loadtestingdata makes them, through the ORM, with a fast hasher for test speed.
SEED = """
from django.contrib.auth import get_user_model
from lampi.models import Lampi
from lampi_load.accounts import fake_device_id, fake_password, fake_username
for n in range({count}):
    user = get_user_model().objects.create_user(fake_username(n), password={password})
    Lampi.objects.create(device_id=fake_device_id(n), user=user)
"""


def start_site(tmp_path, database, *, count=20, password="fake_password(n)"):
    """The site under real uWSGI (HTTP mode) on a free loopback port, on its own database (the profile's engine)."""
    env = {
        **os.environ,
        **database.env,
        "LAMPI_PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
        "PYTHONPATH": f"{REPO / 'Web/lampisite'}:{LOADTESTING}",
        "DJANGO_SETTINGS_MODULE": "lampisite.settings",
    }
    manage = [sys.executable, str(REPO / "Web/lampisite/manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=120)
    seed = SEED.format(count=count, password=password)
    subprocess.run([*manage, "shell", "-c", seed], env=env, check=True, timeout=120)
    port = free_port()
    command = [UWSGI, "--http", f"127.0.0.1:{port}", "--module", "lampisite.wsgi", "--processes", "2"]
    process = subprocess.Popen(
        [
            *command,
            "--master",
            "--die-on-term",
            "--need-app",
            "--disable-logging",
            "--http-keepalive",
            "--add-header",
            "Connection: Keep-Alive",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "uwsgi.log").open("w"),
    )
    wait_for_port("127.0.0.1", port, timeout=30)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
def site(tmp_path, site_database):
    process, url = start_site(tmp_path, site_database)
    yield url
    process.terminate()
    process.wait(timeout=30)


def locust(site, tmp_path, *args, files="locustfile.py", timeout=120):
    files = ",".join(str(LOADTESTING / name) for name in files.split(","))
    command = [LOCUST, "-f", files, "--headless", "--host", site, "--csv", str(tmp_path / "run"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=LOADTESTING)
    return result


def processes(count: int) -> list[str]:
    """Locust's options for `count` worker processes, their master on a free loopback port: the default, 5557, is
    any other Locust's on this machine, and a master that cannot bind it leaves its children waiting forever."""
    port = str(free_port())
    return ["--processes", str(count), "--master-bind-host", HOST, "--master-bind-port", port, "--master-port", port]


def totals(tmp_path) -> dict:
    with (tmp_path / "run_stats.csv").open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    return {name: (int(row["Request Count"]), int(row["Failure Count"])) for name, row in rows.items()}


def test_users_sign_in_and_browse_without_failures(site, tmp_path):
    result = locust(site, tmp_path, "-u", "5", "-r", "5", "-t", "8s", "--fake-users", "20")
    stats = totals(tmp_path)
    assert stats["Aggregated"][1] == 0, result.stderr[-2000:]
    assert stats["/login/ [POST]"][0] >= 5
    # Stats rows are URL templates, never one row per device.
    assert not [name for name in stats if name.startswith("/lampi/device/1e")]
    assert sum(stats.get(name, (0, 0))[0] for name in ["/", "/lampi", "/lampi/device/[id]"]) > 0


def test_wrong_password_is_a_failure_not_a_silent_200(tmp_path, site_database):
    process, url = start_site(tmp_path, site_database, count=5, password='"not-the-reversed-name"')
    try:
        locust(url, tmp_path, "-u", "3", "-r", "3", "-t", "4s", "--fake-users", "5")
    finally:
        process.terminate()
        process.wait(timeout=30)
    stats = totals(tmp_path)
    requests, failures = stats["/login/ [POST]"]
    assert requests >= 3
    assert failures == requests
    # One row per cause, not one per account.
    with (tmp_path / "run_failures.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "/login/ [POST]"]
    assert [row["Error"] for row in rows] == ["CatchResponseError('login failed (status 200, no device list)')"]


def test_a_site_that_refuses_browsers_fails_the_load_test(stack_refusing_browsers, tmp_path):
    # Its NGINX hands Django the host without the port, so Django's CSRF check refuses a browser's Origin.
    env = stack_refusing_browsers
    assert manage(env, "loadtestingdata", "--start", "233", "--count", "1").returncode == 0
    locust(site_url(env), tmp_path, "-u", "2", "-r", "2", "-t", "4s", "--fake-users", "1", "--fake-user-start", "233")
    requests, failures = totals(tmp_path)["/login/ [POST]"]
    assert requests >= 2
    assert failures == requests
    with (tmp_path / "run_failures.csv").open(newline="") as handle:
        assert "login failed (status 403, no device list)" in handle.read()


@pytest.mark.profile_independent
def test_distributed_processes_share_the_load(site, tmp_path):
    locust(site, tmp_path, "-u", "6", "-r", "6", "-t", "8s", "--fake-users", "20", *processes(2))
    stats = totals(tmp_path)
    assert stats["Aggregated"][0] > 6
    assert stats["Aggregated"][1] == 0


@pytest.mark.profile_independent
def test_hone_in_shape_writes_a_verdict_and_report(site, tmp_path):
    results = tmp_path / "results"
    args = [
        *("--csv-full-history", "--fake-users", "20", "--hone-results-dir", str(results)),
        *("--hone-max-users", "4", "--hone-spawn-rate", "1", "--hone-ramp", "2", "--hone-settle", "1"),
        *("--hone-hold", "3", "--hone-time-limit", "40", "--hone-sar", "on"),
    ]
    result = locust(site, tmp_path, *args, files="locustfile.py,hone_in.py")
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["status"] == "no-failure-up-to-max-users", result.stderr[-2000:]
    assert verdict["max_users_without_error"] == 4
    # The probe ramped to the cap without a failure; the one level test there: from 2 users, up to 4, held.
    assert verdict["probe"]["first_failure_users"] is None
    assert [(level["users"], level["base"]) for level in verdict["levels"]] == [(4, 2)]
    # Its p95 from Locust's own histogram of the level's responses: a real figure, named in the report.
    assert verdict["p95_of"] == "window"
    assert verdict["levels"][0]["p95_ms"] > 0, verdict["levels"]
    assert (results / "sar-minimal.txt").read_text().count("Average:") >= 5
    assert verdict["sar"]["max_without_error"]["cpu"]
    provenance = json.loads((results / "provenance.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", provenance["commit"])
    assert isinstance(provenance["dirty"], bool)
    assert "--hone-max-users" in provenance["command"]
    pinned = provenance["cpus_allowed"]
    assert [name for name in pinned if name.startswith("locust ")]
    assert [name for name in pinned if name.startswith("uwsgi ")], pinned
    # The server's CPUs timed before and after, where the server runs (the test stack is not pinned: any CPU).
    reference = provenance["speed_reference"]
    assert reference["before"]["argon2id_ms"] > 0, reference
    assert reference["after"]["argon2id_ms"] > 0, reference
    assert reference["after"]["python_ms"] > 0, reference
    # ... and through the levels, by a watch beside them: one row per level judged, its real samples on file.
    header, samples = read_watch(results / "speed.jsonl")
    assert header["priority"] in ("fifo", "normal")
    assert samples, "the speed watch took no sample during the search"
    assert all(sample["python_ms"] > 0 for sample in samples)
    assert [row["users"] for row in verdict["server_speed"]["levels"]] == [4]
    # ... the answer's level marked: the warning of a slow machine compares the levels of an answer's edge.
    assert [row["roles"] for row in verdict["server_speed"]["levels"]] == [["max", "usable"]]
    for csv_file in results.parent.glob("run_stats_history.csv"):
        (results / csv_file.name).write_bytes(csv_file.read_bytes())
    report = render(results).read_text()
    assert "4 users without error" in report
    assert "Server CPUs' speed reference" in report
    assert "p95 is that of every response in the ramp and the hold" in report
    assert (results / "timeline.png").stat().st_size > 10_000


@pytest.mark.profile_independent
def test_hone_in_shape_reports_a_failing_level(site, tmp_path):
    results = tmp_path / "results"
    # A 0.001 ms latency bound fails every level: the search must say so and stop, not loop.
    args = [
        *("--fake-users", "20", "--hone-results-dir", str(results), "--hone-max-p95-ms", "0.001"),
        *("--hone-spawn-rate", "4", "--hone-ramp", "0.5", "--hone-settle", "1", "--hone-hold", "2"),
        *("--hone-time-limit", "60", "--hone-sar", "off"),
    ]
    result = locust(site, tmp_path, *args, files="locustfile.py,hone_in.py")
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["status"] == "fails-at-minimum", result.stderr[-2000:]
    assert verdict["max_users_without_error"] == 0
    # The probe fails at its first response; the levels go down from there to 1 user, failing as well.
    assert "over the 0 ms bound" in verdict["probe"]["reason"]
    users = [level["users"] for level in verdict["levels"]]
    assert users[0] == verdict["probe"]["first_failure_users"]
    assert users == sorted(users, reverse=True)
    assert users[-1] == 1
    assert verdict["first_failing_users"] == 1
    assert "over the 0 ms bound" in verdict["failure_reason"]


@pytest.mark.profile_independent
def test_hone_in_tests_given_levels_in_order_without_a_probe(site, tmp_path):
    results = tmp_path / "results"
    args = [
        *("--csv-full-history", "--fake-users", "20", "--hone-results-dir", str(results), "--hone-levels", "2,4,2"),
        *("--hone-spawn-rate", "2", "--hone-ramp", "1", "--hone-settle", "1", "--hone-hold", "2"),
        *("--hone-time-limit", "60", "--hone-sar", "off"),
    ]
    result = locust(site, tmp_path, *args, files="locustfile.py,hone_in.py")
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["status"] == "levels-tested", result.stderr[-2000:]
    assert verdict["probe"] is None
    assert [(level["users"], level["base"], level["phase"]) for level in verdict["levels"]] == [
        (2, 0, "given"),
        (4, 2, "given"),
        (2, 0, "given"),
    ]
    assert all(level["passed"] and level["requests"] > 0 for level in verdict["levels"]), verdict["levels"]
    assert verdict["max_users_without_error"] == 4
    for csv_file in results.parent.glob("run_stats_history.csv"):
        (results / csv_file.name).write_bytes(csv_file.read_bytes())
    report = render(results).read_text()
    assert "the levels given (--hone-levels 2,4,2)" in report
    assert "Levels given: 2 users passed 2 of 2 tests, 4 users 1 of 1" in report


def test_a_setting_the_search_cannot_run_with_is_one_line_at_the_start(tmp_path):
    # No server needed: the settings are checked before any user starts.
    result = locust("http://127.0.0.1:9", tmp_path, "--hone-spawn-rate", "0", files="locustfile.py,hone_in.py")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "hone_in: --hone-spawn-rate 0: give users per second above 0"


def test_web_ui_offers_the_hone_in_shape_in_the_class_picker(tmp_path):
    port = free_port()
    files = f"{LOADTESTING / 'locustfile.py'},{LOADTESTING / 'hone_in.py'}"
    command = [LOCUST, "-f", files, "--class-picker", "--web-host", "127.0.0.1", "--web-port", str(port)]
    process = subprocess.Popen(command, cwd=LOADTESTING, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "HoneInShape" in page
    assert "LampiWebUser" in page


def hand_started(tmp_path, *args, files, workers, timeout):
    """A master given `args` and `workers` workers started by hand with no kit option, as on a load-generator
    host; the master's result. The workers are stopped if the master leaves them running."""
    port = free_port()
    paths = ",".join(str(LOADTESTING / name) for name in files.split(","))
    worker = [LOCUST, "-f", paths, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    master = [LOCUST, "-f", paths, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    master += ["--expect-workers", str(workers), *args]
    with hand_started_workers(worker, workers, LOADTESTING):
        return subprocess.run(master, capture_output=True, text=True, timeout=timeout, cwd=LOADTESTING)


SLOW_TEST_START = """
import gevent
from locust import events


@events.test_start.add_listener
def slow_start(environment, **kwargs):
    gevent.sleep(3)  # a plugin that takes its time to start
"""


def test_a_slow_test_start_listener_leaves_one_run_record(tmp_path):
    # Locust kills and restarts its spawning greenlet at every tick while a test_start listener waits, firing
    # test_start again each time: the search must still keep one record (one sadc recording), and stop it.
    plugin = tmp_path / "slow_start.py"
    plugin.write_text(SLOW_TEST_START)
    results = tmp_path / "results"
    args = ["--hone-results-dir", str(results), "--hone-sar", "on", "--hone-time-limit", "5", "--fake-users", "1"]
    try:
        result = locust(f"http://127.0.0.1:{free_port()}", tmp_path, *args, files=f"locustfile.py,hone_in.py,{plugin}")
        assert (results / "verdict.json").exists(), result.stderr[-2000:]
    finally:
        still_recording = subprocess.run(["pgrep", "-f", f"sadc .*{results}"], capture_output=True, text=True)
        for pid in still_recording.stdout.split():
            subprocess.run(["kill", pid], check=False)
    assert still_recording.stdout.split() == [], "sadc recordings were left running"


SEARCH_LIMIT = 15.0


@pytest.mark.profile_independent
@pytest.mark.parametrize("mode", ["one process", "--processes 2", "master and two hand-started workers"])
def test_hone_in_search_keeps_its_time_limit_and_verdict_shape_distributed(site, tmp_path, mode):
    results = tmp_path / "results"
    args = [
        *("--fake-users", "20", "--hone-results-dir", str(results)),
        *("--hone-spawn-rate", "2", "--hone-max-users", "1000", "--hone-settle", "1", "--hone-hold", "3"),
        *("--hone-time-limit", str(SEARCH_LIMIT), "--hone-sar", "off"),
    ]
    launched = time.time()
    if mode == "master and two hand-started workers":
        args = ["--headless", "--host", site, *args]
        result = hand_started(tmp_path, *args, files="locustfile.py,hone_in.py", workers=2, timeout=120)
    else:
        extra = processes(2) if mode == "--processes 2" else []
        result = locust(site, tmp_path, *args, *extra, files="locustfile.py,hone_in.py")
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["status"] == "time-limit", result.stderr[-2000:]
    # The search's own clock, started once (a master's restart at its first spawn does not reset it).
    assert SEARCH_LIMIT <= verdict["ended_at"] - verdict["started_at"] <= 1.1 * SEARCH_LIMIT
    assert verdict["started_at"] - launched < 20, "the search started late"
    assert result.stderr.count("probe: one ramp from 0 users") == 1
    # The same shape as one process: the probe's ramp at 2 users/s, unbroken and cut by the time limit (a server
    # that serves 30 users), the same fields.
    assert verdict["probe"]["first_failure_users"] is None
    assert verdict["probe"]["reason"] == ""
    assert verdict["probe"]["end"] == verdict["ended_at"]
    assert set(verdict) == {*SearchVerdict().as_dict(), "settings", "sar", "server_speed"}
    generators = [
        name for name in json.loads((results / "provenance.json").read_text())["cpus_allowed"] if "locust" in name
    ]
    # The master alone, or the master and its two --processes children.
    assert len(generators) == (3 if mode == "--processes 2" else 1)


@pytest.mark.profile_independent
def test_a_distributed_search_judges_its_levels_on_every_workers_responses(site, tmp_path):
    # A level's figures come from the master's stats, which merge the workers' reports (their response-time
    # histograms too): a level of 6 users, the cap, must count their requests and give a p95. Hand-started workers
    # only: `--processes` children report to their master the same way (the time-limit test above runs both).
    results = tmp_path / "results"
    args = [
        *("--fake-users", "20", "--hone-results-dir", str(results), "--hone-max-users", "6"),
        *("--hone-spawn-rate", "2", "--hone-ramp", "1", "--hone-settle", "1", "--hone-hold", "4"),
        *("--hone-time-limit", "60", "--hone-sar", "off"),
    ]
    result = hand_started(
        tmp_path, "--headless", "--host", site, *args, files="locustfile.py,hone_in.py", workers=2, timeout=120
    )
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["status"] == "no-failure-up-to-max-users", result.stderr[-2000:]
    level = verdict["max_level"]
    assert level["users"] == 6
    assert level["passed"]
    assert level["requests"] > 0
    assert level["failures"] == 0
    assert level["p95_ms"] is not None
    assert level["p95_ms"] > 0
    assert verdict["max_users_usable"] == 6
    assert verdict["usable_converged"] is True


@pytest.mark.profile_independent
@pytest.mark.parametrize("mode", ["one process", "--processes 2"])
def test_ctrl_c_ends_a_search_with_its_verdict_so_far(site, tmp_path, mode):
    # Ctrl-C in a terminal sends SIGINT to the foreground process group: Locust and its --processes children.
    results = tmp_path / "results"
    files = ",".join(str(LOADTESTING / name) for name in ("locustfile.py", "hone_in.py"))
    command = [LOCUST, "-f", files, "--headless", "--host", site, "--fake-users", "20"]
    command += ["--hone-results-dir", str(results), "--hone-spawn-rate", "2", "--hone-max-users", "1000"]
    command += ["--hone-time-limit", "120", "--hone-sar", "on", *(processes(2) if mode == "--processes 2" else [])]
    log = tmp_path / "locust.log"
    with log.open("w") as stderr:
        # SIGINT as a terminal leaves it for its foreground job; a CI runner started in the background ignores it,
        # and a process inherits that, so Python would install no KeyboardInterrupt handler.
        process = subprocess.Popen(
            command,
            cwd=LOADTESTING,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 40
        while "probe: one ramp from 0 users" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # a few users running, signed in
        interrupted = time.time()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=40)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        recording = subprocess.run(["pgrep", "-f", f"sadc .*{results}"], capture_output=True, text=True)
        for pid in recording.stdout.split():
            subprocess.run(["kill", pid], check=False)
    output = log.read_text()
    assert (results / "verdict.json").exists(), output[-2000:]
    verdict = json.loads((results / "verdict.json").read_text())
    assert verdict["status"] == "stopped-by-user", output[-2000:]
    # The search ends when the users stop, not after the speed reference that follows.
    assert interrupted <= verdict["ended_at"] < interrupted + 2, output[-2000:]
    # Still ramping, no failure: the probe's cut ramp, no level judged, and the record complete around it.
    assert verdict["probe"]["first_failure_users"] is None
    assert verdict["levels"] == []
    assert verdict["max_users_without_error"] == 0
    assert json.loads((results / "provenance.json").read_text())["speed_reference"]["after"] is not None
    assert (results / "sa.bin").stat().st_size > 0
    assert recording.stdout.split() == [], "sadc was left recording"


class SlowLoginPage(http.server.BaseHTTPRequestHandler):
    """A site whose pages take 3 s: a 1 s request timeout fails them, the 30 s default does not."""

    def do_GET(self):
        time.sleep(3)
        body = b"<html>slow, and no login form</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_timeout_given_only_to_the_master_applies_on_hand_started_workers(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), SlowLoginPage)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        args = ["--headless", "--host", url, "-u", "2", "-r", "2", "-t", "6s", "--csv", str(tmp_path / "run")]
        result = hand_started(tmp_path, *args, "--request-timeout", "1", files="locustfile.py", workers=1, timeout=90)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    with (tmp_path / "run_failures.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "/login/"]
    assert rows, result.stderr[-2000:]
    # Timed out after the master's 1 s: with the worker's own 30 s default the 3 s page would have come back.
    assert [row["Error"] for row in rows] == ["CatchResponseError('no response (TimeoutError)')"]
