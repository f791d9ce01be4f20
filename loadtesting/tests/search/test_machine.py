"""The hone-in search's decisions, on a synthetic server whose capacity the test knows."""

import pytest

from lampi_load.search.machine import HoneInSearch, Sample
from lampi_load.search.settings import SearchSettings

FAST = SearchSettings(hold=10, time_limit=3600, spawn_rate=10)


class SyntheticRun:
    """A one-second-tick world: users follow the target at the spawn rate; above `capacity` requests fail."""

    def __init__(
        self, settings, capacity, *, degrade_after=None, p95=lambda users: 50.0, cpu=lambda users: 20.0, rate=None
    ):
        self.rate = rate or (lambda users: max(1, users // 5))
        self.settings, self.capacity = settings, capacity
        self.degrade_after, self.p95, self.cpu = degrade_after, p95, cpu
        self.search = HoneInSearch(settings, now=0.0)
        self.now, self.users, self.requests, self.failures = 0.0, 0, 0, 0
        self.targets: list[int] = []

    def run(self, max_ticks=20_000):
        target = self.search.step(self.now, self.sample())
        while target is not None and max_ticks:
            self.targets.append(target)
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
        step = int(self.settings.spawn_rate)
        self.users = min(target, self.users + step) if target > self.users else max(target, self.users - step)
        self.requests += self.rate(self.users)
        if self.users > self.capacity_now():
            self.failures += self.users - self.capacity_now()

    def sample(self):
        return Sample(self.requests, self.failures, self.users, self.p95(self.users), self.cpu(self.users), "502")


@pytest.mark.parametrize("capacity", [15, 95, 333, 1234])
def test_converges_within_resolution_of_the_true_capacity(capacity):
    verdict = SyntheticRun(FAST, capacity).run()
    assert verdict.status == "converged"
    best, failing = verdict.max_users_without_error, verdict.first_failing_users
    assert best <= capacity < failing
    assert failing - best <= max(FAST.resolution_users, FAST.resolution_fraction * best)


def test_ramps_by_growth_at_the_spawn_rate_before_any_failure():
    run = SyntheticRun(FAST, capacity=100)
    run.run()
    ramp = [level["users"] for level in run.search.verdict.levels if level["phase"] == "ramp"]
    assert ramp == [10, 20, 40, 80, 160]


def test_backs_off_to_zero_failures_before_bisecting():
    run = SyntheticRun(FAST, capacity=100)
    verdict = run.run()
    phases = [(level["phase"], level["users"], level["passed"]) for level in verdict.levels]
    first_fail = phases.index(("ramp", 160, False))
    assert phases[first_fail + 1] == ("backoff", 80, True)
    assert all(phase == "bisect" for phase, _, _ in phases[first_fail + 2 :] if phase != "backoff")
    bisected = [users for phase, users, _ in phases if phase == "bisect"]
    assert bisected[0] == 120


def test_respects_the_time_limit_and_keeps_the_best_so_far():
    settings = SearchSettings(hold=10, time_limit=100, spawn_rate=10)
    run = SyntheticRun(settings, capacity=5000)
    verdict = run.run()
    assert verdict.status == "time-limit"
    assert run.now <= settings.time_limit + 1
    assert verdict.max_users_without_error == max(level["users"] for level in verdict.levels if level["passed"])


def test_latency_bound_fails_a_level_without_errors():
    settings = SearchSettings(hold=10, time_limit=3600, max_p95_ms=500)
    verdict = SyntheticRun(settings, capacity=10_000, p95=lambda users: 5.0 * users).run()
    assert verdict.status == "converged"
    assert verdict.max_users_without_error <= 100 < verdict.first_failing_users
    assert "p95" in verdict.failure_reason


def test_saturated_generator_is_reported_not_blamed_on_the_server():
    verdict = SyntheticRun(FAST, capacity=300, cpu=lambda users: 99.0 if users > 150 else 30.0).run()
    assert verdict.status == "generator-bound"
    assert verdict.generator_bound


def test_server_that_degrades_is_backed_off_below_its_old_pass():
    run = SyntheticRun(FAST, capacity=200, degrade_after=100)
    verdict = run.run()
    assert verdict.status in {"converged", "fails-at-minimum"}
    assert verdict.max_users_without_error <= 200 // 3


def test_failing_at_the_first_level_backs_off_below_it():
    verdict = SyntheticRun(FAST, capacity=4).run()
    assert verdict.max_users_without_error <= 4
    assert verdict.status in {"converged", "fails-at-minimum"}


def test_no_failure_up_to_max_users_says_so():
    settings = SearchSettings(hold=10, time_limit=3600, max_users=300)
    verdict = SyntheticRun(settings, capacity=10_000).run()
    assert verdict.status == "no-failure-up-to-max-users"
    assert verdict.max_users_without_error == 300


def test_moments_mark_minimal_max_and_failing_windows():
    verdict = SyntheticRun(FAST, capacity=100).run()
    moments = verdict.moments
    assert moments["minimal"]["users"] == FAST.start_users
    assert moments["max_without_error"]["users"] == verdict.max_users_without_error
    assert moments["failing"]["users"] == verdict.first_failing_users
    for window in moments.values():
        assert window["end"] - window["start"] >= FAST.hold


def test_throughput_below_the_expected_rate_fails_a_level():
    # Each user should send 2/s; past 300 users the server tops out at 600/s in total.
    settings = SearchSettings(hold=10, time_limit=3600, expected_rps_per_user=2.0, min_rps_fraction=0.8)
    verdict = SyntheticRun(settings, capacity=10_000, rate=lambda users: min(2 * users, 600)).run()
    assert verdict.status == "converged"
    assert 300 <= verdict.max_users_without_error <= 375 < verdict.first_failing_users
    assert "expected" in verdict.failure_reason


def test_level_rate_is_measured_over_the_hold_only():
    run = SyntheticRun(FAST, capacity=100, rate=lambda users: users)
    verdict = run.run()
    first = verdict.levels[0]
    assert first["rps"] == pytest.approx(FAST.start_users, rel=0.15)


def test_throughput_is_not_judged_on_too_few_expected_requests():
    # 10 devices at 0.04 messages/s expect 4 messages in a 10 s hold: zero arriving is chance, not a slow broker.
    settings = SearchSettings(hold=10, time_limit=3600, expected_rps_per_user=0.04, max_users=20)
    verdict = SyntheticRun(settings, capacity=10_000, rate=lambda users: 0).run()
    assert verdict.status == "no-failure-up-to-max-users"
    # With enough devices to expect 400 messages per hold, the same silence fails the level.
    settings = SearchSettings(hold=10, time_limit=3600, expected_rps_per_user=0.04, start_users=1000)
    verdict = SyntheticRun(settings, capacity=10_000, rate=lambda users: 0).run()
    assert "expected" in verdict.failure_reason


def test_bursty_arrivals_need_more_expected_requests_before_throughput_is_judged():
    # 1,000 devices at 0.04/s expect 800 messages in 20 s: enough if they were independent, not when they come
    # ~30 at a time (a drag); then a fleet that sends half the mean is within the noise, and passes.
    bursty = dict(hold=20, time_limit=3600, expected_rps_per_user=0.04, start_users=1000, max_users=1000)
    verdict = SyntheticRun(SearchSettings(**bursty, expected_dispersion=30), 10_000, rate=lambda users: 20).run()
    assert verdict.status == "no-failure-up-to-max-users"
    verdict = SyntheticRun(SearchSettings(**bursty, expected_dispersion=1), 10_000, rate=lambda users: 20).run()
    assert "expected" in verdict.failure_reason


@pytest.mark.parametrize("capacity", [95, 333, 1234])
def test_every_failing_figure_comes_from_the_smallest_failing_level(capacity):
    # The ramp's first failure is far above the capacity; bisection finds smaller failing levels with their own
    # failure counts, and the verdict must name one of them whole, not mix it with the first.
    verdict = SyntheticRun(FAST, capacity).run()
    failed = [level for level in verdict.levels if not level["passed"]]
    smallest = min(failed, key=lambda level: level["users"])
    assert failed[0]["users"] > smallest["users"]
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


def test_a_degraded_server_names_the_failing_backoff_level():
    verdict = SyntheticRun(FAST, capacity=200, degrade_after=100).run()
    smallest = min((level for level in verdict.levels if not level["passed"]), key=lambda level: level["users"])
    assert verdict.failing_level == smallest
    assert verdict.failure_reason == smallest["reason"]


def test_the_usable_maximum_is_the_largest_pass_with_p95_under_the_bound():
    # No errors up to 1,000 users, but p95 grows 10 ms a user: usable (p95 <= 1,000 ms) up to 100 users.
    settings = SearchSettings(hold=10, time_limit=3600, usable_p95_ms=1000)
    verdict = SyntheticRun(settings, capacity=1000, p95=lambda users: 10.0 * users).run()
    usable = [level for level in verdict.levels if level["passed"] and level["p95_ms"] <= 1000]
    assert verdict.max_users_usable == max(level["users"] for level in usable) <= 100
    assert verdict.usable_level["users"] == verdict.max_users_usable
    assert verdict.usable_p95_ms == 1000
    assert verdict.max_users_without_error >= 900


def test_the_usable_maximum_is_zero_when_no_pass_is_under_the_bound_and_absent_when_off():
    slow = SyntheticRun(SearchSettings(hold=10, time_limit=3600), 100, p95=lambda users: 5000.0).run()
    assert slow.max_users_usable == 0
    assert slow.usable_level is None
    off = SyntheticRun(SearchSettings(hold=10, time_limit=3600, usable_p95_ms=0), 100).run()
    assert off.max_users_usable is None


@pytest.mark.parametrize(("capacity", "degrade_after"), [(95, None), (1234, None), (200, 100)])
def test_replaying_the_judged_levels_gives_the_same_verdict(capacity, degrade_after):
    live = SyntheticRun(FAST, capacity, degrade_after=degrade_after).run().as_dict()
    replayed = HoneInSearch.replay(FAST, live["levels"], "time-limit").as_dict()
    keep = {"started_at", "ended_at"}
    assert {k: v for k, v in replayed.items() if k not in keep} == {k: v for k, v in live.items() if k not in keep}
