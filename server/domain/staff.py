"""Staff accounts (district admins, school admins, teachers) and their API tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import metrics
from server.db import StaffAccount, StaffRole, StaffToken, User, fold, utcnow
from server.domain import audit, pseudonyms
from server.domain.actors import Actor, staff_actor
from server.domain.passwords import (
    PasswordPolicy,
    burn_verification_time,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from server.domain.schools import resolve_school_ids
from server.domain.secrets import new_token, token_digest, token_hint
from server.domain.usernames import validate_username
from server.domain.vocabulary import check_texts
from server.errors import Conflict, InvalidValue, NotAllowed


@dataclass(frozen=True)
class NewStaff:
    """A staff account with the password that was just set (shown once)."""

    staff: StaffAccount
    password: str


def create_staff(
    session: Session,
    actor: Actor,
    username: str,
    role: str,
    *,
    password: str | None = None,
    school_sourced_ids: list[str] | None = None,
    display_name: str | None = None,
    email: str | None = None,
    user_id: str | None = None,
) -> NewStaff:
    """Add a staff account; a password is generated when none is given.

    School admins and teachers need at least one school. A teacher linked to a roster user
    (``user_id``) sees the students of that user's classes.

    :raises Conflict: username taken. :raises InvalidValue: role, school or password refused.
    """
    if not actor.is_district_admin:
        raise NotAllowed("Only district admins add staff accounts.")
    check_texts(
        [username, role, display_name or "", email or "", *(school_sourced_ids or [])], "staff"
    )
    username = validate_username(username)
    if role not in StaffRole.ALL:
        raise InvalidValue(
            f"Unknown staff role {role!r}; expected one of {', '.join(StaffRole.ALL)}.",
            field="role",
        )
    if find_staff(session, actor.tenant_id, username) is not None:
        raise Conflict(f"A staff account named {username!r} already exists.", field="username")
    school_ids = resolve_school_ids(session, actor.tenant_id, school_sourced_ids or [])
    if role != StaffRole.DISTRICT_ADMIN and not school_ids:
        raise InvalidValue("School admins and teachers need a school.", field="school")
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or user.tenant_id != actor.tenant_id:
            raise InvalidValue("The linked roster user does not exist.", field="user_id")
    if password is None:
        password = generate_password()
    else:
        PasswordPolicy().check(password, username=username)
    staff = StaffAccount(
        tenant_id=actor.tenant_id,
        username=username,
        username_folded=fold(username) or "",
        role=role,
        school_ids=school_ids,
        display_name=display_name,
        email=email,
        user_id=user_id,
        password_hash=hash_password(password),
    )
    session.add(staff)
    session.flush()
    audit.record(
        session,
        actor,
        "staff.create",
        target_kind="staff",
        target_id=staff.id,
        target_label=username,
        changes={"role": [None, role]},
    )
    return NewStaff(staff, password)


def find_staff(session: Session, tenant_id: str, username: str) -> StaffAccount | None:
    return session.scalars(
        select(StaffAccount).where(
            StaffAccount.tenant_id == tenant_id, StaffAccount.username_folded == fold(username)
        )
    ).first()


def authenticate_staff(
    session: Session, tenant_id: str, username: str, password: str
) -> StaffAccount | None:
    """The active staff account with that username and password, or None (same time either way)."""
    staff = find_staff(session, tenant_id, username.strip())
    if staff is None or not staff.active or not staff.password_hash:
        burn_verification_time()
        return None
    if not verify_password(staff.password_hash, password):
        return None
    if needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    return staff


def create_staff_token(
    session: Session, staff: StaffAccount, name: str, *, actor: Actor | None = None
) -> str:
    """A bearer token for the admin JSON API (shown once, stored as a digest); audited as
    ``actor`` (default: the staff member)."""
    token = new_token()
    row = StaffToken(
        staff_id=staff.id, name=name, digest=token_digest(token), hint=token_hint(token)
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor or staff_actor(staff),
        "staff.token_create",
        target_kind="staff",
        target_id=staff.id,
        target_label=staff.username,
        changes={"name": [None, name], "hint": [None, row.hint]},
    )
    return token


def authenticate_staff_token(session: Session, token: str) -> StaffAccount | None:
    row = session.scalars(
        select(StaffToken).where(
            StaffToken.digest == token_digest(token), StaffToken.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    staff = session.get(StaffAccount, row.staff_id)
    return staff if staff is not None and staff.active else None


def revoke_staff_tokens(session: Session, staff: StaffAccount) -> None:
    for row in session.scalars(select(StaffToken).where(StaffToken.staff_id == staff.id)):
        row.revoked_at = row.revoked_at or utcnow()


@dataclass(frozen=True)
class StaffSignIn:
    """``ok`` (with ``staff``), ``invalid`` (never says which part), or ``throttled``."""

    status: str
    staff: StaffAccount | None = None
    wait_seconds: int = 0


def sign_in_staff(
    session: Session,
    tenant_id: str,
    username: str,
    password: str,
    *,
    address: str | None,
    secret_key: str | Sequence[str],
) -> StaffSignIn:
    """The admin sign-in: throttled per account and per address with growing delays (no hard
    lockout a pupil could use against a teacher), every attempt audited.

    The typed username is kept only as a keyed hash in the throttle key and the failure event.
    """
    from server.domain import signin

    key = pseudonyms.tenant_key(session, tenant_id, secret_key)
    typed = signin.typed_name_digest(key, username)
    keys = [
        signin.staff_account_key(tenant_id, username, key),
        f"staff-address:{address or 'unknown'}",
    ]
    wait = signin.throttle_wait(session, keys)
    if wait:
        audit.record(
            session,
            Actor(tenant_id=tenant_id, kind="system", name="staff sign-in"),
            "staff.signin_throttled",
            detail=f"Staff sign-in as typed:{typed} delayed.",
        )
        return StaffSignIn("throttled", wait_seconds=wait)
    staff = authenticate_staff(session, tenant_id, username, password)
    if staff is None:
        signin.record_failure(session, keys[0], signin.ACCOUNT_FREE_FAILURES)
        signin.record_failure(session, keys[1], signin.ADDRESS_FREE_FAILURES)
        metrics.SIGNIN_FAILURES.labels("staff").inc()
        audit.record(
            session,
            Actor(tenant_id=tenant_id, kind="system", name="staff sign-in"),
            "staff.signin_failure",
            detail=f"Failed staff sign-in as typed:{typed}.",
        )
        return StaffSignIn("invalid")
    signin.clear_failures(session, keys[0])
    audit.record(
        session,
        staff_actor(staff),
        "staff.signin",
        target_kind="staff",
        target_id=staff.id,
        target_label=staff.username,
    )
    return StaffSignIn("ok", staff)
