"""Imports from the admin UI: upload, trial run with status codes, apply exactly that file."""

from __future__ import annotations

import base64
import html
import re
import time
from dataclasses import replace

from server.app import create_app
from server.web.imports_page import MAX_FORM_BODY
from tests.imports.packages import package
from tests.web.conftest import csrf_of, sign_in

FIELDS = r'name="(content|choice|signature|csrf_token)" value="([^"]*)"'


def oneroster_zip(tmp_path) -> bytes:
    """A OneRoster 1.1 delta: a new student, and a new record reusing Bart's username (R104)."""
    common = {
        "status": "active",
        "dateLastModified": "2026-11-01T00:00:00Z",
        "enabledUser": "true",
        "orgSourcedIds": "lincoln",
        "role": "student",
    }
    users = [
        {
            **common,
            "sourcedId": "sis-ralph",
            "username": "ralph.w",
            "givenName": "Ralph",
            "familyName": "Wiggum",
            "grades": "02",
        },
        {
            **common,
            "sourcedId": "sis-twin",
            "username": "BARTSIMPSON",
            "givenName": "Bart",
            "familyName": "Twin",
            "grades": "04",
        },
    ]
    return package(tmp_path / "delta.zip", "1.1", {"users.csv": users}, mode="delta").read_bytes()


def trial(client, content: bytes):
    form = client.get("/admin/import").text
    return client.post(
        "/admin/import",
        data={"csrf_token": csrf_of(form), "connection": "Manual"},
        files={"file": ("delta.zip", content, "application/zip")},
    )


def test_trial_run_shows_an_r104_row_and_writes_nothing(app, district, tmp_path):
    client = sign_in(app, "skinner", district.admin_password)
    shown = trial(client, oneroster_zip(tmp_path)).text
    assert "Trial run" in shown and "R104" in shown and "already used" in shown
    assert "Ralph" not in client.get("/admin/users", params={"q": "wiggum"}).text
    apply_form = re.search(
        r'<form method="post" action="/admin/import/apply".*?</form>', shown, re.S
    )
    assert apply_form and "Skip the rows with errors" in apply_form.group(0)
    only_r104 = client.get(f"/admin/import/{_run_id(client)}", params={"code": "R104"}).text
    assert "sis-twin" in only_r104 and "sis-ralph" not in only_r104


def _run_id(client) -> str:
    return re.search(
        r'href="/admin/import/([0-9a-f-]{36})"', client.get("/admin/import").text
    ).group(1)


def test_apply_skipping_invalid_rows_creates_the_valid_ones(app, district, tmp_path):
    client = sign_in(app, "skinner", district.admin_password)
    fields = dict(re.findall(FIELDS, trial(client, oneroster_zip(tmp_path)).text))
    fields["choice"] = html.unescape(fields["choice"])
    refused = client.post("/admin/import/apply", data=fields)
    assert refused.status_code == 422
    assert "Ralph" not in client.get("/admin/users", params={"q": "wiggum"}).text
    applied = client.post("/admin/import/apply", data={**fields, "skip_invalid": "1"})
    assert applied.status_code == 200, applied.text
    assert "Ralph" in client.get("/admin/users", params={"q": "wiggum"}).text


def test_a_changed_file_cannot_be_applied_with_an_old_signature(app, district, tmp_path):
    client = sign_in(app, "skinner", district.admin_password)
    fields = dict(re.findall(FIELDS, trial(client, oneroster_zip(tmp_path)).text))
    fields["choice"] = html.unescape(fields["choice"])
    fields["content"] = base64.b64encode(
        b"Student Full Name,Username,Year Group,Class,Gender\nEvil Twin,,2,Maths 4B,M\n"
    ).decode()
    response = client.post("/admin/import/apply", data=fields)
    assert response.status_code == 400 and "damaged or was changed" in response.text


def test_an_unreadable_file_is_f001_and_teachers_cannot_import(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    shown = trial(client, b"\x00\x01 not a zip or a csv")
    assert shown.status_code == 422 and "F001" in shown.text
    teacher = sign_in(app, "edna", district.teacher_password)
    assert teacher.get("/admin/import").status_code == 403


def test_export_for_upload_holds_issued_passwords_only(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    form = client.get("/admin/import").text
    school = re.search(r'<option value="([0-9a-f-]{36})">Lincoln</option>', form).group(1)
    response = client.post(
        "/admin/export",
        data={"csrf_token": csrf_of(form), "format": "school-csv", "school": school},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("Student Full Name,Username,Year Group,Class,Gender")
    bart = next(line for line in lines if "bartsimpson" in line)
    assert district.temporary in bart
    xlsx = client.post(
        "/admin/export", data={"csrf_token": csrf_of(form), "format": "xlsx", "school": school}
    )
    assert xlsx.content[:2] == b"PK"
    audit = client.get("/admin/audit", params={"action": "credential.reveal"}).text
    assert "bartsimpson" in audit


def test_school_admins_see_their_own_import_runs_only(app, district, tmp_path):
    admin = sign_in(app, "skinner", district.admin_password)
    trial(admin, oneroster_zip(tmp_path))
    run_id = _run_id(admin)
    school_admin = sign_in(app, "chalmers", district.school_admin_password)
    assert "No imports yet." in school_admin.get("/admin/import").text
    assert school_admin.get(f"/admin/import/{run_id}").status_code == 404


def test_an_upload_that_outlasts_the_wait_goes_to_its_run_page(
    settings, database, district, tmp_path
):
    """Issue 13: the page's imports run in the background too; a long one is shown by its
    stored run (status running, then its report) instead of holding the request."""
    impatient = create_app(replace(settings, import_wait_seconds=0), database=database)
    client = sign_in(impatient, "skinner", district.admin_password)
    form = client.get("/admin/import").text
    response = client.post(
        "/admin/import",
        data={"csrf_token": csrf_of(form), "connection": "Manual"},
        files={"file": ("delta.zip", oneroster_zip(tmp_path), "application/zip")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    run_page = response.headers["location"]
    assert re.fullmatch(r"/admin/import/[0-9a-f-]{36}", run_page)
    for _ in range(600):
        shown = client.get(run_page)
        assert shown.status_code == 200
        if "R104" in shown.text:
            break
        time.sleep(0.1)
    assert "R104" in shown.text and "already used" in shown.text


def test_an_upload_over_the_pages_limit_is_refused_while_it_streams(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    form = client.get("/admin/import").text
    big = b"x" * (MAX_FORM_BODY + 1)
    response = client.post(
        "/admin/import",
        data={"csrf_token": csrf_of(form), "connection": "Manual"},
        files={"file": ("big.csv", big, "text/csv")},
    )
    assert response.status_code == 413 and "F010" in response.text

    def chunks():
        for _ in range(MAX_FORM_BODY // 65536 + 2):
            yield b"y" * 65536

    streamed = client.post(
        "/admin/import",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=zzz"},
    )
    assert streamed.status_code == 413 and "ask IT to import it" in streamed.text
