"""OneRoster 1.1 and 1.2 Rostering checks against a live server.

Every flat collection, single object and nested read of both versions is fetched over HTTP and
each object is validated against the JSON Schemas in ``schemas/`` (written from the 1.1 REST
binding and the 1.2 Rostering OpenAPI). Paging is walked to the end through the ``Link``
header, sorting is checked both ways, filters and field selection are applied, and every error
answer is validated against the ``imsx_StatusInfo`` schema.
"""

from __future__ import annotations

import httpx
import pytest
from jsonschema import Draft202012Validator

from conformance.oneroster.conftest import PREFIXES, LiveServer

VERSIONS = ("v1p1", "v1p2")
# URL name -> (envelope, singular envelope, object kind, a field to sort on)
COLLECTIONS = {
    "orgs": ("orgs", "org", "org", "name"),
    "schools": ("orgs", "org", "org", "name"),
    "academicSessions": ("academicSessions", "academicSession", "academicSession", "title"),
    "terms": ("academicSessions", "academicSession", "academicSession", "startDate"),
    "gradingPeriods": ("academicSessions", "academicSession", "academicSession", "title"),
    "classes": ("classes", "class", "class", "title"),
    "courses": ("courses", "course", "course", "title"),
    "users": ("users", "user", "user", "familyName"),
    "students": ("users", "user", "user", "givenName"),
    "teachers": ("users", "user", "user", "familyName"),
    "enrollments": ("enrollments", "enrollment", "enrollment", "role"),
    "demographics": ("demographics", "demographics", "demographics", "birthDate"),
}
NESTED = {
    "schools/school-maple/classes": ("classes", "class"),
    "schools/school-maple/courses": ("courses", "course"),
    "schools/school-maple/enrollments": ("enrollments", "enrollment"),
    "schools/school-maple/students": ("users", "user"),
    "schools/school-maple/teachers": ("users", "user"),
    "schools/school-maple/terms": ("academicSessions", "academicSession"),
    "schools/school-maple/classes/class-school-maple-1/enrollments": ("enrollments", "enrollment"),
    "schools/school-maple/classes/class-school-maple-1/students": ("users", "user"),
    "schools/school-maple/classes/class-school-maple-1/teachers": ("users", "user"),
    "classes/class-school-cedar-2/students": ("users", "user"),
    "classes/class-school-cedar-2/teachers": ("users", "user"),
    "courses/course-school-cedar-1/classes": ("classes", "class"),
    "terms/term-fall-2026/classes": ("classes", "class"),
    "terms/term-fall-2026/gradingPeriods": ("academicSessions", "academicSession"),
    "students/student-school-cedar-4/classes": ("classes", "class"),
    "teachers/teacher-school-cedar-1/classes": ("classes", "class"),
    "users/teacher-school-maple-2/classes": ("classes", "class"),
}


def _valid(validator: Draft202012Validator, obj: object, where: str) -> None:
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{where}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )


def _links(header: str) -> dict[str, str]:
    links = {}
    for part in header.split(","):
        target, _, rel = part.partition(";")
        links[rel.strip().removeprefix('rel="').removesuffix('"')] = target.strip()[1:-1]
    return links


def _walk(http, url: str, envelope: str) -> tuple[list[dict], int]:
    items: list[dict] = []
    total = None
    next_url: str | None = url
    while next_url:
        response = http.get(next_url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        total = int(response.headers["X-Total-Count"])
        links = _links(response.headers["Link"])
        assert "first" in links and "last" in links
        items += response.json()[envelope]
        next_url = links.get("next")
    return items, total or 0


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", COLLECTIONS)
def test_collection_walks_to_the_end_and_every_object_is_valid(
    live: LiveServer, schemas, version, name
):
    envelope, _, kind, _ = COLLECTIONS[name]
    with live.client() as http:
        items, total = _walk(http, f"{PREFIXES[version]}/{name}?limit=7", envelope)
    assert items, f"{name} is empty in the demo district"
    assert len(items) == total
    ids = [item["sourcedId"] for item in items]
    assert len(set(ids)) == len(ids), "pages overlap"
    for item in items:
        _valid(schemas[f"{version}/{kind}"], item, f"{name}/{item['sourcedId']}")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", COLLECTIONS)
def test_single_objects_come_in_their_singular_envelope(live: LiveServer, schemas, version, name):
    envelope, single, kind, _ = COLLECTIONS[name]
    base = PREFIXES[version]
    with live.client() as http:
        first = http.get(f"{base}/{name}?limit=1").json()[envelope][0]
        response = http.get(f"{base}/{name}/{first['sourcedId']}")
        assert response.status_code == 200
        body = response.json()
        assert list(body) == [single]
        assert body[single] == first
        _valid(schemas[f"{version}/{kind}"], body[single], f"{name}/{first['sourcedId']}")
        missing = http.get(f"{base}/{name}/no-such-record")
        assert missing.status_code == 404
        _valid(schemas["imsx_StatusInfo"], missing.json(), "404")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", COLLECTIONS)
def test_sorting_orders_both_ways(live: LiveServer, version, name):
    envelope, _, _, field = COLLECTIONS[name]
    base = PREFIXES[version]
    with live.client() as http:
        for sort in ("sourcedId", field):
            up = http.get(f"{base}/{name}", params={"sort": sort, "limit": 1000}).json()[envelope]
            down = http.get(
                f"{base}/{name}", params={"sort": sort, "orderBy": "desc", "limit": 1000}
            ).json()[envelope]
            # Missing values sort as the largest.
            values = [(sort not in item, item.get(sort, "")) for item in up]
            assert values == sorted(values), (name, sort)
            downward = [(sort not in item, item.get(sort, "")) for item in down]
            assert downward == sorted(values, reverse=True), (name, sort)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", COLLECTIONS)
def test_filters_and_field_selection_narrow_the_answer(live: LiveServer, version, name):
    envelope, _, _, _ = COLLECTIONS[name]
    base = PREFIXES[version]
    with live.client() as http:
        everything = http.get(f"{base}/{name}?limit=1000").json()[envelope]
        target = everything[-1]["sourcedId"]
        quoted = target.replace("'", "''")
        one = http.get(f"{base}/{name}", params={"filter": f"sourcedId='{quoted}'"})
        assert [i["sourcedId"] for i in one.json()[envelope]] == [target]
        assert one.headers["X-Total-Count"] == "1"
        newest = max(item["dateLastModified"] for item in everything)
        later = http.get(f"{base}/{name}", params={"filter": f"dateLastModified>'{newest}'"})
        assert later.json()[envelope] == []
        both = http.get(
            f"{base}/{name}",
            params={"filter": f"sourcedId='{quoted}' OR status='tobedeleted'", "limit": 1000},
        ).json()[envelope]
        expected = {i["sourcedId"] for i in everything if i["status"] == "tobedeleted"} | {target}
        assert {i["sourcedId"] for i in both} == expected
        slim = http.get(f"{base}/{name}", params={"fields": "sourcedId,status"}).json()[envelope]
        assert all(set(item) == {"sourcedId", "status"} for item in slim)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", NESTED)
def test_nested_reads_answer_valid_objects(live: LiveServer, schemas, version, path):
    envelope, kind = NESTED[path]
    with live.client() as http:
        items, total = _walk(http, f"{PREFIXES[version]}/{path}?limit=4", envelope)
    assert items and len(items) == total, path
    for item in items:
        _valid(schemas[f"{version}/{kind}"], item, f"{path}/{item['sourcedId']}")


@pytest.mark.parametrize("version", VERSIONS)
def test_leavers_are_tobedeleted_and_deleted_users_are_not_served(live: LiveServer, version):
    base = PREFIXES[version]
    with live.client() as http:
        leaver = http.get(f"{base}/users/student-school-maple-1").json()["user"]
        assert (leaver["status"], leaver["enabledUser"]) == ("tobedeleted", "false")
        assert http.get(f"{base}/users/student-school-maple-2").status_code == 404
        demographics = http.get(f"{base}/demographics/student-school-maple-3").json()
        assert demographics["demographics"]["white"] == "true"
        assert demographics["demographics"]["hispanicOrLatinoEthnicity"] == "true"


@pytest.mark.parametrize("version", VERSIONS)
def test_errors_are_status_reports_with_the_spec_codes(live: LiveServer, schemas, version):
    base = PREFIXES[version]
    cases = [
        (live.token, f"{base}/users?filter=shoeSize='9'", 400, "invalid_filter_field"),
        (live.token, f"{base}/users?filter=familyName=='x'", 400, "invalid_filter_field"),
        (live.token, f"{base}/users?fields=shoeSize", 400, "invalid_selection_field"),
        (live.token, f"{base}/users?sort=shoeSize", 400, "invalid_selection_field"),
        (live.token, f"{base}/users?limit=zero", 400, "invalid_selection_field"),
        (live.token, f"{base}/classes/none/students", 404, "unknownobject"),
        (live.token, f"{base}/nothing-here", 404, "unknownobject"),
        ("wrong-token", f"{base}/users", 401, "unauthorisedrequest"),
        (live.core_token, f"{base}/schools/school-maple/classes", 403, "forbidden"),
        (live.core_token, f"{base}/demographics", 403, "forbidden"),
    ]
    for token, url, status, minor in cases:
        with live.client(token) as http:
            response = http.get(url)
        assert response.status_code == status, url
        body = response.json()
        _valid(schemas["imsx_StatusInfo"], body, url)
        assert body["imsx_codeMajor"] == "failure"
        assert body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == minor


def test_limit_is_capped_and_paging_past_the_end_is_empty(live: LiveServer):
    base = PREFIXES["v1p2"]
    with live.client() as http:
        response = http.get(f"{base}/users", params={"limit": 100000})
        assert response.status_code == 200
        past = http.get(f"{base}/users", params={"offset": 100000})
        assert past.json() == {"users": []}
        assert past.headers["X-Total-Count"] == response.headers["X-Total-Count"]


def test_openapi_describes_every_endpoint_of_both_versions(live: LiveServer):
    with httpx.Client(base_url=live.url) as http:
        document = http.get("/ims/oneroster/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for version in VERSIONS:
        for name in COLLECTIONS:
            assert f"{PREFIXES[version]}/{name}" in paths
            assert f"{PREFIXES[version]}/{name}/{{sourcedId}}" in paths
    assert len(paths) == 2 * (2 * len(COLLECTIONS) + len(NESTED))
