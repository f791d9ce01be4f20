"""The report's lines that a reader copies: whether the usable maximum is an answer or a floor."""

from lampi_load.reports.render import (
    given_tally,
    level_test,
    moments_heading,
    not_usable,
    short_line,
    usable_line,
    usable_state,
)


def test_the_usable_line_says_whether_it_converged_and_to_what():
    settings = {"resolution_users": 10, "resolution_fraction": 0.05, "usable_resolution_fraction": 0.10}
    assert usable_state({"usable_converged": True, "settings": settings}) == "; converged to within 10% or 10 users"
    assert "not converged" in usable_state({"usable_converged": False, "settings": settings})
    # Before the usable search had its own resolution it used the error-free one.
    older = {"usable_converged": True, "settings": {"resolution_users": 10, "resolution_fraction": 0.05}}
    assert usable_state(older) == "; converged to within 5% or 10 users"
    assert usable_state({"settings": settings}) == ""
    # Ended by a level the generator did not hold, with no usable level yet: no "edge at or above" nothing.
    lost = {"usable_converged": False, "settings": settings, "short_level": {"users": 4}, "max_users_usable": 0}
    assert usable_state(lost) == "; not converged: a level the generator did not hold came first"


def test_the_usable_line_names_the_level_above_it_and_why_it_was_not_usable():
    slow = {"not_usable_level": {"users": 677, "passed": True, "p95_ms": 1400.0, "reason": ""}}
    assert not_usable(slow) == "; not usable at 677 users (p95 1400 ms)"
    failed = {
        "not_usable_level": {"users": 1893, "passed": False, "p95_ms": 6500.0, "reason": "3 failures (GET /: 502)"}
    }
    assert not_usable(failed) == "; not usable at 1893 users (3 failures (GET /: 502))"
    # Verdicts from before the field, and those where every level was usable, say nothing more.
    assert not_usable({}) == not_usable({"not_usable_level": None}) == ""


def test_the_usable_line_gives_the_level_or_says_none_was_usable():
    verdict = {
        "max_users_usable": 744,
        "usable_p95_ms": 1000.0,
        "usable_level": {"users": 744, "rps": 142.67, "p95_ms": 730.0},
        "not_usable_level": {"users": 828, "passed": True, "p95_ms": 2800.0},
        "usable_converged": None,
    }
    assert usable_line(verdict) == (
        "- Usable (p95 under 1000 ms): 744 users (142.7 requests/s, p95 730 ms); not usable at 828 users (p95 2800 ms)"
    )
    # Given levels none of which was under the bound: no measured level of 0 users.
    none = {**verdict, "max_users_usable": 0, "usable_level": None}
    assert (
        usable_line(none)
        == "- Usable (p95 under 1000 ms): none of the levels tested; not usable at 828 users (p95 2800 ms)"
    )
    assert usable_line({"max_users_usable": None}) is None


def test_a_level_the_generator_did_not_hold_is_named_with_its_users():
    verdict = {"short_level": {"users": 4, "held": 2, "phase": "given", "start": 0.0, "end": 9.0}}
    assert short_line(verdict).startswith("- **The load generator did not hold a level**: 4 users asked, 2 at the")
    assert short_line({"short_level": None}) is None
    assert short_line({}) is None  # verdicts older than the field


def test_the_sar_heading_counts_the_moments_a_run_has():
    # A search has three (minimal load, max without error, failing load); a run of given levels no minimal one.
    assert moments_heading(3) == "the three moments"
    assert moments_heading(2) == "the two moments"


def test_the_level_test_line_says_what_the_probe_found_or_which_levels_were_given():
    settings = {"spawn_rate": 10.0, "ramp": 20.0, "settle": 10.0, "hold": 20.0, "time_limit": 600, "levels": ""}
    probe = {"start": 0.0, "end": 120.0, "first_failure_users": 1200, "reason": "5 failures (GET /: status 502)"}
    searched = level_test({"settings": settings, "probe": probe, "p95_of": "window"})[0]
    assert searched.startswith("Probe: one ramp from 0 users at 10 users/s; it first failed at 1200 users (5 fail")
    assert 'from N - 200 users ("from"' in searched
    given = level_test({"settings": {**settings, "levels": "102,112"}, "probe": None, "p95_of": "window"})[0]
    assert given.startswith("No probe and no search: the levels given (--hone-levels 102,112), in that order")
    assert 'from N - 200 users ("from"' in given
    assert "20 s hold" in given
    # Verdicts from before the probe (or the level test's settings) describe nothing.
    assert level_test({"settings": {}, "probe": None}) == []


def test_a_run_of_given_levels_counts_each_levels_passes():
    def level(users, passed):
        return {"users": users, "passed": passed}

    levels = [level(110, True), level(100, True), level(110, False), level(100, True), level(110, True)]
    verdict = {"settings": {"levels": "110,100,110,100,110"}, "levels": levels}
    assert given_tally(verdict) == (
        "Levels given: 100 users passed 2 of 2 tests, 110 users 2 of 3 (the figures above take each level's latest "
        "result)"
    )
    assert given_tally({"settings": {"levels": "110"}, "levels": []}) == "Levels given: none was tested"
    assert given_tally({"settings": {"levels": ""}, "levels": levels}) == ""
