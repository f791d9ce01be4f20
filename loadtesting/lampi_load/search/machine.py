"""The hone-in search for the largest load served without error, as a pure state machine.

It knows nothing of Locust: `step(now, sample)` takes the clock and cumulative counters and returns the user
count to run next, or None when done. That keeps every decision unit-testable on synthetic numbers; the Locust
shape in `hone_in.py` only feeds it.

The search: ramp up in levels that grow by `growth` (at the fixed spawn rate), hold each level for `hold`
seconds and judge it; on the first failing level, back off to the best passing level until a whole hold passes
with zero failures; then bisect between the best passing and the first failing level until the gap is within
the resolution.

Every figure of the verdict comes from the level it names: the largest level that passed (`max_level`), the
smallest that failed (`failing_level`, with its own reason), and the largest that passed with p95 under the
usability bound (`usable_level`), from the same levels.
"""

import logging
import math
from dataclasses import asdict, dataclass, field

from lampi_load.search.settings import SearchSettings

logger = logging.getLogger("lampi_load.search.machine")


@dataclass(frozen=True)
class Sample:
    """Cumulative counters at one instant, as Locust keeps them, plus instantaneous gauges."""

    requests: int
    failures: int
    users: int
    p95_ms: float | None = None
    generator_cpu: float = 0.0
    top_failure: str | None = None


@dataclass
class Level:
    """One judged hold: its user count, its window (wall-clock seconds) and what was seen in it."""

    users: int
    phase: str
    start: float
    end: float = 0.0
    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    p95_ms: float | None = None
    generator_cpu: float = 0.0
    passed: bool = False
    reason: str = ""


@dataclass
class Verdict:
    """The outcome: the largest level without error, the first failing one, and the marked moments."""

    status: str = "running"
    max_users_without_error: int | None = None
    first_failing_users: int | None = None
    failure_reason: str = ""
    generator_bound: bool = False
    max_level: dict | None = None
    failing_level: dict | None = None
    usable_p95_ms: float | None = None
    max_users_usable: int | None = None
    usable_level: dict | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    moments: dict = field(default_factory=dict)
    levels: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class HoneInSearch:
    """Decides the next user count from the clock and the counters; see the module docstring."""

    def __init__(self, settings: SearchSettings, now: float):
        self.settings = settings
        self.started = now
        self.verdict = Verdict(started_at=now)
        self.best_pass: Level | None = None
        self.best_usable: Level | None = None
        self.lowest_fail: Level | None = None
        self.phase = "ramp"
        self.target = settings.start_users
        self.level: Level | None = None
        self.level_requests = 0
        self.level_failures = 0
        self.level_cpu = 0.0
        self.level_p95: float | None = None
        self.backoff_tries = 0
        self.reached_at: float | None = None
        self.ramp_deadline = now
        self.going_down = False
        self.hold_requests = 0

    # ------------------------------------------------------------------ driving
    def step(self, now: float, sample: Sample) -> int | None:
        """Called about once a second; returns the user count to run, or None when the search is over."""
        if self.verdict.status != "running":
            return None
        if now - self.started >= self.settings.time_limit:
            self._finish("time-limit", now, sample)
            return None
        if self.level is None:
            self._begin_level(now, sample)
        self._observe(sample)
        if self.reached_at is None:
            # The hold starts when the runner has the level's users (or should have, if a distributed runner
            # rounds): failures while ramping up still count against the level.
            if sample.users == self.target or now >= self.ramp_deadline:
                self.reached_at = now
                self.hold_requests = sample.requests
                if self.going_down:
                    # Failures while users are stopped belong to the level we left, not to this one.
                    self.level.start = now
                    self.level_requests, self.level_failures = sample.requests, sample.failures
                    self.level_cpu, self.level_p95 = 0.0, None
            return self.target
        if now - self.reached_at < self.settings.hold:
            return self.target
        self._judge(now, sample)
        return None if self.verdict.status != "running" else self.target

    # ------------------------------------------------------------------ levels
    def _begin_level(self, now: float, sample: Sample) -> None:
        self.level = Level(users=self.target, phase=self.phase, start=now)
        self.level_requests, self.level_failures = sample.requests, sample.failures
        self.level_cpu, self.level_p95 = 0.0, None
        self.reached_at = None
        self.going_down = self.target < sample.users
        ramp_seconds = abs(self.target - sample.users) / self.settings.spawn_rate
        self.ramp_deadline = now + ramp_seconds * 1.5 + 5
        logger.info("%s: holding %d users for %.0f s", self.phase, self.target, self.settings.hold)

    def _observe(self, sample: Sample) -> None:
        self.level_cpu = max(self.level_cpu, sample.generator_cpu)
        if sample.p95_ms is not None:
            self.level_p95 = max(self.level_p95 or 0.0, sample.p95_ms)

    def _judge(self, now: float, sample: Sample) -> None:
        level = self.level
        level.end = now
        level.requests = sample.requests - self.level_requests
        level.failures = sample.failures - self.level_failures
        # Throughput of the steady hold only: the ramp's partial user count would understate it.
        level.rps = (sample.requests - self.hold_requests) / max(now - self.reached_at, 1e-9)
        level.p95_ms = self.level_p95
        level.generator_cpu = self.level_cpu
        limit = self.settings.max_p95_ms
        if level.failures:
            level.reason = f"{level.failures} failures" + (f" ({sample.top_failure})" if sample.top_failure else "")
        elif limit is not None and level.p95_ms is not None and level.p95_ms > limit:
            level.reason = f"p95 {level.p95_ms:.0f} ms over the {limit:.0f} ms bound"
        elif self._throughput_is_judged(level, now) and level.rps < self._min_rps(level.users):
            level.reason = f"{level.rps:.1f}/s is under {self._min_rps(level.users):.1f}/s expected"
        level.passed = not level.reason
        self._decide(level, now, sample)

    def _decide(self, level: Level, now: float, sample: Sample | None) -> None:
        """What follows from one judged level: the record, the moments, and the next target or the end."""
        self.verdict.levels.append(asdict(level))
        logger.info(
            "%s %d users: %s (%d requests, %.1f req/s, p95 %s ms, generator CPU %.0f%%)",
            level.phase,
            level.users,
            "pass" if level.passed else f"FAIL: {level.reason}",
            level.requests,
            level.rps,
            f"{level.p95_ms:.0f}" if level.p95_ms is not None else "-",
            level.generator_cpu,
        )
        if not self.verdict.moments:
            self.verdict.moments["minimal"] = self._window(level)
        self.level = None
        if not level.passed and level.generator_cpu > self.settings.generator_cpu_limit:
            # A saturated generator sends late and times late: its failure is not the server's.
            self.verdict.generator_bound = True
            self._finish("generator-bound", now, sample, failing=level)
            return
        {"ramp": self._after_ramp, "backoff": self._after_backoff, "bisect": self._after_bisect}[level.phase](
            level, now, sample
        )

    def _throughput_is_judged(self, level: Level, now: float) -> bool:
        rate = self.settings.expected_rps_per_user
        needed = self.settings.min_expected_count * max(self.settings.expected_dispersion, 1.0)
        return bool(rate) and rate * level.users * (now - self.reached_at) >= needed

    def _min_rps(self, users: int) -> float:
        return self.settings.min_rps_fraction * self.settings.expected_rps_per_user * users

    def _after_ramp(self, level: Level, now: float, sample: Sample) -> None:
        if level.passed:
            self._record_pass(level)
            if level.users >= self.settings.max_users:
                self._finish("no-failure-up-to-max-users", now, sample)
                return
            grown = max(math.ceil(level.users * self.settings.growth), level.users + self.settings.min_step)
            self.target = min(grown, self.settings.max_users)
            return
        self._record_fail(level)
        self._back_off(now, sample)

    def _after_backoff(self, level: Level, now: float, sample: Sample) -> None:
        if level.passed:
            self._record_pass(level)
            self._next_bisection(now, sample)
            return
        self.backoff_tries += 1
        if self.backoff_tries >= self.settings.backoff_attempts:
            # The once-passing level keeps failing: the server degraded, so it is not a true pass any more.
            self.lowest_fail = level
            self.best_pass = None
            self.backoff_tries = 0
            self.target = level.users // 2
            if self.target < 1:
                self._finish("fails-at-minimum", now, sample)
            else:
                logger.info("backoff: %d users keeps failing; backing off to %d", level.users, self.target)

    def _after_bisect(self, level: Level, now: float, sample: Sample) -> None:
        if level.passed:
            self._record_pass(level)
            self._next_bisection(now, sample)
        else:
            self._record_fail(level)
            self._back_off(now, sample)

    def _back_off(self, now: float, sample: Sample) -> None:
        self.phase = "backoff"
        self.backoff_tries = 0
        self.target = self.best_pass.users if self.best_pass else self.lowest_fail.users // 2
        if self.target < 1:
            self._finish("fails-at-minimum", now, sample)

    def _next_bisection(self, now: float, sample: Sample) -> None:
        low = self.best_pass.users
        high = self.lowest_fail.users
        if high - low <= max(self.settings.resolution_users, self.settings.resolution_fraction * low):
            self._finish("converged", now, sample)
            return
        self.phase = "bisect"
        self.target = (low + high) // 2

    def _record_pass(self, level: Level) -> None:
        if self.best_pass is None or level.users >= self.best_pass.users:
            self.best_pass = level
            self.verdict.moments["max_without_error"] = self._window(level)
        bound = self.settings.usable_p95_ms
        usable = bound and level.p95_ms is not None and level.p95_ms <= bound
        if usable and (self.best_usable is None or level.users >= self.best_usable.users):
            self.best_usable = level

    def _record_fail(self, level: Level) -> None:
        # The smallest failing level is the one the verdict names; of equal ones, the first seen.
        if self.lowest_fail is None or level.users < self.lowest_fail.users:
            self.lowest_fail = level

    @staticmethod
    def _window(level: Level) -> dict:
        return {"users": level.users, "start": level.start, "end": level.end}

    @classmethod
    def replay(cls, settings: SearchSettings, levels: list[dict], status: str) -> Verdict:
        """The verdict the search's decisions give for already judged `levels` (a verdict.json's, in order), ended
        with `status` if the levels do not end the search by themselves. Re-derives verdicts written before a
        change to how a verdict is drawn from its levels."""
        search = cls(settings, now=levels[0]["start"] if levels else 0.0)
        for data in levels:
            if search.verdict.status != "running":
                raise ValueError(f"the search ends ({search.verdict.status}) before the level of {data['users']} users")
            search.level = None
            search._decide(Level(**data), data["end"], None)
        if search.verdict.status == "running":
            search._finish(status, levels[-1]["end"] if levels else 0.0, None)
        return search.verdict

    def stop(self, now: float) -> None:
        """Ends a search stopped from outside (the user, Locust's --run-time) with the verdict so far."""
        if self.verdict.status == "running":
            self._finish("stopped-by-user", now, None)

    def _finish(self, status: str, now: float, sample: Sample | None, failing: Level | None = None) -> None:
        self.verdict.status = status
        self.verdict.ended_at = now
        self.verdict.max_users_without_error = self.best_pass.users if self.best_pass else 0
        if self.best_pass is not None:
            self.verdict.max_level = asdict(self.best_pass)
            if self.best_pass.generator_cpu > self.settings.generator_cpu_limit:
                self.verdict.generator_bound = True
        if self.settings.usable_p95_ms:
            self.verdict.usable_p95_ms = self.settings.usable_p95_ms
            self.verdict.max_users_usable = self.best_usable.users if self.best_usable else 0
            self.verdict.usable_level = asdict(self.best_usable) if self.best_usable else None
        # One level supplies every failing figure: its users, its reason, its window.
        failing = failing or self.lowest_fail
        if failing is not None:
            self.verdict.failing_level = asdict(failing)
            self.verdict.first_failing_users = failing.users
            self.verdict.failure_reason = failing.reason
            self.verdict.moments["failing"] = self._window(failing)
        logger.info(
            "search over (%s) after %.0f s: %s users without error, first failing %s",
            status,
            now - self.started,
            self.verdict.max_users_without_error,
            self.verdict.first_failing_users,
        )
