"""The server CPUs' speed reference: real hashes timed in a process pinned where the server runs."""

import logging

from lampi_load.search import speed


def test_measure_times_both_hashes_on_the_cpus_given():
    reference = speed.measure("0")
    assert reference["cpus"] == "0"
    assert 0 <= reference["busy_pct"] <= 100
    # Real work, not a stub: an Argon2id hash of 19 MiB takes milliseconds on any machine this kit runs on.
    assert 1 < reference["argon2id_ms"] < 2000
    assert 1 < reference["pbkdf2_ms"] < 2000


def test_a_cpu_that_does_not_exist_gives_no_reference_and_says_why(caplog):
    with caplog.at_level(logging.WARNING, logger="lampi_load.search.speed"):
        assert speed.measure("4095") is None
    assert "no speed reference on CPUs 4095" in caplog.text


def test_change_keeps_the_larger_change_and_its_sign():
    before = {"argon2id_ms": 20.0, "pbkdf2_ms": 25.0}
    assert speed.change_pct(before, {"argon2id_ms": 22.0, "pbkdf2_ms": 25.5}) == 10.0
    assert speed.change_pct(before, {"argon2id_ms": 20.2, "pbkdf2_ms": 20.0}) == -20.0
    assert speed.change_pct(before, None) is None


def test_describe_names_both_references_and_the_change():
    before = {"cpus": "0", "argon2id_ms": 20.0, "pbkdf2_ms": 25.0}
    after = {"cpus": "0", "argon2id_ms": 22.0, "pbkdf2_ms": 25.0}
    line = speed.describe({"before": before, "after": after})
    assert line == "argon2id 20.0 ms, PBKDF2 25.0 ms before; 22.0 and 25.0 ms after (10.0% slower), on CPUs 0"
    assert speed.describe({"before": None, "after": None}) == ""
    assert speed.describe(None) == ""


def test_server_cpus_are_those_every_server_process_shares():
    pins = {"locust 10": "1", "uwsgi 20": "0", "nginx 30": "0", "postgres 40": "0"}
    assert speed.server_cpus(pins) == "0"
    assert speed.server_cpus({**pins, "memcached 50": "0-1"}) is None
    assert speed.server_cpus({"locust 10": "1"}) is None


def test_cpu_lists_read_as_taskset_writes_them():
    assert speed.cpu_list("0") == {0}
    assert speed.cpu_list("0-2,5") == {0, 1, 2, 5}
    assert 0 <= speed.busy_pct("0", seconds=0.1) <= 100
