"""Schools without a SIS file: /admin/api/schools and the Schools page (issue 10, defect 5)."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from server.db import Connection
from server.domain import roster
from server.domain.actors import connection_actor
from server.domain.tenants import get_tenant
from tests.web.conftest import csrf_of, sign_in


def _synced_school(database) -> None:
    """A school the Clever connection brought (owned by it, not by the manual connection)."""
    with database.session() as session:
        tenant = get_tenant(session, "Springfield")
        clever = session.scalars(
            select(Connection).where(Connection.tenant_id == tenant.id, Connection.name == "Clever")
        ).one()
        roster.create_org(
            session, connection_actor(clever), {"name": "Synced", "sourced_id": "syn"}
        )


def test_district_admin_adds_reads_changes_and_deactivates_a_school(app, district):
    with TestClient(app, headers={"Authorization": f"Bearer {district.api_token}"}) as client:
        added = client.post(
            "/admin/api/schools",
            json={"sourced_id": "ash/01", "name": "Ashby Primary", "parent": "lincoln"},
        )
        assert added.status_code == 201, added.text
        assert added.json()["owner"] == "Manual" and added.json()["parent"] == "lincoln"
        assert client.get("/admin/api/schools/ash/01").json()["name"] == "Ashby Primary"
        changed = client.patch("/admin/api/schools/ash/01", json={"name": "Ashby Juniors"})
        assert changed.json()["changes"] == {"name": ["Ashby Primary", "Ashby Juniors"]}
        gone = client.post("/admin/api/schools/ash/01/deactivate", json={})
        assert gone.status_code == 200 and gone.json()["school"]["status"] == "inactive"
        listed = client.get("/admin/api/schools").json()["schools"]
        assert [s["sourced_id"] for s in listed] == ["lincoln", "other"]
        listed = client.get("/admin/api/schools", params={"include_inactive": "true"}).json()
        assert "ash/01" in [s["sourced_id"] for s in listed["schools"]]
        back = client.post("/admin/api/schools/ash/01/reactivate")
        assert back.json()["school"]["active"] is True


def test_bad_school_requests_get_specific_json_errors(app, district):
    with TestClient(app, headers={"Authorization": f"Bearer {district.api_token}"}) as client:
        cases = [
            ({"name": "No id"}, 400, "sourced_id is required"),
            ({"sourced_id": "lincoln", "name": "Again"}, 409, "already used"),
            ({"sourced_id": "a b", "name": "Space"}, 400, "Invalid sourced_id 'a b': use letters"),
            ({"sourced_id": "x1", "name": ""}, 400, "name must not be empty"),
            (
                {"sourced_id": "x1", "name": "X", "type": "castle"},
                400,
                "type must be one of",
            ),
            ({"sourced_id": "x1", "name": "X", "parent": "nope"}, 400, "No parent org"),
            ({"sourced_id": "x1", "name": "X", "colour": "red"}, 400, "Unknown field 'colour'"),
            ({"sourced_id": "x1", "name": 7}, 400, "name must be a string"),
        ]
        for body, status, detail in cases:
            response = client.post("/admin/api/schools", json=body)
            assert response.status_code == status and detail in response.json()["detail"], body
        assert client.get("/admin/api/schools/nope").status_code == 404
        patch = client.patch("/admin/api/schools/lincoln", json={"override": "yes"})
        assert patch.status_code == 400 and patch.json()["field"] == "override"
        names = [s["sourced_id"] for s in client.get("/admin/api/schools").json()["schools"]]
        assert names == ["lincoln", "other"]  # nothing half-written


def test_a_synced_school_changes_only_with_override_and_school_admins_change_nothing(
    app, district, database
):
    _synced_school(database)
    with TestClient(app, headers={"Authorization": f"Bearer {district.api_token}"}) as client:
        refused = client.patch("/admin/api/schools/syn", json={"name": "Renamed"})
        assert refused.status_code == 409 and "managed by Clever" in refused.json()["detail"]
        assert client.post("/admin/api/schools/syn/deactivate").status_code == 409
        done = client.patch("/admin/api/schools/syn", json={"name": "Renamed", "override": True})
        assert done.status_code == 200 and done.json()["school"]["managed_by"] == "Clever"
        audit = client.get("/admin/api/audit", params={"action": "org.update"}).json()["events"]
        assert audit[0]["override"] is True
    school_admin = sign_in(app, "chalmers", district.school_admin_password)
    page = school_admin.get("/admin/schools").text
    assert "Add a school" not in page
    csrf = csrf_of(school_admin.get("/admin/users").text)
    refused = school_admin.post(
        "/admin/schools", data={"csrf_token": csrf, "sourced_id": "x", "name": "X"}
    )
    assert refused.status_code == 403 and "Only district admins" in refused.text


def test_schools_page_adds_renames_and_deactivates(app, district, database):
    _synced_school(database)
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get("/admin/schools").text
    assert "Synced" in page and "Clever" in page and "Rollcall (by hand)" in page
    added = client.post(
        "/admin/schools",
        data={"csrf_token": csrf_of(page), "sourced_id": "ash", "name": "Ashby", "type": "school"},
    )
    assert added.status_code == 200 and "Added Ashby." in added.text
    renamed = client.post(
        "/admin/schools/ash",
        data={"csrf_token": csrf_of(page), "name": "Ashby Juniors", "parent": "", "type": "school"},
    )
    assert "Changed Ashby Juniors." in renamed.text
    refused = client.post(
        "/admin/schools/syn",
        data={"csrf_token": csrf_of(page), "name": "Mine", "parent": "", "type": "school"},
    )
    assert refused.status_code == 409 and "managed by Clever" in refused.text
    gone = client.post(
        "/admin/schools/ash/status", data={"csrf_token": csrf_of(page), "active": "false"}
    )
    assert "Ashby Juniors deactivated." in gone.text and "inactive" in gone.text
