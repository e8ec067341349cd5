"""Requests generated from our own OpenAPI descriptions (Schemathesis) never get a 500.

The admin API and the SCIM endpoint are each called with values Hypothesis makes up for every
operation's path, query and body; every answer must be a specific error or a success.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.tenants import get_tenant


def _fuzz(app, path: str, headers: dict[str, str], *, examples: int = 8) -> int:
    schema = schemathesis.openapi.from_asgi(path, app)
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def call(case):
            response = case.call(headers=headers)
            documented = response.status_code == 501 and case.formatted_path == "/Me"
            assert response.status_code < 500 or documented, (
                case.method,
                case.formatted_path,
                response.text[:300],
            )

        call()
        checked += 1
    return checked


def test_admin_api_never_answers_500(app, district):
    headers = {"Authorization": f"Bearer {district.api_token}"}
    assert _fuzz(app, "/admin/api/openapi.json", headers) == 27  # + GET/PATCH /settings


def test_scim_never_answers_500(app, district, database):
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        token = create_connection(session, actor, "Fuzz IdP", "scim").token
    assert _fuzz(app, "/scim/v2/openapi.json", {"Authorization": f"Bearer {token}"}) >= 15
