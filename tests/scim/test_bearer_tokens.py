"""A connection's bearer token is resolved once and kept a few seconds (scim.tokens)."""

from __future__ import annotations

from scim.tokens import TokenCache
from server.db.session import Database
from server.domain import connections
from server.domain.actors import system_actor
from tests.scim.conftest import District
from tests.scim.helpers import IdP, statements


def test_repeated_requests_look_the_token_up_once(idp: IdP, database: Database) -> None:
    with statements(database) as seen:
        for _ in range(5):
            assert idp.get("/Users").status_code == 200
    lookups = [statement for statement in seen if "connection_tokens" in statement]
    assert len(lookups) == 1


def test_a_token_rotated_in_this_process_is_refused_at_once(
    idp: IdP, database: Database, district: District
) -> None:
    assert idp.get("/Users").status_code == 200  # now cached
    with database.session() as session:
        issued = connections.rotate_token(
            session, system_actor(district.tenant_id, "test"), district.connection.name
        )
        new_token = issued.token
    refused = idp.get("/Users")
    assert refused.status_code == 401 and refused.json()["status"] == "401"
    assert IdP(idp.client, new_token).get("/Users").status_code == 200


def test_an_entry_expires_after_its_time_to_live() -> None:
    now = [100.0]
    cache = TokenCache[str](ttl=5.0, clock=lambda: now[0])
    cache.put("rc_token", "Entra ID")
    now[0] = 104.9
    assert cache.get("rc_token") == "Entra ID"
    now[0] = 105.0
    assert cache.get("rc_token") is None
    assert cache.get("rc_other") is None
