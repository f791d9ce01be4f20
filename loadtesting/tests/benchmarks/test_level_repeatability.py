"""The level-repeatability benchmark's own parts: its options and its table (the runs need a quiet machine)."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "level_repeatability.py"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--levels", "baseline=100,ten"], "--levels baseline=100,ten: give CONFIG=USERS,USERS,... (whole numbers)"),
        (["--levels", "baseline=0"], "--levels baseline=0: give CONFIG=USERS,USERS,... (at least 1 user each)"),
        (["--repeat", "0"], "--repeat 0: give 1 to 10 tests per level"),
    ],
)
def test_bad_options_are_one_line_before_any_stack_starts(args, line):
    result = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(line)


def test_the_table_counts_each_levels_passes_across_its_tests():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from level_repeatability import summary
    finally:
        sys.path.remove(str(SCRIPT.parent))

    def level(users, failures, p95):
        return {"users": users, "failures": failures, "passed": failures == 0, "p95_ms": p95, "rps": 10.0}

    verdict = {"levels": [level(100, 0, 900), level(110, 3, 1500), level(100, 0, 950), level(110, 0, 1200)]}
    rows = summary({"baseline": verdict})[2:]
    assert rows == [
        "| baseline | 100 | 2 of 2 | 0, 0 | 900, 950 | 10 |",
        "| baseline | 110 | 1 of 2 | 3, 0 | 1500, 1200 | 10 |",
    ]
