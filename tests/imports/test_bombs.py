"""Import bombs (issue 11, defect 1): every limit refuses its file with its own F-code, on
every import path, and no hostile file grows the server past 300 MB.

The hostile files are the shapes reported in the issue, built here (``tests/imports/bombs.py``).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace

import httpx
import pytest
from openpyxl import Workbook
from starlette.testclient import TestClient

from server.app import create_app
from server.districts import school
from server.domain.actors import system_actor
from server.domain.import_limits import ImportLimits
from tests.imports import bombs
from tests.imports.conftest import bearer
from tests.imports.packages import district, package
from tests.live import rollcall_serve

MIB = 1024 * 1024
SCHOOL_HEADER = "Student Full Name,Username,Year Group,Class,Gender\r\n"


@pytest.fixture
def limited_client(settings, tenancy):
    """An app whose limits are small enough for files of a few kilobytes to break them."""

    def start(**limits: int) -> TestClient:
        tight = replace(settings, import_limits=ImportLimits(**limits))
        return TestClient(create_app(tight, database=tenancy.database))

    return start


def push(client: TestClient, tenancy, body: bytes) -> httpx.Response:
    return client.post(
        "/oneroster/csv?dry_run=true", content=body, headers=bearer(tenancy.tokens["SIS"])
    )


def upload(client: TestClient, token: str, name: str, body: bytes) -> httpx.Response:
    return client.post(
        "/admin/api/imports",
        data={"dry_run": "true", "connection": "SIS"},
        files={"file": (name, body, "application/octet-stream")},
        headers=bearer(token),
    )


def file_error(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.json()["status"] == "failed"
    return response.json()["file_errors"][0]["code"]


def test_a_push_larger_than_the_upload_limit_is_413_f010(limited_client, tenancy, admin_token):
    with limited_client(upload_bytes=1000) as client:
        response = push(client, tenancy, b"x" * 5000)
        assert response.status_code == 413
        assert response.json()["code"] == "F010"
        assert "ROLLCALL_IMPORT_MAX_UPLOAD_BYTES" in response.json()["error"]
        form = upload(client, admin_token, "big.csv", b"x" * 5000)
        assert form.status_code == 413 and form.json()["code"] == "F010"


def test_a_chunked_push_without_a_length_is_stopped_while_streaming(limited_client, tenancy):
    def chunks():
        for _ in range(100):
            yield b"y" * 1000

    with limited_client(upload_bytes=10_000) as client:
        response = client.post(
            "/oneroster/csv", content=chunks(), headers=bearer(tenancy.tokens["SIS"])
        )
    assert response.status_code == 413 and response.json()["code"] == "F010"


def test_zip_limits_refuse_from_the_directory_before_decompressing(
    limited_client, tenancy, admin_token, tmp_path
):
    many = bombs.many_files_package(tmp_path / "many.zip", 50).read_bytes()
    zeros = bombs.zeros_package(tmp_path / "zeros.zip", 3 * MIB).read_bytes()
    good = package(tmp_path / "good.zip", "1.1", district()).read_bytes()
    with limited_client(files=20) as client:
        assert file_error(push(client, tenancy, many)) == "F013"
    with limited_client(ratio=100) as client:
        assert file_error(push(client, tenancy, zeros)) == "F014"
    with limited_client(file_bytes=2 * MIB, ratio=10_000) as client:
        assert file_error(push(client, tenancy, zeros)) == "F012"
    styles = bombs.styles_workbook(tmp_path / "styles.xlsx", 3 * MIB).read_bytes()
    with limited_client(ratio=10_000) as client:
        assert file_error(upload(client, admin_token, "styles.xlsx", styles)) == "F012"
    with limited_client(total_bytes=1000) as client:
        assert file_error(push(client, tenancy, good)) == "F011"


def test_a_zip_that_lies_about_its_sizes_is_unreadable_not_a_server_error(
    client_with_defaults, tenancy, admin_token, tmp_path
):
    # Found by hand (issue 11 re-check): a member holding more than its headers declare
    # passes the directory checks, then zipfile's CRC check raised BadZipFile: a 500.
    files = district(students=300)
    honest = package(tmp_path / "honest.zip", "1.1", files).read_bytes()
    lying = bombs.lying_sizes(honest, "users.csv", 100)
    response = push(client_with_defaults, tenancy, lying)
    assert file_error(response) == "F001"
    assert "users.csv" in response.json()["file_errors"][0]["message"]
    form = upload(client_with_defaults, admin_token, "lying.zip", lying)
    assert file_error(form) == "F001"
    sheet = io.BytesIO()
    book = Workbook()
    book.active.append(["Student Full Name", "Username", "Year Group", "Class", "Gender"])
    for number in range(300):
        book.active.append([f"Ann Lee{number}", "", "7", "7A", "F"])
    book.save(sheet)
    lying_sheet = bombs.lying_sizes(sheet.getvalue(), "xl/worksheets/sheet1.xml", 100)
    assert (
        file_error(upload(client_with_defaults, admin_token, "lying.xlsx", lying_sheet)) == "F001"
    )
    assert tenancy.count() == 0


def test_default_limits_refuse_the_reported_comma_line_bomb_by_its_ratio(
    client_with_defaults, tenancy, tmp_path
):
    body = bombs.comma_line_package(tmp_path / "commas.zip", 600 * MIB).read_bytes()
    assert len(body) < MIB
    response = push(client_with_defaults, tenancy, body)
    assert file_error(response) == "F014"
    assert "users.csv" in response.json()["file_errors"][0]["message"]


@pytest.fixture
def client_with_defaults(settings, tenancy):
    with TestClient(create_app(settings, database=tenancy.database)) as client:
        yield client


def test_a_long_line_too_many_cells_and_too_many_rows_are_refused_while_reading(
    limited_client, tenancy, tmp_path
):
    commas = bombs.comma_line_package(tmp_path / "commas.zip", 5000).read_bytes()
    with limited_client(line_chars=1000) as client:
        assert file_error(push(client, tenancy, commas)) == "F015"
    with limited_client(cells=100) as client:
        assert file_error(push(client, tenancy, commas)) == "F016"
    files = district(students=30)
    rows = package(tmp_path / "rows.zip", "1.1", files).read_bytes()
    with limited_client(rows=20) as client:
        response = push(client, tenancy, rows)
        assert file_error(response) == "F017"
        assert tenancy.count() == 0


def test_an_xlsx_row_with_too_many_cells_or_rows_is_refused(
    limited_client, tenancy, admin_token, tmp_path
):
    wide = bombs.wide_row_workbook(tmp_path / "wide.xlsx", 5000).read_bytes()
    with limited_client(cells=1000) as client:
        assert file_error(upload(client, admin_token, "wide.xlsx", wide)) == "F016"
    book = Workbook()
    book.active.append(["Student Full Name", "Username", "Year Group", "Class", "Gender"])
    for number in range(30):
        book.active.append([f"Ann Lee{number}", "", "7", "7A", "F"])
    out = io.BytesIO()
    book.save(out)
    with limited_client(rows=20) as client:
        assert file_error(upload(client, admin_token, "long.xlsx", out.getvalue())) == "F017"


def test_a_spreadsheet_with_an_xml_entity_is_refused_as_unreadable(
    client_with_defaults, tenancy, admin_token, tmp_path
):
    path = tmp_path / "entity.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in bombs.WORKBOOK_PARTS.items():
            archive.writestr(name, text)
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">]>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            "<sheetData><row><c><v>&a;</v></c></row></sheetData></worksheet>",
        )
    response = upload(client_with_defaults, admin_token, "entity.xlsx", path.read_bytes())
    assert file_error(response) == "F001"


def test_an_empty_line_is_reported_not_silently_skipped(client_with_defaults, tenancy, tmp_path):
    files = district()
    path = package(tmp_path / "p.zip", "1.1", files)
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents["users.csv"] = contents["users.csv"].replace(b"\r\n", b"\r\n\r\n", 2)
    contents["orgs.csv"] += b",,,,,,\r\n"
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(rebuilt, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    response = push(client_with_defaults, tenancy, rebuilt.getvalue())
    assert response.status_code == 200, response.text
    skipped = [r for r in response.json()["row_results"] if r["code"] == "W210"]
    assert {(r["file"], r["row"]) for r in skipped} == {
        ("users.csv", 2),
        ("users.csv", 4),
        ("orgs.csv", 4),
    }
    assert all(r["outcome"] == "skipped" and "empty" in r["message"] for r in skipped)


def test_the_school_csv_reports_empty_lines_and_long_lines_too(tenancy, tmp_path):
    tenancy.run(package(tmp_path / "p.zip", "1.1", district()))  # the school s1
    path = tmp_path / "school.csv"
    path.write_text(SCHOOL_HEADER + "Ann Lee,,7,7A,F\r\n,,,,\r\n\r\nBen Ray,,7,7A,M\r\n")
    report = tenancy.run(path, connection="School upload", dry_run=True)
    assert report.status == "valid", report.summary
    assert [(r["row"], r["outcome"]) for r in report.rows() if r["code"] == "W210"] == [
        (3, "skipped"),
        (4, "skipped"),
    ]
    path.write_text(SCHOOL_HEADER + "Ann Lee,,7,7A,F\r\n" + "B" * 3000 + "\r\n")
    report = tenancy.run(
        path, connection="School upload", dry_run=True, limits=ImportLimits(line_chars=1000)
    )
    assert report.status == "failed" and report.file_errors[0]["code"] == "F015"


def test_rollcall_import_refuses_a_file_larger_than_the_upload_limit(tenancy, tmp_path):
    path = package(tmp_path / "p.zip", "1.1", district())
    report = tenancy.run(path, limits=ImportLimits(upload_bytes=100))
    assert report.status == "failed" and report.file_errors[0]["code"] == "F010"


@pytest.mark.timeout(600)
def test_the_reported_bombs_keep_a_live_server_under_300_mb(
    tenancy, admin_token, database_url, tmp_path
):
    """The issue's files against ``rollcall serve`` with the zip-directory checks relaxed, so
    the streaming checks (line length, cells per row) are what stop them."""
    commas = bombs.comma_line_package(tmp_path / "commas.zip", 600 * MIB)
    wide = bombs.wide_row_workbook(tmp_path / "wide.xlsx", 20_000_000)
    zeros = bombs.zeros_package(tmp_path / "zeros.zip", 200 * MIB)
    styles = bombs.styles_workbook(tmp_path / "styles.xlsx", 2 * MIB - 1000)  # just allowed
    with tenancy.database.session() as session:  # a school, so the sheet is read
        school(session, system_actor(tenancy.tenant_id))
    relaxed = {
        "ROLLCALL_IMPORT_MAX_RATIO": "100000000",
        "ROLLCALL_IMPORT_MAX_FILE_BYTES": str(4096 * MIB),
        "ROLLCALL_IMPORT_MAX_TOTAL_BYTES": str(4096 * MIB),
    }
    with (
        rollcall_serve(database_url, tmp_path, **relaxed) as server,
        httpx.Client(base_url=server.url, timeout=300) as http,
    ):
        sis = bearer(tenancy.tokens["SIS"])
        pushed = http.post("/oneroster/csv?dry_run=true", content=commas.read_bytes(), headers=sis)
        assert file_error(pushed) == "F015"
        zeroed = http.post("/oneroster/csv?dry_run=true", content=zeros.read_bytes(), headers=sis)
        assert file_error(zeroed) == "F015"  # 200 MB of zeros hold no line break
        raw_zeros = http.post("/oneroster/csv?dry_run=true", content=bytes(200 * MIB), headers=sis)
        assert file_error(raw_zeros) == "F001"
        with wide.open("rb") as handle:
            sheet = http.post(
                "/admin/api/imports",
                data={"dry_run": "true", "connection": "SIS"},
                files={"file": ("wide.xlsx", handle, "application/octet-stream")},
                headers=bearer(admin_token),
            )
        assert file_error(sheet) == "F016"
        sheet = http.post(
            "/admin/api/imports",
            data={"dry_run": "true", "connection": "SIS"},
            files={"file": ("styles.xlsx", styles.read_bytes(), "application/octet-stream")},
            headers=bearer(admin_token),
        )
        assert file_error(sheet) == "F002"  # read (openpyxl loaded the styles), no header
        assert http.get("/healthz").status_code == 200
        peak = server.peak_rss_mib()
        assert peak < 300, f"peak RSS {peak:.0f} MiB"
        print(f"peak RSS {peak:.0f} MiB")


def test_the_served_status_codes_name_every_limit(client_with_defaults):
    codes = client_with_defaults.get("/admin/import/codes.json").json()
    assert codes["F001"].startswith("file unreadable")
    for code in ("F010", "F011", "F012", "F013", "F014", "F015", "F016", "F017", "F018", "W210"):
        assert code in codes
    assert "limit" in codes["F015"]
