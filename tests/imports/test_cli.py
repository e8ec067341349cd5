"""``rollcall import`` and ``rollcall export`` from the command line."""

from __future__ import annotations

import json

import pytest

from server.imports.school_csv import COLUMNS
from tests.imports.packages import district, package


@pytest.fixture
def rollcall(rollcall):
    """The shared ``rollcall`` runner, with the connection the imports go to."""
    rollcall("connection", "add", "SIS", "--kind", "oneroster")
    return rollcall


def test_import_trial_run_then_apply_with_json_reports(rollcall, tmp_path):
    path = package(tmp_path / "sis.zip", "1.2", district("1.2"))
    code, out, _ = rollcall("import", str(path), "--connection", "SIS", "--dry-run", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["status"] == "valid" and report["outcomes"] == {"created": 13}
    assert report["row_results"][0]["file"] == "orgs.csv"
    code, out, _ = rollcall("import", str(path), "--connection", "SIS")
    assert code == 0 and "Applied: 13 created" in out
    code, out, _ = rollcall("import", str(path), "--connection", "SIS")
    assert code == 0 and "Applied: 13 unchanged" in out
    code, out, _ = rollcall("import-report", "--json")
    runs = json.loads(out)
    assert [run["status"] for run in runs] == ["applied", "applied", "valid"]
    code, out, _ = rollcall("import-report", runs[-1]["id"], "--json", "--limit", "3")
    assert code == 0 and len(json.loads(out)["row_results"]) == 3
    code, out, _ = rollcall("import-report", runs[-1]["id"])
    assert code == 0 and "orgs.csv" in out


def test_import_with_errors_exits_1_and_bad_invocations_exit_2(rollcall, tmp_path):
    files = district()
    files["users.csv"][1]["role"] = "wizard"
    path = package(tmp_path / "bad.zip", "1.1", files)
    code, out, _ = rollcall("import", str(path), "--connection", "SIS")
    assert code == 1 and "R102" in out and "Refused" in out
    # the summary (shown in the staff app too) names no option; the terminal gets the hint
    assert "Run again with --skip-invalid" in out
    code, _, err = rollcall("import", str(tmp_path / "nope.zip"), "--connection", "SIS")
    assert code == 2 and "No such file" in err
    code, _, err = rollcall("import", str(path))
    assert code == 2
    code, _, err = rollcall("import", str(path), "--connection", "SIS", "--school", "nope")
    assert code == 2 and "No school" in err
    code, _, _ = rollcall("import", str(path), "--connection", "SIS", "--mode", "sideways")
    assert code == 2


def test_template_and_export(rollcall, tmp_path):
    code, out, _ = rollcall("import", "--template")
    assert code == 0 and out.splitlines()[0] == ",".join(COLUMNS)
    rollcall("import", str(package(tmp_path / "sis.zip", "1.1", district())), "--connection", "SIS")
    target = tmp_path / "export.zip"
    code, out, _ = rollcall("export", "--format", "oneroster-1.1", "--out", str(target), "--json")
    assert code == 0 and json.loads(out)["users"] == 4 and target.exists()
    school = tmp_path / "school.csv"
    code, out, _ = rollcall(
        "export", "--format", "school-csv", "--out", str(school), "--school", "s1"
    )
    assert code == 0 and school.read_text(encoding="utf-8-sig").count("\n") == 4


def test_rollcall_import_reads_within_the_configured_limits(rollcall, tmp_path, monkeypatch):
    path = package(tmp_path / "sis.zip", "1.1", district())
    monkeypatch.setenv("ROLLCALL_IMPORT_MAX_ROWS", "2")
    code, out, _ = rollcall("import", str(path), "--connection", "SIS", "--dry-run", "--json")
    report = json.loads(out)
    assert code == 1 and report["status"] == "failed"
    assert report["file_errors"][0]["code"] == "F017"
    assert "ROLLCALL_IMPORT_MAX_ROWS" in report["file_errors"][0]["message"]
    monkeypatch.setenv("ROLLCALL_IMPORT_MAX_UPLOAD_BYTES", "100")
    code, out, _ = rollcall("import", str(path), "--connection", "SIS", "--json")
    assert code == 1 and json.loads(out)["file_errors"][0]["code"] == "F010"
