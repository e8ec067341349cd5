"""A district admin sees which requests an identity provider sent that Rollcall refused."""

from __future__ import annotations

from starlette.testclient import TestClient

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.tenants import get_tenant
from tests.web.conftest import sign_in


def test_refused_scim_requests_appear_on_the_connections_page(app, district, database):
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        token = create_connection(session, actor, "Okta", "scim", sso_provider="Okta").token
    scim = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    refused = scim.post(
        "/scim/v2/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "BartSimpson",
            "password": "hunter2-secret-value",
        },
    )
    assert refused.status_code == 409
    assert scim.get("/scim/v2/Users?filter=userName%20eq").status_code == 400
    assert TestClient(app).get("/scim/v2/Users").status_code == 401  # no connection: not recorded

    admin = sign_in(app, "skinner", district.admin_password)
    page = admin.get("/admin/connections").text
    assert "2 recent error(s) caused by Okta" in page
    assert "POST /scim/v2/Users" in page and "409" in page
    assert "hunter2-secret-value" not in page
