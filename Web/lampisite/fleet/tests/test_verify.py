"""`manage.py fleet-verify` refuses what is not a buoy fleet manifest with one actionable line."""

import json

import pytest
from django.core.management import CommandError, call_command


def test_a_missing_manifest_is_one_line(tmp_path):
    with pytest.raises(CommandError, match="cannot read the manifest"):
        call_command("fleet-verify", str(tmp_path / "manifest.json"))


def test_a_json_file_that_is_no_manifest_says_where_manifests_come_from(tmp_path):
    other = tmp_path / "verdict.json"
    other.write_text(json.dumps({"status": "converged"}))
    with pytest.raises(CommandError, match="not a buoy fleet manifest .* lampi_load.buoys"):
        call_command("fleet-verify", str(other))
