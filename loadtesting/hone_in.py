"""The hone-in search as a Locust load shape: finds the largest user count served without error.

    locust -f loadtesting/locustfile.py,loadtesting/hone_in.py --headless --host http://127.0.0.1:8080
In the web UI, add --class-picker to choose between this shape and a by-hand run. The search itself is in
`lampi_load/search/machine.py`; this file feeds it Locust's numbers and writes the verdict (and the sar slices, when
it recorded sysstat) into --hone-results-dir when the test stops, with provenance.json (commit, command, machine,
the CPUs each process could use and, when the server is on this machine, the speed of its CPUs before and after,
and through each level: `speed.jsonl`, summed up in the verdict's "server_speed").
"""

import json
import logging
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import gevent
from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from lampi_load.reports.provenance import pinning, provenance
from lampi_load.results import new_run_dir
from lampi_load.search import settings
from lampi_load.search.machine import HoneInSearch, Sample
from lampi_load.search.sar import SadcRecorder, slice_moments
from lampi_load.search.speed import measure, server_cpus
from lampi_load.search.speed_watch import EDGES, SLOW_PCT, SpeedWatch, by_level, say_edges, slow_edges
from lampi_load.search.speed_watch import describe as describe_watch

logger = logging.getLogger("lampi_load.hone_in")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def server_here(environment) -> bool:
    """Whether the target is on this machine (a loopback host), so its CPUs can be recorded and timed here."""
    host = urlparse(environment.host or "").hostname or (environment.host or "")
    return host in LOOPBACK_HOSTS


class FirstSpawnRateWarning(logging.Filter):
    """Lets Locust's "spawn rate is very high" warning through once. The search hands the master one second's
    step at a time, with a rate that covers it (`HoneInShape.paced`): past 100 users/s per worker the master
    would repeat the warning every second of every ramp, about steps that are not one fast ramp."""

    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Your selected spawn rate is very high"):
            return True
        first, FirstSpawnRateWarning.seen = not FirstSpawnRateWarning.seen, True
        return first


logging.getLogger("locust.runners").addFilter(FirstSpawnRateWarning())


@events.test_stop.add_listener
def warn_again(environment, **kwargs):
    # Once per test: a web UI's next test may ramp too fast for real. (Not at test_start: a master warns before it.)
    FirstSpawnRateWarning.seen = False


@events.init_command_line_parser.add_listener
def add_hone_in_options(parser):
    group = parser.add_argument_group("hone-in search", "Used when loadtesting/hone_in.py is among the -f files")
    settings.add_options(group)
    group.add_argument("--hone-results-dir", default="", help="Folder for verdict.json and sar slices")
    group.add_argument(
        "--hone-sar",
        choices=["auto", "on", "off"],
        default="auto",
        help="Record sysstat on this machine (auto: when --host is loopback, i.e. the server is here)",
    )


@events.init.add_listener
def check_settings(environment, **kwargs):
    # Bad settings are one line at the start, not a search that never converges (a spawn rate of 0 never ramps).
    if environment.parsed_options is not None:
        try:
            settings.from_options(environment.parsed_options)
        except ValueError as error:
            sys.exit(f"hone_in: {error}")


def generator_cpu(runner) -> float:
    """The busiest load-generator process's CPU %, as Locust itself measures it."""
    if isinstance(runner, MasterRunner):
        return max((worker.cpu_usage for worker in runner.clients.values()), default=0.0)
    return runner.current_cpu_usage


def failure_causes(stats) -> dict[str, int]:
    """Occurrences of each row of Locust's failures table, by "METHOD name: error" (so far, cumulative)."""
    causes: dict[str, int] = {}
    for error in stats.errors.values():
        cause = f"{error.method} {error.name}: {error.error}"[:200]
        causes[cause] = causes.get(cause, 0) + error.occurrences
    return causes


class HoneInShape(LoadTestShape):
    """Probes with one ramp, then tests levels until it knows the largest load served without error (see
    `lampi_load/search/machine.py` for the level test).

    The shape paces the ramps itself, one second's users per tick, instead of handing Locust a whole ramp: a
    distributed master blocks in `runner.start()` until a ramp is dispatched and calls no `tick()` meanwhile,
    so the search would judge late and overrun its time limit. Paced, one process, `--processes` and
    hand-started workers get the same ramps and the same clock.
    """

    search: HoneInSearch | None = None
    server_cpus: str | None = None
    """The CPUs every server process may run on (a taskset list), when they share one; None: any."""
    speed_before: dict | None = None
    """The server CPUs' speed reference before the search (`lampi_load.search.speed`); None: not on this machine."""
    commanded: float = 0.0
    """Users asked of the runner so far (fractional between ticks)."""
    last_tick: float = 0.0

    def reset_time(self):
        super().reset_time()
        # Locust calls this when a shape run starts (each run in the web UI), and a master calls it again from
        # inside the run at its first spawn: only the former starts a fresh search.
        if gevent.getcurrent() is not getattr(self.runner, "shape_greenlet", None):
            self.search = None

    def tick(self):
        options = self.runner.environment.parsed_options
        now = time.time()
        if self.search is None:
            # The server CPUs' speed, before the search's clock starts and any user runs (RunRecord times them
            # again at the end): how far the machine itself moved, when two searches disagree.
            self.server_cpus = self.speed_before = None
            if server_here(self.runner.environment):
                self.server_cpus = server_cpus(pinning(server_here=True))
                self.speed_before = measure(self.server_cpus)
            now = time.time()
            self.search = HoneInSearch(settings.from_options(options), now=now)
            # The first tick already asks for one second's users.
            self.commanded, self.last_tick = 0.0, now - 1.0
        total = self.runner.stats.total
        sample = Sample(
            requests=total.num_requests,
            failures=total.num_failures,
            users=self.runner.user_count,
            p95_ms=total.get_current_response_time_percentile(0.95) if total.num_requests else None,
            generator_cpu=generator_cpu(self.runner),
            errors=failure_causes(self.runner.stats),
            response_times=total.response_times,  # Locust's live histogram: the search copies what it keeps
        )
        users = self.search.step(now, sample)
        if users is None:
            return None
        return self.paced(users, now)

    def paced(self, target: int, now: float) -> tuple[int, float]:
        """The next step toward `target` at the search's spawn rate, as a (users, rate) tick that Locust runs
        at once: the rate covers the step, so a master dispatches it in one message and returns to ticking."""
        rate = self.search.settings.spawn_rate
        reach = rate * min(max(now - self.last_tick, 0.0), 2.0)
        self.last_tick = now
        # Users start at the spawn rate; they stop at once (stopping loads nothing but the generator).
        self.commanded = min(float(target), self.commanded + reach) if self.commanded < target else float(target)
        users = round(self.commanded)
        return users, max(rate, float(abs(users - self.runner.target_user_count or 0)), 1.0)


class RunRecord:
    """The results folder of one search and the recordings that run beside it: sysstat and the speed watch."""

    sadc: SadcRecorder | None = None
    watch: SpeedWatch | None = None
    closed = False

    def __init__(self, environment):
        # Nothing here waits (no greenlet switch), so the record exists before anything it owns is started.
        options = environment.parsed_options
        self.shape: HoneInShape = environment.shape_class
        self.dir = Path(options.hone_results_dir) if options.hone_results_dir else new_run_dir("search")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.server_here = server_here(environment)
        self.record_sar = options.hone_sar == "on" or (options.hone_sar == "auto" and self.server_here)
        # Bounded: the search's time limit and 10 minutes more (the speed references, the last level, the report).
        self.samples = int(options.hone_time_limit) + 600

    def start(self) -> None:
        """Starts sadc and the speed watch, and stops them again if `close` ran meanwhile (a test that ended at
        once): whatever `close` finds running, it stops."""
        if self.record_sar and not self.closed:
            self.sadc = SadcRecorder(self.dir / "sa.bin", count=self.samples).start()
        if not self.record_sar:
            logger.warning("not recording sysstat here: the server is not on this machine (--hone-sar on forces it)")
        # Asked again: sadc's start waits for its file, and `close` may run during that wait.
        if self.server_here and not self.closed:
            # The server CPUs' speed through the levels, on the CPUs the shape's first tick found (Locust ticks
            # the shape once before it fires test_start), bounded as sadc is.
            self.watch = SpeedWatch(self.dir / "speed.jsonl", self.shape.server_cpus, self.samples).start()
        if self.closed:
            # `close` ran while these started (a test stopped at once) and found nothing yet to stop.
            for recording in (self.sadc, self.watch):
                if recording:
                    recording.stop()

    def close(self) -> None:
        shape = self.shape
        # The search ends now, when its users stopped (at its own end, a time limit or Ctrl-C), not after the
        # speed reference below, which may wait up to 10 s for the server to work off its backlog.
        stopped = time.time()
        self.closed = True
        if self.sadc:
            self.sadc.stop()
        if self.watch:
            self.watch.stop()
        # Before the workers quit: their CPU pinning is part of the record.
        record = provenance(self.server_here)
        if shape.speed_before is not None:
            after = measure(shape.server_cpus)
            record["speed_reference"] = {"before": shape.speed_before, "after": after}
        (self.dir / "provenance.json").write_text(json.dumps(record, indent=2))
        if shape.search is None:
            return
        shape.search.stop(stopped)
        verdict = shape.search.verdict
        verdict_sar = slice_moments(self.sadc.path, verdict.moments, self.dir) if self.sadc and verdict.moments else {}
        document = {**verdict.as_dict(), "settings": shape.search.settings.__dict__, "sar": verdict_sar}
        if self.watch:
            # The levels each answer's edge lies between: the verdict's own.
            roles = {name: getattr(verdict, f"{name}_level", None) for edge in EDGES for name in edge}
            document["server_speed"] = by_level(self.watch.path, verdict.levels, shape.server_cpus, roles)
            if line := describe_watch(document["server_speed"]):
                logger.info("server CPUs' speed: %s", line)
            if edges := slow_edges(document["server_speed"]):
                # Such a level may have failed for the machine, not the load: another search would disagree.
                logger.warning(
                    "a failing level ran on server CPUs %g%% or more slower than the passing level below it (%s): "
                    "rerun on a quieter machine before taking or comparing this verdict",
                    SLOW_PCT,
                    say_edges(edges),
                )
        (self.dir / "verdict.json").write_text(json.dumps(document, indent=2))
        logger.info(
            "verdict: %s users without error (%s); first failing %s: %s -> %s",
            verdict.max_users_without_error,
            verdict.status,
            verdict.first_failing_users,
            verdict.failure_reason or "-",
            self.dir / "verdict.json",
        )


@events.test_start.add_listener
def start_record(environment, **kwargs):
    if isinstance(environment.runner, WorkerRunner) or not isinstance(environment.shape_class, HoneInShape):
        return
    # One record per test. Locust runs each start() in a new greenlet and kills the one before, so while a slow
    # test_start listener waits, the next tick's start() fires test_start again (a listener that waited for idle
    # CPUs here left one sadc per second running).
    if getattr(environment, "hone_in_record", None) is None:
        record = environment.hone_in_record = RunRecord(environment)
        # Started in a greenlet of its own, which Locust does not kill: a start cut short at one of its waits
        # would leave the recordings it had started running with no record to stop them.
        gevent.spawn(record.start).join()


@events.test_stop.add_listener
def close_record(environment, **kwargs):
    record = getattr(environment, "hone_in_record", None)
    if record is not None:
        environment.hone_in_record = None
        record.close()
