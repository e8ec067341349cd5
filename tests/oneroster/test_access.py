"""Who may read what: tokens, the spec's scopes per endpoint, school-limited clients, tenants."""

from __future__ import annotations

from datetime import timedelta

from server.domain import oauth
from server.domain.actors import system_actor
from tests.oneroster.conftest import V1P1, V1P2, bearer, build_district, scope
from tests.wire import imsx_failure


def test_requests_without_a_valid_token_are_401_unauthorisedrequest(api, district):
    for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic abc"}):
        response = api.get(f"{V1P2}/users", headers=headers)
        imsx_failure(response, 401, "unauthorisedrequest")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_refused(api, database, district):
    with database.session() as session:
        new = oauth.create_client(
            session,
            system_actor(district.tenant_id),
            "old",
            kind="api",
            scopes=[scope("v1p2", "roster.readonly")],
        )
        oauth.store_token(
            session,
            new.client,
            "expired-token",
            scope("v1p2", "roster.readonly"),
            expires_in=timedelta(seconds=-1),
        )
    imsx_failure(
        api.get(f"{V1P2}/users", headers=bearer("expired-token")), 401, "unauthorisedrequest"
    )


def test_core_scope_reads_flat_collections_but_not_nested_ones(api, reader, district):
    token = reader([scope("v1p2", "roster-core.readonly")])
    assert api.get(f"{V1P2}/users", headers=bearer(token)).status_code == 200
    assert api.get(f"{V1P2}/classes/north-bio-1", headers=bearer(token)).status_code == 200
    nested = api.get(f"{V1P2}/classes/north-bio-1/students", headers=bearer(token))
    imsx_failure(nested, 403, "forbidden")
    imsx_failure(api.get(f"{V1P2}/demographics", headers=bearer(token)), 403, "forbidden")


def test_roster_scope_reads_nested_collections_but_demographics_need_their_own(
    api, reader, district
):
    token = reader([scope("v1p2", "roster.readonly")])
    assert api.get(f"{V1P2}/schools/north/students", headers=bearer(token)).status_code == 200
    imsx_failure(api.get(f"{V1P2}/demographics", headers=bearer(token)), 403, "forbidden")
    demo = reader([scope("v1p2", "roster-demographics.readonly")])
    assert api.get(f"{V1P2}/demographics", headers=bearer(demo)).status_code == 200
    imsx_failure(api.get(f"{V1P2}/users", headers=bearer(demo)), 403, "forbidden")


def test_each_version_asks_for_its_own_scope_uris(api, reader, district):
    v1p2_only = reader([scope("v1p2", "roster.readonly")])
    imsx_failure(api.get(f"{V1P1}/users", headers=bearer(v1p2_only)), 403, "forbidden")
    v1p1_only = reader([scope("v1p1", "roster.readonly")])
    assert api.get(f"{V1P1}/users", headers=bearer(v1p1_only)).status_code == 200
    imsx_failure(api.get(f"{V1P2}/users", headers=bearer(v1p1_only)), 403, "forbidden")


def test_a_client_limited_to_a_school_sees_only_that_school(api, reader, district):
    token = reader(schools=["north"])
    users = api.get(f"{V1P2}/users", headers=bearer(token))
    ids = [u["sourcedId"] for u in users.json()["users"]]
    assert users.headers["X-Total-Count"] == "12"
    assert all(i.startswith("north") for i in ids)
    classes = api.get(f"{V1P2}/classes", headers=bearer(token)).json()["classes"]
    assert {c["sourcedId"] for c in classes} == {"north-bio-1", "north-bio-2"}
    orgs = api.get(f"{V1P2}/orgs", headers=bearer(token)).json()["orgs"]
    assert {o["sourcedId"] for o in orgs} == {"district", "north"}
    district_org = next(o for o in orgs if o["sourcedId"] == "district")
    assert [c["sourcedId"] for c in district_org["children"]] == ["north"]
    for path in (
        "users/south-s1-1",
        "classes/south-bio-1",
        "schools/south/students",
        "enrollments/south-e1-1",
        "courses/south-bio",
    ):
        imsx_failure(api.get(f"{V1P2}/{path}", headers=bearer(token)), 404, "unknownobject")


def test_tenants_never_see_each_other(api, reader, database, district):
    with database.session() as session:
        other = build_district(session, "Shelbyville", students_per_class=1)
    theirs = reader(tenant_id=other.tenant_id)
    ours = reader()
    their_users = api.get(f"{V1P2}/users", headers=bearer(theirs)).json()["users"]
    assert their_users and all(u["sourcedId"].startswith("shelbyville-") for u in their_users)
    imsx_failure(api.get(f"{V1P2}/users/north-s1-1", headers=bearer(theirs)), 404, "unknownobject")
    imsx_failure(
        api.get(f"{V1P2}/users/shelbyville-north-s1-0", headers=bearer(ours)), 404, "unknownobject"
    )
