"""A hand-made account in a school an SSO provider manages is flagged (issue 14, item 14,
from MI Write: a second account for the same child)."""

from __future__ import annotations

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.tenants import get_tenant
from tests.web.conftest import sign_in

WARNING = "students of its school sign in with Google"


def test_a_manual_account_in_an_sso_school_warns_on_its_page(app, district, database):
    with database.session() as session:
        system = system_actor(get_tenant(session, "Springfield").id)
        create_connection(
            session, system, "Google", "scim", sso_provider="Google", school_sourced_ids=["lincoln"]
        )
    client = sign_in(app, "skinner", district.admin_password)
    assert WARNING in client.get(f"/admin/users/{district.manual_student}").text
    assert WARNING not in client.get(f"/admin/users/{district.other_student}").text  # Other
    assert WARNING not in client.get(f"/admin/users/{district.clever_student}").text  # synced
