"""Requests generated from our own OpenAPI descriptions (Schemathesis) never get a 500.

The admin API and the SCIM endpoint are each called with values Hypothesis makes up for every
operation's path, query and body, one operation at a time and in chains that follow the
documents' Link Objects (create a user, then read, change, reset, delete it); every answer must
be a specific error or a success. ``make soak`` runs more examples with a fresh seed
(see ``tests/generated.py``).
"""

from __future__ import annotations

import schemathesis

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.tenants import get_tenant
from tests.conftest import empty
from tests.generated import fuzz_links, fuzz_operations
from tests.web.conftest import make_district


def _scim_token(database) -> str:
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        return create_connection(session, actor, "Fuzz IdP", "scim").token


def test_admin_api_never_answers_500(app, district):
    schema = schemathesis.openapi.from_asgi("/admin/api/openapi.json", app)
    headers = {"Authorization": f"Bearer {district.api_token}"}
    # 18, + schools (7) and the connection PATCH, the status codes, DELETE /users/{id},
    # GET /users/{id}/export and GET/PATCH /settings
    assert fuzz_operations(schema, lambda case: headers) == 30


def test_scim_never_answers_500(app, district, database):
    schema = schemathesis.openapi.from_asgi("/scim/v2/openapi.json", app)
    headers = {"Authorization": f"Bearer {_scim_token(database)}"}
    assert fuzz_operations(schema, lambda case: headers) >= 15


def test_admin_api_chains_never_answer_500(app, context):
    def start():
        empty(context.database)
        headers = {"Authorization": f"Bearer {make_district(context).api_token}"}
        return lambda case: headers

    fuzz_links(app, "/admin/api/openapi.json", start)


def test_scim_chains_never_answer_500(app, context):
    def start():
        empty(context.database)
        make_district(context)
        headers = {"Authorization": f"Bearer {_scim_token(context.database)}"}
        return lambda case: headers

    fuzz_links(app, "/scim/v2/openapi.json", start)
