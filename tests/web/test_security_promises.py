"""SECURITY.md promises that no other test proved, driven through the admin API as a district
admin would: an account needs only a name or a username (minimisation), and credentials
handed out once (connection and staff tokens) are stored only as digests."""

from __future__ import annotations

import json

from sqlalchemy import inspect, text
from starlette.testclient import TestClient

from server.db import User

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _everything_stored(database) -> str:
    """Every row of every table, as text."""
    dump = []
    with database.engine.connect() as connection:
        for table in inspect(database.engine).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            dump += [repr(tuple(row)) for row in rows]
    return "\n".join(dump)


def test_an_account_needs_only_a_name_or_a_username(app, district, database):
    with TestClient(app, headers={"Authorization": f"Bearer {district.api_token}"}) as client:
        only_username = client.post("/admin/api/users", json={"username": "kid.alone"})
        only_name = client.post("/admin/api/users", json={"given_name": "Solo"})
        nothing = client.post("/admin/api/users", json={})
    assert only_username.status_code == 201, only_username.text
    assert only_name.status_code == 201, only_name.text
    assert nothing.status_code == 400 and "name or a username" in nothing.text
    with database.session() as session:
        for made in (only_username.json(), only_name.json()):
            user = session.get(User, made["id"])
            assert (user.birth_date, user.email, user.identifier) == (None, None, None)
            assert (user.gender, user.ethnicity, user.demographic_flags) == (None, None, {})
            assert user.grades == []


def test_connection_and_staff_tokens_are_shown_once_and_stored_only_as_digests(
    app, district, database
):
    with TestClient(app, headers={"Authorization": f"Bearer {district.api_token}"}) as admin:
        made = admin.post("/admin/api/connections", json={"name": "Okta", "kind": "scim"})
        assert made.status_code == 201, made.text
        rotated = admin.post("/admin/api/connections/Okta/rotate")
        assert rotated.status_code == 200, rotated.text
        listed = admin.get("/admin/api/connections").text
    first, second = made.json()["token"], rotated.json()["token"]
    with TestClient(app, headers={"Authorization": f"Bearer {second}"}) as scim:
        assert scim.get("/scim/v2/Users").status_code == 200  # the digest is what authenticates
    stored = _everything_stored(database)
    for token in (first, second, district.api_token):
        assert token not in listed and token not in stored
        assert json.dumps(token)[1:-1] not in stored


def test_every_write_is_one_event_with_before_and_after_and_never_the_password(app, district):
    typed = "Typed-Permanent-Pass-8817"
    with TestClient(app, headers={"Authorization": f"Bearer {district.api_token}"}) as admin:
        made = admin.post("/admin/api/users", json={"given_name": "Ralph", "family_name": "W"})
        user = f"/admin/api/users/{made.json()['id']}"
        admin.patch(user, json={"email": "ralph@example.org", "family_name": "Wiggum"})
        admin.post(f"{user}/password", json={"password": typed, "temporary": False})
        assert admin.delete(user).status_code == 204
        events = admin.get("/admin/api/audit", params={"target": made.json()["id"]}).json()
    writes = [e for e in reversed(events["events"]) if not e["action"].startswith("read.")]
    assert [e["action"] for e in writes] == [
        "user.create",
        "user.update",
        "credential.set",
        "user.delete",
    ]
    assert writes[1]["changes"] == {
        "email": [None, "ralph@example.org"],
        "family_name": ["W", "Wiggum"],
    }
    assert writes[3]["changes"]["status"] == ["active", "deleted"], writes[3]
    assert all(e["actor"] == "skinner" for e in writes)
    assert typed not in json.dumps(events)
