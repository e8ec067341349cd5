"""User lifecycle: create, update, versions, deactivate, reactivate, soft delete, purge."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from server.db import AuditEvent, RecordStatus, User, utcnow
from server.districts import school, sso_connection, student
from server.domain import retention, user_adoption, users
from server.domain.actors import connection_actor
from server.domain.search import UserQuery, find_reactivation_candidates, search_users
from server.errors import (
    InvalidValue,
    NotFound,
    OwnedByAnotherConnection,
    UsernameTaken,
    VersionMismatch,
)


def test_every_write_is_audited_and_bumps_the_version(session, system):
    pupil = student(session, system, school(session, system), "Ada", "Byron")
    assert pupil.version == 1
    users.update_user(session, system, pupil, {"email": "ada@example.org"})
    assert pupil.version == 2
    users.deactivate_user(session, system, pupil)
    assert pupil.version == 3
    actions = list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_id == pupil.id)
            .order_by(AuditEvent.id)
        )
    )
    assert actions == ["user.create", "user.update", "user.deactivate"]


def test_stale_version_is_refused(session, system):
    pupil = student(session, system, school(session, system), "Ada", "Byron")
    with pytest.raises(VersionMismatch):
        users.update_user(session, system, pupil, {"given_name": "Augusta"}, expected_version=7)


def test_usernames_collide_without_regard_to_case(session, system):
    org = school(session, system)
    student(session, system, org, "Jo", "Doe", username="JDoe")
    with pytest.raises(UsernameTaken) as taken:
        student(session, system, org, "Jane", "Doe", username="jdoe")
    assert taken.value.code == "R104"


def test_generated_usernames_follow_the_pattern_and_number_collisions(session, system):
    org = school(session, system)
    first = student(session, system, org, "Zoë", "O'Brien")
    second = student(session, system, org, "Zoe", "OBrien")
    third = student(session, system, org, "ZOE", "obrien")
    short = student(session, system, org, "Al", "Li")
    assert [first.username, second.username, third.username] == [
        "zoeobrien",
        "zoeobrien2",
        "zoeobrien3",
    ]
    assert short.username == "alli01"


def test_tenant_pattern_first_dot_last(session, system, tenant):
    tenant.settings = {**tenant.settings, "username_pattern": "{first}.{last}"}
    pupil = student(session, system, school(session, system), "Mary", "Jane")
    assert pupil.username == "mary.jane"


def test_invalid_values_are_refused_with_the_field(session, system):
    org = school(session, system)
    with pytest.raises(InvalidValue, match="grade") as bad:
        student(session, system, org, "A", "B", grades=["Year 14"])
    assert bad.value.code == "R102"
    with pytest.raises(InvalidValue, match="YYYY-MM-DD"):
        student(session, system, org, "A", "B", birth_date="31/12/2015")
    assert student(session, system, org, "C", "D", grades=["3"]).grades == ["03"]


def test_deactivated_user_is_found_only_with_include_inactive(session, system):
    org = school(session, system)
    pupil = student(session, system, org, "Nia", "Hart")
    users.deactivate_user(session, system, pupil)
    assert search_users(session, system, UserQuery(text="nia")).total == 0
    found = search_users(session, system, UserQuery(text="nia", include_inactive=True))
    assert [u.id for u in found.items] == [pupil.id]
    users.reactivate_user(session, system, pupil)
    assert search_users(session, system, UserQuery(text="hart")).total == 1


def test_search_by_name_username_identifier_role_grade_class_school(session, system):
    from server.domain import roster

    north, south = school(session, system, "North"), school(session, system, "South")
    ana = student(session, system, north, "Ana", "Silva", identifier="S-100", grades=["04"])
    student(session, system, south, "Ana", "Costa", grades=["05"])
    maths = roster.create_class(session, system, {"title": "Maths", "school_id": north.id})
    roster.enroll(session, system, ana, maths)

    def ids(**query):
        return [u.id for u in search_users(session, system, UserQuery(**query)).items]

    assert len(ids(text="ana")) == 2
    assert ids(text="ana silva") == [ana.id]
    assert ids(text="S-100") == [ana.id]
    assert ids(text="anasil") == [ana.id]
    assert ids(grade="4") == [ana.id]
    assert ids(class_id=maths.id) == [ana.id]
    assert ids(school_id=north.id) == [ana.id]
    assert ids(role="teacher") == []
    assert len(ids(role="student")) == 2


def test_inactive_duplicate_is_offered_for_reactivation(session, system):
    org = school(session, system)
    leaver = student(session, system, org, "Eli", "Moss", birth_date=date(2015, 3, 2))
    users.deactivate_user(session, system, leaver)
    matches = find_reactivation_candidates(session, system, "eli", "MOSS", date(2015, 3, 2))
    assert [u.id for u in matches] == [leaver.id]
    assert find_reactivation_candidates(session, system, "Eli", "Moss", date(2016, 1, 1)) == []


def test_soft_delete_hides_the_user_and_purges_after_retention(session, system):
    pupil = student(session, system, school(session, system), "Rae", "Lind")
    users.delete_user(session, system, pupil)
    assert pupil.status == RecordStatus.DELETED
    assert pupil.purge_after - pupil.deleted_at == timedelta(days=30)
    with pytest.raises(NotFound):
        users.get_user(session, system, pupil.id)
    assert retention.purge_deleted_users(session, system, secret_key="k") == 0
    pupil.purge_after = utcnow() - timedelta(seconds=1)
    assert retention.purge_deleted_users(session, system, secret_key="k") == 1
    assert session.get(User, pupil.id) is None


def test_deleted_username_is_free_again(session, system):
    org = school(session, system)
    pupil = student(session, system, org, "Rae", "Lind", username="rlind")
    users.delete_user(session, system, pupil)
    again = student(session, system, org, "Rae", "Lind", username="RLIND")
    assert again.id != pupil.id


def test_reprovisioning_the_same_external_id_restores_the_deleted_user(session, system):
    org = school(session, system)
    okta = connection_actor(sso_connection(session, system, "Okta"))
    pupil = student(session, okta, org, "Kim", "Park", external_id="00u1")
    users.delete_user(session, okta, pupil)
    again = student(session, okta, org, "Kim", "Park-Lee", external_id="00U1")
    assert again.id == pupil.id
    assert again.status == RecordStatus.ACTIVE
    assert again.family_name == "Park-Lee"
    assert again.purge_after is None


def test_a_push_never_takes_over_another_connections_user(session, system):
    org = school(session, system)
    manual = student(session, system, org, "Lee", "Fox", username="lfox")
    okta = connection_actor(sso_connection(session, system, "Okta"))
    with pytest.raises(OwnedByAnotherConnection) as refused:
        student(session, okta, org, "Lee", "Fox", username="LFox")
    assert refused.value.code == "R109"
    assert manual.connection.name == "Manual"


def test_a_connection_set_to_adopt_takes_over_by_that_key_and_it_is_audited(session, system):
    from server.domain.connections import create_connection

    org = school(session, system)
    manual = student(session, system, org, "Lee", "Fox", username="lfox")
    google = create_connection(
        session, system, "Google", "scim", sso_provider="Google", adopt_by="username"
    ).connection
    user_adoption.adopt_user(session, connection_actor(google), manual, "username")
    assert manual.connection_id == google.id
    assert manual.credential.state == "sso"
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.adopt")).one()
    assert event.changes == {"connection": ["Manual", "Google"]}
