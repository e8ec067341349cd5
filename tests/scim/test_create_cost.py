"""Issue 15 (scimcreate2, scimcreate3): a created user is validated once, its body; the document
of the user as stored is indexed as it is (:func:`scim.index.document_values`), not validated into
a resource again, and every write indexes that way (one indexer, :mod:`scim.index`).

The rows must be those the resource-walking indexer (:mod:`scim.index` before scimcreate3) gave:
``indexed_rows.json`` holds what it gave the stored form of Entra ID's and Okta's published
create bodies, a user holding every attribute of the model, a minimal user, a group and a class;
through HTTP, Entra ID's and Okta's bodies are compared with a full re-index of the user. Less
the row of a complex or multi-valued attribute itself where its values answer for it (issue 15,
scimcreate2: :func:`scim.index._presence`, ``tests/scim/test_presence_rows.py``).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from scim.index import document_values, indexed_values
from scim.schemas import make_provider
from server.app import create_app
from server.db import Connection
from server.db.session import Database
from server.domain import completeness, connections, users
from server.domain.actors import system_actor
from server.domain.scim_index import IndexedValue
from server.domain.tenants import create_tenant
from tests.scim.conftest import District, add_connection
from tests.scim.helpers import EDU_USER, ENTERPRISE, USER, IdP
from tests.scim.test_idp_replays import entra_user, okta_user
from tests.scim.test_lean_writes import _assert_index_as_a_full_reindex, _dumps

INDEXED_ROWS = json.loads((Path(__file__).parent / "indexed_rows.json").read_text())

EVERY_ATTRIBUTE: dict[str, Any] = {
    "schemas": [USER, ENTERPRISE, EDU_USER],
    "userName": "Bart@X.example",
    "externalId": "Ext-1",
    "name": {"givenName": "Bart", "familyName": "S", "formatted": "Bart S", "honorificPrefix": ""},
    "displayName": "Bart",
    "nickName": "",
    "profileUrl": "https://x.example/bart",
    "title": "Pupil",
    "userType": "Student",
    "preferredLanguage": "en",
    "locale": "en-US",
    "timezone": "Europe/Paris",
    "active": False,
    "emails": [
        {"value": "b@x.example", "type": "work"},
        {"value": "c@x.example", "type": "home", "primary": True},
        {"value": "b@x.example", "type": "other"},  # the same value twice: two element keys
    ],
    "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile", "primary": True}],
    "ims": [{"value": "bart", "type": "aim"}],
    "photos": [{"value": "https://x.example/p.png", "type": "photo"}],
    "addresses": [
        {"streetAddress": "1 Rd", "locality": "L", "country": "US", "type": "work"},
        {"formatted": ""},
    ],
    "entitlements": [{"value": "e1"}],
    "roles": [{"value": "r1"}, {"value": "r2", "primary": True}],
    "x509Certificates": [{"value": "TUlJREpq"}],  # base64: the model holds bytes
    "groups": [{"value": "g1", "$ref": "Groups/g1", "display": "G", "type": "direct"}],
    ENTERPRISE: {
        "employeeNumber": "1",
        "costCenter": "c",
        "department": "Year 7",
        "manager": {"value": "m1", "$ref": "Users/m1", "displayName": "M"},
    },
    EDU_USER: {
        "roles": [{"role": "student", "school": "s1", "roleType": "primary"}, {"role": "x"}],
        "grades": ["08", "07", "08"],
        "sisIdentifier": "S1",
        "birthDate": "2013-04-01",
        "sourcedId": "src-1",
    },
}


def test_the_published_bodies_are_those_the_rows_were_recorded_for() -> None:
    cases = INDEXED_ROWS["cases"]
    assert cases["entra"]["document"] == entra_user("a@x.example", "E-1")
    assert cases["okta"]["document"] == okta_user()
    assert cases["every_attribute"]["document"] == EVERY_ATTRIBUTE


@pytest.mark.parametrize("case", sorted(INDEXED_ROWS["cases"]))
def test_a_document_is_indexed_as_the_resource_indexer_did(case: str) -> None:
    recorded = INDEXED_ROWS["cases"][case]
    provider = make_provider(None)
    resource_type = next(t for t in provider.resource_types if t.name == recorded["resource_type"])
    model = provider.model_for(resource_type)
    # the document as stored: a dump of the validated body (scim.mapping.document)
    stored = model.model_validate(recorded["document"]).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    fields = INDEXED_ROWS["fields"]
    wanted = [IndexedValue(**dict(zip(fields, row, strict=True))) for row in recorded["rows"]]
    assert document_values(model, "resource-1", stored) == wanted
    resource = model.model_validate(stored)
    resource.id = "resource-1"
    assert indexed_values(resource) == wanted


def test_a_creation_validates_the_user_once(
    settings: Any, database: Database, district: District
) -> None:
    """Counted, never timed: the body and then the stored user were each validated into a
    resource (issue 15); the stored user's document is now indexed as it is."""
    made = itertools.count()

    def create(idp: IdP) -> Any:
        body = entra_user(f"counted.{next(made)}@x.example", f"E-{next(made)}")
        return idp.post("/Users", body)

    names = ("model_validate", "model_validate_json")
    assert _dumps(settings, database, district, create, names) == 1


def test_idp_create_bodies_are_indexed_as_a_full_reindex(
    idp: IdP, database: Database, district: District
) -> None:
    every = {k: v for k, v in EVERY_ATTRIBUTE.items() if k not in ("groups", EDU_USER)}
    for body in (entra_user("Test_User_ab6490ee@x.org", "0a21f0f2-8d2a"), okta_user(), every):
        created = idp.post("/Users", body)
        assert created.status_code == 201, created.text
        _assert_index_as_a_full_reindex(idp, database, district, created.json()["id"])


def test_a_creation_after_a_token_rotation_is_refused_and_creates_nothing(
    idp: IdP, database: Database, district: District
) -> None:
    idp.create_user("earlier.pupil")  # the token is cached from here on
    with database.session() as session:
        connections.rotate_token(
            session, system_actor(district.tenant_id, "test"), district.connection.name
        )
    refused = idp.post("/Users", {"schemas": [USER], "userName": "late.pupil"})
    assert refused.status_code == 401 and refused.json()["status"] == "401", refused.text
    with database.session(read_only=True) as session:
        assert users.find_by_username(session, district.tenant_id, "late.pupil") is None


def test_a_taken_username_is_refused_in_its_tenant_and_free_in_another(
    idp: IdP, database: Database, district: District
) -> None:
    assert idp.post("/Users", {"schemas": [USER], "userName": "twin"}).status_code == 201
    other = IdP(idp.client, add_connection(database, district, "Okta"))
    clash = other.post("/Users", {"schemas": [USER], "userName": "TWIN"})
    assert clash.status_code == 409 and clash.json()["scimType"] == "uniqueness", clash.text
    with database.session() as session:  # another tenant, with its own connection
        tenant = create_tenant(session, "Shelbyville District")
        token = connections.create_connection(
            session, system_actor(tenant.id, "test"), "Entra ID", "scim"
        ).token
    elsewhere = IdP(idp.client, token)
    assert elsewhere.post("/Users", {"schemas": [USER], "userName": "twin"}).status_code == 201


_MADE = itertools.count()


def _calls(
    settings: Any, database: Database, district: District, counted: Callable[[Any], bool]
) -> int:
    """How many calls ``counted(code)`` picks while the app serves one create (every thread
    of the app, as :func:`tests.scim.test_lean_writes._dumps` counts)."""
    calls, counting = 0, False

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if counting and event == "call":
            calls += counted(frame.f_code)

    threading.setprofile(count)
    try:
        with TestClient(create_app(settings, database=database)) as client:
            idp = IdP(client, district.token)
            for _ in range(2):  # the second time: every worker thread already started
                calls, counting = 0, True
                sys.setprofile(count)
                n = next(_MADE)
                answer = idp.post("/Users", entra_user(f"counted.{n}@x.example", f"C-{n}"))
                sys.setprofile(None)
                counting = False
                assert answer.status_code == 201, answer.text
    finally:
        threading.setprofile(None)
    return calls


def test_a_creation_routes_its_path_once(
    settings: Any, database: Database, district: District
) -> None:
    """Counted, never timed: the engine matched a create's path against its routes four
    times (reading the body, authenticating, the handler, the operation), 16 routes each
    (issue 15); a path is now routed once and its target kept."""
    router = os.path.join("scim2_server", "routing.py")

    def routing(code: Any) -> bool:
        return bool(code.co_name == "match" and code.co_filename.endswith(router))

    assert _calls(settings, database, district, routing) <= 1


def test_a_creation_dumps_its_body_before_the_write_lock(
    settings: Any, database: Database, district: District
) -> None:
    """Counted, never timed: the write lock (SQLite's, and this process's turn on it) is held
    only by the storage steps; the body's document was dumped inside it (issue 15)."""
    writer: Any = database.writer
    if writer is None:
        pytest.skip("PostgreSQL takes no turns on a write lock")

    def dump_under_lock(code: Any) -> bool:
        dump = code.co_name == "model_dump" and "scim2_models" in code.co_filename
        return bool(dump and writer._is_owned())

    def dump(code: Any) -> bool:
        return bool(code.co_name == "model_dump" and "scim2_models" in code.co_filename)

    assert _calls(settings, database, district, dump) == 1
    assert _calls(settings, database, district, dump_under_lock) == 0


def test_a_creation_makes_no_orm_object_of_the_new_user(
    settings: Any, database: Database, district: District
) -> None:
    """Counted, never timed: a new user's rows were written with Core, then made into ORM
    objects "as if read" (the user, its credential, its grades) only to be viewed and
    indexed (issue 15); its view is now made from the rows
    (:func:`server.domain.user_views.view_of_new`)."""
    made_as_read = os.path.join("server", "domain", "new_user_rows.py")

    def orm_object(code: Any) -> bool:
        return bool(code.co_name == "_as_read" and code.co_filename.endswith(made_as_read))

    assert _calls(settings, database, district, orm_object) == 0


def test_a_creation_indexes_only_the_attributes_its_user_holds(
    settings: Any, database: Database, district: District
) -> None:
    """Counted, never timed: the indexer visited each of a User's 31 attributes and worked
    out each value's index path and model type again (140 calls of ``scim/index.py`` and
    ``scim/values.py`` for Entra ID's create, issue 15); it now visits the attributes the
    document holds, each placed once per model."""
    indexer = (os.path.join("scim", "index.py"), os.path.join("scim", "values.py"))

    def indexing(code: Any) -> bool:
        return bool(code.co_filename.endswith(indexer))

    assert _calls(settings, database, district, indexing) <= 60


def test_a_connection_setting_changed_elsewhere_applies_to_the_next_creation(
    idp: IdP, database: Database, database_url: str, district: District
) -> None:
    """The connection a create reads is the one stored now: a default role set by another
    process (its own engine and connections) applies to the very next user pushed."""
    first = idp.post("/Users", {"schemas": [USER], "userName": "before.default"})
    assert first.status_code == 201, first.text
    elsewhere = Database(database_url)
    try:
        with elsewhere.session() as session:
            connection = session.get(Connection, district.connection.id)
            assert connection is not None
            actor = system_actor(district.tenant_id, "test")
            completeness.set_defaults(session, actor, connection, role="teacher")
    finally:
        elsewhere.dispose()
    answer = idp.post("/Users", {"schemas": [USER], "userName": "after.default"})
    assert answer.status_code == 201, answer.text
    with database.session(read_only=True) as session:
        made = users.find_by_username(session, district.tenant_id, "after.default")
        earlier = users.find_by_username(session, district.tenant_id, "before.default")
        assert made is not None and made.primary_role == "teacher"
        assert earlier is not None and earlier.primary_role != "teacher"
