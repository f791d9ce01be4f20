"""The demo's closing table: each column's figures come from the levels its verdict names."""

import json

import pytest

from lampi_load.reports import verdicts


def level(users: int, rps: float, p95_ms: float, reason: str = "") -> dict:
    return {"users": users, "rps": rps, "p95_ms": p95_ms, "reason": reason, "passed": not reason}


def verdict(**fields) -> dict:
    base = {"status": "converged", "max_users_without_error": 150, "generator_bound": False}
    return {**base, **fields}


def test_a_column_takes_each_figure_from_the_level_it_names():
    found = verdict(
        max_level=level(150, 28.14, 4100),
        failing_level=level(160, 30.0, 13000, "12 failures (GET /: status 502)"),
        usable_p95_ms=1000.0,
        max_users_usable=80,
        usable_level=level(80, 15.0, 700),
        # Stale top-level copies (as old verdicts had) must not leak into the column.
        first_failing_users=120,
        failure_reason="3 failures (GET /login/: 502)",
    )
    assert verdicts.cells(found) == [
        "converged",
        "150",
        "28.1",
        "4100 ms",
        "80 (p95 <= 1000 ms)",
        "160",
        "12 failures (GET /: status 502)",
        "no",
    ]


def test_a_search_without_a_pass_or_a_failure_says_so():
    cells = verdicts.cells(
        verdict(status="no-failure-up-to-max-users", max_users_without_error=0, generator_bound=True)
    )
    assert cells[2:8] == ["-", "-", "-", "none", "-", "yes: add Locust processes"]


def test_the_table_has_one_column_per_search_and_one_row_per_figure():
    runs = {
        "HTTP users": verdict(max_level=level(150, 28.1, 4100)),
        "MQTT devices": verdict(max_users_without_error=16000, max_level=level(16000, 1677.1, 19000)),
    }
    lines = verdicts.table(runs).splitlines()
    assert len(lines) == 1 + len(verdicts.ROWS)
    assert lines[0].split() == ["HTTP", "users", "MQTT", "devices"]
    assert lines[2].split() == ["max", "without", "error", "150", "16000"]


def test_the_command_prints_the_table_and_where_reports_and_charts_are(tmp_path, capsys):
    run = tmp_path / "20261130-120000-http"
    run.mkdir()
    (run / "verdict.json").write_text(json.dumps(verdict(max_level=level(150, 28.1, 4100))))
    (run / "timeline.png").write_bytes(b"")
    assert verdicts.main([f"HTTP users={run}"]) == 0
    out = capsys.readouterr().out
    assert f"HTTP users: report {run / 'report.md'}; charts {run / 'timeline.png'}" in out


def test_a_folder_without_a_verdict_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        verdicts.main([f"HTTP users={tmp_path}"])
    assert exit_.value.code == 2
