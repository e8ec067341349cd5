"""Minimisation over SCIM (issue 12, point 5): an update audits the changed fields only, and a
full PUT replaces the provider's attributes instead of merging them."""

from __future__ import annotations

import json

from sqlalchemy import select

from server.db import AuditEvent, User
from tests.scim.helpers import ENTERPRISE, PATCH, USER

PROFILE = {
    "name": {"givenName": "Ada", "familyName": "Byron"},
    "phoneNumbers": [{"value": "+44 7700 900100", "type": "mobile"}],
    "addresses": [{"streetAddress": "12 Marlborough Place", "locality": "London", "type": "home"}],
    ENTERPRISE: {"employeeNumber": "E-1815", "department": "Year 7"},
}


def test_a_phone_change_audits_the_phone_only(idp, database):
    user = idp.create_user("ada.byron", schemas=[USER, ENTERPRISE], **PROFILE)
    changed = idp.request(
        "PATCH",
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {
                    "op": "replace",
                    "path": 'phoneNumbers[type eq "mobile"].value',
                    "value": "+44 7700 900200",
                },
            ],
        },
    )
    assert changed.status_code in (200, 204), changed.text
    with database.session() as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.update")
        ).all()
    logged = json.dumps(event.changes)
    assert "900200" in logged and "900100" in logged
    assert "Marlborough" not in logged and "E-1815" not in logged
    assert len(logged) < 400, logged


def test_a_full_put_replaces_the_providers_attributes(idp, database):
    user = idp.create_user("ada.byron", schemas=[USER, ENTERPRISE], **PROFILE)
    body = {"schemas": [USER], "userName": "ada.byron", "name": PROFILE["name"]}
    replaced = idp.put(f"/Users/{user['id']}", body)
    assert replaced.status_code == 200, replaced.text
    assert "phoneNumbers" not in replaced.json() and "addresses" not in replaced.json()
    with database.session() as session:
        kept = json.dumps(session.get(User, user["id"]).extra)
    assert "Marlborough" not in kept and "900100" not in kept and "E-1815" not in kept
