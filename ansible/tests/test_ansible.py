"""The deployment: lint, syntax, a check-mode run on this machine, and every template checked by its program."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from testing.ports import free_port, wait_for_port

ANSIBLE = Path(__file__).resolve().parent.parent
REPO = ANSIBLE.parent
BIN = Path(sys.executable).parent
# ansible-lint and ansible-playbook run their siblings from .venv/bin.
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1"}
HOST_PYTHON = "/usr/bin/python3"


def run(*command, cwd=ANSIBLE, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def render(template: str, dest: Path, *var_files: str, **variables) -> Path:
    """Renders one role template through Ansible's template module, with role defaults, a profile, overrides."""
    extra = [arg for name in var_files for arg in ("-e", f"@{name}")]
    result = run(
        BIN / "ansible",
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-m",
        "ansible.builtin.template",
        "-a",
        f"src={ANSIBLE / template} dest={dest}",
        *extra,
        "-e",
        json.dumps({"ansible_python_interpreter": sys.executable, "lampi_cpus": 2, **variables}),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dest


def test_ansible_lint_is_clean():
    result = run(BIN / "ansible-lint", "--offline", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_site_playbook_passes_syntax_check():
    result = run(BIN / "ansible-playbook", "-i", "inventory.example.yml", "--syntax-check", "site.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_play_forces_its_handlers():
    # A failed task must not drop restarts that earlier changes asked for: the next run would change nothing and
    # leave the old configuration running (test_site_deploy shows the restarts happen when the run succeeds).
    plays = yaml.safe_load((ANSIBLE / "site.yml").read_text())
    assert [play.get("force_handlers") for play in plays] == [True] * len(plays)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not Path(HOST_PYTHON).exists(), reason="needs root and Debian's python3")
def test_site_playbook_runs_in_check_mode_on_this_machine(tmp_path):
    # Both plays on localhost, with the tuned profile so the postgresql and memcached roles run too.
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": HOST_PYTHON,
                "lampisite_repo_url": str(REPO),
                "lampisite_secret_key": "k" * 64,
                "loadgen_master_host": "127.0.0.1",
            },
            "children": {"lampi_servers": {"hosts": {"localhost": None}}, "loadgen": {"hosts": {"localhost": None}}},
        }
    }
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory))
    result = run(
        BIN / "ansible-playbook", "-i", tmp_path / "inventory.yml", "site.yml", "--check", "--diff", "-e",
        "lampi_profile=tuned", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "failed=0" in result.stdout


def test_nginx_accepts_the_host_and_the_local_configuration(tmp_path):
    defaults = ["roles/nginx/defaults/main.yml", "profiles/baseline.yml"]
    host = render("roles/nginx/templates/nginx.conf.j2", tmp_path / "host.conf", *defaults)
    local = render(
        "roles/nginx/templates/nginx.conf.j2", tmp_path / "local.conf", *defaults, "local-vars.yml",
        lampi_run_dir=str(tmp_path), lampi_root_user="root" if os.geteuid() == 0 else "",
    )  # fmt: skip
    (tmp_path / "nginx").mkdir()  # the temporary files folder, which local.yml creates
    for conf in (host, local):
        result = run(shutil.which("nginx", path="/usr/sbin:/usr/bin"), "-t", "-c", conf, "-e", tmp_path / "error.log")
        assert result.returncode == 0, result.stderr


def test_mosquitto_starts_with_the_host_configuration(tmp_path):
    # The host's configuration with only the paths and ports moved where this test may use them.
    ports = {"mosquitto_port": free_port(), "mosquitto_websockets_port": free_port()}
    conf = render(
        "roles/mosquitto/templates/mosquitto.conf.j2", tmp_path / "mosquitto.conf", "roles/mosquitto/defaults/main.yml",
        **ports, mosquitto_user="root" if os.geteuid() == 0 else "", mosquitto_pid_file=str(tmp_path / "mosquitto.pid"),
        mosquitto_persistence_location=f"{tmp_path}/", mosquitto_log_dest=f"file {tmp_path}/mosquitto.log",
    )  # fmt: skip
    broker = subprocess.Popen([shutil.which("mosquitto", path="/usr/sbin:/usr/bin"), "-c", conf])
    try:
        for port in ports.values():
            wait_for_port("127.0.0.1", port)
        assert (tmp_path / "mosquitto.pid").read_text().strip() == str(broker.pid)
    finally:
        broker.terminate()
        broker.wait(10)


@pytest.mark.slow
def test_uwsgi_loads_the_site_with_the_rendered_configuration(tmp_path, site_database):
    ini = render(
        "roles/uwsgi/templates/lampisite.ini.j2", tmp_path / "uwsgi.ini", "roles/uwsgi/defaults/main.yml",
        "roles/lampisite/defaults/main.yml", "profiles/tuned.yml", "local-vars.yml",
        lampi_run_dir=str(tmp_path), lampi_repo=str(REPO), lampi_venv=str(BIN.parent), uwsgi_processes=1,
    )  # fmt: skip
    log = tmp_path / "uwsgi.log"
    env = {**ENV, **site_database.env}
    with open(log, "w") as output:
        server = subprocess.Popen([BIN / "uwsgi", "--ini", ini], stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while "WSGI app 0 (mountpoint='') ready" not in log.read_text():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert (tmp_path / "uwsgi.sock").is_socket()
    finally:
        server.send_signal(signal.SIGTERM)  # die-on-term: stops instead of reloading
        server.wait(20)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_systemd_units_verify(tmp_path):
    variables = [
        "roles/lampisite/defaults/main.yml",
        "roles/uwsgi/defaults/main.yml",
        "roles/loadgen/defaults/main.yml",
    ]
    paths = {"lampisite_venv": str(BIN.parent), "lampisite_home": str(REPO), "lampisite_src_dir": str(REPO)}
    units = [
        render(f"roles/{role}/templates/{name}.j2", tmp_path / name, *variables, **paths, loadgen_master_host="x")
        for role, name in [
            ("lampisite", "lampi-mqtt-daemon.service"),
            ("uwsgi", "uwsgi-lampisite.service"),
            ("loadgen", "locust-worker.service"),
        ]
    ]
    result = run("systemd-analyze", "verify", *units)
    assert result.returncode == 0, result.stdout + result.stderr
