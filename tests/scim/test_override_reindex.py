"""A staff override of a SCIM-owned user is visible to the provider's next filtered search."""

from __future__ import annotations

from starlette.testclient import TestClient

from server.app import create_app
from server.domain import users
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.tenants import create_tenant

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def test_an_overridden_name_is_found_by_a_name_filter(settings, database):
    with database.session() as session:
        tenant = create_tenant(session, "Riverside")
        token = create_connection(session, system_actor(tenant.id), "Entra ID", "scim").token
        tenant_id = tenant.id
    headers = {"Authorization": f"Bearer {token}"}
    scim = TestClient(create_app(settings, database=database), headers=headers)
    body = {
        "schemas": [CORE],
        "userName": "maya.l",
        "name": {"givenName": "Maya", "familyName": "Lopez"},
    }
    assert scim.post("/scim/v2/Users", json=body).status_code == 201
    with database.session() as session:
        user = users.find_by_username(session, tenant_id, "maya.l")
        override = {"given_name": "Mia"}
        users.update_user(session, system_actor(tenant_id), user, override, override=True)

    def found(given: str) -> int:
        query = {"filter": f'name.givenName eq "{given}"'}
        return scim.get("/scim/v2/Users", params=query).json()["totalResults"]

    assert found("Mia") == 1
    assert found("Maya") == 0
    query = {"filter": 'userName eq "maya.l"'}
    assert scim.get("/scim/v2/Users", params=query).json()["totalResults"] == 1
