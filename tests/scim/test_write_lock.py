"""Issue 15 (SCIM writes): a SCIM write holds the database's write lock only to store.

On SQLite one writer at a time holds the lock (``Database.session``). A SCIM create or PATCH
held it for the whole request: the validation of its body and the building of its answer
too. Now a body that cannot be stored is refused without waiting for the lock at all, and a
valid one waits only for its own write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import text

from server.app import create_app
from server.config import Settings
from server.db.session import Database
from tests.live import serving
from tests.scim.conftest import District
from tests.scim.helpers import PATCH, USER, IdP

ENOUGH = 5.0  # seconds a thread is given to reach a point it reaches at once when it can


@contextmanager
def another_writer(database: Database) -> Iterator[threading.Event]:
    """Another write unit of work of this process (an import, say) holds the write lock until
    the yielded event is set."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL locks rows: its writers never queue for the database")
    writing, done = threading.Event(), threading.Event()

    def write() -> None:
        with database.session() as session:
            session.execute(text("UPDATE tenants SET name = name"))
            writing.set()
            done.wait(ENOUGH * 6)

    thread = threading.Thread(target=write)
    thread.start()
    assert writing.wait(ENOUGH)
    try:
        yield done
    finally:
        done.set()
        thread.join(ENOUGH)


def test_a_bad_creation_is_refused_while_another_write_holds_the_lock(
    settings: Settings, database: Database, district: District
) -> None:
    body = {"schemas": [USER], "userName": 42, "emails": "none"}
    with serving(create_app(settings, database=database)) as base:
        assert _send(base, district, "GET", "/Users", None).status_code == 200  # token known
        with another_writer(database):
            answer = _send(base, district, "POST", "/Users", body)
    # before: the request waited for the lock (the busy timeout), then answered 503
    assert answer.status_code == 400, answer.text
    assert answer.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_a_bad_patch_is_refused_while_another_write_holds_the_lock(
    settings: Settings, database: Database, district: District, idp: IdP
) -> None:
    pupil = idp.create_user("patched.pupil")
    body = {"schemas": [PATCH], "Operations": [{"op": "frobnicate", "path": "active"}]}
    with serving(create_app(settings, database=database)) as base:
        assert _send(base, district, "GET", "/Users", None).status_code == 200  # token known
        with another_writer(database):
            answer = _send(base, district, "PATCH", f"/Users/{pupil['id']}", body)
    assert answer.status_code == 400, answer.text


def _send(base: str, district: District, method: str, path: str, body: object) -> httpx.Response:
    """One request over real HTTP: the answer is read as soon as it is sent (a TestClient
    returns only once the app is done, and a refused request is then recorded, a write)."""
    headers = {"Authorization": f"Bearer {district.token}"}
    return httpx.request(
        method, f"{base}/scim/v2{path}", json=body, headers=headers, timeout=ENOUGH
    )


def test_a_creation_waits_for_the_other_write_and_then_is_stored(
    idp: IdP, database: Database
) -> None:
    idp.create_user("first.pupil")
    outcome: dict[str, int] = {}

    def create() -> None:
        outcome["status"] = idp.post("/Users", {"schemas": [USER], "userName": "late"}).status_code

    with another_writer(database) as done:
        creating = threading.Thread(target=create)
        creating.start()
        creating.join(0.5)
        assert "status" not in outcome  # it waits for the lock to store
        done.set()
        creating.join(ENOUGH)
    assert outcome == {"status": 201}
    assert idp.get("/Users", params={"filter": 'userName eq "late"'}).json()["totalResults"] == 1
