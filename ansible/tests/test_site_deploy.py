"""The playbook applied for real, twice, to a booted Debian host with systemd, then the host used as a person would.

One host per test run, in the suite's profile (LAMPI_PROFILE). The host shares this machine's network, so the
site, the broker and a Locust master here meet on loopback: NGINX on port 80 and the broker on the course's EC2
ports 50001 and 50002 (inventory.example.yml), which must be free.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from paho.mqtt import publish

from testing.mqtt_recorder import MqttRecorder
from testing.nspawn_host import DEBOOTSTRAP_TIMEOUT, BootedHost, HostError, cached_root
from testing.ports import free_port, wait_for_port
from testing.site_profile import PROFILE

ANSIBLE = Path(__file__).resolve().parent.parent
REPO = ANSIBLE.parent
BIN = Path(sys.executable).parent
# The host's root file system and its downloads (packages, uv's wheels: uWSGI's is built there once), kept per
# machine, not per clone, as pip's and uv's own caches are: each fresh clone built them again (about a minute of
# every CI run on a fresh clone: debootstrap, then downloading and building what the first playbook run installs).
XDG_CACHE_HOME = os.environ.get("XDG_CACHE_HOME", "")  # a relative one is ignored, as the XDG spec says
CACHE = (
    Path(XDG_CACHE_HOME) if os.path.isabs(XDG_CACHE_HOME) else Path.home() / ".cache"
) / "connected-devices/nspawn-host"
HOST = "127.0.0.1"
# The ports the deployed host listens on: this machine's, since the host shares its network.
HTTP_PORT, MQTT_PORT, WS_PORT = 80, 50001, 50002
# Seeded users: user_000000 (password 000000_resu) owns LAMPI 1e0000000000.
SEEDED_USER, SEEDED_PASSWORD, SEEDED_DEVICE = "user_000000", "000000_resu", "1e0000000000"
# The repository as the host clones it (a bare copy of HEAD, bound read-only).
REPO_ON_HOST = "/srv/connected-devices.git"
# Seconds one playbook run may take (the first installs everything; uWSGI builds once per cache).
PLAYBOOK_TIMEOUT = 420
# The first test also builds (once) and boots the host and applies the playbook twice: pytest-timeout's signal
# must leave the fixture time to power the host off, so it covers the worst case of all that.
# `profile`: the host is deployed in the suite's profile, so the tuned run deploys the tuned profile.
pytestmark = [pytest.mark.profile, pytest.mark.timeout(DEBOOTSTRAP_TIMEOUT + 2 * PLAYBOOK_TIMEOUT + 120)]


def fail(reason: str):
    pytest.fail(reason, pytrace=False)


def check_ports_free() -> None:
    # The tuned profile adds PostgreSQL and memcached on their usual ports (the suite's own are elsewhere).
    for port in (HTTP_PORT, MQTT_PORT, WS_PORT, *([5432, 11211] if PROFILE == "tuned" else [])):
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                fail(f"port {port} on this machine is taken; the deployed host (which shares its network) needs it")


RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


@contextmanager
def ports_kept_for_the_host(ports: list[int], timeout: float = 90):
    """Keeps the kernel from giving `ports` to this machine's outgoing connections while the host needs them.

    50001 and 50002 are inside Linux's ephemeral range: a client socket of the load tests that ran before (or of
    anything else here) can hold one as its source port, and Mosquitto on the host, which shares this machine's
    network, then fails to bind it. The reservation is undone afterwards; sockets that already hold a port are
    waited for (TIME_WAIT ends within 60 s).
    """
    before = RESERVED_PORTS.read_text().strip()
    try:
        RESERVED_PORTS.write_text(",".join([*filter(None, [before]), *map(str, ports)]))
    except OSError as error:
        fail(f"cannot reserve ports {ports} in {RESERVED_PORTS} ({error.strerror}): run the tests as root")
    try:
        deadline = time.monotonic() + timeout
        while held := ports_in_use(ports):
            if time.monotonic() > deadline:
                fail(f"ports {held} are still used by this machine's sockets after {timeout:.0f} s")
            time.sleep(1)
        yield
    finally:
        RESERVED_PORTS.write_text(before or "\n")


def ports_in_use(ports: list[int]) -> list[int]:
    """Which of `ports` a TCP socket of this machine (any state) has as its local port."""
    listing = subprocess.run(["ss", "-Htan"], capture_output=True, text=True, check=True).stdout
    local = {line.split()[3].rsplit(":", 1)[1] for line in listing.splitlines() if len(line.split()) > 3}
    return [port for port in ports if str(port) in local]


def snapshot_of_head(folder: Path) -> str:
    """A bare repository holding this checkout's HEAD, for the host to clone; returns HEAD's commit."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    subprocess.run(["git", "init", "-q", "--bare", folder], check=True)
    subprocess.run(["git", "-C", folder, "fetch", "-q", REPO, "HEAD:refs/heads/deploy-test"], check=True)
    return commit.stdout.strip()


def inventory(host: BootedHost, commit: str, master_port: int) -> dict:
    """The host in both groups, reached over ssh as root; only what a user's inventory.yml would say."""
    return {
        "all": {
            "vars": {
                "ansible_host": HOST,
                "ansible_port": host.ssh_port,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(host.key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                "lampisite_repo_url": REPO_ON_HOST,
                "lampisite_repo_version": commit,
                # Given, so the test writes nothing under ansible/credentials/.
                "lampisite_secret_key": "deploy-test-" + "k" * 52,
                "mosquitto_port": MQTT_PORT,
                "mosquitto_websockets_port": WS_PORT,
                "lampisite_seed_fake_users": 2,
                "loadgen_master_host": HOST,
                "loadgen_master_port": master_port,
                "loadgen_processes": 1,
            },
            "children": {
                "lampi_servers": {"hosts": {host.name: None}},
                "loadgen": {"hosts": {host.name: None}},
            },
        }
    }


def apply_playbook(inventory_path: Path, work_dir: Path, log: Path, host: BootedHost) -> dict[str, int]:
    """`ansible-playbook site.yml` in the suite's profile; the host's recap counts, or a failure with its log."""
    env = {
        "PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(work_dir),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PIPELINING": "1",
        # ssh's shared connections live in the test's folder and end with the host.
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work_dir / "cp"),
        "ANSIBLE_LOCAL_TEMP": str(work_dir / "tmp"),
    }
    command = [BIN / "ansible-playbook", "-i", inventory_path, "site.yml", "-e", f"lampi_profile={PROFILE}"]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT)
    log.write_text(result.stdout + result.stderr)
    recap = re.search(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout, re.M)
    if result.returncode != 0 or not recap or recap[4] != "0":
        failed = [line for line in result.stdout.splitlines() if line.startswith(("fatal:", "failed:"))]
        # What the host's own logs say of it: a unit that failed to start says why only there.
        journal = host.ssh("systemctl --no-pager --failed; journalctl --no-pager -p warning -n 30", timeout=30)
        fail(
            f"ansible-playbook failed ({result.returncode}): {(failed or [result.stderr.strip()[-300:]])[0][:400]}\n"
            f"the host's failed units and warnings:\n{journal.stdout[-3000:]}"
        )
    counts = dict(zip(["ok", "changed", "unreachable", "failed"], map(int, recap.groups()), strict=True))
    return {**counts, "seconds": round(time.monotonic() - started)}


class LocustMaster:
    """A Locust master on free loopback ports, with its web UI for asking which workers joined."""

    def __init__(self, log: Path):
        self.port, self.web_port = free_port(), free_port()
        command = [
            BIN / "locust", "-f", "locustfile.py,hone_in.py", "--master", "--master-bind-host", HOST,
            "--master-bind-port", str(self.port), "--web-host", HOST, "--web-port", str(self.web_port),
        ]  # fmt: skip
        with open(log, "w") as output:
            self.process = subprocess.Popen(
                command, cwd=REPO / "loadtesting", stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        wait_for_port(HOST, self.web_port, timeout=30)

    def workers(self) -> list[str]:
        with urllib.request.urlopen(f"http://{HOST}:{self.web_port}/stats/requests", timeout=10) as response:
            return [worker["id"] for worker in json.load(response).get("workers", [])]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def deployed():
    """The host with the playbook applied twice, the recaps of both runs, and the Locust master it reports to."""
    check_ports_free()
    work_dir = Path(tempfile.mkdtemp(prefix="lampi-deploy-"))
    timings = {}
    master = None
    try:
        started = time.monotonic()
        try:
            root = cached_root(CACHE)
        except HostError as error:
            fail(f"test host: {error}")
        timings["root"] = round(time.monotonic() - started)
        commit = snapshot_of_head(work_dir / "repo.git")
        master = LocustMaster(work_dir / "locust-master.log")
        # Downloads the host repeats on every run: the packages and uv's wheels (uWSGI's is built once).
        caches = {CACHE / "apt-archives": "/var/cache/apt/archives", CACHE / "uv-cache": "/opt/lampi/uv-cache"}
        for folder in caches:
            folder.mkdir(parents=True, exist_ok=True)
        host = BootedHost(root, work_dir / "host", binds=caches, read_only_binds={work_dir / "repo.git": REPO_ON_HOST})
        try:
            with ports_kept_for_the_host([MQTT_PORT, WS_PORT]), host:
                path = work_dir / "inventory.json"
                path.write_text(json.dumps(inventory(host, commit, master.port)))
                first = apply_playbook(path, work_dir, work_dir / "run1.log", host)
                second = apply_playbook(path, work_dir, work_dir / "run2.log", host)
                timings.update(first=first["seconds"], second=second["seconds"])
                print(f"\ndeploy timings (s): {timings}")
                yield {"host": host, "first": first, "second": second, "master": master, "log": work_dir / "run2.log"}
        except HostError as error:
            fail(f"test host: {error}")
    finally:
        if master:
            master.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


@pytest.mark.slow
def test_the_first_run_changes_the_host_and_the_second_changes_nothing(deployed):
    assert deployed["first"]["changed"] > 0
    assert deployed["second"]["changed"] == 0, deployed["log"].read_text()[-4000:]


@pytest.mark.slow
def test_a_browser_logs_in_through_nginx_on_port_80_and_sees_its_device(deployed):
    site = f"http://{HOST}"
    browser = requests.Session()
    form = browser.get(f"{site}/login/", timeout=10)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    login = browser.post(
        f"{site}/login/",
        data={"username": SEEDED_USER, "password": SEEDED_PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Origin": site, "Referer": f"{site}/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code == 302, login.text[:500]
    assert login.headers["Location"] == "/lampi/"
    page = browser.get(f"{site}/lampi/device/{SEEDED_DEVICE}", timeout=10)
    assert page.status_code == 200
    assert SEEDED_DEVICE in page.text
    assert browser.get(f"{site}/static/lampi/site.css", timeout=10).status_code == 200


@pytest.mark.slow
def test_the_broker_answers_mqtt_on_50001_and_websockets_on_50002(deployed):
    with MqttRecorder(HOST, MQTT_PORT, ["deploy-test/#"]) as recorder:
        publish.single("deploy-test/ws", "1", hostname=HOST, port=WS_PORT, transport="websockets")
        assert recorder.wait_for(lambda message: message.topic == "deploy-test/ws").payload == b"1"


@pytest.mark.slow
def test_the_services_run_and_no_unit_failed(deployed):
    host = deployed["host"]
    services = ["mosquitto", "nginx", "uwsgi-lampisite", "lampi-mqtt-daemon", "sysstat", "locust-worker"]
    if PROFILE == "tuned":
        services += ["memcached"]
    active = host.ssh(f"systemctl is-active {' '.join(services)}")
    assert active.stdout.split() == ["active"] * len(services), active.stdout
    assert host.ssh("systemctl list-units --failed --plain --no-legend").stdout.strip() == ""
    assert host.ssh("systemctl is-system-running").stdout.strip() == "running"


@pytest.mark.slow
def test_sysstat_collects_what_sar_reads(deployed):
    host = deployed["host"]
    # The timer's job, run now rather than in up to ten minutes: twice, since sar reports the change between two.
    assert host.ssh("systemctl is-active sysstat-collect.timer").stdout.strip() == "active"
    collect = host.ssh("systemctl start sysstat-collect.service && sleep 1 && systemctl start sysstat-collect.service")
    assert collect.returncode == 0, collect.stderr
    sar = host.ssh("sar -u")
    assert sar.returncode == 0, sar.stderr
    assert re.search(r"^\S+\s+all\s+[\d.]+", sar.stdout, re.M), sar.stdout


@pytest.mark.slow
def test_a_loadgen_worker_on_the_host_joins_the_master(deployed):
    master, host = deployed["master"], deployed["host"]
    deadline = time.monotonic() + 60
    while not any(worker.startswith(f"{host.name}_") for worker in master.workers()):
        assert time.monotonic() < deadline, host.ssh("journalctl -u locust-worker --no-pager | tail -5").stdout
        time.sleep(1)
