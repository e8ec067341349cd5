"""Imports and exports over HTTP: connection pushes, the template, the admin JSON API."""

from __future__ import annotations

import io
import zipfile

from server.domain import staff
from server.domain.actors import system_actor
from server.imports.school_csv import COLUMNS
from server.web.bodies import check_body
from tests.imports.conftest import bearer
from tests.imports.packages import district, package


def test_a_connection_pushes_a_zip_trial_run_first_then_applies(client, tenancy, tmp_path):
    body = package(tmp_path / "sis.zip", "1.1", district()).read_bytes()
    token = tenancy.tokens["SIS"]
    trial = client.post("/oneroster/csv?dry_run=true", content=body, headers=bearer(token))
    assert trial.status_code == 200
    assert trial.json()["status"] == "valid" and trial.json()["outcomes"] == {"created": 13}
    applied = client.post("/oneroster/csv", content=body, headers=bearer(token))
    assert applied.status_code == 200 and applied.json()["status"] == "applied"
    assert tenancy.count() == 4


def test_a_push_without_a_token_or_with_bad_input_never_500s(client, tenancy, tmp_path):
    assert client.post("/oneroster/csv", content=b"x").status_code == 401
    token = tenancy.tokens["SIS"]
    broken = client.post("/oneroster/csv", content=b"not a zip", headers=bearer(token))
    assert broken.status_code == 422 and broken.json()["file_errors"][0]["code"] == "F001"
    bad = client.post("/oneroster/csv?dry_run=maybe", content=b"", headers=bearer(token))
    assert bad.status_code == 400
    files = district()
    files["users.csv"][1]["role"] = "wizard"
    refused = client.post(
        "/oneroster/csv",
        content=package(tmp_path / "bad.zip", "1.1", files).read_bytes(),
        headers=bearer(token),
    )
    assert refused.status_code == 422 and refused.json()["codes"] == {"R102": 1, "R108": 1}


def test_the_template_downloads(client):
    response = client.get("/admin/import/template.csv")
    assert response.status_code == 200
    assert response.text.splitlines()[0] == ",".join(COLUMNS)


def test_staff_upload_a_file_read_the_stored_run_and_export(client, tenancy, tmp_path, admin_token):
    path = package(tmp_path / "sis.zip", "1.2", district("1.2"))
    with path.open("rb") as handle:
        response = client.post(
            "/admin/api/imports",
            data={"dry_run": "true", "connection": "SIS"},
            files={"file": ("sis.zip", handle, "application/zip")},
            headers=bearer(admin_token),
        )
    assert response.status_code == 200, response.text
    run_id = response.json()["id"]
    listed = client.get("/admin/api/imports", headers=bearer(admin_token)).json()
    assert [run["id"] for run in listed] == [run_id]
    stored = client.get(f"/admin/api/imports/{run_id}?limit=2", headers=bearer(admin_token))
    assert stored.json()["status"] == "valid" and len(stored.json()["row_results"]) == 2
    assert client.get("/admin/api/imports/nope", headers=bearer(admin_token)).status_code == 404
    assert client.get("/admin/api/imports").status_code == 401

    with path.open("rb") as handle:
        client.post(
            "/admin/api/imports",
            data={"connection": "SIS"},
            files={"file": ("sis.zip", handle, "application/zip")},
            headers=bearer(admin_token),
        )
    exported = client.get("/admin/api/exports?format=oneroster-1.2", headers=bearer(admin_token))
    assert exported.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(exported.content)).namelist()
    assert {"manifest.csv", "users.csv", "roles.csv"} <= set(names)
    school = client.get(
        "/admin/api/exports?format=school-csv&school=s1", headers=bearer(admin_token)
    )
    assert school.status_code == 200 and school.text.count("\n") == 4


def test_teachers_cannot_import(client, tenancy, tmp_path):
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        from server.domain import roster

        roster.create_org(session, actor, {"name": "Oak", "type": "school", "sourced_id": "oak"})
        made = staff.create_staff(
            session, actor, "teach", "teacher", password=None, school_sourced_ids=["oak"]
        )
        token = staff.create_staff_token(session, made.staff, "api")
    response = client.post(
        "/admin/api/imports",
        files={"file": ("s.csv", b"Student Full Name\n", "text/csv")},
        headers=bearer(token),
    )
    assert response.status_code == 403


def test_staff_read_the_status_codes_including_the_lenient_repair_warning(client, admin_token):
    assert client.get("/admin/api/imports/status-codes").status_code == 401
    answer = client.get("/admin/api/imports/status-codes", headers=bearer(admin_token))
    codes = {item["code"]: item["meaning"] for item in answer.json()["codes"]}
    assert {"F001", "R101", "R108", "W201", "W202", "W203"} <= set(codes)
    assert "lenient" in codes["W203"] and "--strict" in codes["W203"]


def test_an_api_upload_is_audited_as_the_staff_member_via_the_connection(
    client, tenancy, tmp_path, admin_token
):
    """Issue 12, point 9: the person who sent the file, not only the connection."""
    from sqlalchemy import select

    from server.db import AuditEvent

    path = package(tmp_path / "sis.zip", "1.2", district("1.2"))
    with path.open("rb") as handle:
        response = client.post(
            "/admin/api/imports",
            data={"connection": "SIS"},
            files={"file": ("sis.zip", handle, "application/zip")},
            headers=bearer(admin_token),
        )
    assert response.status_code == 200, response.text
    exported = client.get("/admin/api/exports?format=oneroster-1.2", headers=bearer(admin_token))
    assert exported.status_code == 200
    with tenancy.database.session() as session:
        events = session.scalars(select(AuditEvent)).all()
    applied = [e for e in events if e.action == "import.apply"]
    assert [(e.actor_kind, e.actor_name, e.via) for e in applied] == [("staff", "boss", "SIS")]
    created = [e for e in events if e.action == "user.create"]
    assert created and {e.actor_name for e in created} == {"boss"}
    [read] = [e for e in events if e.action == "read.export"]
    assert read.actor_name == "boss" and read.changes["format"] == [None, "oneroster-1.2"]


def test_import_and_export_refusals_answer_in_the_admin_apis_one_error_shape(client, admin_token):
    """The imports and exports endpoints share /admin/api with the rest of the admin API and
    answer its one error body, at the error's own status (issue 16 item 3): an unknown
    connection is 404 like any unknown record, not 400."""
    csv_file = {"file": ("students.csv", b"Student Full Name\n", "text/csv")}
    refusals = {
        404: client.post(
            "/admin/api/imports",
            data={"connection": "Nope"},
            files=csv_file,
            headers=bearer(admin_token),
        ),
        400: client.get("/admin/api/exports?format=pdf", headers=bearer(admin_token)),
        401: client.get("/admin/api/imports"),
    }
    for status, response in refusals.items():
        assert response.status_code == status, response.text
        check_body(response.json(), "Error")  # the documented shape, or InvalidValue
    assert refusals[404].json() == {
        "error": "NotFound",
        "detail": "No connection named 'Nope'.",
        "code": "R108",
        "field": None,
    }
    assert refusals[400].json()["error"] == "InvalidValue"
    assert refusals[400].json()["field"] == "format"
    run = client.get("/admin/api/imports/nope", headers=bearer(admin_token))
    assert run.status_code == 404 and run.json()["error"] == "NotFound"
