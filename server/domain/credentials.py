"""Credentials (SPEC §6): states, temporary and permanent passwords, resets, reveals, activation.

States: ``pending`` (no password) → ``issued`` (a temporary password or activation link is out)
→ ``active`` (the student chose a password, or staff set a permanent one). SSO-linked users are
``sso`` and have no local password at all.

A temporary password is kept encrypted (:class:`~server.domain.secrets.SecretBox`) only while
the account is ``issued``, so staff can print it again; it is erased at activation, after which
nobody can see the password and staff can only reset it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import (
    Credential,
    CredentialState,
    RecordStatus,
    Tenant,
    User,
    fold,
    not_deleted,
    utcnow,
)
from server.domain import audit, guard
from server.domain.access import ensure_visible
from server.domain.actors import Actor
from server.domain.passwords import (
    PasswordPolicy,
    burn_verification_time,
    generate_password,
    hash_password,
    needs_rehash,
    policy_for,
    verify_password,
)
from server.domain.secrets import SecretBox
from server.domain.tenants import DEFAULT_SETTINGS
from server.errors import (
    DomainError,
    NoLocalPassword,
    NotAllowed,
    NotFound,
    PasswordRejected,
)


@dataclass(frozen=True)
class ResetOutcome:
    """One user of a bulk reset: the new password, or why they were skipped."""

    user: User
    password: str | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class SignIn:
    """The result of checking a username and password.

    ``status`` is ``ok``, ``must_change`` (a temporary password: change it before going on),
    ``inactive`` or ``invalid``. ``invalid`` never says whether the username exists, nor that
    it belongs to an SSO-linked account (which has no password to match).
    """

    status: str
    user: User | None = None


def tenant_policy(session: Session, tenant_id: str) -> PasswordPolicy:
    tenant = session.get(Tenant, tenant_id)
    return policy_for(tenant.settings if tenant else {})


def password_mode_for(session: Session, user: User) -> str:
    """``words`` for young students (grades the tenant lists), ``strong`` for everyone else."""
    tenant = session.get(Tenant, user.tenant_id)
    young = set(
        (tenant.settings if tenant else {}).get("young_student_grades")
        or DEFAULT_SETTINGS["young_student_grades"]
    )
    return "words" if user.primary_role == "student" and young & set(user.grades) else "strong"


def set_password(
    session: Session, actor: Actor, user: User, password: str, *, temporary: bool, box: SecretBox
) -> None:
    """Set a password chosen by staff or pushed by the owning connection.

    A temporary password forces a change at the next sign-in and stays visible to staff until
    then; a permanent one signs in directly and is never visible.

    :raises ManagedBySource: the user is SSO-linked and the actor is not its connection.
    :raises NoLocalPassword: the SSO connection itself sent a password.
    :raises PasswordRejected: the policy refuses it (the message names the rule).
    """
    _ensure_may_set(session, actor, user)
    tenant_policy(session, user.tenant_id).check(password, username=user.username)
    before = _state(user)
    _store(user, password, temporary=temporary and actor.kind != "connection", box=box)
    session.flush()
    kind = "temporary" if user.credential and user.credential.must_change else "permanent"
    audit.record(
        session,
        actor,
        "credential.set",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        changes={"credential_state": [before, _state(user)]},
        detail=f"{kind.capitalize()} password set.",
    )


def sync_password(
    session: Session, actor: Actor, user: User, password: str | None, *, box: SecretBox
) -> bool:
    """Set a permanent password a source sends, unless it is already the user's (SPEC §5:
    sending the same data twice changes nothing). Returns True if it was set.

    :raises: as :func:`set_password`.
    """
    if not password:
        return False
    credential = user.credential
    if credential is not None and verify_password(credential.password_hash, password):
        return False
    set_password(session, actor, user, password, temporary=False, box=box)
    return True


def issue_temporary_password(
    session: Session, actor: Actor, user: User, *, box: SecretBox, mode: str | None = None
) -> str:
    """Generate, store and return a temporary password (state becomes ``issued``)."""
    _ensure_may_set(session, actor, user)
    password = generate_password(mode or password_mode_for(session, user))
    before = _state(user)
    _store(user, password, temporary=True, box=box)
    session.flush()
    audit.record(
        session,
        actor,
        "credential.reset",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        changes={"credential_state": [before, _state(user)]},
        detail="Temporary password issued.",
    )
    return password


def reset_password(
    session: Session,
    actor: Actor,
    user: User,
    *,
    box: SecretBox,
    temporary: bool = True,
    password: str | None = None,
) -> str:
    """Reset one user's password and return it: generated unless staff typed ``password``.

    :raises NotAllowed: inactive account. Plus everything :func:`set_password` raises.
    """
    if user.status != RecordStatus.ACTIVE:
        raise NotAllowed("The account is inactive: reactivate it first.")
    if temporary and password is None:
        return issue_temporary_password(session, actor, user, box=box)
    chosen = password or generate_password(password_mode_for(session, user))
    set_password(session, actor, user, chosen, temporary=temporary, box=box)
    return chosen


def not_a_student(user: User) -> str | None:
    """Why a bulk credential action (reset, activation email) skips ``user``, or None for a
    student: the class's teacher and other staff manage their credentials on their own page."""
    if user.primary_role == "student":
        return None
    return f"not a student ({user.primary_role}): staff passwords are changed on their own page"


def reset_passwords(
    session: Session,
    actor: Actor,
    users: Iterable[User],
    *,
    box: SecretBox,
    temporary: bool = True,
    password: str | None = None,
) -> list[ResetOutcome]:
    """Reset the students among many users at once (a class, a grade, a selection).

    Users that cannot be reset (staff such as the class's teacher, SSO-linked, inactive, not
    visible to the actor) are skipped with the reason, the others are reset: one bad account
    never blocks a class (issue 14, item 4).
    """
    outcomes: list[ResetOutcome] = []
    for user in users:
        if (reason := not_a_student(user)) is not None:
            outcomes.append(ResetOutcome(user, skipped=reason))
            continue
        try:
            chosen = reset_password(
                session, actor, user, box=box, temporary=temporary, password=password
            )
            outcomes.append(ResetOutcome(user, password=chosen))
        except DomainError as error:
            outcomes.append(ResetOutcome(user, skipped=error.message))
    return outcomes


def reveal_temporary_password(session: Session, actor: Actor, user: User, *, box: SecretBox) -> str:
    """The temporary password of an ``issued`` account, for printing or export (audited).

    :raises NotAllowed: the account is not ``issued``: after activation nobody sees the password.
    """
    ensure_visible(session, actor, user)
    credential = user.credential
    if credential is None or credential.state != CredentialState.ISSUED:
        raise NotAllowed("The account is activated: reset the password to issue a new one.")
    if credential.temporary_secret is None:
        raise NotAllowed("This account was activated by link: no password to show.")
    password = box.open(credential.temporary_secret, user.id)
    audit.record(
        session,
        actor,
        "credential.reveal",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
    )
    return password


def change_own_password(
    session: Session, actor: Actor, user: User, new_password: str, *, box: SecretBox
) -> None:
    """The student's own change (forced after a temporary password, or by choice): activates.

    :raises ManagedBySource: SSO-linked account. :raises PasswordRejected: policy or reuse.
    """
    if actor.kind == "student" and actor.user_id != user.id:
        raise NotAllowed("Students can change only their own password.")
    guard.check_change(actor, user.connection, ["password"])
    credential = user.credential
    if credential is not None and verify_password(credential.password_hash, new_password):
        raise PasswordRejected(
            "Choose a new password, not the one you were given.", field="password"
        )
    tenant_policy(session, user.tenant_id).check(new_password, username=user.username)
    before = _state(user)
    _store(user, new_password, temporary=False, box=box)
    session.flush()
    audit.record(
        session,
        actor,
        "credential.activate",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        changes={"credential_state": [before, _state(user)]},
    )


def _state(user: User) -> str | None:
    """The credential state an audit event records before and after a change."""
    return user.credential.state if user.credential is not None else None


def authenticate(session: Session, tenant_id: str, username: str, password: str) -> SignIn:
    """Check a username (any case) and password; upgrades old hashes on success."""
    user = session.scalars(
        select(User).where(
            User.tenant_id == tenant_id,
            User.username_folded == fold(username.strip()),
            not_deleted(User.status),
        )
    ).first()
    if user is None or user.credential is None or not user.credential.password_hash:
        burn_verification_time()  # an SSO account has no password: as wrong as a bad name
        return SignIn("invalid")
    credential = user.credential
    if not verify_password(credential.password_hash, password):
        return SignIn("invalid")
    if user.status != RecordStatus.ACTIVE:
        return SignIn("inactive", user)
    if credential.password_hash and needs_rehash(credential.password_hash):
        credential.password_hash = hash_password(password)
    return SignIn("must_change" if credential.must_change else "ok", user)


def _ensure_may_set(session: Session, actor: Actor, user: User) -> None:
    if user.tenant_id != actor.tenant_id:
        raise NotFound("No such user.")
    if actor.kind != "connection":
        ensure_visible(session, actor, user)
    guard.check_change(actor, user.connection, ["password"])
    if guard.is_sso_linked(user.connection):
        raise NoLocalPassword(user.connection.provider_name)


def _store(user: User, password: str, *, temporary: bool, box: SecretBox) -> None:
    credential = user.credential or Credential(user_id=user.id)
    user.credential = credential
    now = utcnow()
    credential.password_hash = hash_password(password)
    credential.must_change = temporary
    credential.updated_at = now
    if temporary:
        credential.state = CredentialState.ISSUED
        credential.temporary_secret = box.seal(password, user.id)
        credential.issued_at = now
    else:
        credential.state = CredentialState.ACTIVE
        credential.temporary_secret = None
        credential.activated_at = now
