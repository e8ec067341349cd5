"""Chains of generated requests over the OneRoster document's Link Objects never get a 500.

Schemathesis follows the links of our ``/ims/oneroster/openapi.json``: a hub PUTs a record
(our push extension), then reads it back through both versions' GETs and deletes it, with
values Hypothesis makes up at every step. Reads carry a reader's token with every scope and
pushes the hub's connection token, as real callers do. Single operations are fuzzed against a
live server in ``conformance/oneroster/test_oneroster_robustness.py``.
"""

from __future__ import annotations

import secrets

from server.domain import oauth
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from tests.conftest import empty
from tests.generated import fuzz_links
from tests.oneroster.conftest import ALL_SCOPES, bearer, build_district


def test_push_read_delete_chains_never_answer_500(api, database):
    def start():
        empty(database)
        with database.session() as session:
            district = build_district(session)
            system = system_actor(district.tenant_id)
            hub = create_connection(session, system, "Hub", "oneroster").token
            tokens = {"GET": _reader(session, system), "PUT": hub, "DELETE": hub}
        return lambda case: bearer(tokens[case.method.upper()])

    fuzz_links(api.app, "/ims/oneroster/openapi.json", start)


def _reader(session, system) -> str:
    """A live access token of an API client with every read scope."""
    new = oauth.create_client(session, system, "Reader", kind="api", scopes=ALL_SCOPES)
    token = secrets.token_urlsafe(24)
    oauth.store_token(session, new.client, token, " ".join(ALL_SCOPES))
    return token
