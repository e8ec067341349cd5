"""Whatever JSON a hub sends in a PUT, the answer is a status report or a record, never a 500.

Each field of a valid body is replaced in turn by values of every wrong type.
"""

from __future__ import annotations

import copy
import itertools

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from tests.oneroster.conftest import V1P2, bearer


def _ref(sourced_id: str, kind: str = "org") -> dict[str, str]:
    return {"href": f"https://hub.example/{sourced_id}", "sourcedId": sourced_id, "type": kind}


VALID = {
    "orgs": {
        "org": {"name": "West", "type": "school", "identifier": "W", "parent": _ref("district")}
    },
    "academicSessions": {
        "academicSession": {
            "title": "T",
            "type": "term",
            "startDate": "2026-01-01",
            "endDate": "2026-06-01",
            "schoolYear": "2026",
            "parent": _ref("sy-2027", "academicSession"),
        }
    },
    "courses": {
        "course": {
            "title": "C",
            "courseCode": "C1",
            "grades": ["09"],
            "subjects": ["x"],
            "org": _ref("north"),
            "schoolYear": _ref("sy-2027", "academicSession"),
        }
    },
    "classes": {
        "class": {
            "title": "K",
            "classCode": "K1",
            "classType": "scheduled",
            "location": "R1",
            "grades": ["09"],
            "subjects": ["x"],
            "periods": ["1"],
            "school": _ref("north"),
            "course": _ref("north-bio", "course"),
            "terms": [_ref("north-fall", "academicSession")],
        }
    },
    "users": {
        "user": {
            "status": "active",
            "givenName": "F",
            "familyName": "Z",
            "username": "fuzzed.user",
            "email": "f@z.example",
            "identifier": "1",
            "grades": ["09"],
            "roles": [{"roleType": "primary", "role": "student", "org": _ref("north")}],
        }
    },
    "enrollments": {
        "enrollment": {
            "user": _ref("north-s1-0", "user"),
            "class": _ref("north-bio-2", "class"),
            "school": _ref("north"),
            "role": "student",
            "primary": "false",
            "beginDate": "2026-09-01",
        }
    },
}
WRONG = [
    None,
    5,
    2.5,
    True,
    "",
    "x" * 300,
    "not-a-date",
    [],
    [5],
    [None],
    {},
    {"sourcedId": 5},
    {"sourcedId": "missing"},
    [{"sourcedId": "missing"}],
    "\x00",
]


def test_wrongly_typed_push_fields_never_get_a_server_error(api, database, district):
    with database.session() as session:
        token = create_connection(
            session, system_actor(district.tenant_id), "Fuzzing hub", "oneroster"
        ).token
    outcomes = set()
    for collection, body in VALID.items():
        (single,) = body
        for field in body[single]:
            for value in WRONG:
                broken = copy.deepcopy(body)
                broken[single][field] = value
                response = api.put(
                    f"{V1P2}/{collection}/fuzz-{collection}", json=broken, headers=bearer(token)
                )
                where = (collection, field, value, response.text[:200])
                assert response.status_code < 500, where
                if response.status_code >= 400:
                    assert response.json()["imsx_codeMajor"] == "failure", where
                outcomes.add(response.status_code)
        if "roles" in body[single]:
            for key, value in itertools.product(("role", "roleType", "org"), WRONG):
                broken = copy.deepcopy(body)
                broken[single]["roles"][0][key] = value
                response = api.put(
                    f"{V1P2}/{collection}/fuzz-role", json=broken, headers=bearer(token)
                )
                where = (key, value, response.text[:200])
                assert response.status_code < 500, where
                if response.status_code >= 400:
                    assert response.json()["imsx_codeMajor"] == "failure", where
                outcomes.add(response.status_code)
    assert {200, 201, 422} <= outcomes
    assert 400 not in outcomes, "a value reached the database before being checked"


def test_json_nested_too_deep_or_not_text_gets_a_400_status_report(api, database, district):
    # Found by hand (issue 11 re-check): both answered 500.
    with database.session() as session:
        token = create_connection(
            session, system_actor(district.tenant_id), "Deep hub", "oneroster"
        ).token
    headers = {**bearer(token), "Content-Type": "application/json"}
    for body in (
        "[" * 100_000 + "]" * 100_000,
        '{"user": {"givenName": ' + "[" * 900 + "]" * 900 + "}}",
        '{"user": {"givenName": "F\\ud800", "familyName": "Z"}}',
    ):
        response = api.put(f"{V1P2}/users/deep-user", content=body.encode(), headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["imsx_codeMajor"] == "failure"
        assert "not JSON" in response.json()["imsx_description"]
