"""Student sign-in (SPEC §6, §8): throttling, outcomes, browser sessions, forced changes.

Credentials are checked only by :func:`server.domain.credentials.authenticate` and changed only
by :func:`server.domain.credentials.change_own_password`; this module adds what a sign-in page
needs around them:

- **Throttling** per account and per client address with growing delays: after a few free
  failures every further one doubles the wait (2 s, 4 s, … up to 5 minutes). There is no hard
  lockout, so a classmate typing wrong passwords can only slow an account down for minutes.
  The address allowance is larger because a whole class signs in from one school address.
- **Outcomes** that never say whether a username exists: ``invalid`` covers both, and an
  SSO-linked account (no local password) answers ``invalid`` too, counted and throttled like
  any wrong password, so the answer never tells what kind of account a name belongs to
  (issue 11 defect 8). The sign-in page names the tenant's SSO providers to everyone instead
  (:func:`sso_providers`).
- **Browser sessions** stored in the database (stateless app processes); the cookie holds a
  random token whose digest is stored. A session opened with a temporary password is
  ``must_change``: it can do nothing but choose a new password.
- Every failure and success is audited.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import metrics
from server.db import BrowserSession, Connection, LoginThrottle, User, fold, utcnow
from server.domain import audit, credentials, pseudonyms
from server.domain.actors import Actor, student_actor
from server.domain.pseudonyms import keyed_hash
from server.domain.secrets import SecretBox, token_digest

ACCOUNT_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 40
MAX_DELAY = timedelta(minutes=5)
FORGET_FAILURES_AFTER = timedelta(hours=1)
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class SignInResult:
    """What a sign-in attempt came to.

    ``status``: ``ok``, ``must_change`` (temporary password: change it first), ``inactive``
    (ask your teacher; only after the right password), ``invalid`` (never says which part was
    wrong, nor whether the account signs in elsewhere), ``wrong_pin`` (badges only: a live
    badge, its PIN wrong) or ``throttled`` (wait ``wait_seconds``).
    """

    status: str
    user: User | None = None
    wait_seconds: int = 0


def typed_name_digest(key: bytes, username: str) -> str:
    """A keyed hash of a typed username (folded): throttles and failed sign-ins are keyed by it
    so what someone typed (maybe their password, in the wrong box) is never stored. ``key`` is
    the tenant's pseudonym key (:func:`server.domain.pseudonyms.tenant_key`), which outlives
    server secret rotations, so a throttle keeps counting the same name."""
    return keyed_hash(key, "typed-username", fold(username.strip()) or "")[:32]


def account_key(tenant_id: str, username: str, key: bytes) -> str:
    return f"account:{tenant_id}:{typed_name_digest(key, username)}"


def staff_account_key(tenant_id: str, username: str, key: bytes) -> str:
    return f"staff:{tenant_id}:{typed_name_digest(key, username)}"


def address_key(address: str | None) -> str:
    return f"address:{address or 'unknown'}"


def throttle_wait(session: Session, keys: list[str]) -> int:
    """Seconds until any of ``keys`` may try again (0: go ahead)."""
    now = utcnow()
    waits = [0]
    for row in session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))):
        if row.blocked_until is not None and row.blocked_until > now:
            waits.append(int((row.blocked_until - now).total_seconds()) + 1)
    return max(waits)


def record_failure(session: Session, key: str, free_failures: int) -> None:
    """Count a failure; past ``free_failures`` each one doubles the delay."""
    now = utcnow()
    row = session.get(LoginThrottle, key, with_for_update=True)
    if row is None:
        try:
            # A class failing at once from one address races to create the row: the loser
            # of the race counts on the winner's row instead of failing the request.
            with session.begin_nested():
                row = LoginThrottle(key=key, failures=0, last_failure_at=now)
                session.add(row)
                session.flush()
        except IntegrityError:
            row = session.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
            assert row is not None
    if now - row.last_failure_at > FORGET_FAILURES_AFTER:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    over = row.failures - free_failures
    if over >= 0:
        row.blocked_until = now + min(timedelta(seconds=2 ** (over + 1)), MAX_DELAY)
    session.flush()


def clear_failures(session: Session, key: str) -> None:
    row = session.get(LoginThrottle, key)
    if row is not None:
        row.failures = 0
        row.blocked_until = None


def sso_providers(session: Session, tenant_id: str) -> list[str]:
    """The SSO providers of a tenant ("Clever", "Google"), for the sign-in page's hint."""
    names = session.scalars(
        select(Connection.sso_provider).where(
            Connection.tenant_id == tenant_id, Connection.sso.is_(True)
        )
    )
    return sorted({name for name in names if name})


def sign_in_with_password(
    session: Session,
    tenant_id: str,
    username: str,
    password: str,
    *,
    address: str | None,
    secret_key: str | Sequence[str],
) -> SignInResult:
    """Check a username and password at the sign-in page, throttled and audited.

    The typed username is kept only as a keyed hash (:func:`typed_name_digest`) in throttle
    keys and in the events of failed or delayed attempts.
    """
    key = pseudonyms.tenant_key(session, tenant_id, secret_key)
    keys = [account_key(tenant_id, username, key), address_key(address)]
    typed = "typed:" + typed_name_digest(key, username)
    wait = throttle_wait(session, keys)
    if wait:
        _audit_attempt(session, tenant_id, None, typed, "signin.throttled", "Sign-in delayed.")
        return SignInResult("throttled", wait_seconds=wait)
    outcome = credentials.authenticate(session, tenant_id, username, password)
    if outcome.status == "invalid":
        record_failure(session, keys[0], ACCOUNT_FREE_FAILURES)
        record_failure(session, keys[1], ADDRESS_FREE_FAILURES)
        metrics.SIGNIN_FAILURES.labels("student").inc()
        _audit_attempt(session, tenant_id, None, typed, "signin.failure", "Wrong credentials.")
        return SignInResult("invalid")
    user = outcome.user
    if outcome.status == "inactive":
        _audit_attempt(session, tenant_id, user, username, "signin.refused", "Account inactive.")
        return SignInResult("inactive", user)
    clear_failures(session, keys[0])
    detail = "Temporary password: change required." if outcome.status == "must_change" else None
    _audit_attempt(session, tenant_id, user, username, "signin.success", detail)
    return SignInResult(outcome.status, user)


def start_session(
    session: Session, user: User, *, method: str, must_change: bool = False
) -> tuple[BrowserSession, str]:
    """Open a browser session; returns it and the cookie value (shown only here)."""
    token = secrets.token_urlsafe(32)
    row = BrowserSession(
        tenant_id=user.tenant_id,
        user_id=user.id,
        digest=token_digest(token),
        method=method,
        must_change=must_change,
        auth_time=utcnow(),
        expires_at=utcnow() + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    return row, token


def find_session(session: Session, token: str | None) -> BrowserSession | None:
    """The live session behind a cookie value, or None (ended, expired, user inactive)."""
    if not token:
        return None
    row = session.scalars(
        select(BrowserSession).where(BrowserSession.digest == token_digest(token))
    ).first()
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return row


def session_user(session: Session, browser: BrowserSession) -> User:
    user = session.get(User, browser.user_id)
    assert user is not None
    return user


def end_session(session: Session, token: str | None) -> None:
    """Sign a browser out (RP-initiated logout); unknown tokens are ignored."""
    row = find_session(session, token)
    if row is not None:
        row.ended_at = utcnow()


def change_temporary_password(
    session: Session, browser: BrowserSession, new_password: str, *, box: SecretBox
) -> None:
    """The forced change after a temporary password; the account becomes ``active``.

    :raises PasswordRejected: the tenant policy refuses it (the message names the rule).
    :raises ManagedBySource: SSO-linked account.
    """
    user = session_user(session, browser)
    actor = student_actor(user.tenant_id, user.id, user.username)
    credentials.change_own_password(session, actor, user, new_password, box=box)
    browser.must_change = False


def session_age(browser: BrowserSession, now: datetime | None = None) -> timedelta:
    return (now or utcnow()) - browser.auth_time


def _audit_attempt(
    session: Session,
    tenant_id: str,
    user: User | None,
    username: str,
    action: str,
    detail: str | None,
) -> None:
    if user is not None:
        actor = student_actor(tenant_id, user.id, user.username)
    else:
        actor = Actor(tenant_id=tenant_id, kind="student", name=username.strip()[:200] or "?")
    audit.record(
        session,
        actor,
        action,
        target_kind="user" if user else None,
        target_id=user.id if user else None,
        target_label=user.username if user else username.strip()[:200],
        detail=detail,
    )
