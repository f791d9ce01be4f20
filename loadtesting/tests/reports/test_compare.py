"""Side-by-side comparison of searches: ratios to the first run, one chart for all."""

import json

import pytest

from lampi_load.reports.compare import main

HISTORY_HEADER = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,99%\n"


def results(folder, users, rps, **fields):
    folder.mkdir()
    verdict = {
        **fields,
        "status": "converged",
        "max_users_without_error": users,
        "first_failing_users": users + 10,
        "failure_reason": "3 failures (GET /: status 0)",
        "generator_bound": False,
        "max_level": {"rps": rps, "p95_ms": 120.0},
        "failing_level": {"users": users + 10, "reason": "3 failures (GET /: status 0)"},
        "usable_p95_ms": 1000.0,
        "max_users_usable": users,
        "started_at": 1000.0,
        "ended_at": 1000.0 + users,
    }
    (folder / "verdict.json").write_text(json.dumps(verdict))
    rows = [f"{1000 + t},{min(t * 10, users)},,Aggregated,{rps * t / 10},0,50,120,200\n" for t in range(12)]
    (folder / "locust_stats_history.csv").write_text(HISTORY_HEADER + "".join(rows))
    return folder


def test_ratio_is_to_the_first_run_and_chart_is_drawn(tmp_path):
    baseline = results(tmp_path / "b", 200, 38.0)
    tuned = results(tmp_path / "t", 900, 171.0)
    assert main(["--out", str(tmp_path / "out"), f"baseline={baseline}", f"tuned={tuned}"]) == 0
    report = (tmp_path / "out" / "comparison.md").read_text()
    assert "| baseline | 200 | 1.00 |" in report
    assert (
        "| tuned | 900 | 4.50 | 171.0 | 120 ms | 900 (p95 <= 1000 ms) | 910 | 3 failures (GET /: status 0) |" in report
    )
    assert "| converged | 900 s |" in report  # the search's own clock
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 5_000


def test_runs_whose_p95_is_the_older_measure_are_named(tmp_path):
    older = results(tmp_path / "b", 200, 38.0)
    newer = results(tmp_path / "t", 900, 171.0, p95_of="window")
    assert main(["--out", str(tmp_path / "out"), f"before={older}", f"after={newer}"]) == 0
    report = (tmp_path / "out" / "comparison.md").read_text()
    assert "p95 of before: the highest of Locust's 10 s p95" in report
    assert main(["--out", str(tmp_path / "same"), f"after={newer}"]) == 0
    assert "p95 of" not in (tmp_path / "same" / "comparison.md").read_text()


def test_a_folder_without_a_verdict_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "out"), f"baseline={tmp_path}"])
    assert "expected NAME=RESULTS_DIR with a verdict.json" in capsys.readouterr().err
