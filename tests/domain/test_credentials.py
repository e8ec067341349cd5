"""SPEC §6: credential states, temporary passwords, reveals, activation, policy, hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text

from server.db import AuditEvent, CredentialState
from server.districts import school, student
from server.domain import credentials, passwords
from server.domain.actors import student_actor
from server.domain.passwords import PasswordPolicy, generate_password
from server.errors import NotAllowed, PasswordRejected


@pytest.fixture
def pupil(session, system):
    return student(session, system, school(session, system), "Sam", "Okafor")


def test_new_manual_student_is_pending_without_password(pupil):
    assert pupil.credential.state == CredentialState.PENDING
    assert pupil.credential.password_hash is None


def test_temporary_password_is_visible_only_until_activation(session, system, box, pupil):
    temporary = credentials.issue_temporary_password(session, system, pupil, box=box)
    assert pupil.credential.state == CredentialState.ISSUED
    assert pupil.credential.must_change is True
    assert credentials.reveal_temporary_password(session, system, pupil, box=box) == temporary

    me = student_actor(pupil.tenant_id, pupil.id, pupil.username)
    credentials.change_own_password(session, me, pupil, "kite flying over hills", box=box)

    assert pupil.credential.state == CredentialState.ACTIVE
    assert pupil.credential.temporary_secret is None
    with pytest.raises(NotAllowed, match="reset the password"):
        credentials.reveal_temporary_password(session, system, pupil, box=box)


def test_temporary_password_is_never_stored_in_clear(session, system, box, pupil):
    temporary = credentials.issue_temporary_password(session, system, pupil, box=box)
    session.flush()
    row = session.execute(
        text("SELECT password_hash, temporary_secret FROM credentials WHERE user_id = :id"),
        {"id": pupil.id},
    ).one()
    assert row.password_hash.startswith("$argon2id$")
    assert temporary not in row.password_hash
    assert temporary.encode() not in bytes(row.temporary_secret)
    dump = " ".join(
        str(value)
        for table in ("users", "credentials", "audit_events")
        for value in session.execute(text(f"SELECT * FROM {table}")).all()
    )
    assert temporary not in dump


def test_reveal_is_audited(session, system, box, pupil):
    credentials.issue_temporary_password(session, system, pupil, box=box)
    credentials.reveal_temporary_password(session, system, pupil, box=box)
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == pupil.id))
    assert "credential.reveal" in list(actions)


def test_permanent_password_signs_in_directly_and_is_never_visible(session, system, box, pupil):
    credentials.set_password(session, system, pupil, "purple monkey dish", temporary=False, box=box)
    assert pupil.credential.state == CredentialState.ACTIVE
    assert (
        credentials.authenticate(session, pupil.tenant_id, "SAMOKAFOR", "purple monkey dish").status
        == "ok"
    )
    with pytest.raises(NotAllowed):
        credentials.reveal_temporary_password(session, system, pupil, box=box)


def test_temporary_password_forces_a_change_at_sign_in(session, system, box, pupil):
    temporary = credentials.issue_temporary_password(session, system, pupil, box=box)
    result = credentials.authenticate(session, pupil.tenant_id, pupil.username, temporary)
    assert result.status == "must_change"
    me = student_actor(pupil.tenant_id, pupil.id, pupil.username)
    with pytest.raises(PasswordRejected, match="not the one you were given"):
        credentials.change_own_password(session, me, pupil, temporary, box=box)


def test_wrong_password_and_unknown_user_answer_the_same(session, system, box, pupil):
    credentials.issue_temporary_password(session, system, pupil, box=box)
    assert (
        credentials.authenticate(session, pupil.tenant_id, pupil.username, "nope nope").status
        == "invalid"
    )
    assert (
        credentials.authenticate(session, pupil.tenant_id, "nobody", "nope nope").status
        == "invalid"
    )


def test_inactive_user_cannot_sign_in(session, system, box, pupil):
    from server.domain import users

    credentials.set_password(session, system, pupil, "purple monkey dish", temporary=False, box=box)
    users.deactivate_user(session, system, pupil)
    assert (
        credentials.authenticate(
            session, pupil.tenant_id, pupil.username, "purple monkey dish"
        ).status
        == "inactive"
    )


def test_policy_refuses_with_a_specific_message(session, system, box, pupil):
    with pytest.raises(PasswordRejected, match="at least 8 characters"):
        credentials.set_password(session, system, pupil, "short", temporary=True, box=box)
    with pytest.raises(PasswordRejected, match="too common"):
        credentials.set_password(session, system, pupil, "Password1", temporary=True, box=box)
    with pytest.raises(PasswordRejected, match="same as the username"):
        credentials.set_password(session, system, pupil, "SamOkafor", temporary=True, box=box)


def test_default_policy_allows_long_unicode_passphrases_without_composition_rules():
    policy = PasswordPolicy()
    assert policy.problems("über grüne wiesen laufen wir " * 2) == []
    assert policy.problems("x" * 64 + "yz") == []
    assert "upper-case" in " ".join(PasswordPolicy("classic").problems("all lower case 123"))
    assert PasswordPolicy("classic").problems("Three Blind Mice 3") == []


def test_classic_preset_is_applied_per_tenant(session, system, box, tenant, pupil):
    tenant.settings = {**tenant.settings, "password_policy": "classic"}
    with pytest.raises(PasswordRejected, match="digit"):
        credentials.set_password(
            session, system, pupil, "Only Letters Here", temporary=True, box=box
        )


@pytest.mark.parametrize("mode", ["strong", "words"])
def test_generated_passwords_satisfy_every_preset_and_are_readable(mode):
    for _ in range(200):
        password = generate_password(mode)
        for preset in passwords.PRESETS:
            assert PasswordPolicy(preset).problems(password) == []
        if mode == "strong":
            assert not set(password) & set("0Oo1lI")
    if mode == "words":
        first, second, number = password.split("-")
        assert first[0].isupper() and second.isalpha() and number.isdigit()


def test_young_students_get_word_passwords(session, system, box, tenant):
    org = school(session, system)
    young = student(session, system, org, "Lily", "Ng", grades=["KG"])
    older = student(session, system, org, "Omar", "Ng", grades=["09"])
    assert credentials.issue_temporary_password(session, system, young, box=box).count("-") == 2
    assert "-" not in credentials.issue_temporary_password(session, system, older, box=box)


def test_hashes_with_old_parameters_are_upgraded_at_sign_in(session, system, box, pupil):
    credentials.set_password(session, system, pupil, "purple monkey dish", temporary=False, box=box)
    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(
        "purple monkey dish"
    )
    pupil.credential.password_hash = old
    assert passwords.needs_rehash(old)
    assert (
        credentials.authenticate(
            session, pupil.tenant_id, pupil.username, "purple monkey dish"
        ).status
        == "ok"
    )
    assert pupil.credential.password_hash != old
    assert not passwords.needs_rehash(pupil.credential.password_hash)


def test_bulk_reset_gives_each_student_a_new_temporary_password(session, system, box):
    org = school(session, system)
    class_list = [student(session, system, org, name, "Reyes") for name in ("Ana", "Ben", "Cy")]
    outcomes = credentials.reset_passwords(session, system, class_list, box=box)
    assert [o.skipped for o in outcomes] == [None, None, None]
    assert len({o.password for o in outcomes}) == 3
    assert all(u.credential.state == CredentialState.ISSUED for u in class_list)
    permanent = credentials.reset_passwords(session, system, class_list, box=box, temporary=False)
    assert all(u.credential.state == CredentialState.ACTIVE for u in class_list)
    assert all(o.password for o in permanent)
