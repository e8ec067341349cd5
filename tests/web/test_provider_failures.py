"""A district admin sees which requests an identity provider sent that Rollcall refused."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.tenants import get_tenant
from tests.web.conftest import sign_in
from tests.wire import scim_error


@pytest.fixture
def scim(app, database) -> TestClient:
    """A SCIM client speaking as the district's "Okta" connection."""
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        token = create_connection(session, actor, "Okta", "scim", sso_provider="Okta").token
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def test_refused_scim_requests_appear_on_the_connections_page(app, district, scim):
    refused = scim.post(
        "/scim/v2/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "BartSimpson",
            "password": "hunter2-secret-value",
        },
    )
    scim_error(refused, 409, "uniqueness")
    scim_error(scim.get("/scim/v2/Users?filter=userName%20eq"), 400, "invalidFilter")
    scim_error(TestClient(app).get("/scim/v2/Users"), 401)  # no connection: not recorded

    admin = sign_in(app, "skinner", district.admin_password)
    page = admin.get("/admin/connections").text
    assert "2 recent error(s) caused by Okta" in page
    assert "POST /scim/v2/Users" in page and "409" in page
    assert "hunter2-secret-value" not in page


def test_a_refused_password_patch_is_stored_and_shown_without_the_password(
    app, district, database, scim
):
    # Issue 11 defect 5: the excerpt kept {"op":"replace","path":"password","value":"…"}.
    from server.db import ProviderFailure

    created = scim.post(
        "/scim/v2/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "okta.kid"},
    )
    assert created.status_code == 201, created.text
    operations = [
        {"op": "replace", "path": "password", "value": "patched-secret-one"},
        {
            "op": "replace",
            "path": "urn:ietf:params:scim:schemas:core:2.0:User:password",
            "value": "patched-secret-two",
        },
        {"op": "replace", "value": {"password": "patched-secret-three"}},
    ]
    for operation in operations:
        refused = scim.patch(
            f"/scim/v2/Users/{created.json()['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [operation],
            },
        )
        assert refused.status_code == 400, refused.text  # Okta accounts keep no password
    with database.session() as session:
        excerpts = " ".join(e for (e,) in session.query(ProviderFailure.request_excerpt).all())
    admin = sign_in(app, "skinner", district.admin_password)
    page = admin.get("/admin/connections").text
    assert "3 recent error(s) caused by Okta" in page and "[redacted]" in page
    for secret in ("patched-secret-one", "patched-secret-two", "patched-secret-three"):
        assert secret not in page and secret not in excerpts
