"""The capacity study's plan: which stack each configuration starts, and bad input refused before any load."""

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

from lampi_load.runs.capacity import CONFIGS, GROUPS, REPO, TUNED, TUNED_STEPS, stack_env

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
    command = [sys.executable, "-m", "lampi_load.runs.capacity", "--configs", "baseline,fastest"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(REPO / "loadtesting"), timeout=60)
    assert result.returncode == 2
    assert "unknown configuration fastest" in result.stderr


def test_the_cumulative_series_adds_the_tuned_profiles_own_variables_until_it_is_the_tuned_profile():
    # Every variable of ansible/profiles/tuned.yml belongs to exactly one step, so the last step is `tuned`.
    steps = [variable for variables in TUNED_STEPS.values() for variable in variables]
    assert sorted(steps) == sorted(TUNED)
    series = GROUPS["cumulative"]
    assert series[0] == "baseline"
    assert series[1] == "argon2id"
    assert series[-1] == "tuned"
    previous = CONFIGS["argon2id"][1]
    for name in series[2:-1]:
        profile, overrides, database = CONFIGS[name]
        assert profile == "baseline"
        assert overrides.items() >= previous.items()
        assert len(overrides) > len(previous)
        assert all(overrides[variable] == TUNED[variable] for variable in overrides)
        assert database.endswith("-argon2")  # seeded by the hasher in use: no rehash at the first login
        previous = overrides
    assert len(previous) + len(TUNED_STEPS["nginx"]) == len(TUNED)
