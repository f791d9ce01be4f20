"""What the local stack is made of: settings from LAMPI_* variables, and the configuration rendered by Ansible."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
VENV_BIN = Path(sys.executable).parent
# The site's settings lampisite.env may set. The profile decides them: one it leaves empty (the baseline's
# password hashers, its cache) takes the settings' default, never a value from the caller's environment.
SITE_SETTINGS = yaml.safe_load((ANSIBLE / "roles" / "lampisite" / "defaults" / "main.yml").read_text())[
    "lampisite_base_environment"
].keys()


class StackError(RuntimeError):
    """The stack cannot start or stop as asked; the message is one line a person can act on."""


def cpu_count(cpus: str) -> int:
    """How many CPUs a taskset list such as `0`, `0,2` or `0-3` names."""
    count = 0
    for part in cpus.split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count


@dataclass(frozen=True)
class Config:
    """The stack's settings: from the environment at `make up`, saved in the run folder for `down` and `status`."""

    run_dir: Path
    profile: str = "baseline"
    http_port: int = 8080
    mqtt_port: int = 1883
    ws_port: int = 9001
    memcached_port: int = 11211
    db_name: str = ""
    server_cpus: str = ""
    # Ansible variables on top of the profile, as a JSON object: one experiment's change (the capacity study's
    # ablation), e.g. LAMPI_STACK_VARS='{"uwsgi_threads": 4}'.
    stack_vars: str = ""

    @classmethod
    def from_env(cls, env=os.environ) -> "Config":
        def port(name: str, default: int) -> int:
            value = env.get(name) or str(default)
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise StackError(f"{name} must be a TCP port number, not {value!r}")
            return int(value)

        stack_vars = env.get("LAMPI_STACK_VARS", "")
        try:
            if not isinstance(json.loads(stack_vars or "{}"), dict):
                raise ValueError
        except ValueError:
            raise StackError(
                f"LAMPI_STACK_VARS must be a JSON object of Ansible variables, not {stack_vars!r}"
            ) from None
        profile = env.get("LAMPI_PROFILE") or "baseline"
        if not (ANSIBLE / "profiles" / f"{profile}.yml").exists():
            raise StackError(f"LAMPI_PROFILE={profile}: no such profile in ansible/profiles/")
        return cls(
            run_dir=Path(env.get("LAMPI_RUN_DIR") or REPO / "run").resolve(),
            profile=profile,
            http_port=port("LAMPI_HTTP_PORT", 8080),
            mqtt_port=port("LAMPI_MQTT_PORT", 1883),
            ws_port=port("LAMPI_WS_PORT", 9001),
            memcached_port=port("LAMPI_MEMCACHED_PORT", 11211),
            db_name=env.get("LAMPI_DB_NAME", ""),
            server_cpus=env.get("LAMPI_SERVER_CPUS", ""),
            stack_vars=stack_vars,
        )

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    def save(self) -> None:
        self.state_file.write_text(json.dumps({**self.__dict__, "run_dir": str(self.run_dir)}, indent=2) + "\n")

    def saved(self) -> "Config":
        """The settings the running stack was started with (this one if none were saved)."""
        try:
            state = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return self
        return Config(**{**state, "run_dir": Path(state["run_dir"])})

    @property
    def uses_postgresql(self) -> bool:
        return self.django_env().get("LAMPI_DB_ENGINE") == "postgresql"

    @property
    def uses_memcached(self) -> bool:
        return bool(self.django_env().get("LAMPI_CACHE_LOCATION"))

    def render(self) -> None:
        """Renders the roles' templates into the run folder with ansible/local.yml."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        variables = {
            "lampi_profile": self.profile,
            "lampi_run_dir": str(self.run_dir),
            "lampi_repo": str(REPO),
            "lampi_venv": str(VENV_BIN.parent),
            "lampi_root_user": "root" if os.geteuid() == 0 else "",
            "lampi_http_port": self.http_port,
            "lampi_mqtt_port": self.mqtt_port,
            "lampi_ws_port": self.ws_port,
            "lampi_memcached_port": self.memcached_port,
            "lampi_db_name": self.db_name,
            "lampi_cpus": cpu_count(self.server_cpus) if self.server_cpus else os.cpu_count(),
            **json.loads(self.stack_vars or "{}"),
        }
        command = [VENV_BIN / "ansible-playbook", "-i", "localhost,", "-c", "local", "local.yml"]
        result = subprocess.run(
            [*command, "-e", json.dumps(variables)],
            cwd=ANSIBLE,
            env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
            capture_output=True,
            text=True,
        )
        (self.run_dir / "render.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            failure = next((line for line in result.stdout.splitlines() if "FAILED" in line or "ERROR" in line), "")
            raise StackError(f"rendering the configuration failed: {failure[:300]} (see {self.run_dir}/render.log)")

    def django_env(self) -> dict[str, str]:
        """The environment of the site's processes: ours without the profile's settings, then lampisite.env's."""
        env = {name: value for name, value in os.environ.items() if name not in SITE_SETTINGS}
        for line in (self.run_dir / "lampisite.env").read_text().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                env[name] = value
        return env
