"""SPEC §4: accounts from an SSO connection are guarded against manual changes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.db import AuditEvent, CredentialState
from server.districts import school, sso_connection, student
from server.domain import credentials, users
from server.domain.actors import connection_actor
from server.errors import ManagedBySource, NoLocalPassword, OwnedByAnotherConnection


@pytest.fixture
def clever_student(session, system):
    org = school(session, system)
    clever = sso_connection(session, system, "Clever")
    return student(session, connection_actor(clever), org, "Maya", "Lopez", external_id="c-1")


def test_admin_password_change_on_sso_student_is_refused_naming_the_provider(
    session, system, box, clever_student
):
    with pytest.raises(ManagedBySource) as refused:
        credentials.set_password(
            session, system, clever_student, "a fine long password", temporary=True, box=box
        )
    assert refused.value.status == 409
    assert "managed by Clever" in refused.value.message
    assert "Change it in Clever" in refused.value.message
    assert "break sign-in" in refused.value.message
    assert clever_student.credential.state == CredentialState.SSO
    assert clever_student.credential.password_hash is None


def test_sso_username_cannot_change_even_with_override(session, system, clever_student):
    with pytest.raises(ManagedBySource) as refused:
        users.update_user(session, system, clever_student, {"username": "maya.l"}, override=True)
    assert refused.value.credential is True
    assert clever_student.username == "mayalopez"


def test_bulk_reset_skips_sso_students_with_the_reason(session, system, box, clever_student):
    [outcome] = credentials.reset_passwords(session, system, [clever_student], box=box)
    assert outcome.password is None
    assert "managed by Clever" in outcome.skipped


def test_student_cannot_change_own_password_on_sso_account(session, box, clever_student):
    from server.domain.actors import student_actor

    me = student_actor(clever_student.tenant_id, clever_student.id, clever_student.username)
    with pytest.raises(ManagedBySource):
        credentials.change_own_password(session, me, clever_student, "my own new pass", box=box)


def test_sso_connection_itself_cannot_send_a_local_password(session, box, clever_student):
    clever = connection_actor(clever_student.connection)
    with pytest.raises(NoLocalPassword) as refused:
        credentials.set_password(
            session, clever, clever_student, "a fine long password", temporary=False, box=box
        )
    assert "sign in with Clever" in refused.value.message


def test_other_fields_need_an_override_which_is_audited(session, system, clever_student):
    with pytest.raises(ManagedBySource) as refused:
        users.update_user(session, system, clever_student, {"given_name": "Mia"})
    assert "explicit override" in refused.value.message

    changes = users.update_user(
        session, system, clever_student, {"given_name": "Mia"}, override=True
    )
    assert changes == {"given_name": ["Maya", "Mia"]}
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.update").order_by(AuditEvent.id.desc())
    ).first()
    assert event.override is True
    assert "next sync will overwrite" in event.detail


def test_the_owning_connection_may_change_everything(session, clever_student):
    clever = connection_actor(clever_student.connection)
    changes = users.update_user(session, clever, clever_student, {"username": "maya.lopez"})
    assert changes == {"username": ["mayalopez", "maya.lopez"]}


def test_another_connection_cannot_touch_the_user(session, system, clever_student):
    other = sso_connection(session, system, "ClassLink")
    with pytest.raises(OwnedByAnotherConnection) as refused:
        users.update_user(session, connection_actor(other), clever_student, {"given_name": "X"})
    assert refused.value.code == "R109"


def test_same_push_twice_reports_unchanged(session, clever_student):
    clever = connection_actor(clever_student.connection)
    fields = {"given_name": "Maya", "family_name": "Lopez", "grades": ["03"]}
    assert users.update_user(session, clever, clever_student, fields) == {"grades": [[], ["03"]]}
    version = clever_student.version
    assert users.update_user(session, clever, clever_student, fields) == {}
    assert clever_student.version == version
