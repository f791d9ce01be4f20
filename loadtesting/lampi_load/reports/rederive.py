"""Re-derives committed verdicts from their own levels, then their reports and comparisons.

    python -m lampi_load.reports.rederive loadtesting/results
Verdicts written before the search named its failing figures from one level paired the lowest failing user count
with the first failing level's reason. This derives each verdict.json's figures again from its own `levels` (the
search's own `lampi_load.search.machine.verdict_figures`, with the run's usability bound) and rewrites them: the
largest passing level, the smallest failing level with its own reason and window, the usable maximum. The status
stays as recorded, except that a failing level run with the generator saturated makes it generator-bound, as the
search decides (a recorded generator-bound stays: the search may have seen saturation the levels no longer name);
the levels, the settings and the sar slices stay as recorded; where the failing moment moved, `sar_windows` says
which levels the slices cover (sa.bin is not committed, so they cannot be cut again). Then every report.md beside a
verdict and every comparison.md is written again. Re-running it changes nothing more.
"""

import argparse
import json
import re
import sys
from pathlib import Path

from lampi_load.reports import compare
from lampi_load.reports.render import render
from lampi_load.search.machine import generator_status, verdict_figures
from lampi_load.search.settings import SearchSettings


def rederive(verdict: dict) -> dict:
    """The verdict with its figures derived again from its levels; raises KeyError if a field is missing."""
    settings = verdict["settings"]
    bound = settings.get("usable_p95_ms", SearchSettings.usable_p95_ms)
    limit = settings.get("generator_cpu_limit", SearchSettings.generator_cpu_limit)
    figures = verdict_figures(verdict["levels"], bound, limit)
    moments = {name: window for name, window in verdict["moments"].items() if name == "minimal"}
    moments.update(figures.pop("moments"))
    updated = {**verdict, **figures, "moments": moments}
    # A recorded generator-bound stays: the search may have seen saturation the levels no longer name.
    updated["generator_bound"] = figures["generator_bound"] or verdict["status"] == "generator-bound"
    updated["status"] = generator_status(verdict["status"], figures["failing_level"], limit)
    # The slices were cut at the moments recorded then; say so wherever they differ from the new ones.
    moved = {
        moment: verdict["moments"][moment]
        for moment in verdict.get("sar") or {}
        if verdict["moments"].get(moment) != moments.get(moment)
    }
    if moved and "sar_windows" not in verdict:
        updated["sar_windows"] = moved
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
        if updated == verdict:
            continue
        path.write_text(json.dumps(updated, indent=2))
        if (path.parent / "sys.jsonl").exists():
            from lampi_load.runs.mqtt import write_report  # an MQTT search's report: the broker's sections too

            write_report(path.parent)
        elif (path.parent / "report.md").exists():
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
