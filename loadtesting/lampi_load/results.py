"""Where runs write: one folder per run under a git-ignored root, so a run leaves `git status` clean.

The root is `$LAMPI_RESULTS_DIR` when set, else loadtesting/output/ (ignored). A run that a results file cites
is copied into loadtesting/results/ and committed there, without sysstat's binary `sa.bin` (ignored; the text
slices `sar-<moment>.txt` beside it are what the reports read).
"""

import os
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "output"


def results_root() -> Path:
    """The folder new runs go to: `$LAMPI_RESULTS_DIR`, else loadtesting/output/; absolute."""
    return Path(os.environ.get("LAMPI_RESULTS_DIR") or DEFAULT_ROOT).resolve()


def new_run_dir(name: str, root: Path | None = None) -> Path:
    """Creates and returns `<root>/<UTC yyyymmdd-hhmmss>-<name>` (absolute: Locust runs from elsewhere)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = (root or results_root()).resolve() / f"{stamp}-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
