"""Re-deriving committed verdicts: each failing figure from the one level the verdict names, idempotently."""

import json
from pathlib import Path

from lampi_load.reports import rederive
from lampi_load.search.settings import SearchSettings

HISTORY_HEADER = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,99%\n"


def level(phase, users, start, reason="", p95_ms=300.0):
    failures = int(reason.split()[0]) if reason else 0
    return {
        **{"users": users, "phase": phase, "start": start, "end": start + 20, "requests": 100, "rps": 5.0},
        **{"failures": failures, "p95_ms": p95_ms, "generator_cpu": 20.0, "passed": not reason, "reason": reason},
    }


def without(mapping: dict, key: str) -> dict:
    return {name: value for name, value in mapping.items() if name != key}


def old_verdict() -> dict:
    """As the search wrote it before: the lowest failing count (30) with the first failing level's reason (40)."""
    levels = [
        level("ramp", 10, 1000),
        level("ramp", 20, 1030),
        level("ramp", 40, 1060, "205 failures (GET /login/: status 502)", p95_ms=9000),
        level("backoff", 20, 1090),
        level("bisect", 30, 1120, "12 failures (GET /: status 502)", p95_ms=1500),
        level("backoff", 20, 1150, p95_ms=1200),
    ]
    window = {"users": 40, "start": 1060, "end": 1080}
    return {
        "status": "converged",
        "max_users_without_error": 20,
        "first_failing_users": 30,
        "failure_reason": levels[2]["reason"],
        "generator_bound": False,
        "max_level": levels[5],
        "failing_level": levels[2],
        "moments": {"minimal": {"users": 10, "start": 1000, "end": 1020}, "failing": window},
        "levels": levels,
        # Settings of that time: without the usability bound, with one since retired.
        "settings": {**without(SearchSettings().__dict__, "usable_p95_ms"), "retired_setting": 1},
        "sar": {"minimal": {"cpu": []}, "failing": {"cpu": []}},
    }


def test_every_failing_figure_comes_from_the_smallest_failing_level():
    verdict = rederive.rederive(old_verdict())
    assert verdict["first_failing_users"] == verdict["failing_level"]["users"] == 30
    assert verdict["failure_reason"] == verdict["failing_level"]["reason"] == "12 failures (GET /: status 502)"
    assert verdict["moments"]["failing"] == {"users": 30, "start": 1120, "end": 1140}
    # The slices stay as cut, and say at which level.
    assert verdict["sar_windows"]["failing"]["users"] == 40
    assert verdict["max_users_without_error"] == verdict["max_level"]["users"] == 20
    # The usable maximum from the same levels (the default 1,000 ms bound): 20 users passed at 300 ms, then again at
    # 1,200 ms; the latest result stands, so 10.
    assert verdict["max_users_usable"] == 10
    assert verdict["not_usable_level"] == verdict["levels"][5]  # the usable answer's other edge: 20 users at 1.2 s


def test_a_failing_level_run_with_the_generator_saturated_makes_the_verdict_generator_bound():
    # As the search itself decides: the first failing load is one the generator could not produce honestly.
    verdict = old_verdict()
    verdict["levels"][4]["generator_cpu"] = 97.0
    derived = rederive.rederive(verdict)
    assert derived["generator_bound"] is True
    assert derived["status"] == "generator-bound"


def test_re_deriving_twice_changes_nothing():
    once = rederive.rederive(old_verdict())
    assert rederive.rederive(json.loads(json.dumps(once))) == once


def test_committed_verdicts_are_already_derived_from_their_own_levels():
    # What the committed results say is what their levels say: re-deriving them changes no figure they hold (those
    # written before `not_usable_level` existed gain it, from the same levels).
    root = Path(__file__).resolve().parents[2] / "results"
    paths = sorted(root.rglob("verdict.json"))
    assert paths, f"no verdict.json under {root}"
    for path in paths:
        verdict = json.loads(path.read_text())
        derived = rederive.rederive(verdict)
        assert {name: derived[name] for name in verdict} == verdict, path
        assert set(derived) - set(verdict) <= {"not_usable_level"}, path


def test_the_command_rewrites_verdicts_reports_and_comparisons(tmp_path):
    root = tmp_path / "results" / "20261124-132925-capacity"
    run = root / "20261124-132958-baseline"
    run.mkdir(parents=True)
    (run / "verdict.json").write_text(json.dumps(old_verdict()))
    rows = [f"{1000 + t},{min(t, 40)},,Aggregated,5,0,50,120,200\n" for t in range(0, 180, 5)]
    (run / "locust_stats_history.csv").write_text(HISTORY_HEADER + "".join(rows))
    (run / "report.md").write_text("old\n")
    (root / "comparison.md").write_text(f"# old\n\n- baseline: `/elsewhere/results/{root.name}/{run.name}`\n")
    assert rederive.main([str(tmp_path / "results")]) == 0
    assert json.loads((run / "verdict.json").read_text())["first_failing_users"] == 30
    report = (run / "report.md").read_text()
    assert "First failing load: 30 users (5.0 requests/s, p95 1500 ms): 12 failures (GET /: status 502)" in report
    assert "failing load (sliced at 40 users)" in report
    row = "| baseline | 20 | 1.00 | 5.0 | 1200 ms | 10 (p95 <= 1000 ms) | 30 | 12 failures (GET /: status 502) |"
    assert row in (root / "comparison.md").read_text()
