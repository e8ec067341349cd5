"""A learning app's OneRoster session: token, paged walks, nested reads, change pulls."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from server.db import SchoolClass
from server.domain import roster, roster_views, users
from server.domain.actors import system_actor
from server.domain.search import MAX_FILTER_TERMS
from tests.oneroster.conftest import V1P1, V1P2, bearer
from tests.wire import imsx_failure


def _walk(api, token, url):
    """Follow ``rel="next"`` links to the end, as a consumer does."""
    seen, pages, total = [], 0, None
    while url:
        response = api.get(url, headers=bearer(token))
        assert response.status_code == 200, response.text
        total = int(response.headers["X-Total-Count"])
        seen += [u["sourcedId"] for u in response.json()["users"]]
        pages += 1
        links = dict(
            (part.split(";")[1].strip()[5:-1], part.split(";")[0].strip()[1:-1])
            for part in response.headers["Link"].split(",")
        )
        url = links.get("next")
    return seen, pages, total


def test_app_walks_every_user_page_by_page_following_the_link_header(api, reader, district):
    token = reader()
    seen, pages, total = _walk(api, token, f"{V1P2}/users?limit=7")
    assert len(seen) == total == len(set(seen)) == 24
    assert pages == 4
    assert "north-leaver" in seen
    assert "north-gone" not in seen


def test_link_header_names_first_prev_next_and_last(api, reader, district):
    response = api.get(f"{V1P2}/users?limit=5&offset=10", headers=bearer(reader()))
    link = response.headers["Link"]
    assert '&offset=0>; rel="first"' in link
    assert '&offset=5>; rel="prev"' in link
    assert '&offset=15>; rel="next"' in link
    assert '&offset=20>; rel="last"' in link
    assert response.headers["X-Total-Count"] == "24"


def test_app_reads_the_students_of_a_class_in_both_versions(api, reader, district):
    token = reader()
    for base in (V1P1, V1P2):
        response = api.get(f"{base}/classes/north-bio-1/students", headers=bearer(token))
        assert response.status_code == 200
        ids = sorted(u["sourcedId"] for u in response.json()["users"])
        assert ids == [f"north-s1-{n}" for n in range(5)]
    teachers = api.get(f"{V1P2}/classes/north-bio-1/teachers", headers=bearer(token)).json()
    assert [t["sourcedId"] for t in teachers["users"]] == ["north-teacher"]


def test_app_pulls_only_what_changed_since_its_last_sync(api, reader, district, database):
    token = reader()
    time.sleep(0.01)
    since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    with database.session() as session:
        user = users.find_by_sourced_id(session, district.tenant_id, "south-s2-3")
        users.update_user(session, system_actor(district.tenant_id), user, {"email": "n@x.org"})
    response = api.get(
        f"{V1P2}/users", params={"filter": f"dateLastModified>'{since}'"}, headers=bearer(token)
    )
    assert [u["sourcedId"] for u in response.json()["users"]] == ["south-s2-3"]
    assert response.json()["users"][0]["email"] == "n@x.org"


def test_v1p1_users_have_a_role_orgs_and_string_booleans(api, reader, district):
    body = api.get(f"{V1P1}/users/north-s1-0", headers=bearer(reader())).json()["user"]
    assert body["role"] == "student"
    assert body["enabledUser"] == "true"
    assert body["status"] == "active"
    assert [o["sourcedId"] for o in body["orgs"]] == ["north"]
    assert body["orgs"][0]["href"].endswith("/ims/oneroster/v1p1/orgs/north")
    assert body["grades"] == ["09"]
    assert "roles" not in body


def test_v1p2_users_have_roles_with_orgs_and_a_primary_org(api, reader, district):
    body = api.get(f"{V1P2}/users/north-teacher", headers=bearer(reader())).json()["user"]
    assert body["roles"] == [
        {
            "roleType": "primary",
            "role": "teacher",
            "org": {
                "href": "http://testserver/ims/oneroster/rostering/v1p2/orgs/north",
                "sourcedId": "north",
                "type": "org",
            },
        }
    ]
    assert body["primaryOrg"]["sourcedId"] == "north"
    assert body["dateLastModified"].endswith("Z")
    assert "role" not in body


def test_leavers_show_as_tobedeleted_and_disabled_and_deleted_users_are_gone(api, reader, district):
    token = reader()
    for base in (V1P1, V1P2):
        leaver = api.get(f"{base}/users/north-leaver", headers=bearer(token)).json()["user"]
        assert leaver["status"] == "tobedeleted"
        assert leaver["enabledUser"] == "false"
        imsx_failure(
            api.get(f"{base}/users/north-gone", headers=bearer(token)), 404, "unknownobject"
        )


def test_filters_follow_the_spec_grammar(api, reader, district):
    token = reader()

    def ids(collection, text):
        response = api.get(f"{V1P2}/{collection}", params={"filter": text}, headers=bearer(token))
        assert response.status_code == 200, response.text
        key = "users" if collection in ("users", "students", "teachers") else collection
        return sorted(item["sourcedId"] for item in response.json()[key])

    assert ids("users", "familyName='North1' AND givenName='Stu2'") == ["north-s1-2"]
    assert ids("users", "sourcedId='north-s1-0' OR sourcedId='south-s2-4'") == [
        "north-s1-0",
        "south-s2-4",
    ]
    assert ids("users", "status='tobedeleted'") == ["north-leaver", "south-leaver"]
    assert ids("users", "enabledUser='false'") == ["north-leaver", "south-leaver"]
    assert ids("users", "familyName='O''Brien'") == []
    assert ids("users", "roles.org.sourcedId='south' AND role='teacher'") == ["south-teacher"]
    assert ids("teachers", "email~'NORTH'") == ["north-teacher"]
    assert ids("classes", "school.sourcedId='south' AND title~'2'") == ["south-bio-2"]
    assert ids("classes", "terms.sourcedId='north-fall'") == ["north-bio-1", "north-bio-2"]
    assert ids("enrollments", "role='teacher' AND class.sourcedId='north-bio-2'") == [
        "north-bio-2-teacher"
    ]
    assert ids("academicSessions", "type='gradingPeriod'") == ["north-q1", "south-q1"]
    assert ids("courses", "grades='10'") == ["north-bio", "south-bio"]


def test_sort_orderby_and_fields_shape_the_page(api, reader, district):
    response = api.get(
        f"{V1P2}/students",
        params={
            "sort": "familyName",
            "orderBy": "desc",
            "fields": "sourcedId,familyName",
            "limit": 3,
        },
        headers=bearer(reader()),
    )
    body = response.json()["users"]
    assert [u["familyName"] for u in body] == ["South2", "South2", "South2"]
    assert all(set(u) == {"sourcedId", "familyName"} for u in body)


def test_unknown_filter_sort_and_field_names_are_400_status_reports(api, reader, district):
    token = reader()
    cases = {
        "filter=shoeSize='9'": "invalid_filter_field",
        "filter=familyName": "invalid_filter_field",
        "filter=familyName='x' XOR givenName='y'": "invalid_filter_field",
        "filter=dateLastModified>'yesterday'": "invalid_filter_field",
        "sort=shoeSize": "invalid_selection_field",
        "fields=sourcedId,shoeSize": "invalid_selection_field",
        "limit=-1": "invalid_selection_field",
        "offset=abc": "invalid_selection_field",
        "orderBy=sideways": "invalid_selection_field",
    }
    for query, minor in cases.items():
        response = api.get(f"{V1P2}/users?{query}", headers=bearer(token))
        body = imsx_failure(response, 400, minor)
        field = body["imsx_CodeMinor"]["imsx_codeMinorField"][0]
        assert field["imsx_codeMinorFieldName"] == "TargetEndSystem", query


def test_nested_reads_check_their_parent(api, reader, district):
    token = reader()
    for path in (
        "classes/nope/students",
        "schools/south/classes/north-bio-1/students",
        "schools/north-bio/classes",
        "wombats",
    ):
        imsx_failure(api.get(f"{V1P2}/{path}", headers=bearer(token)), 404, "unknownobject")
    right = api.get(f"{V1P2}/schools/north/classes/north-bio-1/enrollments", headers=bearer(token))
    assert right.headers["X-Total-Count"] == "6"


def test_every_nested_read_answers(api, reader, district):
    token = reader()
    expected = {
        "schools/north/classes": ("classes", 2),
        "schools/north/courses": ("courses", 1),
        "schools/north/enrollments": ("enrollments", 12),
        "schools/north/students": ("users", 11),
        "schools/north/teachers": ("users", 1),
        "schools/north/terms": ("academicSessions", 1),
        "courses/north-bio/classes": ("classes", 2),
        "terms/north-fall/classes": ("classes", 2),
        "terms/north-fall/gradingPeriods": ("academicSessions", 1),
        "students/north-s1-1/classes": ("classes", 1),
        "teachers/north-teacher/classes": ("classes", 2),
        "users/north-teacher/classes": ("classes", 2),
        "schools/north/classes/north-bio-1/students": ("users", 5),
        "schools/north/classes/north-bio-1/teachers": ("users", 1),
    }
    for base in (V1P1, V1P2):
        for path, (envelope, count) in expected.items():
            response = api.get(f"{base}/{path}", headers=bearer(token))
            assert response.status_code == 200, (path, response.text)
            assert len(response.json()[envelope]) == count, path


def test_demographics_render_birth_date_sex_and_race_flags(api, reader, district):
    body = api.get(f"{V1P2}/demographics/north-s1-0", headers=bearer(reader())).json()
    assert body["demographics"]["birthDate"] == "2011-01-01"
    assert body["demographics"]["sex"] == "male"
    assert body["demographics"]["asian"] == "true"


def test_values_the_database_cannot_hold_are_refused_not_crashed_on(api, reader, district):
    token = reader()
    for url, status, minor in (
        (f"{V1P2}/users?filter=familyName%3D%27a%00b%27", 400, "invalid_filter_field"),
        (f"{V1P2}/users/a%00b", 404, "unknownobject"),
        (f"{V1P1}/classes/a%00b/students", 404, "unknownobject"),
    ):
        imsx_failure(api.get(url, headers=bearer(token)), status, minor)
    long = api.get(f"{V1P2}/users?filter=familyName%3D%27{'x' * 5000}%27", headers=bearer(token))
    assert long.json() == {"users": []}


def test_an_enrolled_user_without_roles_gets_them_from_enrollments(api, reader, district, database):
    with database.session() as session:
        system = system_actor(district.tenant_id)
        user = users.create_user(
            session, system, {"given_name": "Sam", "family_name": "Scim", "sourced_id": "scim-1"}
        )
        klass = roster_views.find_by_sourced_id(
            session, SchoolClass, district.tenant_id, "south-bio-2"
        )
        roster.enroll(session, system, user, klass)
    token = reader()
    v1p2 = api.get(f"{V1P2}/users/scim-1", headers=bearer(token)).json()["user"]
    assert [(r["roleType"], r["role"], r["org"]["sourcedId"]) for r in v1p2["roles"]] == [
        ("primary", "student", "south")
    ]
    assert v1p2["primaryOrg"]["sourcedId"] == "south"
    v1p1 = api.get(f"{V1P1}/users/scim-1", headers=bearer(token)).json()["user"]
    assert [o["sourcedId"] for o in v1p1["orgs"]] == ["south"]


@pytest.mark.parametrize("joiner", [" OR ", " AND "])
def test_a_filter_too_large_to_run_is_a_400_never_a_retry(api, reader, district, joiner):
    # Issue 11 defect 7: 1,200 OR terms came back 429 "busy" (SQLite: expression tree is too
    # large), telling the client to retry a request that can never succeed.
    token = reader()
    at_limit = joiner.join(f"identifier='n{i}'" for i in range(MAX_FILTER_TERMS))
    ok = api.get(f"{V1P2}/users", params={"filter": at_limit}, headers=bearer(token))
    assert ok.status_code == 200, ok.text
    huge = joiner.join(f"identifier='n{i}'" for i in range(1200))
    response = api.get(f"{V1P2}/users", params={"filter": huge}, headers=bearer(token))
    assert response.status_code == 400, response.text
    field = response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]
    assert field["imsx_codeMinorFieldValue"] == "invalid_filter_field"
    assert str(MAX_FILTER_TERMS) in response.json()["imsx_description"]
