"""The hone-in search for the largest load served without error, as a pure state machine.

It drives no Locust runner: `step(now, sample)` takes the clock and cumulative counters and returns the user
count to run next, or None when done. That keeps every decision unit-testable on synthetic numbers; the Locust
shape in `hone_in.py` only feeds it. It does not import Locust (that monkey-patches the whole process with gevent,
and breaks `ssl` in one that imported it first): `percentile` repeats Locust's few lines of percentile arithmetic.

The search, in two parts:

1. The probe: one continuous ramp from 0 users at `spawn_rate`, as the assignment's by-hand method does, until the
   first failure (or `max_users`, or a user count that stops rising, which becomes the search's cap: the generator
   starts no more). The user count at that moment, F, is an estimate, not a verdict: it was reached by a ramp that
   never let the server settle.
2. Levels, each tested the same way whichever way the search reaches it (the level test): the runner goes to the
   level's base, `users - spawn_rate * ramp` users (0 at the least; at once when that means stopping users, at
   `spawn_rate` when it means starting them), stays there `settle` seconds (longer while p95 still falls: the
   queues a failing level left are draining), ramps to the level at `spawn_rate` and holds it for `hold`
   seconds. The level passes when nothing failed from the start of that ramp to the end of the hold (nor the p95
   of every response in that window exceeded `max_p95_ms`, nor, where judged, throughput fell short). The first
   level is F itself; while nothing has failed (passed) yet, the next is a step up (down) of the resolution,
   again of the resolution, then doubling (`steps`); then bisection between the largest passing and the
   smallest failing level until their gap is within the resolution. If `usable_p95_ms` is set, more levels then
   find the largest one that passed with p95 at or under it, the same way from where the probe's p95 crossed it
   (`_next_usable`); a time limit there leaves the error-free answer standing, with `usable_converged` false.
   A level is judged only if its users ran through its hold: one that ran with fewer (a worker lost) ends the
   search unjudged ("users-lost", `short_level`), whatever it would have read.

With `levels` given (`--hone-levels`) there is no probe and no search: those levels are tested in their order, each
by the same level test, then the search ends ("levels-tested"); the verdict's figures are derived from them as
below. It is how to see how firm a verdict's edge is: the same level can pass once and fail the next time.

Every figure of the verdict comes from the level it names: the largest level that passed (`max_level`), the
smallest that failed (`failing_level`, with its own reason), and the largest that passed with p95 under the
usability bound (`usable_level`, and the smallest not usable above it, `not_usable_level`), all from the judged
levels (`derive`). A level that fails at or below an earlier pass means the server changed (degraded): that pass
no longer counts.
"""

import logging
import math
from dataclasses import asdict, dataclass, field

from lampi_load.search.settings import SearchSettings, resolution

logger = logging.getLogger("lampi_load.search.machine")

MINIMAL_SECONDS = 5.0
"""The minimal-load moment: the probe's first seconds (at most spawn_rate * 5 users)."""

NEAR_BOUND = 4.5
"""A level whose p95 is at most this many times the usability bound is near the usable edge: while any level not
usable read so (the error-free levels far above included), the usable search steps down in `steps` of the
resolution instead of in proportion to the lowest one's p95. The lowest such p95 when the usable search first stepped
down, in every search since the level test of 2026-12-01 13:24 (loadtesting/results/): the tuned stack's 1.2-3.8 s,
its edge 5-32% lower (912 users at 3.8 s, usable at 744 and not at 828, where at 3.0 the proportional step went to
240 users, took three levels back up and ran out of time), and 4.4 s in one search whose time ran out before that
step; the baseline's 5.1-9.2 s, its edge 2-22 times lower (40 users at 7.9 s, usable at 2). 4.5 lies between them;
taking a far level for a near one costs the baseline a level or two of cheap steps, the other way round costs the
tuned stack three of its ten minutes' levels."""

DRAIN_LOOKBACK = 5.0
"""A settle goes on while p95 is still falling: under `DRAIN_FALL` of its reading this many seconds before. Longer
than a distributed runner's 3 s between worker reports, so two readings of one report never look flat."""

DRAIN_FALL = 0.9
"""p95 under this share of its reading `DRAIN_LOOKBACK` s before is still falling. After a failing level the tuned
stack's queue took longer than 10 s to drain at a base near saturation, and 9 of the 12 levels tested next failed,
from 2,322 users up, where levels after a pass passed up to 2,715 (eight searches, loadtesting/http-results.md)."""

DRAIN_LIMIT = 60.0
"""Seconds a settle may wait beyond `settle` for p95 to stop falling; then the ramp starts anyway."""

SHORT_SECONDS = 5.0
"""A level whose user count stayed under its own for this long in its hold did not test what it names (a worker
lost, or one that joined after the start and holds no device ids): it is not judged. Longer than a distributed
runner's 3 s between worker reports, and than the 3 s after which Locust's master counts a worker that missed its
heartbeats as holding no users, so a report's lag or one late heartbeat is no shortfall."""

STALL_SECONDS = 15.0
"""The probe ends if the user count has not risen for this long (or for two users' worth of the spawn rate, if
longer) below `max_users`: the generator starts no more (every device id in use, a worker gone). Longer than a
distributed runner's gaps between user-count reports (3 s)."""


def steps(tries: int) -> int:
    """How many resolutions the k-th step away from a level spans (k = `tries`, from 0) while one side of the edge
    is unknown: 1, 1, 2, 4, 8..., so that after 1-4 steps the search is 1, 2, 4, 8 resolutions from it. The probe's
    estimate is most often within two resolutions of the answer (in 14 of the 18 tuned searches of 2026-12-01 from
    13:24 on, under two: eight under one, four one up, two nearly two down): a second step of one resolution ends
    those more than one away at the third level, where doubling from the first step (to 1, 3, 7 resolutions)
    needed a fourth to bisect the gap of two. Replayed on those searches' own edges, the error-free search takes 54
    levels instead of 60 (one more for the limit exactly two up; loadtesting/results/20261202-012112-repeatability/
    steps-replay/). Doubling from the third step keeps a limit far away a few levels off."""
    return 2 ** max(tries - 1, 0)


@dataclass(frozen=True)
class Sample:
    """Cumulative counters at one instant, as Locust keeps them, plus instantaneous gauges."""

    requests: int
    failures: int
    users: int
    p95_ms: float | None = None
    """p95 of the last seconds' responses (Locust's current percentile, over 10 s): the probe's and the settle's
    gauge. A level's p95 comes from `response_times` instead."""
    generator_cpu: float = 0.0
    top_failure: str | None = None
    """The most frequent failure so far, where `errors` is not given."""
    errors: dict[str, int] | None = None
    """Cumulative occurrences of each failure cause ("GET /: status 502"), as Locust's failures table counts them:
    a level's reason names the cause that grew most within its own window."""
    response_times: dict[int, int] | None = None
    """Every response so far, as Locust's `StatsEntry.response_times` histogram keeps it: {ms, rounded as Locust
    rounds: count}. A level's p95 is the p95 of what it grew by within the level's window; without it, None."""


def top_cause(sample: Sample, before: dict[str, int]) -> str | None:
    """The failure cause that grew most since `before` (a Sample's earlier `errors`)."""
    if sample.errors is None:
        return sample.top_failure
    grown = {cause: count - before.get(cause, 0) for cause, count in sample.errors.items()}
    cause, count = max(grown.items(), key=lambda item: item[1], default=(None, 0))
    return cause if count > 0 else None


def failures_reason(count: int, cause: str | None) -> str:
    return f"{count} failures" + (f" ({cause})" if cause else "")


@dataclass
class Level:
    """One level test: its user count, its base, its window (wall-clock seconds, from the start of the ramp out of
    the base to the end of the hold) and what was seen in it."""

    users: int
    phase: str
    start: float
    end: float = 0.0
    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    p95_ms: float | None = None
    """ms within which 95% of the window's responses came (failed ones too), as Locust rounds them."""
    generator_cpu: float = 0.0
    passed: bool = False
    reason: str = ""
    base: int = 0
    settled_s: float = 0.0
    """Seconds at the base before the ramp: `settle`, or longer while p95 still fell."""


@dataclass
class Probe:
    """The continuous ramp: where the first failure (and the first p95 over the usability bound) showed."""

    start: float
    end: float = 0.0
    first_failure_users: int | None = None
    reason: str = ""
    p95_over_usable_users: int | None = None
    stalled_users: int | None = None
    """Where the user count stopped rising short of `max_users` without a failure: the search's cap instead."""


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
    not_usable_level: dict | None = None
    """The smallest level above `usable_level` that was not usable (p95 over the bound, or failed): the usable
    answer's other edge. None without a bound, or when every level was usable."""
    usable_converged: bool | None = None
    short_level: dict | None = None
    """A level the generator did not hold: fewer users ran in its hold than it names, for `SHORT_SECONDS` or more
    ("users"; the fewest that ran, "held"; its window), a worker lost or one that joined after the start with no
    device ids. Neither pass nor failure, it is not among `levels`; the search ended there ("users-lost", or the
    error-free answer's status if that was known). None when every level ran its users."""
    p95_of: str = "window"
    """What a level's p95 is of: "window", every response from its ramp's start to its hold's end. Verdicts without
    this field took the highest of the 10 s p95s read each second in that window."""
    probe: dict | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    moments: dict = field(default_factory=dict)
    levels: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def derive(levels: list[dict], usable_p95_ms: float | None) -> dict:
    """The verdict's figures from its judged levels (dicts, in the order judged). The latest result wins: a pass
    stands unless a later level at or below it failed (the server degraded), a failure stands unless a later level
    at or above it passed (it recovered). `max_level` is the largest standing pass, `failing_level` the smallest
    standing failure (the latest of equals), `usable_level` the largest standing pass with p95 at or under
    `usable_p95_ms` (ms; None when that is 0 or None), where any other level counts as not usable."""

    def standing(good) -> tuple[dict | None, dict | None]:
        best = worst = None
        for index, level in enumerate(levels):
            later = levels[index + 1 :]
            if good(level):
                contradicted = any(not good(other) and other["users"] <= level["users"] for other in later)
                if not contradicted and (best is None or level["users"] >= best["users"]):
                    best = level
            else:
                contradicted = any(good(other) and other["users"] >= level["users"] for other in later)
                if not contradicted and (worst is None or level["users"] <= worst["users"]):
                    worst = level
        return best, worst

    best, failing = standing(lambda level: level["passed"])
    figures = {"max_level": best, "failing_level": failing, "usable_level": None, "not_usable_level": None}
    if usable_p95_ms:
        figures["usable_level"], figures["not_usable_level"] = standing(lambda level: usable(level, usable_p95_ms))
    return figures


def verdict_figures(levels: list[dict], usable_p95_ms: float | None, generator_cpu_limit: float) -> dict:
    """Every figure a verdict takes from its judged levels, by `Verdict` field (`derive`'s rule): the largest
    passing level and its users; the smallest failing level with its users and its own reason (one level supplies
    every failing figure: users, reason, window); the usable answer's two edges (None without a bound; 0 users when
    no level was usable); whether either error-free edge ran with the generator's CPU over `generator_cpu_limit`
    % (the answer is then a floor); and "moments", those two levels' windows. The search's end and
    `lampi_load.reports.rederive` both take them from here."""
    figures = derive(levels, usable_p95_ms)
    best, failing, usable_level = figures["max_level"], figures["failing_level"], figures["usable_level"]
    edges = (("max_without_error", best), ("failing", failing))
    return {
        "max_users_without_error": best["users"] if best else 0,
        "max_level": best,
        "first_failing_users": failing["users"] if failing else None,
        "failure_reason": failing["reason"] if failing else "",
        "failing_level": failing,
        "generator_bound": any(
            level is not None and level["generator_cpu"] > generator_cpu_limit for _, level in edges
        ),
        "usable_p95_ms": usable_p95_ms or None,
        "max_users_usable": ((usable_level or {}).get("users", 0)) if usable_p95_ms else None,
        "usable_level": usable_level,
        "not_usable_level": figures["not_usable_level"],
        "moments": {
            name: {"users": level["users"], "start": level["start"], "end": level["end"]}
            for name, level in edges
            if level is not None
        },
    }


def generator_status(status: str, failing: dict | None, generator_cpu_limit: float) -> str:
    """`status`, or "generator-bound" for a search that converged or ran out of time on a first failing level run
    with the generator's CPU over `generator_cpu_limit` %: a load this generator cannot produce honestly."""
    saturated = failing is not None and failing["generator_cpu"] > generator_cpu_limit
    return "generator-bound" if saturated and status in ("converged", "time-limit") else status


def percentile(response_times: dict[int, int], share: float) -> float | None:
    """The response time (ms) that `share` (0-1) of the responses in a Locust histogram ({ms: count}) came within,
    exactly as `locust.stats.calculate_response_time_percentile` computes it; None for no responses."""
    total = sum(response_times.values())
    if not total:
        return None
    allowed, seen = int(total * share), 0
    for ms in sorted(response_times, reverse=True):
        seen += response_times[ms]
        if total - seen <= allowed:
            return float(ms)
    return 0.0


def usable(level: dict, bound_ms: float) -> bool:
    """A judged level that passed with p95 at or under `bound_ms`."""
    return level["passed"] and level["p95_ms"] is not None and level["p95_ms"] <= bound_ms


class HoneInSearch:
    """Decides the next user count from the clock and the counters; see the module docstring."""

    def __init__(self, settings: SearchSettings, now: float):
        self.settings = settings
        self.started = now
        self.verdict = Verdict(started_at=now)
        self.probe: Probe | None = Probe(start=now)
        self.probe_failures: int | None = None
        self.level: Level | None = None
        self.stage = ""
        self.stage_since = now
        self.deadline = now
        self.target = settings.max_users
        self.cap = settings.max_users  # lowered to the users the generator could start, if the probe stalls
        self.probe_highest, self.probe_rising_since = 0, now  # the probe's user count, and since when it rose
        self.window_requests = self.window_failures = self.hold_requests = 0
        # The current hold's fewest users, seconds under the level's count, and when it was last looked at.
        self.hold_fewest, self.hold_short_s, self.hold_seen = 0, 0.0, now
        self.window_cpu, self.window_times = 0.0, {}
        self.settle_p95: list[tuple[float, float | None]] = []  # (now, p95 ms) over the current settle
        self.probe_errors: dict[str, int] = {}
        self.window_errors: dict[str, int] = {}
        self.ending = "converged"
        self.answered = ""
        self.given = settings.given_levels()
        if self.given:
            self.probe = None
            logger.info("no probe and no search: %d given levels, each tested once", len(self.given))
            return
        logger.info(
            "probe: one ramp from 0 users at %g users/s until the first failure (at most %d users)",
            settings.spawn_rate,
            settings.max_users,
        )

    # ------------------------------------------------------------------ driving
    def step(self, now: float, sample: Sample) -> int | None:
        """Called about once a second; returns the user count to run, or None when the search is over."""
        if self.verdict.status != "running":
            return None
        if now - self.started >= self.settings.time_limit:
            self._finish("time-limit", now)
            return None
        if self.probe is not None:
            self._probe(now, sample)
        elif self.given and self.level is None and not self.verdict.levels:
            self._next(now, sample)  # the first given level
        if self.level is not None:
            self._test(now, sample)
        return None if self.verdict.status != "running" else self.target

    def _probe(self, now: float, sample: Sample) -> None:
        probe = self.probe
        if self.probe_failures is None:
            self.probe_failures, self.probe_errors = sample.failures, dict(sample.errors or {})
        bound = self.settings.usable_p95_ms
        if bound and probe.p95_over_usable_users is None and sample.p95_ms is not None and sample.p95_ms > bound:
            probe.p95_over_usable_users = sample.users
        limit = self.settings.max_p95_ms
        if sample.failures > self.probe_failures:
            probe.reason = failures_reason(sample.failures - self.probe_failures, top_cause(sample, self.probe_errors))
        elif limit is not None and sample.p95_ms is not None and sample.p95_ms > limit:
            probe.reason = f"p95 {sample.p95_ms:.0f} ms over the {limit:.0f} ms bound"
        elif sample.users < self.settings.max_users:
            if sample.users > self.probe_highest:
                self.probe_highest, self.probe_rising_since = sample.users, now
            window = max(STALL_SECONDS, 2 / self.settings.spawn_rate)
            if now - self.probe_rising_since < window:
                return
            probe.stalled_users = self.cap = sample.users
            logger.warning(
                "probe: the user count stopped rising at %d of %d for %.0f s: the generator starts no more (for "
                "MQTT, raise --mqtt-devices; distributed, check the workers)",
                sample.users,
                self.settings.max_users,
                window,
            )
        probe.end = now
        probe.first_failure_users = sample.users if probe.reason else None
        self.verdict.probe = asdict(probe)
        self.verdict.moments["minimal"] = {
            "users": min(sample.users, math.ceil(self.settings.spawn_rate * MINIMAL_SECONDS)),
            "start": probe.start,
            "end": min(now, probe.start + MINIMAL_SECONDS),
        }
        self.probe = None
        if self.cap == 0:
            self._finish("users-stalled", now)  # no user ever started: nothing to test
            return
        ending = probe.reason or ("no failure, users stalled" if probe.stalled_users is not None else "no failure")
        logger.info("probe: %s at %d users; level tests follow", ending, sample.users)
        # The first level is the probe's estimate itself: it fails (then steps go down) or passes (then up).
        self._begin_level(sample.users if probe.reason else self.cap, "probed", now, sample)

    # ------------------------------------------------------------------ one level test
    def _begin_level(self, users: int, phase: str, now: float, sample: Sample) -> None:
        base = max(0, users - round(self.settings.spawn_rate * self.settings.ramp))
        self.level = Level(users=users, phase=phase, start=now, base=base)
        self._go("base", base, now, sample.users)
        logger.info(
            "%s level %d users: from %d, settle %.0f s, hold %.0f s",
            phase,
            users,
            base,
            self.settings.settle,
            self.settings.hold,
        )

    def _go(self, stage: str, target: int, now: float, users: int) -> None:
        self.stage, self.stage_since, self.target = stage, now, target
        # Stopping users is at once; starting them is at the spawn rate. A distributed runner may round its count:
        # past this deadline the stage goes on as if reached.
        seconds = (target - users) / self.settings.spawn_rate if target > users else 0.0
        self.deadline = now + seconds * 1.5 + 5

    def _test(self, now: float, sample: Sample) -> None:
        level = self.level
        if self.stage == "base" and (sample.users == self.target or now >= self.deadline):
            self.stage, self.stage_since = "settle", now
            self.settle_p95 = []
        if self.stage == "settle":
            self.settle_p95.append((now, sample.p95_ms))
            settled = now - self.stage_since
            if settled < self.settings.settle or (settled < self.settings.settle + DRAIN_LIMIT and self._draining(now)):
                return
            level.settled_s = round(settled, 1)
            if settled >= self.settings.settle + 1:
                logger.info(
                    "%s level %d users: settled %.0f s, until p95 stopped falling", level.phase, level.users, settled
                )
            # The level's window opens: everything from here to the end of the hold is the level's.
            level.start = now
            self.window_requests, self.window_failures = sample.requests, sample.failures
            self.window_cpu, self.window_errors = 0.0, dict(sample.errors or {})
            self.window_times = dict(sample.response_times or {})
            self._go("ramp", level.users, now, sample.users)
            return
        if self.stage not in ("ramp", "hold"):
            return
        self.window_cpu = max(self.window_cpu, sample.generator_cpu)
        if self.stage == "ramp":
            if sample.users == self.target or now >= self.deadline:
                self.stage, self.stage_since = "hold", now
                self.hold_requests, self.hold_fewest, self.hold_short_s = sample.requests, sample.users, 0.0
                self.hold_seen = now
            return
        self.hold_fewest = min(self.hold_fewest, sample.users)
        if sample.users < level.users:
            self.hold_short_s += now - self.hold_seen
        self.hold_seen = now
        if now - self.stage_since >= self.settings.hold:
            self._judge(now, sample)

    def _window_p95(self, sample: Sample) -> float | None:
        """p95 of every response since the window opened. Not the highest of the 10 s p95s read each second in it,
        as before: that is an extreme of some 40 readings, which one slow stretch sets."""
        if sample.response_times is None:
            return None
        times = {ms: count - self.window_times.get(ms, 0) for ms, count in sample.response_times.items()}
        # Only what grew: statistics reset within the window (Locust's web UI can) would otherwise count negative.
        return percentile({ms: count for ms, count in times.items() if count > 0}, 0.95)

    def _draining(self, now: float) -> bool:
        """True while the settle's p95 is still falling (see `DRAIN_FALL`); False without two readings to compare."""
        latest = self.settle_p95[-1][1]
        before = [p95 for at, p95 in self.settle_p95 if at <= now - DRAIN_LOOKBACK]
        if latest is None or not before or before[-1] is None:
            return False
        return latest < DRAIN_FALL * before[-1]

    def _judge(self, now: float, sample: Sample) -> None:
        level = self.level
        level.end = now
        if self.hold_short_s >= SHORT_SECONDS:
            # Fewer users than the level names: a pass would be a false pass at that level, a failure (too few
            # messages from the devices still running, say) the generator's, not the server's. So no judging.
            self.level = None
            self._short(level)
            self._finish("users-lost", now)
            return
        level.requests = sample.requests - self.window_requests
        level.failures = sample.failures - self.window_failures
        hold = max(now - self.stage_since, 1e-9)
        # Throughput of the steady hold only: the ramp's partial user count would understate it.
        level.rps = (sample.requests - self.hold_requests) / hold
        level.p95_ms = self._window_p95(sample)
        level.generator_cpu = self.window_cpu
        limit = self.settings.max_p95_ms
        if level.failures:
            level.reason = failures_reason(level.failures, top_cause(sample, self.window_errors))
        elif limit is not None and level.p95_ms is not None and level.p95_ms > limit:
            level.reason = f"p95 {level.p95_ms:.0f} ms over the {limit:.0f} ms bound"
        elif self._throughput_is_judged(level, hold) and level.rps < self._min_rps(level.users):
            level.reason = f"{level.rps:.1f}/s is under {self._min_rps(level.users):.1f}/s expected"
        level.passed = not level.reason
        self.level = None
        self._record(level)
        # A level that failed while the generator was saturated may be the generator's failure, not the server's
        # (it sends late and times late): the search goes on below it, and the verdict says so (`_finish`).
        self._next(now, sample)

    def _short(self, level: Level) -> None:
        self.verdict.short_level = {
            "users": level.users,
            "held": self.hold_fewest,
            "phase": level.phase,
            "start": level.start,
            "end": level.end,
        }
        logger.warning(
            "%s level %d users: as few as %d ran in the hold (under %d for %.0f s), so it is not judged and the search "
            "ends here: the generator holds no more (distributed, a worker lost or one joined after the start; for "
            "MQTT, fewer device ids than asked)",
            level.phase,
            level.users,
            self.hold_fewest,
            level.users,
            self.hold_short_s,
        )

    def _record(self, level: Level) -> None:
        self.verdict.levels.append(asdict(level))
        logger.info(
            "%s level %d users: %s (%d requests, %.1f req/s, p95 %s ms, generator CPU %.0f%%)",
            level.phase,
            level.users,
            "pass" if level.passed else f"FAIL: {level.reason}",
            level.requests,
            level.rps,
            f"{level.p95_ms:.0f}" if level.p95_ms is not None else "-",
            level.generator_cpu,
        )

    def _throughput_is_judged(self, level: Level, hold: float) -> bool:
        rate = self.settings.expected_rps_per_user
        needed = self.settings.min_expected_count * max(self.settings.expected_dispersion, 1.0)
        return bool(rate) and rate * level.users * hold >= needed

    def _min_rps(self, users: int) -> float:
        return self.settings.min_rps_fraction * self.settings.expected_rps_per_user * users

    # ------------------------------------------------------------------ the next level
    def _resolution(self, users: int, fraction: float) -> float:
        """The gap that ends a search at `users`: `fraction` of it (the error-free search's `resolution_fraction`,
        or the usable search's own), at least `resolution_users`."""
        return resolution(self.settings.resolution_users, fraction, users)

    def _step_up(self, low: int, tries: int, fraction: float) -> int:
        """The k-th step up (k = `tries`, from 0) from a passing `low` with no failure above it yet: the
        resolution times `steps(tries)`. Never over the resolution at first, so that a failure one step up
        ends the search (a step rounded up, 2,686 -> 2,821 against 134.3 users, cost a level)."""
        return max(1, math.floor(self._resolution(low, fraction))) * steps(tries)

    def _step_down(self, high: int, tries: int, fraction: float) -> int:
        """The k-th step down from a failing `high` with no pass below it yet, as `_step_up`: the largest step d
        within the resolution of the level it lands on, d <= max(resolution_users, fraction * (high - d)), times
        `steps(tries)`."""
        first = max(self.settings.resolution_users, math.floor(fraction * high / (1 + fraction)))
        return max(1, first) * steps(tries)

    def _next(self, now: float, sample: Sample) -> None:
        if self.given:
            tested = len(self.verdict.levels)
            if tested < len(self.given):
                self._begin_level(self.given[tested], "given", now, sample)
            else:
                self._finish("levels-tested", now)
            return
        self.ending = "converged"
        chosen = self._next_without_error()
        if chosen is not None:
            self.answered = ""  # a later failure below the maximum reopened the error-free search
        if chosen is None and self.ending != "fails-at-minimum" and self.settings.usable_p95_ms:
            self.answered = self.ending  # the error-free maximum is known, whatever happens to the usable one
            chosen = self._next_usable()
        if chosen is None:
            self.verdict.usable_converged = True if self.settings.usable_p95_ms else None
            self._finish(self.ending, now)
            return
        users, phase = chosen
        self._begin_level(users, phase, now, sample)

    def _next_without_error(self) -> tuple[int, str] | None:
        """The next level for the error-free maximum, or None when it is known (`self.ending` then says how)."""
        levels, fraction = self.verdict.levels, self.settings.resolution_fraction
        figures = derive(levels, None)
        low = figures["max_level"]["users"] if figures["max_level"] else None
        high = figures["failing_level"]["users"] if figures["failing_level"] else None
        if low is not None and low >= self.cap:
            self.ending = "no-failure-up-to-max-users" if self.cap == self.settings.max_users else "users-stalled"
            return None
        if low is None:
            if high <= 1:
                self.ending = "fails-at-minimum"
                return None
            down = self._step_down(high, sum(level["phase"] == "down" for level in levels), fraction)
            return max(1, high - down, high // 2), "down"  # never more than halving
        if high is None:
            up = self._step_up(low, sum(level["phase"] == "up" for level in levels), fraction)
            return min(low + up, self.cap), "up"
        if high - low <= self._resolution(low, fraction):
            return None
        return (low + high) // 2, "bisect"

    def _next_usable(self) -> tuple[int, str] | None:
        """The next level for the usable maximum (p95 at or under the bound), or None when it is known. It starts
        where the probe's p95 crossed the bound first, then searches as the error-free search does from the probe's
        estimate: below a level not usable, down in `steps` of the resolution if any level's p95 was near the bound
        (`NEAR_BOUND`), else in proportion to the lowest one's; above a usable level, while only the error-free
        search's levels (far above) are over the bound, up in `steps` of the resolution; then bisection. Its
        resolution is the coarser `usable_resolution_fraction` (at least `resolution_users`). Not interpolation
        between p95s: near the knee a level's p95 is too noisy to steer by (1,600 users at 920 ms, 1,640 at 510 ms
        in one tuned search), and interpolating toward the far error-free levels crept up a few percent a level
        (1,553, 1,741, 1,600, 1,640, 1,681 users, out of time)."""
        bound, fraction = self.settings.usable_p95_ms, self.settings.usable_resolution_fraction
        levels = self.verdict.levels
        figures = derive(levels, bound)
        below, above = figures["usable_level"], figures["not_usable_level"]
        if above is None:
            return None  # every level was usable: the usable maximum is the error-free one
        high = above["users"]
        seen = self.verdict.probe["p95_over_usable_users"] if self.verdict.probe else None
        untried = seen is not None and not any(level["users"] == seen for level in levels)
        if below is None:
            if high <= 1:
                return None
            if untried and seen < high:
                return seen, "usable"
            near = any(
                not usable(level, bound) and level["p95_ms"] is not None and level["p95_ms"] <= NEAR_BOUND * bound
                for level in levels
            )
            if near:
                # Just over the bound, where p95 climbs steeply with users (a saturated server): the edge is close
                # below, so `steps` of the resolution (a tuned run: 1,993 users at 1.5 s; the proportional
                # step went to 1,328, at 310 ms, a level wasted far below). Once any level read near the bound, a
                # lower one far over it is that level's bad stretch, not the distance to the edge (1,265 users at
                # 1.3 s, then 1,205 at 3.9 s: the proportional step went to 308 users and time ran out).
                # Steps already taken down: this phase's levels at or over `high` but the probe's crossing, a guess.
                tries = sum(
                    level["phase"] == "usable" and level["users"] >= high and level["users"] != seen for level in levels
                )
                return max(1, high - self._step_down(high, tries, fraction), high // 2), "usable"
            # No level near the bound yet: in proportion to how far over it the lowest level was (one level, not a
            # dozen, from 3.9 s at 28 users to 7 users).
            share = min(max(bound / above["p95_ms"], 0.1), 0.95) if above["p95_ms"] else 0.5
            return max(1, min(math.floor(share * high), high - 1)), "usable"
        low = below["users"]
        if high - low <= self._resolution(low, fraction):
            return None
        if untried and low < seen < high:
            return seen, "usable"
        if above["phase"] != "usable":
            # Usable levels found, and over the bound only the error-free levels: steps up, the first of the
            # resolution (an edge just above costs one level), then `steps` of it, one per usable level.
            found = sum(level["phase"] == "usable" and usable(level, bound) for level in levels)
            up = low + self._step_up(low, max(found - 1, 0), fraction)
            if up < high:
                return up, "usable"
        return (low + high) // 2, "usable"

    # ------------------------------------------------------------------ the end
    def stop(self, now: float) -> None:
        """Ends a search stopped from outside (the user, Locust's --run-time) with the verdict so far."""
        if self.verdict.status == "running":
            self._finish("stopped-by-user", now)

    def _finish(self, status: str, now: float) -> None:
        """Ends the search with `status`, every figure derived from the judged levels."""
        verdict = self.verdict
        if verdict.status == "running":
            # A time limit (or a level the generator did not hold) in the usable search leaves the error-free answer
            # as found; usable_converged says the rest.
            verdict.status = self.answered if status in ("time-limit", "users-lost") and self.answered else status
        verdict.ended_at = now
        if self.probe is not None:
            self.probe.end = now
            verdict.probe = asdict(self.probe)
        figures = verdict_figures(verdict.levels, self.settings.usable_p95_ms, self.settings.generator_cpu_limit)
        verdict.moments.update(figures.pop("moments"))
        for name, value in figures.items():
            setattr(verdict, name, value)
        verdict.status = generator_status(verdict.status, verdict.failing_level, self.settings.generator_cpu_limit)
        if self.settings.usable_p95_ms:
            # Given levels are no usable search: nothing converged or did not.
            verdict.usable_converged = None if self.given else bool(verdict.usable_converged)
        logger.info(
            "search over (%s) after %.0f s: %s users without error, first failing %s",
            verdict.status,
            now - self.started,
            verdict.max_users_without_error,
            verdict.first_failing_users,
        )
