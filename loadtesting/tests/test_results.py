"""Runs write where git does not look, unless told otherwise."""

import subprocess
from pathlib import Path

from lampi_load.results import DEFAULT_ROOT, new_run_dir, results_root


def ignored_by_git(path: Path) -> bool:
    """Whether git ignores `path` (which need not exist); fails with one line outside a git checkout."""
    check = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=DEFAULT_ROOT.parent, timeout=30)
    assert check.returncode in (0, 1), "not a git checkout: these tests read the repository's .gitignore"
    return check.returncode == 0


def test_runs_go_to_a_git_ignored_folder_by_default(monkeypatch):
    monkeypatch.delenv("LAMPI_RESULTS_DIR", raising=False)
    assert results_root() == DEFAULT_ROOT
    probe = DEFAULT_ROOT / "20990101-000000-http" / "verdict.json"
    assert ignored_by_git(probe), f"{probe} is not ignored by git"


def test_sysstat_recordings_are_ignored_even_inside_committed_results():
    results = DEFAULT_ROOT.parent / "results" / "20990101-000000-http"
    assert ignored_by_git(results / "sa.bin")
    assert not ignored_by_git(results / "sar-minimal.txt")


def test_the_environment_chooses_the_root_and_each_run_gets_a_stamped_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMPI_RESULTS_DIR", str(tmp_path))
    folder = new_run_dir("demo-http")
    assert folder.parent == tmp_path
    assert folder.is_dir()
    assert folder.name.endswith("-demo-http")
    assert len(folder.name) == len("20261124-132925-demo-http")
