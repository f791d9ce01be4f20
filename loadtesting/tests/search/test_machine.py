"""The hone-in search's decisions, on a synthetic server whose capacity the test knows."""

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lampi_load.search.machine import NEAR_BOUND, HoneInSearch, Sample, derive, percentile
from lampi_load.search.settings import SearchSettings

FAST = SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600, spawn_rate=10)


class SyntheticRun:
    """A one-second-tick world: users rise toward the target at the spawn rate and fall to it at once (as the
    shape drives Locust); above `capacity` users requests fail; each second's requests all take `p95(users)` ms."""

    def __init__(
        self, settings, capacity, *, degrade_after=None, p95=lambda users: 50.0, cpu=lambda users: 20.0, rate=None
    ):
        self.rate = rate or (lambda users: max(1, users // 5))
        self.settings, self.capacity = settings, capacity
        self.degrade_after, self.p95, self.cpu = degrade_after, p95, cpu
        self.search = HoneInSearch(settings, now=0.0)
        self.now, self.users, self.requests, self.failures = 0.0, 0, 0, 0
        self.response_times: dict[int, int] = {}
        self.users_at: dict[float, int] = {}

    def run(self, max_ticks=20_000):
        target = self.search.step(self.now, self.sample())
        while target is not None and max_ticks:
            self.tick(target)
            target = self.search.step(self.now, self.sample())
            max_ticks -= 1
        assert max_ticks, "search did not stop"
        return self.search.verdict

    def capacity_now(self):
        if self.degrade_after is not None and self.now > self.degrade_after:
            return self.capacity // 3
        return self.capacity

    def tick(self, target):
        self.now += 1
        self.users = min(target, self.users + int(self.settings.spawn_rate)) if target > self.users else target
        self.users_at[self.now] = self.users
        self.serve()
        if self.users > self.capacity_now():
            self.failures += self.users - self.capacity_now()

    def serve(self):
        """One second's requests, each taking p95(users) ms."""
        self.requests += self.rate(self.users)
        took = round(self.p95(self.users))
        self.response_times[took] = self.response_times.get(took, 0) + self.rate(self.users)

    def sample(self):
        return Sample(
            self.requests,
            self.failures,
            self.users,
            self.p95(self.users),
            self.cpu(self.users),
            "502",
            response_times=self.response_times,
        )


def resolution(settings, users):
    return max(settings.resolution_users, settings.resolution_fraction * users)


def usable_resolution(settings, users):
    return max(settings.resolution_users, settings.usable_resolution_fraction * users)


class EarlyProbe(SyntheticRun):
    """The probe's ramp fails 2% below the capacity (its queues never drained), as the tuned stack's did: its
    estimate then passes as a level."""

    def tick(self, target):
        before = self.failures
        super().tick(target)
        early = self.users > self.capacity - self.capacity // 50
        if self.search.probe is not None and self.failures == before and early:
            self.failures += 1


@pytest.mark.parametrize("capacity", [15, 95, 333, 1234])
def test_converges_within_resolution_of_the_true_capacity(capacity):
    verdict = SyntheticRun(FAST, capacity).run()
    assert verdict.status == "converged"
    best, failing = verdict.max_users_without_error, verdict.first_failing_users
    assert best <= capacity < failing
    assert failing - best <= resolution(FAST, best)


def test_the_probe_ramps_continuously_from_zero_until_the_first_failure():
    run = SyntheticRun(FAST, capacity=100)
    verdict = run.run()
    probe = verdict.probe
    ramp = [run.users_at[t] for t in range(1, int(probe["end"]) + 1)]
    assert ramp == [10 * t for t in range(1, len(ramp) + 1)]  # no holds, no steps back
    assert probe["first_failure_users"] == 110  # the first tick past the capacity
    assert "failures" in probe["reason"]
    assert verdict.levels[0]["users"] == 110  # the probe's estimate is the first level tested


def test_every_level_is_tested_the_same_way_whichever_way_the_search_reached_it():
    # From above (users stopped at once) or from below (users started at the spawn rate), after a pass or a
    # failure: the users over each level's settle, ramp and hold are the same function of its user count alone.
    settings = SearchSettings(hold=10, settle=5, ramp=3, time_limit=3600)
    moves = []
    for world, capacity, usable in [(SyntheticRun, 333, 100), (EarlyProbe, 1234, 300)]:
        run = world(settings, capacity, p95=lambda users, usable=usable: 1000.0 * users / usable)
        verdict = run.run()
        for level in verdict.levels:
            users, base = level["users"], level["base"]
            assert base == max(0, users - 30)
            ramp = [min(users, base + 10 * t) for t in range(1, (users - base + 9) // 10 + 1)]
            expected = [base] * 5 + ramp + [users] * 10
            start = int(level["start"]) - 5 + 1
            assert [run.users_at[t] for t in range(start, int(level["end"]) + 1)] == expected, f"level {users}"
        moves += [(a["users"], b["base"]) for a, b in zip(verdict.levels, verdict.levels[1:], strict=False)]
    assert any(before > base for before, base in moves)
    assert any(before < base for before, base in moves)


class Backlog(SyntheticRun):
    """A queue that outlives a failing level: p95 reads 4 s over its load's while users exceed the capacity, then
    drains 200 ms a second; users started before it drained meet it and fail (in eight tuned searches, 9 of the
    12 levels tested after a failing one failed, far below where levels after a pass passed)."""

    backlog_ms = 0.0

    def tick(self, target):
        before = self.users
        super().tick(target)
        self.backlog_ms = 4000.0 if self.users > self.capacity_now() else max(0.0, self.backlog_ms - 200.0)
        if self.backlog_ms and self.users > before:
            self.failures += 1

    def sample(self):
        sample = super().sample()
        return dataclasses.replace(sample, p95_ms=sample.p95_ms + self.backlog_ms)


@pytest.mark.parametrize("capacity", [1000, 2700])
def test_a_level_after_a_failure_starts_only_once_the_queues_drained(capacity):
    settings = SearchSettings(time_limit=3600)
    verdict = Backlog(settings, capacity).run()
    assert verdict.status == "converged"
    best, failing = verdict.max_users_without_error, verdict.first_failing_users
    assert best <= capacity < failing <= best + resolution(settings, best)  # no level failed on the last one's queue
    after = list(zip(verdict.levels, verdict.levels[1:], strict=False))
    assert any(not before["passed"] and level["settled_s"] > settings.settle + 5 for before, level in after)
    assert all(level["settled_s"] == settings.settle for before, level in after if before["passed"])


def test_respects_the_time_limit_and_keeps_the_best_so_far():
    settings = SearchSettings(hold=10, time_limit=100, spawn_rate=10)
    run = SyntheticRun(settings, capacity=5000)
    verdict = run.run()
    assert verdict.status == "time-limit"
    assert run.now <= settings.time_limit + 1
    passed = [level["users"] for level in verdict.levels if level["passed"]]
    assert verdict.max_users_without_error == max(passed, default=0)


def test_latency_bound_fails_a_level_without_errors():
    settings = SearchSettings(hold=10, time_limit=3600, max_p95_ms=500)
    verdict = SyntheticRun(settings, capacity=10_000, p95=lambda users: 5.0 * users).run()
    assert verdict.status == "converged"
    assert verdict.max_users_without_error <= 100 < verdict.first_failing_users
    assert "p95" in verdict.failure_reason
    assert "p95" in verdict.probe["reason"]


class SlowStretches(SyntheticRun):
    """Responses take 100 ms, but 3 s while a level's base settles (the last level's queue draining), and the
    10 s p95 reads 5 s for one second of each hold (one slow stretch)."""

    def serve(self):
        self.requests += self.rate(self.users)
        took = 3000 if self.search.stage == "settle" else 100
        self.response_times[took] = self.response_times.get(took, 0) + self.rate(self.users)

    def sample(self):
        sample = super().sample()
        spike = self.search.stage == "hold" and self.now - self.search.stage_since == 3
        return dataclasses.replace(sample, p95_ms=5000.0 if spike else 100.0)


def test_a_levels_p95_is_that_of_every_response_in_its_window_alone():
    verdict = SlowStretches(FAST, capacity=300).run()
    assert verdict.levels
    assert {level["p95_ms"] for level in verdict.levels} == {100.0}
    assert verdict.max_users_usable == verdict.max_users_without_error


AGREES_WITH_LOCUST = """
import random
from locust.stats import calculate_response_time_percentile
from lampi_load.search.machine import percentile
rng = random.Random(13)
for _ in range(500):
    times = {rng.choice([5, 40, 99, 130, 450, 990, 1200, 3900, 12000]): rng.randint(1, 50) for _ in range(6)}
    for share in (0.5, 0.95, 0.99):
        expected = calculate_response_time_percentile(times, sum(times.values()), share)
        assert percentile(times, share) == expected, (times, share)
print("agrees")
"""


def test_a_levels_percentile_is_locusts_own():
    # In a child process: importing locust monkey-patches this one (gevent) after ssl was imported.
    loadtesting = Path(__file__).resolve().parents[2]
    check = subprocess.run(
        [sys.executable, "-c", AGREES_WITH_LOCUST], capture_output=True, text=True, cwd=loadtesting, timeout=60
    )
    assert check.stdout.strip() == "agrees", check.stderr[-2000:]
    assert percentile({}, 0.95) is None


def test_saturated_generator_is_reported_not_blamed_on_the_server():
    verdict = SyntheticRun(FAST, capacity=300, cpu=lambda users: 99.0 if users > 150 else 30.0).run()
    assert verdict.status == "generator-bound"
    assert verdict.generator_bound


def test_a_server_that_degrades_loses_its_old_passes():
    run = SyntheticRun(FAST, capacity=200, degrade_after=40)
    verdict = run.run()
    assert verdict.status in {"converged", "fails-at-minimum"}
    assert verdict.max_users_without_error <= 200 // 3
    smallest = min((level for level in verdict.levels if not level["passed"]), key=lambda level: level["users"])
    assert verdict.failing_level == smallest
    assert verdict.failure_reason == smallest["reason"]


def test_failing_at_the_first_level_goes_down_below_it():
    verdict = SyntheticRun(FAST, capacity=4).run()
    assert verdict.max_users_without_error <= 4
    assert verdict.status in {"converged", "fails-at-minimum"}


def test_no_failure_up_to_max_users_says_so():
    settings = SearchSettings(hold=10, time_limit=3600, max_users=300)
    verdict = SyntheticRun(settings, capacity=10_000).run()
    assert verdict.status == "no-failure-up-to-max-users"
    assert verdict.max_users_without_error == 300
    assert verdict.probe["first_failure_users"] is None


def test_moments_mark_minimal_max_and_failing_windows():
    verdict = SyntheticRun(FAST, capacity=100).run()
    moments = verdict.moments
    assert moments["minimal"] == {"users": 50, "start": 0.0, "end": 5.0}
    assert moments["max_without_error"]["users"] == verdict.max_users_without_error
    assert moments["failing"]["users"] == verdict.first_failing_users
    for name in ("max_without_error", "failing"):
        assert moments[name]["end"] - moments[name]["start"] >= FAST.hold


def test_throughput_below_the_expected_rate_fails_a_level():
    # Each user should send 2/s; past 300 users the server tops out at 600/s in total.
    settings = SearchSettings(hold=10, time_limit=3600, expected_rps_per_user=2.0, min_rps_fraction=0.8)
    verdict = SyntheticRun(settings, capacity=1000, rate=lambda users: min(2 * users, 600)).run()
    assert verdict.status == "converged"
    assert 300 <= verdict.max_users_without_error <= 375 < verdict.first_failing_users
    assert "expected" in verdict.failure_reason


def test_level_rate_is_measured_over_the_hold_only():
    verdict = SyntheticRun(FAST, capacity=100, rate=lambda users: users).run()
    for level in verdict.levels:
        assert level["rps"] == pytest.approx(level["users"], rel=0.1)


def test_throughput_is_not_judged_on_too_few_expected_requests():
    # 10 devices at 0.04 messages/s expect 4 messages in a 10 s hold: zero arriving is chance, not a slow broker.
    settings = SearchSettings(hold=10, time_limit=3600, expected_rps_per_user=0.04, max_users=10)
    verdict = SyntheticRun(settings, capacity=10_000, rate=lambda users: 0).run()
    assert verdict.status == "no-failure-up-to-max-users"
    # With enough devices to expect 400 messages per hold, the same silence fails the level.
    settings = SearchSettings(hold=10, time_limit=3600, expected_rps_per_user=0.04, max_users=1000)
    verdict = SyntheticRun(settings, capacity=10_000, rate=lambda users: 0).run()
    assert "expected" in verdict.failure_reason


def test_bursty_arrivals_need_more_expected_requests_before_throughput_is_judged():
    # 1,000 devices at 0.04/s expect 800 messages in 20 s: enough if they were independent, not when they come
    # ~30 at a time (a drag); then a fleet that sends half the mean is within the noise, and passes.
    bursty = dict(hold=20, time_limit=3600, expected_rps_per_user=0.04, max_users=1000, spawn_rate=100)
    verdict = SyntheticRun(SearchSettings(**bursty, expected_dispersion=30), 10_000, rate=lambda users: 20).run()
    assert verdict.status == "no-failure-up-to-max-users"
    verdict = SyntheticRun(SearchSettings(**bursty, expected_dispersion=1), 10_000, rate=lambda users: 20).run()
    assert "expected" in verdict.failure_reason


@pytest.mark.parametrize("capacity", [95, 333, 1234])
def test_every_failing_figure_comes_from_the_smallest_failing_level(capacity):
    verdict = SyntheticRun(FAST, capacity).run()
    failed = [level for level in verdict.levels if not level["passed"]]
    smallest = min(failed, key=lambda level: level["users"])
    assert verdict.failing_level == smallest
    assert verdict.first_failing_users == smallest["users"]
    assert verdict.failure_reason == smallest["reason"] == f"{smallest['failures']} failures (502)"
    assert verdict.moments["failing"] == {
        "users": smallest["users"],
        "start": smallest["start"],
        "end": smallest["end"],
    }
    best = max((level for level in verdict.levels if level["passed"]), key=lambda level: level["users"])
    assert verdict.max_level["users"] == verdict.max_users_without_error == best["users"]


def test_the_usable_maximum_converges_too():
    # No errors up to 1,000 users, but p95 grows 10 ms a user: usable (p95 <= 1,000 ms) up to 100 users.
    settings = SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600, usable_p95_ms=1000)
    verdict = SyntheticRun(settings, capacity=1000, p95=lambda users: 10.0 * users).run()
    assert verdict.status == "converged"
    assert verdict.usable_converged
    usable = [level for level in verdict.levels if level["passed"] and level["p95_ms"] <= 1000]
    assert verdict.max_users_usable == max(level["users"] for level in usable) <= 100
    above = min(level["users"] for level in verdict.levels if level["p95_ms"] > 1000)
    assert above - verdict.max_users_usable <= usable_resolution(settings, verdict.max_users_usable)
    assert verdict.usable_level["users"] == verdict.max_users_usable
    assert verdict.not_usable_level["users"] == above
    assert verdict.not_usable_level["p95_ms"] > 1000
    assert verdict.usable_p95_ms == 1000
    assert verdict.max_users_without_error >= 950
    assert verdict.probe["p95_over_usable_users"] == 110


def test_the_usable_maximum_is_zero_when_no_pass_is_under_the_bound_and_absent_when_off():
    slow = SyntheticRun(SearchSettings(hold=10, time_limit=3600), 100, p95=lambda users: 5000.0).run()
    assert slow.max_users_usable == 0
    assert slow.usable_level is None
    assert slow.not_usable_level["users"] == min(level["users"] for level in slow.levels)
    off = SyntheticRun(SearchSettings(hold=10, time_limit=3600, usable_p95_ms=0), 100).run()
    assert off.max_users_usable is None
    assert off.not_usable_level is None


@pytest.mark.parametrize(("capacity", "degrade_after"), [(95, None), (1234, None), (200, 40)])
def test_the_verdict_is_derived_from_its_levels_alone(capacity, degrade_after):
    verdict = SyntheticRun(FAST, capacity, degrade_after=degrade_after).run()
    figures = derive(verdict.levels, FAST.usable_p95_ms)
    assert figures["max_level"] == verdict.max_level
    assert figures["failing_level"] == verdict.failing_level
    assert figures["usable_level"] == verdict.usable_level
    assert figures["not_usable_level"] == verdict.not_usable_level


@pytest.mark.parametrize(
    ("capacity", "usable", "minutes"),
    # The baseline stack's and the tuned one's, with the defaults; a usable maximum far under the error-free one
    # (the baseline's p95 is over 1 s from a few users on: its logins queue) is found in time too.
    [(150, 80, 6), (150, 4, 6), (1500, 700, 10), (1500, 60, 10)],
)
def test_default_settings_converge_both_maxima_within_the_budget(capacity, usable, minutes):
    # On simulated time: 10 users/s, 30 s holds, the default ramp and settle; the probe alone takes capacity / 10 s.
    settings = SearchSettings(time_limit=minutes * 60)
    run = SyntheticRun(settings, capacity, p95=lambda users: 1000.0 * users / usable)
    verdict = run.run()
    assert verdict.status == "converged", verdict.levels
    assert verdict.usable_converged
    assert verdict.max_users_without_error <= capacity < verdict.first_failing_users
    assert verdict.max_users_usable <= usable


class TwoCauses(SyntheticRun):
    """The probe's failures are failed logins (thousands); later ones are 502s on GET / (a few)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.causes = {"POST /login/: 502": 0, "GET /: 502": 0}

    def tick(self, target):
        before = self.failures
        super().tick(target)
        cause = "POST /login/: 502" if self.search.probe is not None else "GET /: 502"
        self.causes[cause] += (self.failures - before) * (100 if cause.startswith("POST") else 1)

    def sample(self):
        return dataclasses.replace(super().sample(), top_failure=None, errors=dict(self.causes))


@pytest.mark.parametrize(("world", "phases"), [(SyntheticRun, ["probed", "down"]), (EarlyProbe, ["probed", "up"])])
@pytest.mark.parametrize("capacity", [150, 2650, 2700])
def test_one_step_of_the_resolution_from_the_probes_estimate_ends_the_search(world, phases, capacity):
    # A pass and a failure one step apart are within the resolution: no third level to close a gap the step
    # itself left over it (rounded up, 2,686 -> 2,821 users was 0.7 user over 5%).
    settings = SearchSettings(time_limit=3600)
    verdict = world(settings, capacity).run()
    assert [level["phase"] for level in verdict.levels] == phases
    assert verdict.status == "converged"
    assert verdict.max_users_without_error <= capacity < verdict.first_failing_users
    gap = verdict.first_failing_users - verdict.max_users_without_error
    assert gap <= resolution(settings, verdict.max_users_without_error)


class ProbeOff(SyntheticRun):
    """The probe's first failure comes at `capacity * (1 + off)` users: early (`off` < 0: its queues never drained)
    or late (`off` > 0: a ramp ahead of its own failures); levels fail above the capacity."""

    off = 0.0

    def tick(self, target):
        before = self.failures
        super().tick(target)
        if self.search.probe is not None:
            self.failures = before + max(0, math.floor(self.users - self.capacity * (1 + self.off)))


@pytest.mark.parametrize(("off", "phases"), [(-0.08, ["probed", "up", "up"]), (0.08, ["probed", "down", "down"])])
def test_a_limit_two_resolutions_from_the_probes_estimate_takes_three_levels(off, phases):
    # Most tuned searches' answers were within two resolutions of the probe's estimate: a second step of one
    # resolution closes such a gap, where doubling at once (1, then 2 more) needed a fourth level to bisect it.
    settings = SearchSettings(time_limit=3600)
    run = type("Off", (ProbeOff,), {"off": off})(settings, 2000)
    verdict = run.run()
    assert [level["phase"] for level in verdict.levels] == phases, verdict.levels
    assert verdict.status == "converged"
    assert verdict.max_users_without_error <= 2000 < verdict.first_failing_users
    assert verdict.first_failing_users - verdict.max_users_without_error <= resolution(settings, 2000)


@pytest.mark.parametrize("off", [-0.5, -0.3, 0.3, 0.5])
def test_a_limit_far_from_the_probes_estimate_is_still_few_levels_away(off):
    # From the third step on the steps double: a limit half as far again as the estimate (about ten resolutions) is
    # bracketed within five steps, and bisection closes the rest: at most nine levels from 30-50% away.
    settings = SearchSettings(time_limit=3600)
    verdict = type("Off", (ProbeOff,), {"off": off})(settings, 2000).run()
    assert verdict.status == "converged"
    assert verdict.max_users_without_error <= 2000 < verdict.first_failing_users
    phases = [level["phase"] for level in verdict.levels]
    assert phases.count("up") + phases.count("down") <= 5, verdict.levels
    assert len(phases) <= 9, verdict.levels


def test_each_reason_names_the_cause_that_grew_in_its_own_window():
    verdict = TwoCauses(FAST, capacity=100).run()
    assert "POST /login/: 502" in verdict.probe["reason"]
    failed = [level for level in verdict.levels if not level["passed"]]
    assert failed
    # The run's most frequent failure is still the probe's login, but no level saw it.
    assert all(level["reason"] == f"{level['failures']} failures (GET /: 502)" for level in failed)


def test_a_saturated_generator_does_not_end_the_search_below_it():
    # The generator saturates past 150 users and the server fails past 300: the search still finds what the
    # generator could test honestly below, and says the first failure is the generator's.
    verdict = SyntheticRun(FAST, capacity=300, cpu=lambda users: 99.0 if users > 150 else 30.0).run()
    assert verdict.status == "generator-bound"
    assert verdict.max_users_without_error >= 280
    assert verdict.failing_level["generator_cpu"] > FAST.generator_cpu_limit


class RampLag(SyntheticRun):
    """During the probe's ramp the queue has no time to drain: p95 reads over 1 s from 1,890 users (as in a tuned
    run), though a level of 1,890 users settles at 600-700 ms."""

    def sample(self):
        sample = super().sample()
        if not self.search.verdict.levels and self.users >= 1890:
            return dataclasses.replace(sample, p95_ms=1500.0)
        return sample


def hockey_stick(knee, slope):
    """The tuned stack's p95 (ms) by users: 600 + users / 20 up to `knee` users (the server not yet saturated),
    then `slope` ms more per user."""
    return lambda users: 600 + users / 20 if users <= knee else 600 + knee / 20 + slope * (users - knee)


def test_the_usable_search_does_not_creep_up_a_hockey_stick():
    # The tuned stack's shape: p95 flat (600-720 ms) until the server saturates near 2,100 users, then 10 ms more
    # per user. Interpolation alone crept up a few percent a level from the probe's crossing; at most 4 levels find
    # the bound within the resolution.
    p95 = hockey_stick(knee=2100, slope=10)
    run = RampLag(SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600), 2600, p95=p95)
    verdict = run.run()
    assert verdict.usable_converged
    assert verdict.max_users_usable <= 2129 < verdict.max_users_usable + usable_resolution(run.settings, 2129)
    assert sum(level["phase"] == "usable" for level in verdict.levels) <= 4, verdict.levels


def test_an_edge_one_resolution_over_the_first_usable_level_costs_one_level_more():
    # The probe's p95 crossed 1 s early (1,890 users), the edge is 50 users higher, and over the bound are only the
    # error-free levels, 700 users up: a step of the resolution closes the gap at once. Interpolating toward those
    # levels went a quarter of the way up and crept back down (1,890, 2,039, 1,938, 1,987).
    p95 = hockey_stick(knee=1940, slope=10)
    run = RampLag(SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600), 2600, p95=p95)
    verdict = run.run()
    step = int(usable_resolution(run.settings, 1890))
    assert [level["users"] for level in verdict.levels if level["phase"] == "usable"] == [1890, 1890 + step]
    assert verdict.usable_converged
    assert verdict.max_users_usable == 1890


@pytest.mark.parametrize("percent", [5, 10])
def test_the_usable_search_ends_at_its_own_resolution(percent):
    # p95 rises 1 ms a user over 1,000 users with no error below 2,600: the usable edge is at 1,000 users. A
    # coarser usable resolution (the default 10%: p95 is noisier near its bound than errors are) takes fewer levels.
    settings = SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600, usable_resolution_fraction=percent / 100)
    verdict = SyntheticRun(settings, 2600, p95=lambda users: float(users)).run()
    assert verdict.usable_converged
    assert verdict.max_users_usable <= 1000 < verdict.max_users_usable + usable_resolution(settings, 1000)
    assert verdict.max_users_without_error >= 2470  # the error-free search keeps its own 5%
    levels = sum(level["phase"] == "usable" for level in verdict.levels)
    assert levels <= {5: 6, 10: 5}[percent], verdict.levels


class ProbeLag(SyntheticRun):
    """The probe's p95 lags its user count by `lag` users (a rolling window over a ramp), so it crosses the bound
    past the edge: its first usable guess is not usable."""

    lag = 50

    def sample(self):
        sample = super().sample()
        if self.search.probe is not None:
            return dataclasses.replace(sample, p95_ms=self.p95(max(self.users - self.lag, 0)))
        return sample


def test_a_first_usable_guess_at_two_and_a_half_times_the_bound_steps_down_by_the_resolution():
    # As a tuned search read it: 1,243 users at 2.5 s, the edge 50-100 users below. A step in proportion to the
    # p95 (to 497 users) cost four levels back up; a step of the resolution closes the gap at once.
    p95 = hockey_stick(knee=1180, slope=25)
    run = ProbeLag(SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600), 2600, p95=p95)
    verdict = run.run()
    guess, *rest = [level for level in verdict.levels if level["phase"] == "usable"]
    assert 2000 < guess["p95_ms"] <= 3000
    assert verdict.usable_converged
    assert len(rest) == 1, verdict.levels
    assert verdict.max_users_usable <= 1193 < verdict.max_users_usable + usable_resolution(run.settings, 1193)


class LongProbeLag(ProbeLag):
    lag = 135


def test_a_first_usable_guess_at_nearly_four_times_the_bound_steps_down_by_the_resolution():
    # As a tuned search of 2026-12-02 read it: 912 users at 3.8 s, the edge near 780 (744 usable, 828 not). The
    # step in proportion to the p95 went to 240 users and ran out of time three levels back up.
    p95 = hockey_stick(knee=760, slope=21)
    run = LongProbeLag(SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600), 2600, p95=p95)
    verdict = run.run()
    guess, *rest = [level for level in verdict.levels if level["phase"] == "usable"]
    assert 3500 < guess["p95_ms"] <= 4000, guess
    assert min(level["users"] for level in rest) > 0.75 * guess["users"], rest
    assert len(rest) <= 2, rest
    assert verdict.usable_converged
    assert verdict.max_users_usable <= 777 < verdict.max_users_usable + usable_resolution(run.settings, 777)


class BaselineProbeLag(ProbeLag):
    lag = 35


def test_a_first_usable_guess_far_over_the_bound_steps_down_in_proportion():
    # The baseline's shape: p95 200 ms a user (its logins queue from a few users on), the probe's crossing at 40
    # users reading 8 s, the edge at 5 users: one step in proportion, not five of the resolution.
    run = BaselineProbeLag(SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600), 150, p95=lambda u: 200.0 * u)
    verdict = run.run()
    guess, second, *rest = [level for level in verdict.levels if level["phase"] == "usable"]
    assert guess["p95_ms"] > NEAR_BOUND * run.settings.usable_p95_ms, guess
    assert second["users"] <= 0.2 * guess["users"], second
    assert verdict.usable_converged
    assert verdict.max_users_usable == 5


class NoCrossing(SyntheticRun):
    """The probe's p95 never reads over the bound (its window lags a fast ramp): the usable search has no first
    guess from it and starts from the error-free levels."""

    def sample(self):
        sample = super().sample()
        return dataclasses.replace(sample, p95_ms=100.0) if self.search.probe is not None else sample


def test_without_the_probes_crossing_the_usable_search_steps_down_one_one_two_resolutions():
    # The error-free levels read 2.5-2.8 s, near the bound: steps of the resolution from the passing one, then one
    # more, then two, as from the probe's estimate (the first step is not a guess to discount).
    p95 = hockey_stick(knee=1000, slope=3)
    run = NoCrossing(SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600), 1700, p95=p95)
    verdict = run.run()
    assert verdict.probe["p95_over_usable_users"] is None
    fraction = run.settings.usable_resolution_fraction
    high = verdict.max_users_without_error
    usable = [level["users"] for level in verdict.levels if level["phase"] == "usable"]
    steps = [before - after for before, after in zip([high, *usable[:2]], usable[:3], strict=True)]
    first = [math.floor(fraction * users / (1 + fraction)) for users in [high, *usable[:2]]]
    assert steps == [first[0], first[1], 2 * first[2]], usable
    assert verdict.usable_converged
    assert verdict.max_users_usable <= 1116 < verdict.max_users_usable + usable_resolution(run.settings, 1116)


class OneBadStretch(ProbeLag):
    """As ProbeLag, but the second usable level has a bad stretch: its responses take 3.9 s, whatever its users."""

    def serve(self):
        super().serve()
        tried = [level for level in self.search.verdict.levels if level["phase"] == "usable"]
        level = self.search.level
        if len(tried) == 1 and level is not None and level.phase == "usable" and self.search.stage in ("ramp", "hold"):
            self.response_times[3900] = self.response_times.get(3900, 0) + self.rate(self.users)


def test_once_a_level_read_near_the_bound_a_bad_stretch_below_does_not_send_the_search_far_down():
    # A tuned search: 1,265 users at 1.3 s, then 1,205 at 3.9 s; stepping in proportion to 3.9 s went to 308 users.
    p95 = hockey_stick(knee=1180, slope=25)
    run = OneBadStretch(SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600), 2600, p95=p95)
    verdict = run.run()
    tried = [level for level in verdict.levels if level["phase"] == "usable"]
    assert tried[1]["p95_ms"] == 3900
    assert verdict.usable_converged
    # A step in proportion to 3.9 s would go to a quarter of the users; steps of the resolution stay near the edge.
    assert min(level["users"] for level in tried) > 0.7 * tried[0]["users"], tried
    assert len(tried) <= 4, tried


class LostWorker(SyntheticRun):
    """From `lost_at` seconds on, the generator holds at most `held` users (a worker gone, or one that joined late
    and got no device ids), whatever the search asks; no request fails for it."""

    lost_at, held = 0.0, 10_000

    def tick(self, target):
        super().tick(min(target, self.held) if self.now >= self.lost_at else target)


class FewDevices(LostWorker):
    """The generator can start only 400 users (for MQTT: --mqtt-devices 400), whatever the search asks."""

    held = 400


def test_a_probe_whose_users_stop_rising_ends_and_caps_the_levels():
    # Before, the probe waited for max_users (10,000) until the time limit and reported 0 users.
    verdict = FewDevices(FAST, capacity=5000).run()
    assert verdict.status == "users-stalled"
    assert verdict.probe["stalled_users"] == 400
    assert verdict.probe["end"] < 400 / 10 + 15 + 2
    assert verdict.max_users_without_error == 400
    assert max(level["users"] for level in verdict.levels) == 400
    assert "highest_users" not in verdict.probe


def test_a_level_whose_users_did_not_run_through_its_hold_is_not_a_pass():
    # The probe fails at 110 users; then the generator holds 70, which the server serves without error: a pass
    # would name 110 users that never ran.
    run = LostWorker(FAST, capacity=100)
    run.lost_at, run.held = 12, 70
    verdict = run.run()
    assert verdict.status == "users-lost"
    assert verdict.levels == []
    assert verdict.short_level["users"] == 110
    assert verdict.short_level["held"] == 70
    assert verdict.max_users_without_error == 0


def test_a_level_not_held_in_the_usable_search_leaves_the_error_free_answer_standing():
    settings = SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600)
    run = LostWorker(settings, capacity=1000, p95=lambda users: 2.0 * users)
    whole = SyntheticRun(settings, capacity=1000, p95=lambda users: 2.0 * users).run()
    usable_from = min(level["start"] for level in whole.levels if level["phase"] == "usable")
    run.lost_at, run.held = usable_from, 100
    verdict = run.run()
    assert verdict.status == "converged"
    assert verdict.max_users_without_error == whole.max_users_without_error
    assert verdict.usable_converged is False
    assert verdict.short_level["held"] == 100 < verdict.short_level["users"]
    assert all(level["phase"] != "usable" for level in verdict.levels), verdict.levels


class OneLateHeartbeat(SyntheticRun):
    """In the hold of the first level, one worker's users count as none for 3 s (Locust's master, after a missed
    heartbeat), though they run on: the server serves them all."""

    def sample(self):
        sample = super().sample()
        search = self.search
        first_hold = search.level is not None and search.stage == "hold" and not search.verdict.levels
        if first_hold and 2 <= self.now - search.stage_since < 5:
            return dataclasses.replace(sample, users=self.users // 2)
        return sample


def test_a_shortfall_shorter_than_a_workers_report_is_no_lost_level():
    verdict = OneLateHeartbeat(FAST, capacity=100).run()
    assert verdict.status == "converged"
    assert verdict.short_level is None
    assert verdict.max_users_without_error <= 100 < verdict.first_failing_users


def test_a_level_not_held_is_not_judged_even_if_it_would_fail():
    # Throughput judged (MQTT): the devices still running send too few messages for the level's count. That is the
    # generator's shortfall, not the server's failure at that count.
    settings = dataclasses.replace(FAST, expected_rps_per_user=0.2, min_expected_count=10)
    run = LostWorker(settings, capacity=1000)
    run.lost_at, run.held = 128, 60  # after the first level (1,010 users, failed), before the second
    verdict = run.run()
    assert verdict.status == "users-lost"
    assert verdict.short_level["held"] == 60
    # No level judged on the 60 devices left: not a failure "under the expected rate" at the level's count.
    assert all(level["end"] < run.lost_at for level in verdict.levels), verdict.levels


class NoUsers(LostWorker):
    """No user ever starts (a distributed master whose workers are gone)."""

    held = 0


def test_a_probe_that_starts_no_user_ends_without_levels():
    verdict = NoUsers(FAST, capacity=5000).run()
    assert verdict.status == "users-stalled"
    assert verdict.probe["stalled_users"] == 0
    assert verdict.max_users_without_error == 0
    assert verdict.levels == []


class SlowSpawn(SyntheticRun):
    """Users start at a fraction of one a second, as Locust paces them (one every 1 / spawn_rate s)."""

    def tick(self, target):
        self.now += 1
        started = int(self.now * self.settings.spawn_rate)
        self.users = min(target, started) if target > self.users else target
        self.users_at[self.now] = self.users
        self.serve()


def test_a_slow_spawn_rate_is_not_a_stall():
    # At 0.1 users/s one user starts every 10 s, at 0.05 every 20 s: longer than the 15 s a stall needs at 10/s.
    for rate in (0.1, 0.05):
        settings = SearchSettings(hold=10, settle=5, ramp=10, time_limit=600, spawn_rate=rate, max_users=3)
        verdict = SlowSpawn(settings, capacity=100).run()
        assert verdict.probe["stalled_users"] is None, rate
        assert verdict.probe["end"] >= 3 / rate


class LateCrossing(SyntheticRun):
    """The probe's p95 crosses 1 s only at 1,990 users, where a level then measures 1.5 s (a tuned run's 1,993)."""

    def sample(self):
        sample = super().sample()
        if not self.search.verdict.levels:
            return dataclasses.replace(sample, p95_ms=1500.0 if self.users >= 1990 else 500.0)
        return sample


def test_a_level_just_over_the_bound_steps_down_by_the_resolution():
    # Flat at 600 ms up to 1,900 users, then 10 ms more per user: usable up to 1,940. The proportional step from
    # 1.5 s went to two thirds of the users, far below the edge, and took five levels more.
    def p95(users):
        return 600 + max(0, users - 1900) * 10

    run = LateCrossing(SearchSettings(hold=10, settle=5, ramp=10, time_limit=3600), 2600, p95=p95)
    verdict = run.run()
    usable = [level["users"] for level in verdict.levels if level["phase"] == "usable"]
    fraction = run.settings.usable_resolution_fraction
    # The largest step within the usable resolution of the level it lands on (180 users at 10%, 94 at 5%).
    assert usable[:2] == [1990, 1990 - math.floor(fraction * 1990 / (1 + fraction))], usable
    assert len(usable) <= 3, usable
    assert verdict.usable_converged
    assert verdict.max_users_usable <= 1940 < verdict.max_users_usable + usable_resolution(run.settings, 1940)


def test_given_levels_are_tested_in_order_each_as_a_search_tests_one_without_a_probe():
    settings = dataclasses.replace(FAST, levels="120,90,120,60")
    run = SyntheticRun(settings, capacity=100)
    verdict = run.run()
    assert verdict.status == "levels-tested"
    assert verdict.probe is None
    assert "minimal" not in verdict.moments
    assert [(level["users"], level["phase"], level["passed"]) for level in verdict.levels] == [
        (120, "given", False),
        (90, "given", True),
        (120, "given", False),
        (60, "given", True),
    ]
    for level in verdict.levels:  # from the level's base, ramped at the spawn rate, as in a search
        users, base = level["users"], level["base"]
        assert base == max(0, users - 100)
        ramp = [min(users, base + 10 * t) for t in range(1, (users - base + 9) // 10 + 1)]
        start = int(level["start"]) - 5 + 1
        assert [run.users_at[t] for t in range(start, int(level["end"]) + 1)] == [base] * 5 + ramp + [users] * 10
    assert (verdict.max_users_without_error, verdict.first_failing_users) == (90, 120)
    assert verdict.usable_converged is None  # no usable search ran: it neither converged nor did not


def test_given_levels_stop_at_the_time_limit():
    settings = dataclasses.replace(FAST, levels="50,60,70,80,90", time_limit=60)
    run = SyntheticRun(settings, capacity=100)
    verdict = run.run()
    assert verdict.status == "time-limit"
    assert run.now <= 61
    assert 1 <= len(verdict.levels) < 5
