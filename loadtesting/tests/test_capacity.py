"""The capacity study's plan: which stack each configuration starts, and bad input refused before any load."""

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

from lampi_load.capacity import CONFIGS, REPO, stack_env

ARGS = Namespace(server_cpus="0", loadgen_cpus="1")


def test_each_change_alone_is_the_baseline_plus_its_own_variables():
    for name, (profile, overrides, _) in CONFIGS.items():
        env = stack_env(name, ARGS)
        assert env["LAMPI_PROFILE"] == profile
        assert json.loads(env["LAMPI_STACK_VARS"]) == overrides
        assert (REPO / "ansible" / "profiles" / f"{profile}.yml").exists()
    assert [name for name, (profile, *_) in CONFIGS.items() if profile != "baseline"] == ["tuned"]


def test_configurations_share_a_database_only_when_engine_and_hasher_match():
    assert stack_env("baseline", ARGS)["LAMPI_DB_NAME"] == stack_env("nginx", ARGS)["LAMPI_DB_NAME"]
    assert stack_env("baseline", ARGS)["LAMPI_DB_NAME"] != stack_env("argon2id", ARGS)["LAMPI_DB_NAME"]
    assert stack_env("tuned", ARGS)["LAMPI_DB_NAME"] == "lampi_argon2"
    assert stack_env("tuned", ARGS)["LAMPI_SERVER_CPUS"] == "0"


def test_unknown_configuration_is_refused():
    command = [sys.executable, "-m", "lampi_load.capacity", "--configs", "baseline,fastest"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(REPO / "loadtesting"), timeout=60)
    assert result.returncode == 2
    assert "unknown configuration fastest" in result.stderr
