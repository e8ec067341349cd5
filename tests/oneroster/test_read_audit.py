"""Who read which student data over OneRoster (issue 12, points 8 and 12 item 2): every request
of an app to an endpoint that serves personal data (users, students, teachers, demographics,
enrollments, and the nested ones) is one ``read.oneroster`` audit event naming the app, what it
read and how many records, never one event per record; reads of orgs or classes are not."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.db import AuditEvent
from server.domain import oauth
from server.domain.actors import system_actor
from tests.oneroster.conftest import ALL_SCOPES, V1P2, bearer
from tests.wire import imsx_failure


@pytest.fixture
def gradebook(api, database, district) -> str:
    """The access token of an app named Gradebook, got the way apps get it: client
    credentials at ``/oauth/token`` (RFC 6749 §4.4)."""
    with database.session() as session:
        made = oauth.create_client(
            session, system_actor(district.tenant_id), "Gradebook", kind="api", scopes=ALL_SCOPES
        )
        client_id, secret = made.client.client_id, made.secret
    answer = api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": " ".join(ALL_SCOPES)},
        auth=(client_id, secret),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _reads(database) -> list[AuditEvent]:
    with database.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "read.oneroster").order_by(AuditEvent.at)
        ).all()
        session.expunge_all()
        return list(events)


@pytest.mark.parametrize(
    ("path", "kind", "count"),
    [
        ("/demographics?limit=4", "demographics", 4),
        ("/users?limit=3", "user", 3),
        ("/students?limit=100", "user", 22),  # 2 schools x (2 classes x 5 + a leaver)
        ("/teachers", "user", 2),
        ("/enrollments?limit=7", "enrollment", 7),
        ("/users/north-s1-0", "user", 1),
        ("/demographics/north-s1-0", "demographics", 1),
        ("/classes/north-bio-1/students", "user", 5),
        ("/schools/north/enrollments?limit=2", "enrollment", 2),
    ],
)
def test_each_read_of_student_data_is_one_event_naming_the_app(
    api, gradebook, database, path, kind, count
):
    answer = api.get(V1P2 + path, headers=bearer(gradebook))
    assert answer.status_code == 200, answer.text
    [event] = _reads(database)
    assert (event.actor_kind, event.actor_name) == ("client", "Gradebook")
    assert event.target_kind == kind
    assert event.changes == {"records": [None, count]}
    assert event.detail == f"GET {V1P2}{path}"


def test_reads_of_orgs_classes_and_refused_reads_are_not_audited(api, gradebook, database):
    for path in ("/orgs", "/classes", "/academicSessions", "/users/no-such-user"):
        api.get(V1P2 + path, headers=bearer(gradebook))
    refused = api.get(V1P2 + "/users", headers=bearer("not-a-token"))
    imsx_failure(refused, 401, "unauthorisedrequest")
    assert _reads(database) == []
