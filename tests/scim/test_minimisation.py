"""Minimisation over SCIM (issue 12, point 5): an update audits the changed fields only, and a
full PUT replaces the provider's attributes instead of merging them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from server.db import AuditEvent, User
from server.domain.actors import system_actor
from server.domain.district_settings import change_settings
from tests.conftest import stored_where
from tests.scim.conftest import make_district
from tests.scim.helpers import ENTERPRISE, PATCH, USER

PROFILE = {
    "name": {"givenName": "Ada", "familyName": "Byron"},
    "phoneNumbers": [{"value": "+44 7700 900100", "type": "mobile"}],
    "addresses": [{"streetAddress": "12 Marlborough Place", "locality": "London", "type": "home"}],
    ENTERPRISE: {"employeeNumber": "E-1815", "department": "Year 7"},
}


@pytest.fixture
def district(database):
    """A district that keeps only what Rollcall uses (the default)."""
    return make_district(database, keep_all=False)


@pytest.fixture
def keeps_profile(database, district) -> None:
    """The district keeps phone numbers, addresses and the enterprise extension."""
    with database.session() as session:
        change_settings(
            session,
            system_actor(district.tenant_id),
            {"keep_provider_attributes": ["phoneNumbers", "addresses", ENTERPRISE]},
        )


def test_a_phone_change_audits_the_phone_only(idp, database, keeps_profile):
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
    assert changed.status_code == 200, changed.text
    with database.session() as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.update")
        ).all()
    logged = json.dumps(event.changes)
    assert "900200" in logged and "900100" in logged
    assert "Marlborough" not in logged and "E-1815" not in logged
    assert len(logged) < 400, logged


def test_a_full_put_replaces_the_providers_attributes(idp, database, keeps_profile):
    user = idp.create_user("ada.byron", schemas=[USER, ENTERPRISE], **PROFILE)
    body = {"schemas": [USER], "userName": "ada.byron", "name": PROFILE["name"]}
    replaced = idp.put(f"/Users/{user['id']}", body)
    assert replaced.status_code == 200, replaced.text
    assert "phoneNumbers" not in replaced.json() and "addresses" not in replaced.json()
    with database.session() as session:
        kept = json.dumps(session.get(User, user["id"]).extra)
    assert "Marlborough" not in kept and "900100" not in kept and "E-1815" not in kept


# What an Entra user can carry beyond what Rollcall uses: the enterprise extension's cost centre
# and department and the core phoneNumbers/addresses/title (attribute names from RFC 7643 §4.1
# and §4.3; Entra's default attribute mappings send them, per Microsoft's "Tutorial: Develop and
# plan provisioning for a SCIM endpoint" in MicrosoftDocs/entra-docs). A custom extension is
# refused (strict profile) or ignored (provider profiles) by the SCIM layer before it gets here.
ENTRA_PROFILE = {
    "name": {"givenName": "Ada", "familyName": "Byron", "formatted": "Lady Ada Byron"},
    "title": "Head girl",
    "phoneNumbers": [{"value": "+44 7700 900155", "type": "mobile"}],
    "addresses": [{"streetAddress": "12 Marlborough Place", "type": "home"}],
    ENTERPRISE: {"department": "Year 7 Dept", "costCenter": "boss-id-7781"},
}
DROPPED = ("Head girl", "900155", "Marlborough", "Year 7 Dept", "boss-id-7781", "Lady")


def test_attributes_rollcall_does_not_use_are_never_stored_audited_or_returned(
    idp, database, district
):
    user = idp.create_user("ada.byron", schemas=[USER, ENTERPRISE], **ENTRA_PROFILE)
    assert user["name"] == {"givenName": "Ada", "familyName": "Byron"}
    body = idp.get(f"/Users/{user['id']}").json()
    assert not [value for value in DROPPED if value in json.dumps(body)], body
    assert ENTERPRISE not in body["schemas"]
    idp.patch(f"/Users/{user['id']}", {"op": "add", "path": "title", "value": "Head girl"})
    assert stored_where(database, *DROPPED) == []  # not in users.extra, audit events, the index
    assert stored_where(database, "ada.byron")  # the scan does see the user


def test_an_allow_listed_attribute_is_kept_and_returned(idp, database, district):
    with database.session() as session:
        change_settings(
            session,
            system_actor(district.tenant_id),
            {"keep_provider_attributes": [f"{ENTERPRISE}:department", "title", "name.formatted"]},
        )
    user = idp.create_user("ada.byron", schemas=[USER, ENTERPRISE], **ENTRA_PROFILE)
    body = idp.get(f"/Users/{user['id']}").json()
    assert body["title"] == "Head girl" and body["name"]["formatted"] == "Lady Ada Byron"
    assert body[ENTERPRISE] == {"department": "Year 7 Dept"}
    assert stored_where(database, "900155", "Marlborough", "boss-id-7781") == []
    found = idp.get("/Users", params={"filter": f'{ENTERPRISE}:department eq "Year 7 Dept"'})
    assert found.json()["totalResults"] == 1


def test_the_schemas_list_only_what_the_district_keeps(idp, database, district):
    def core_names() -> set[str]:
        core = idp.get(f"/Schemas/{USER}").json()
        return {attribute["name"] for attribute in core["attributes"]}

    names = core_names()
    assert {"userName", "name", "emails", "active"} <= names
    assert not names & {"phoneNumbers", "addresses", "title", "x509Certificates"}
    enterprise = idp.get(f"/Schemas/{ENTERPRISE}").json()
    assert enterprise["attributes"] == []
    with database.session() as session:
        change_settings(
            session, system_actor(district.tenant_id), {"keep_provider_attributes": "title"}
        )
    assert "title" in core_names()
