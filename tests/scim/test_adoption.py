"""Adoption over SCIM: a connection set to adopt by username takes over a matching account,
but never one that an SSO connection of another provider owns (issue 11 defect 2), and every
adoption is audited with the previous owner."""

from __future__ import annotations

from sqlalchemy import select

from server.db import AuditEvent, User
from server.db.session import Database
from server.domain import connections
from server.domain.actors import system_actor
from tests.scim.conftest import District, add_connection
from tests.scim.helpers import USER, IdP


def test_a_connection_set_to_adopt_by_username_takes_over_the_matching_user(
    idp: IdP, database: Database, district: District
) -> None:
    first = idp.create_user("shared", name={"givenName": "Sam", "familyName": "Hare"})
    with database.session() as session:
        system = system_actor(district.tenant_id, "test")
        token = connections.create_connection(
            session, system, "Google", "scim", adopt_by="username"
        ).token
    adopter = IdP(idp.client, token)
    adopted = adopter.post("/Users", {"schemas": [USER], "userName": "SHARED", "title": "Dr"})
    assert adopted.status_code == 201, adopted.text
    assert adopted.json()["id"] == first["id"] and adopted.json()["title"] == "Dr"
    assert idp.get(f"/Users/{first['id']}").status_code == 404  # no longer the first's
    with database.session() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_id == first["id"])
        ).all()
    assert "user.adopt" in actions


def _signs_in(client, username: str, password: str) -> bool:
    """Does /login accept this password (303 onwards) for the district's student?"""
    from tests.oidc.conftest import sign_in

    return sign_in(client, "/login", username, password).status_code == 303


def test_a_connection_that_is_not_the_sso_one_cannot_adopt_an_sso_account_or_set_its_password(
    app, database: Database, district: District
) -> None:
    # Issue 11 defect 2: Google (adopt by username) took over a Clever account and set its
    # password, which then signed in around Clever.
    clever = IdP(app, add_connection(database, district, "Clever", sso="Clever"))
    kid = clever.create_user("kid.one", name={"givenName": "Kid", "familyName": "One"})
    google = IdP(app, add_connection(database, district, "Google", adopt_by="username"))
    body = {"schemas": [USER], "userName": "KID.ONE", "password": "Correct-Horse-Battery-77"}
    refused = google.post("/Users", body)
    assert refused.status_code == 409, refused.text
    assert "Clever" in refused.json()["detail"]
    assert clever.get(f"/Users/{kid['id']}").status_code == 200  # still Clever's
    assert not _signs_in(app, "kid.one", "Correct-Horse-Battery-77")
    with database.session() as session:
        owners = select(User.connection_id).where(User.tenant_id == district.tenant_id)
        assert len(set(session.scalars(owners))) == 1  # no second account was made either


def test_the_sso_connection_of_the_same_provider_may_adopt_and_the_previous_owner_is_audited(
    app, database: Database, district: District
) -> None:
    first = IdP(app, add_connection(database, district, "Clever rostering", sso="Clever"))
    kid = first.create_user("kid.two", name={"givenName": "Kid", "familyName": "Two"})
    second = IdP(
        app, add_connection(database, district, "Clever SSO", sso="Clever", adopt_by="username")
    )
    adopted = second.post("/Users", {"schemas": [USER], "userName": "kid.two"})
    assert adopted.status_code == 201, adopted.text
    assert adopted.json()["id"] == kid["id"]
    with database.session() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "user.adopt", AuditEvent.target_id == kid["id"]
            )
        ).one()
        assert "Clever rostering" in str(event.changes) and "Clever rostering" in event.detail
