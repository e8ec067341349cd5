"""SPEC §8: tenants never see each other; school admins and teachers see only their own."""

from __future__ import annotations

import pytest

from server.districts import school, student
from server.domain import connections, credentials, roster, roster_status, roster_views, users
from server.domain.actors import Actor, connection_actor, system_actor
from server.domain.search import UserQuery, search_users
from server.domain.staff import authenticate_staff, create_staff
from server.domain.tenants import create_tenant
from server.errors import NotAllowed, NotFound


@pytest.fixture
def other(session):
    tenant = create_tenant(session, "Shelbyville District")
    return system_actor(tenant.id)


def test_two_tenants_never_see_each_others_records(session, system, other, box):
    mine = student(session, system, school(session, system), "Ana", "Lee")
    theirs = student(session, other, school(session, other, "Shelbyville High"), "Ana", "Lee")
    assert theirs.username == mine.username  # usernames are unique per tenant only
    assert [u.id for u in search_users(session, system, UserQuery(text="ana")).items] == [mine.id]
    assert [u.id for u in search_users(session, other, UserQuery(text="ana")).items] == [theirs.id]
    with pytest.raises(NotFound):
        users.get_user(session, system, theirs.id)
    with pytest.raises(NotFound):
        users.update_user(session, system, theirs, {"given_name": "X"})
    with pytest.raises(NotFound):
        credentials.issue_temporary_password(session, system, theirs, box=box)


def test_a_roster_record_of_another_tenant_cannot_be_changed_in_any_way(session, system, other):
    """update_record, enroll and set_status all refuse another tenant's class (issue 16)."""
    org = school(session, other, "Shelbyville High")
    theirs = roster.create_class(session, other, {"title": "Art", "school_id": org.id})
    pupil = student(session, other, org, "Ana", "Lee")
    with pytest.raises(NotFound):
        roster.update_record(session, system, theirs, {"title": "X"})
    with pytest.raises(NotFound):
        roster.enroll(session, system, pupil, theirs)
    with pytest.raises(NotFound):
        roster_status.set_status(session, system, theirs, "inactive")
    assert theirs.status == "active"


def test_a_connection_token_resolves_to_its_own_tenant_only(session, system, other):
    issued = connections.create_connection(session, other, "Entra ID", "scim")
    connection = connections.authenticate_token(session, issued.token)
    assert connection.tenant_id == other.tenant_id
    actor = connection_actor(connection)
    mine = student(session, system, school(session, system), "Ana", "Lee")
    assert search_users(session, actor, UserQuery(text="ana")).total == 0
    with pytest.raises(NotFound):
        users.update_user(session, actor, mine, {"given_name": "X"})


def test_rotated_token_replaces_the_old_one(session, system):
    first = connections.create_connection(session, system, "Okta", "scim").token
    second = connections.rotate_token(session, system, "Okta").token
    assert connections.authenticate_token(session, first) is None
    assert connections.authenticate_token(session, second).name == "Okta"
    assert connections.authenticate_token(session, "rc_not-a-token") is None


def _staff_actor(session, system, username, role, schools, user_id=None) -> Actor:
    from server.domain.actors import staff_actor

    created = create_staff(
        session, system, username, role, school_sourced_ids=schools, user_id=user_id
    )
    return staff_actor(created.staff)


def test_school_admin_sees_and_creates_only_at_their_school(session, system):
    north, south = school(session, system, "North"), school(session, system, "South")
    in_north = student(session, system, north, "Ann", "North")
    in_south = student(session, system, south, "Bob", "South")
    admin = _staff_actor(session, system, "north.admin", "school_admin", [north.sourced_id])
    assert [u.id for u in search_users(session, admin, UserQuery()).items] == [in_north.id]
    with pytest.raises(NotFound):
        users.get_user(session, admin, in_south.id)
    student(session, admin, north, "Cat", "New")
    with pytest.raises(NotAllowed):
        student(session, admin, south, "Dan", "Nope")


def test_teacher_sees_and_resets_only_students_of_their_classes(session, system, box):
    org = school(session, system)
    teacher_user = users.create_user(
        session, system, {"given_name": "Tia", "family_name": "Cher", "primary_role": "teacher"}
    )
    mine = student(session, system, org, "Mo", "Mine")
    not_mine = student(session, system, org, "Ni", "Other")
    maths = roster.create_class(session, system, {"title": "Maths", "school_id": org.id})
    roster.enroll(session, system, teacher_user, maths, role="teacher")
    roster.enroll(session, system, mine, maths)
    teacher = _staff_actor(session, system, "tia", "teacher", [org.sourced_id], teacher_user.id)

    assert [u.id for u in search_users(session, teacher, UserQuery()).items] == [mine.id]
    outcomes = credentials.reset_passwords(session, teacher, [mine, not_mine], box=box)
    assert outcomes[0].password and outcomes[1].skipped == "No such user."
    with pytest.raises(NotAllowed, match="account request"):
        student(session, teacher, org, "New", "Kid")
    assert [c.id for c in roster_views.list_classes(session, teacher)] == [maths.id]


def test_staff_sign_in_is_case_insensitive_and_says_nothing_on_failure(session, system):
    created = create_staff(session, system, "Head.Admin", "district_admin")
    assert authenticate_staff(session, system.tenant_id, "head.admin", created.password)
    assert authenticate_staff(session, system.tenant_id, "head.admin", "wrong") is None
    assert authenticate_staff(session, system.tenant_id, "nobody", "wrong") is None
