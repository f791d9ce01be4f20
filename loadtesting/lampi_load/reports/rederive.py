"""Re-derives committed verdicts from their own levels, then their reports and comparisons.

    python -m lampi_load.reports.rederive loadtesting/results
Verdicts written before the search named its failing figures from one level paired the lowest failing user count
with the first failing level's reason. This replays each verdict.json's `levels` through the search's decisions
(`HoneInSearch.replay`, with the run's own settings) and rewrites the derived fields: the largest passing level,
the smallest failing level with its own reason and window, the usable maximum. The levels, the settings and the
sar slices stay as recorded; where the failing moment moved, `sar_windows` says which levels the slices cover
(sa.bin is not committed, so they cannot be cut again). Then every report.md beside a verdict and every
comparison.md is written again. Re-running it changes nothing more.
"""

import argparse
import json
import re
import sys
from dataclasses import fields
from pathlib import Path

from lampi_load.reports import compare
from lampi_load.reports.render import render
from lampi_load.search.machine import HoneInSearch
from lampi_load.search.settings import SearchSettings

DERIVED = [
    "max_users_without_error",
    "first_failing_users",
    "failure_reason",
    "generator_bound",
    "max_level",
    "failing_level",
    "usable_p95_ms",
    "max_users_usable",
    "usable_level",
]


def rederive(verdict: dict) -> dict:
    """The verdict with its derived fields replayed from its levels; raises ValueError if the replay disagrees
    with the recorded status."""
    known = {setting.name for setting in fields(SearchSettings)}
    settings = SearchSettings(**{name: value for name, value in verdict["settings"].items() if name in known})
    replayed = HoneInSearch.replay(settings, verdict["levels"], verdict["status"]).as_dict()
    if replayed["status"] != verdict["status"]:
        raise ValueError(f"the levels end the search as {replayed['status']!r}, recorded {verdict['status']!r}")
    updated = {**verdict, **{key: replayed[key] for key in DERIVED}}
    if verdict.get("sar") and "sar_windows" not in verdict:
        # The slices were cut at the moments recorded then; say so wherever they differ from the new ones.
        updated["sar_windows"] = {moment: verdict["moments"][moment] for moment in verdict["sar"]}
    updated["moments"] = replayed["moments"]
    return updated


def comparison_runs(comparison: Path, root: Path) -> dict[str, Path]:
    """The runs a comparison.md lists (`- name: `folder``, as written on another checkout or relative to another
    folder), found under `root` by the longest tail of their path that holds a verdict.json there."""
    runs = {}
    for name, folder in re.findall(r"^- (.+?): `(.+)`$", comparison.read_text(), flags=re.MULTILINE):
        parts = Path(folder).parts
        tails = [Path(*parts[i:]) for i in range(len(parts))]
        found = [
            base / tail
            for tail in tails
            for base in (root, comparison.parent)
            if (base / tail / "verdict.json").is_file()
        ]
        if not found:
            raise FileNotFoundError(f"{comparison}: no run folder for {folder!r} under {root}")
        runs[name] = found[0]
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a results folder: every verdict.json below it is re-derived")
    args = parser.parse_args(argv)
    verdict_files = sorted(args.root.rglob("verdict.json"))
    if not verdict_files:
        parser.error(f"no verdict.json under {args.root}")
    for path in verdict_files:
        verdict = json.loads(path.read_text())
        try:
            updated = rederive(verdict)
        except (KeyError, ValueError) as error:
            print(f"rederive: error: {path}: {error}", file=sys.stderr)
            return 1
        path.write_text(json.dumps(updated, indent=2))
        if (path.parent / "report.md").exists():
            render(path.parent)
        print(f"{path}: {updated['max_users_without_error']} without error; failing {updated['first_failing_users']}")
    for comparison in sorted(args.root.rglob("comparison.md")):
        try:
            runs = comparison_runs(comparison, args.root)
        except FileNotFoundError as error:
            print(f"rederive: error: {error}", file=sys.stderr)
            return 1
        compare.main(["--out", str(comparison.parent), *(f"{name}={folder}" for name, folder in runs.items())])
    return 0


if __name__ == "__main__":
    sys.exit(main())
