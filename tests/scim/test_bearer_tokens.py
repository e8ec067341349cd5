"""A connection's bearer token is resolved once and kept a few seconds (scim.tokens), and
checked live in every request's own transaction: a token rotated anywhere is refused at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from scim.tokens import TokenCache
from server.db.session import Database
from server.domain import connections, users
from server.domain.actors import system_actor
from tests.live import rollcall_environment, start_rollcall
from tests.scim.conftest import District
from tests.scim.helpers import USER, IdP, statements


def test_repeated_requests_look_the_token_up_once(idp: IdP, database: Database) -> None:
    with statements(database) as seen:
        for _ in range(5):
            assert idp.get("/Users").status_code == 200
    tokens = [statement for statement in seen if "connection_tokens" in statement]
    # resolved to its connection once; then only the live check, one indexed read a request
    resolutions = [s for s in tokens if "connection_tokens.connection_id" in s]
    assert len(resolutions) == 1 and len(tokens) == 1 + 5


@contextmanager
def slow_resolutions(database: Database, seconds: float) -> Iterator[list[str]]:
    """The reads that resolve a token to its connection, each answered ``seconds`` late (so
    requests sent together are all in flight while the first is resolved)."""
    seen: list[str] = []

    def resolving(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "connection_tokens.connection_id" in statement:
            seen.append(statement)
            time.sleep(seconds)

    event.listen(database.engine, "before_cursor_execute", resolving)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", resolving)


def test_requests_in_flight_together_resolve_their_token_once(idp: IdP, database: Database) -> None:
    # Issue 15: when the cache entry of a token had expired (or was not there yet, as here),
    # each of the requests in flight read the token and its connection itself (8 at once in
    # the benchmark, every 5 seconds): now one reads it and the others wait for its answer
    lookup = {"filter": 'userName eq "nobody.yet"'}
    with slow_resolutions(database, 0.3) as resolutions, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: idp.get("/Users", params=lookup), range(8)))
    assert [answer.status_code for answer in answers] == [200] * 8
    assert {answer.json()["totalResults"] for answer in answers} == {0}
    assert len(resolutions) == 1, resolutions


def test_an_unknown_token_sent_together_is_refused_every_time_and_read_once(
    idp: IdP, database: Database
) -> None:
    stranger = IdP(idp.client, "rc_not-a-token")
    with slow_resolutions(database, 0.3) as resolutions:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: stranger.get("/Users"), range(8)))
        assert [answer.status_code for answer in answers] == [401] * 8
        assert len(resolutions) == 1, resolutions
        # never kept: the next request reads it again (a token issued since works at once)
        assert stranger.get("/Users").status_code == 401
        assert len(resolutions) == 2


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


def test_a_deactivation_with_a_rotated_token_is_refused_and_changes_nothing(
    idp: IdP, database: Database, district: District
) -> None:
    """The lean PATCH of ``active`` checks the token in its read of the user: a revoked
    token is a 401 on the very next request, for a user that exists or not (never a 404)."""
    pupil = idp.create_user("staying.pupil")  # the token is cached from here on
    with database.session() as session:
        connections.rotate_token(
            session, system_actor(district.tenant_id, "test"), district.connection.name
        )
    off = {"op": "replace", "path": "active", "value": False}
    for user_id in (pupil["id"], "no-such-user"):
        refused = idp.patch(f"/Users/{user_id}", off)
        assert refused.status_code == 401 and refused.json()["status"] == "401", refused.text
    with database.session() as session:
        kept = users.find_by_username(session, district.tenant_id, "staying.pupil")
        assert kept is not None and kept.status == "active"


def test_a_token_rotated_by_another_process_is_refused_on_the_next_request(
    idp: IdP, district: District, database: Database, database_url: str, tmp_path: Path
) -> None:
    """An operator's ``rollcall connection rotate-token`` (its own process: this process's
    cache hears nothing of it) refuses the old token on the very next read and write."""
    pupil = idp.create_user("known.pupil")  # the token is cached from here on
    environment = rollcall_environment(database_url, tmp_path / "data")
    rotation = start_rollcall(
        "connection",
        "rotate-token",
        district.connection.name,
        "--json",
        env=environment,
        folder=tmp_path,
    )
    assert rotation.popen.wait(timeout=60) == 0, rotation.log
    for filtered in ('userName eq "known.pupil"', 'userName eq "nobody"'):
        lookup = idp.get("/Users", params={"filter": filtered})
        assert lookup.status_code == 401 and lookup.json()["status"] == "401", lookup.text
    assert idp.get(f"/Users/{pupil['id']}").status_code == 401
    assert idp.get("/Users").status_code == 401
    off = {"op": "replace", "path": "active", "value": False}
    assert idp.patch(f"/Users/{pupil['id']}", off).status_code == 401
    body = {"schemas": [USER], "userName": "late.pupil", "name": {"givenName": "Late"}}
    assert idp.post("/Users", body).status_code == 401
    with database.session() as session:
        assert users.find_by_username(session, district.tenant_id, "late.pupil") is None
        kept = users.find_by_username(session, district.tenant_id, "known.pupil")
        assert kept is not None and kept.status == "active"


def test_an_entry_expires_after_its_time_to_live() -> None:
    now = [100.0]
    cache = TokenCache[str](ttl=5.0, clock=lambda: now[0])
    cache.put("rc_token", "Entra ID")
    now[0] = 104.9
    assert cache.get("rc_token") == "Entra ID"
    now[0] = 105.0
    assert cache.get("rc_token") is None
    assert cache.get("rc_other") is None
