"""Chains of generated requests over the OneRoster document's Link Objects never get a 500.

Schemathesis follows the links of our ``/ims/oneroster/openapi.json``: a hub PUTs a record
(our push extension), then reads it back through both versions' GETs and deletes it, with
values Hypothesis makes up at every step. Reads carry a reader's token with every scope and
pushes the hub's connection token, as real callers do. Single operations are fuzzed against a
live server in ``conformance/oneroster/test_oneroster_robustness.py``.
"""

from __future__ import annotations

from typing import Any

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from tests.generated import fuzz_links
from tests.oneroster.conftest import bearer


def test_push_read_delete_chains_never_answer_500(api, database, district, reader):
    with database.session() as session:
        hub = create_connection(session, system_actor(district.tenant_id), "Hub", "oneroster")
    tokens = {"GET": reader(), "PUT": hub.token, "DELETE": hub.token}

    def headers(case: Any) -> dict[str, str]:
        return bearer(tokens[case.method.upper()])

    fuzz_links(api.app, "/ims/oneroster/openapi.json", headers)
