"""QR badges for young students (SPEC §6): a printed code that signs one student in.

- A badge is a random token bound to the **student** (not the class), optionally with a short
  PIN. Issuing a new badge voids the student's previous one ("regenerate").
- Only students in the grades the tenant enabled (setting ``badge_grades``) may have one.
- It expires with the current term by default (the end of the term that covers today), or in
  a year when no term is known.
- A password reset does not void a badge (they are independent); voiding is audited, singly
  or for a whole class.
- Signing in with a badge is throttled per client address like a password, and per badge for
  a wrong PIN.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import metrics
from server.db import AcademicSession, Badge, RecordStatus, SchoolClass, User, utcnow
from server.domain import audit, guard, roster_views
from server.domain.access import ensure_visible
from server.domain.actors import Actor, student_actor
from server.domain.passwords import hash_password, verify_password
from server.domain.secrets import SecretBox, token_digest
from server.domain.signin import (
    ACCOUNT_FREE_FAILURES,
    ADDRESS_FREE_FAILURES,
    SignInResult,
    address_key,
    clear_failures,
    record_failure,
    throttle_wait,
)
from server.domain.tenants import tenant_setting
from server.errors import DomainError, InvalidValue, NotAllowed

BADGE_PREFIX = "rcb_"
DEFAULT_LIFETIME = timedelta(days=365)


@dataclass(frozen=True)
class IssuedBadge:
    """A badge and its token (to print); ``skipped`` says why a student got none."""

    user: User
    badge: Badge | None = None
    token: str | None = None
    skipped: str | None = None


def badge_box(secret_key: str | Sequence[str]) -> SecretBox:
    return SecretBox(secret_key, "badge")


def issue_badge(
    session: Session,
    actor: Actor,
    user: User,
    *,
    box: SecretBox,
    pin: str | None = None,
    expires_at: datetime | None = None,
) -> IssuedBadge:
    """Give a student a new badge, voiding any previous one.

    :raises NotAllowed: the student's grade has no badges, or the account is SSO-linked or
        inactive. :raises InvalidValue: a PIN that is not 4 to 8 digits.
    """
    ensure_visible(session, actor, user)
    _ensure_badge_allowed(session, user)
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise InvalidValue("A badge PIN is 4 to 8 digits.", field="pin")
    _void(session, actor, user, reason="Replaced by a new badge.")
    token = BADGE_PREFIX + secrets.token_urlsafe(24)
    badge = Badge(
        tenant_id=user.tenant_id,
        user_id=user.id,
        token_digest=token_digest(token),
        sealed_token=b"",
        pin_hash=hash_password(pin) if pin else None,
        expires_at=expires_at or default_expiry(session, user.tenant_id),
    )
    session.add(badge)
    session.flush()
    badge.sealed_token = box.seal(token, badge.id)
    audit.record(
        session,
        actor,
        "badge.issue",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        detail=f"Badge issued, valid until {badge.expires_at:%Y-%m-%d}"
        + (" with a PIN." if pin else "."),
    )
    return IssuedBadge(user, badge, token)


def issue_class_badges(
    session: Session, actor: Actor, klass: SchoolClass, *, box: SecretBox
) -> list[IssuedBadge]:
    """New badges for every student of a class; students who cannot have one are skipped."""
    outcomes = []
    for user in roster_views.class_members(session, actor, klass, role="student"):
        try:
            outcomes.append(issue_badge(session, actor, user, box=box))
        except DomainError as error:
            outcomes.append(IssuedBadge(user, skipped=error.message))
    return outcomes


def reveal_badge(session: Session, actor: Actor, user: User, *, box: SecretBox) -> str | None:
    """The live badge token of a student, to print the sheet again (audited), or None."""
    ensure_visible(session, actor, user)
    badge = live_badge(session, user)
    if badge is None:
        return None
    audit.record(
        session,
        actor,
        "badge.reveal",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
    )
    return box.open(badge.sealed_token, badge.id)


def void_badge(session: Session, actor: Actor, user: User) -> int:
    """Void a student's badge (lost, or a classmate saw it). Audited. Returns how many."""
    ensure_visible(session, actor, user)
    return _void(session, actor, user, reason="Badge voided.")


def void_class_badges(session: Session, actor: Actor, klass: SchoolClass) -> int:
    """Void the badges of every student of a class."""
    return sum(
        void_badge(session, actor, user)
        for user in roster_views.class_members(session, actor, klass, role="student")
    )


def live_badge(session: Session, user: User) -> Badge | None:
    return session.scalars(
        select(Badge).where(
            Badge.user_id == user.id, Badge.voided_at.is_(None), Badge.expires_at > utcnow()
        )
    ).first()


def sign_in_with_badge(
    session: Session, token: str, pin: str | None, *, address: str | None
) -> SignInResult:
    """Sign in with a scanned badge (and its PIN, when it has one); throttled and audited.

    ``must_change`` never applies: a badge is its own credential. A badge of an inactive
    student answers ``inactive``; an unknown, voided or expired one ``invalid``, and so does
    one of an SSO-linked account (the guard is checked again at every sign-in). A live badge
    with a wrong PIN answers ``wrong_pin`` (the badge itself is the secret, so saying so tells
    nothing about any account) and counts against the badge's throttle like a wrong password.
    """
    keys = [address_key(address)]
    token = (token or "").strip()
    badge = session.scalars(select(Badge).where(Badge.token_digest == token_digest(token))).first()
    if badge is not None:
        keys.append(f"badge:{badge.id}")
    user = session.get(User, badge.user_id) if badge is not None else None
    wait = throttle_wait(session, keys)
    if wait:
        if user:  # an unknown badge names no tenant whose log could hold the attempt
            _audit(session, user, "signin.throttled", "Badge sign-in delayed.")
        return SignInResult("throttled", wait_seconds=wait)
    dead = _dead(badge)
    if badge is None or user is None or dead:
        record_failure(session, keys[0], ADDRESS_FREE_FAILURES)
        metrics.SIGNIN_FAILURES.labels("badge").inc()
        if user and dead:
            _audit(session, user, "signin.refused", dead)
        return SignInResult("invalid")
    if badge.pin_hash and not verify_password(badge.pin_hash, pin or ""):
        record_failure(session, keys[0], ADDRESS_FREE_FAILURES)
        record_failure(session, keys[1], ACCOUNT_FREE_FAILURES)
        metrics.SIGNIN_FAILURES.labels("badge").inc()
        _audit(session, user, "signin.failure", "Badge with a wrong PIN.")
        return SignInResult("wrong_pin")
    if guard.is_sso_linked(user.connection):  # linked after the badge was printed
        _audit(session, user, "signin.refused", "Badge of an SSO-linked account.")
        return SignInResult("invalid")
    if user.status != RecordStatus.ACTIVE:
        _audit(session, user, "signin.refused", "Badge of an inactive account.")
        return SignInResult("inactive", user)
    if not _grade_allowed(session, user):
        _audit(session, user, "signin.refused", "Badges are off for this grade.")
        return SignInResult("invalid")
    clear_failures(session, keys[1])
    _audit(session, user, "signin.success", "Signed in with a badge.")
    return SignInResult("ok", user)


def _dead(badge: Badge | None) -> str | None:
    """Why a known badge cannot sign in any more (voided, expired), or None."""
    if badge is None:
        return None
    if badge.voided_at is not None:
        return "Voided badge."
    return "Expired badge." if badge.expires_at <= utcnow() else None


def badge_needs_pin(session: Session, token: str) -> bool:
    badge = session.scalars(
        select(Badge).where(Badge.token_digest == token_digest((token or "").strip()))
    ).first()
    return bool(badge and badge.pin_hash)


def default_expiry(session: Session, tenant_id: str) -> datetime:
    """The end of the term covering today (the day after its last day), else a year from now."""
    today = utcnow().date()
    term = session.scalars(
        select(AcademicSession)
        .where(
            AcademicSession.tenant_id == tenant_id,
            AcademicSession.status == RecordStatus.ACTIVE,
            AcademicSession.type.in_(("term", "semester", "gradingPeriod")),
            AcademicSession.start_date <= today,
            AcademicSession.end_date >= today,
        )
        .order_by(AcademicSession.end_date)
    ).first()
    if term is None or term.end_date is None:
        return utcnow() + DEFAULT_LIFETIME
    return datetime.combine(term.end_date + timedelta(days=1), time.min, tzinfo=UTC)


def _grade_allowed(session: Session, user: User) -> bool:
    grades = set(tenant_setting(session, user.tenant_id, "badge_grades") or [])
    return bool(grades & set(user.grades))


def _ensure_badge_allowed(session: Session, user: User) -> None:
    if user.status != RecordStatus.ACTIVE:
        raise NotAllowed("The account is inactive: reactivate it first.")
    if guard.is_sso_linked(user.connection):
        raise NotAllowed(
            f"This account signs in with {user.connection.provider_name}: no badge needed."
        )
    if not _grade_allowed(session, user):
        raise NotAllowed(
            "Badges are not enabled for this student's grade. An admin can enable the grade "
            "in the district settings."
        )


def _void(session: Session, actor: Actor, user: User, *, reason: str) -> int:
    count = 0
    for badge in session.scalars(
        select(Badge).where(Badge.user_id == user.id, Badge.voided_at.is_(None))
    ):
        badge.voided_at = utcnow()
        count += 1
    if count:
        audit.record(
            session,
            actor,
            "badge.void",
            target_kind="user",
            target_id=user.id,
            target_label=user.username,
            detail=reason,
        )
    return count


def _audit(session: Session, user: User, action: str, detail: str) -> None:
    """One event per badge sign-in attempt, as the student the badge belongs to."""
    audit.record(
        session,
        student_actor(user.tenant_id, user.id, user.username),
        action,
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        detail=detail,
    )
