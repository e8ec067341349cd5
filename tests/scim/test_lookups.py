"""Issue 15: the lookups identity providers make before every write, served cheaply.

Entra and Okta look a user up by ``userName eq`` or ``externalId eq`` before they create or
change it (REFERENCES.md: Okta "searches ``userName eq`` before creating"), and read it back
by id. Those shapes are served by :mod:`scim.lookups` in a couple of statements, without the
protocol engine; every other shape (``attributes``, other filters, conditional headers, POST
``.search``) is served by scim2-server as before. Both must say the same thing: the bodies
are compared here, field for field, over users of every kind, and the lean path finds only
what :func:`server.domain.access.visible_records` lets the connection see.
"""

from __future__ import annotations

from typing import Any

import pytest

from server import districts
from server.db.session import Database
from server.domain import connections, users
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant
from server.domain.users import RoleAssignment
from tests.scim.conftest import District, add_connection
from tests.scim.helpers import EDU_GROUP, EDU_USER, ENTERPRISE, GROUP, SEARCH, USER, IdP
from tests.scim.helpers import statements as counted

FRAME = {"BEGIN", "SAVEPOINT", "RELEASE", "COMMIT", "ROLLBACK"}


def _work(seen: list[str]) -> list[str]:
    return [s for s in seen if s.split(" ", 1)[0].upper() not in FRAME]


def _varied_users(idp: IdP, database: Database, district: District) -> list[dict[str, Any]]:
    """Users of every kind a lookup may return, as their creation answered them."""
    with database.session() as session:
        second = districts.school(
            session, system_actor(district.tenant_id), "Shelbyville High", sourced_id="sch-2"
        )
        second_id = second.id
    plain = idp.create_user("plain.pupil")
    made = [
        plain,
        idp.create_user(
            "full.pupil@school.example",
            externalId="sis-1001",
            name={"givenName": "Lisa", "familyName": "Simpson", "middleName": "Marie"},
            displayName="Lisa Simpson",
            title="Pupil",
            emails=[
                {"value": "lisa@school.example", "type": "work", "primary": True},
                {"value": "lisa@home.example", "type": "home"},
            ],
            phoneNumbers=[{"value": "+1 555 0100", "type": "mobile"}],
            addresses=[{"locality": "Springfield", "country": "US", "type": "home"}],
            schemas=[USER, ENTERPRISE, EDU_USER],
            **{
                ENTERPRISE: {
                    "employeeNumber": "E-1",
                    "department": "Year 7",
                    "manager": {"value": plain["id"], "$ref": f"Users/{plain['id']}"},
                },
                EDU_USER: {
                    "roles": [
                        {"role": "student", "school": "sch-1", "roleType": "primary"},
                        {"role": "student", "school": "sch-2", "roleType": "secondary"},
                    ],
                    "grades": ["08", "07"],
                    "sisIdentifier": "SIS-1001",
                    "birthDate": "2013-04-01",
                    "sourcedId": "src-1001",
                },
            },
        ),
        idp.create_user("core.teacher", externalId="T-1", userType="Teacher"),
        idp.create_user("gone.pupil", externalId="sis-gone", active=False),
        idp.create_user("Mixed.Case", externalId="Ext-MiXeD"),
    ]
    member = made[1]["id"]
    idp.create_group("Chess Club", [member, made[0]["id"]])
    idp.create_group(
        "7B Science",
        [member],
        schemas=[GROUP, EDU_GROUP],
        **{EDU_GROUP: {"school": "sch-1", "classCode": "7B-SCI"}},
    )
    with database.session() as session:  # a user of the connection that never came by SCIM
        actor = _connection_actor(session, district)
        fields = {
            "username": "imported.pupil",
            "external_id": "sis-imported",
            "given_name": "Bart",
            "family_name": "Simpson",
            "roles": [RoleAssignment(second_id, "student", "primary")],
            "grades": ["05"],
            "identifier": "SIS-7",
            "sourced_id": "or-bart",
        }
        imported = users.create_user(session, actor, fields)
        made.append({"id": imported.id, "userName": "imported.pupil"})
    return made


def _connection_actor(session: Any, district: District) -> Any:
    from server.db import Connection
    from server.domain.actors import connection_actor

    connection = session.get(Connection, district.connection.id)
    return connection_actor(connection)


def _another_tenants_token(database: Database) -> str:
    """A SCIM connection of another district."""
    with database.session() as session:
        tenant = create_tenant(session, "Shelbyville District")
        system = system_actor(tenant.id, "test")
        return connections.create_connection(session, system, "Entra ID", "scim").token


def _generic_search(idp: IdP, scim_filter: str, **paging: int) -> Any:
    """The same search through scim2-server's engine (POST .search never takes the lean path)."""
    return idp.post("/Users/.search", {"schemas": [SEARCH], "filter": scim_filter, **paging})


def test_lookups_answer_exactly_what_the_engine_answers_for_every_kind_of_user(
    idp: IdP, database: Database, district: District
) -> None:
    made = _varied_users(idp, database, district)
    externals = ["sis-1001", "T-1", "sis-gone", "ext-mixed", "SIS-IMPORTED", "nobody"]
    filters = [f'userName eq "{user["userName"]}"' for user in made]
    filters += ['userName eq "MIXED.CASE"', 'USERNAME EQ "plain.pupil"', 'userName eq "ghost"']
    filters += [f'externalId eq "{value}"' for value in externals]
    for scim_filter in filters:
        lean = idp.get("/Users", params={"filter": scim_filter})
        generic = _generic_search(idp, scim_filter)
        assert lean.status_code == generic.status_code == 200, (scim_filter, lean.text)
        assert lean.json() == generic.json(), scim_filter
        assert lean.headers["content-type"] == generic.headers["content-type"]
        for paging in ({"startIndex": 1, "count": 5}, {"startIndex": 2}, {"count": 0}):
            lean = idp.get("/Users", params={"filter": scim_filter, **paging})
            assert lean.json() == _generic_search(idp, scim_filter, **paging).json(), paging
    found = idp.get("/Users", params={"filter": 'userName eq "full.pupil@school.example"'})
    resource = found.json()["Resources"][0]
    assert {g["display"] for g in resource["groups"]} == {"Chess Club", "7B Science"}
    assert resource[ENTERPRISE]["employeeNumber"] == "E-1"
    assert resource[EDU_USER]["grades"] == ["08", "07"]


def test_a_read_by_id_answers_exactly_what_the_engine_answers(
    idp: IdP, database: Database, district: District
) -> None:
    for user in _varied_users(idp, database, district):
        lean = idp.get(f"/Users/{user['id']}")
        # a conditional read is served by the engine: it must give the same 200
        generic = idp.get(f"/Users/{user['id']}", headers={"If-None-Match": 'W/"0"'})
        assert lean.status_code == generic.status_code == 200, lean.text
        assert lean.json() == generic.json()
        for header in ("etag", "content-location", "content-type", "cache-control"):
            assert lean.headers.get(header) == generic.headers.get(header), header
        assert "location" not in lean.headers
        etag = lean.headers["etag"]
        assert idp.get(f"/Users/{user['id']}", headers={"If-None-Match": etag}).status_code == 304


def test_an_sso_connection_looks_up_its_users_like_any_other(
    app: Any, database: Database, district: District
) -> None:
    sso = IdP(app, add_connection(database, district, "Clever", sso="Clever"))
    pupil = sso.create_user("sso.pupil", externalId="clever-1")
    for scim_filter in ('userName eq "sso.pupil"', 'externalId eq "clever-1"'):
        lean = sso.get("/Users", params={"filter": scim_filter})
        assert lean.json() == _generic_search(sso, scim_filter).json()
        assert lean.json()["Resources"][0]["id"] == pupil["id"]
    assert sso.get(f"/Users/{pupil['id']}").json() == pupil | {"meta": pupil["meta"]}


def test_other_shapes_still_get_the_engines_answer(idp: IdP) -> None:
    pupil = idp.create_user("shape.pupil", externalId="sis-shape", title="Pupil")
    projected = idp.get(
        "/Users", params={"filter": 'userName eq "shape.pupil"', "attributes": "userName"}
    ).json()
    assert set(projected["Resources"][0]) == {"schemas", "id", "userName"}
    excluded = idp.get(f"/Users/{pupil['id']}", params={"excludedAttributes": "title"}).json()
    assert "title" not in excluded and excluded["userName"] == "shape.pupil"
    combined = idp.get(
        "/Users", params={"filter": 'userName eq "shape.pupil" and externalId eq "sis-shape"'}
    )
    assert combined.json()["totalResults"] == 1
    bad = idp.get("/Users", params={"filter": 'userName eq "x"', "count": "many"})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidValue"
    unknown = idp.get("/Users", params={"filter": 'userName eq "x"', "sortBy": "nickName"})
    assert unknown.status_code == 200


@pytest.mark.parametrize(
    "path_or_filter",
    ["by id", 'userName eq "hidden.pupil"', 'externalId eq "sis-hidden"'],
)
def test_the_lean_path_finds_only_what_the_connection_may_see(
    idp: IdP, database: Database, district: District, path_or_filter: str
) -> None:
    hidden = idp.create_user("hidden.pupil", externalId="sis-hidden")
    other = IdP(idp.client, add_connection(database, district, "Other IdP"))
    stranger = IdP(idp.client, _another_tenants_token(database))
    for looking in (other, stranger):
        if path_or_filter == "by id":
            missing = looking.get(f"/Users/{hidden['id']}")
            assert missing.status_code == 404
            assert missing.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        else:
            found = looking.get("/Users", params={"filter": path_or_filter}).json()
            assert found["totalResults"] == 0 and found["Resources"] == []
    assert idp.delete(f"/Users/{hidden['id']}").status_code == 204
    if path_or_filter == "by id":
        assert idp.get(f"/Users/{hidden['id']}").status_code == 404
    else:
        assert idp.get("/Users", params={"filter": path_or_filter}).json()["totalResults"] == 0


def test_a_lookup_reads_the_user_and_what_it_shows_in_two_statements(
    idp: IdP, database: Database, district: District
) -> None:
    made = _varied_users(idp, database, district)
    full = made[1]
    requests = [
        ("/Users", {"filter": f'userName eq "{full["userName"]}"'}),
        ("/Users", {"filter": 'externalId eq "sis-1001"'}),
        ("/Users", {"filter": 'externalId eq "sis-1001"', "startIndex": 1, "count": 10}),
        (f"/Users/{full['id']}", {}),
    ]
    for path, params in requests:
        with counted(database) as seen:
            answer = idp.get(path, params=params)
        assert answer.status_code == 200, answer.text
        work = _work(seen)
        # the user with its roles (and their schools) and grades, then its memberships; no
        # stale-index check (these filters read the users table, not the index), no credential
        assert len(work) <= 2, work
        assert not any("scim_values" in s or "FROM credentials" in s for s in work), work


def test_every_tolerance_profile_gets_the_engines_answer(profiled: IdP) -> None:
    pupil = profiled.create_user("profiled.pupil", externalId="p-1", title="Pupil")
    for scim_filter in ('userName eq "profiled.pupil"', 'externalId eq "p-1"'):
        lean = profiled.get("/Users", params={"filter": scim_filter})
        assert lean.json() == _generic_search(profiled, scim_filter).json()
    generic = profiled.get(f"/Users/{pupil['id']}", headers={"If-None-Match": 'W/"0"'})
    assert profiled.get(f"/Users/{pupil['id']}").json() == generic.json()


def test_a_nul_character_gets_a_clear_answer_rather_than_a_crash(idp: IdP) -> None:
    """PostgreSQL refuses NUL in text: a read by such an id answered 500 there."""
    idp.create_user("nul.pupil")
    missing = idp.get("/Users/abc%00def")
    assert missing.status_code == 404 and missing.json()["status"] == "404"
    refused = idp.get("/Users", params={"filter": 'userName eq "nul\x00pupil"'})
    assert refused.status_code == 400 and refused.json()["scimType"] == "invalidFilter"


def test_a_lookup_reads_its_request_headers_in_one_pass(
    settings: Any, database: Database, district: District
) -> None:
    """Issue 15: telling a lookup from a conditional read asked for each of four headers by
    name, each a walk of all the request's headers (~5% of a lookup's unit of work)."""
    import sys
    import threading

    from scim2_server.requests import ScimRequest
    from starlette.testclient import TestClient

    from server.app import create_app

    walks, counting = 0, False

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal walks
        walks += counting and event == "call" and frame.f_code is ScimRequest.header.__code__

    threading.setprofile(count)  # the SCIM application serves in a worker thread
    try:
        with TestClient(create_app(settings, database=database)) as client:
            idp = IdP(client, district.token)
            idp.create_user("headed.pupil")
            counting = True
            sys.setprofile(count)
            found = idp.get("/Users", params={"filter": 'userName eq "headed.pupil"'})
            sys.setprofile(None)
            counting = False
    finally:
        threading.setprofile(None)
    assert found.status_code == 200 and found.json()["totalResults"] == 1, found.text
    assert walks == 0, walks
