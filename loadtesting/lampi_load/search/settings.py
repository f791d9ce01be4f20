"""The knobs of one hone-in search, each defined once: its field, default and docstring here make its Locust
option (`--hone-<name>`, the docstring as help) and the mapping back from the parsed options.

A field whose default is None is off by default: its option takes 0 for off. `resolution_fraction` and
`usable_resolution_fraction` are given on the command line as percentages (`--hone-resolution-pct`,
`--hone-usable-resolution-pct`).
"""

import ast
import inspect
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class SearchSettings:
    """The knobs of one search."""

    spawn_rate: float = 10.0
    """Users started per second, in the probe's ramp and in each level's ramp."""
    ramp: float = 20.0
    """Seconds of each level's ramp: a level of N users starts from N - spawn_rate * ramp users (0 at the least)."""
    settle: float = 10.0
    """Seconds each level's base is held at the least, not judged, before its ramp; longer (up to 60 s more) while
    p95 still falls: the queues of a failing level draining."""
    hold: float = 20.0
    """Seconds each level is held at its user count, after its ramp; the ramp and the hold are judged."""
    resolution_users: int = 10
    """Stop when the gap between the best passing and the first failing level is this small."""
    resolution_fraction: float = field(default=0.05, metadata={"option": "resolution-pct", "scale": 100})
    """... or this percentage of the best passing level."""
    max_users: int = 10_000
    """Never run more users than this."""
    time_limit: float = 600.0
    """Seconds the whole search may take."""
    max_p95_ms: float | None = None
    """A level whose p95 exceeds this many ms fails too."""
    usable_p95_ms: float = 1000.0
    """Also report the largest passing level whose p95 stayed under this many ms, "usable" (0: off)."""
    usable_resolution_fraction: float = field(default=0.10, metadata={"option": "usable-resolution-pct", "scale": 100})
    """The usable search stops when its gap is this percentage of its best usable level (or resolution_users): p95
    near the bound is noisier than errors (two levels 5% apart read 3.9 s and 1.3 s, the lower one slower)."""
    generator_cpu_limit: float = 90.0
    """Generator CPU % above which a failing level is the generator's, not the server's."""
    expected_rps_per_user: float | None = None
    """Requests (MQTT: messages) per second each user should make; a level whose steady throughput falls under
    min_rps_fraction of it fails even without errors (MQTT's "abnormally low")."""
    min_rps_fraction: float = 0.8
    """Share of the expected throughput a level must reach, where throughput is judged."""
    min_expected_count: int = 400
    """Throughput is judged only where a hold expects this many requests times the dispersion (at 400 random
    arrivals the 20% margin is four standard deviations of the count, so noise alone practically never fails)."""
    expected_dispersion: float = 1.0
    """Variance over mean of a hold's request count: 1 for independent requests, more when they come in bursts
    (a LAMPI slider drag is 15-45 messages); fewer levels are then judged."""
    levels: str = ""
    """Test only these user counts (comma-separated, in this order, repeats allowed), each as the search tests a
    level, then stop: no probe, no search. How firm is a verdict's edge? Give its two levels a few times each
    (for example 102,112,102,112). Empty: search."""

    def __post_init__(self):
        """Refuses settings the search cannot run with, naming the option: ValueError("--hone-hold 0: ...")."""
        rules = {
            "spawn_rate": (self.spawn_rate > 0, "give users per second above 0"),
            "ramp": (self.ramp >= 0, "give seconds, 0 or more"),
            "settle": (self.settle >= 0, "give seconds, 0 or more"),
            "hold": (self.hold > 0, "give seconds above 0"),
            "resolution_users": (self.resolution_users >= 1, "give at least 1 user (bisection ends there)"),
            "resolution_fraction": (0 <= self.resolution_fraction < 1, "give a percentage from 0 to under 100"),
            "usable_resolution_fraction": (
                0 <= self.usable_resolution_fraction < 1,
                "give a percentage from 0 to under 100",
            ),
            "max_users": (self.max_users >= 1, "give at least 1 user"),
            "time_limit": (self.time_limit > 0, "give seconds above 0"),
            "generator_cpu_limit": (0 < self.generator_cpu_limit <= 100, "give a percentage above 0, at most 100"),
            "max_p95_ms": (self.max_p95_ms is None or self.max_p95_ms > 0, "give ms above 0, or 0 for off"),
            "usable_p95_ms": (self.usable_p95_ms is None or self.usable_p95_ms >= 0, "give ms above 0, or 0 for off"),
            "expected_rps_per_user": (
                self.expected_rps_per_user is None or self.expected_rps_per_user > 0,
                "give requests per second above 0, or 0 for off",
            ),
            "min_rps_fraction": (0 < self.min_rps_fraction <= 1, "give a share above 0, at most 1"),
            "min_expected_count": (self.min_expected_count >= 0, "give a count, 0 or more"),
            "expected_dispersion": (self.expected_dispersion > 0, "give a ratio above 0"),
            "levels": (self._levels_are_counts(), f"give user counts from 1 to --hone-max-users ({self.max_users})"),
        }
        for name, (good, advice) in rules.items():
            if not good:
                setting = next(setting for setting in fields(self) if setting.name == name)
                value = getattr(self, name)
                shown = value if isinstance(value, str) else f"{value * setting.metadata.get('scale', 1):g}"
                raise ValueError(f"--{option_name(setting)} {shown}: {advice}")

    def _levels_are_counts(self) -> bool:
        try:
            return all(1 <= users <= self.max_users for users in self.given_levels())
        except ValueError:
            return False

    def given_levels(self) -> list[int]:
        """`levels` as user counts, in order ([] when empty); ValueError for anything but whole numbers."""
        return [int(part) for part in self.levels.replace(" ", "").split(",")] if self.levels.strip() else []


def resolution(resolution_users: int, fraction: float, users: float) -> float:
    """The gap, in users, that ends a search at `users`: `fraction` of it, at least `resolution_users`. The search
    (`HoneInSearch`) and whatever reads a verdict afterwards (the repeatability benchmark) share this reading."""
    return max(resolution_users, fraction * users)


def recorded_fraction(settings: dict, answer: str = "max_users_without_error") -> float | None:
    """The resolution fraction a verdict's recorded `settings` (its `settings` dict) give `answer`'s search:
    "max_users_usable" has its own, `usable_resolution_fraction`, except in verdicts from before it had one, which
    used `resolution_fraction`; None when the verdict records neither."""
    fraction = settings.get("resolution_fraction")
    if answer == "max_users_usable":
        fraction = settings.get("usable_resolution_fraction", fraction)
    return fraction


def field_docs(cls) -> dict[str, str]:
    """The docstring under each field of a dataclass, by field name, as one line."""
    body = ast.parse(inspect.getsource(cls)).body[0].body
    docs = {}
    for statement, following in zip(body, body[1:], strict=False):
        if isinstance(statement, ast.AnnAssign) and isinstance(following, ast.Expr):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def option_name(setting) -> str:
    return "hone-" + setting.metadata.get("option", setting.name.replace("_", "-"))


def add_options(group) -> None:
    """Adds one `--hone-<name>` option per setting to an argparse group, its docstring as help."""
    docs = field_docs(SearchSettings)
    for setting in fields(SearchSettings):
        scale = setting.metadata.get("scale", 1)
        off = setting.default is None
        kind = float if off else type(setting.default)
        default = 0 if off else setting.default
        if isinstance(default, float):
            default = round(default * scale, 9)  # 0.9 * 100 is 90.00000000000001
        text = docs[setting.name] + (" (0: off)" if off else "")
        group.add_argument(f"--{option_name(setting)}", type=kind, default=default, help=text.replace("%", "%%"))


def from_options(options) -> SearchSettings:
    """The settings Locust's parsed options (or any namespace with the `hone_*` attributes) describe."""
    values = {}
    for setting in fields(SearchSettings):
        value = getattr(options, option_name(setting).replace("-", "_"))
        if "scale" in setting.metadata:
            value /= setting.metadata["scale"]
        values[setting.name] = (value or None) if setting.default is None else value
    return SearchSettings(**values)
