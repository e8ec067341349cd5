"""Activation links (SPEC §6): one-time, expiring links that land on a set-password page.

Staff send them by email to users who have an address (the email itself belongs to the staff
surface). The token is shown once, in the link; only its digest is stored. A new link voids
the older unused ones of the same user; using one activates the account through
:func:`server.domain.credentials.change_own_password`, so the tenant password policy applies.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import ActivationToken, Credential, CredentialState, User, utcnow
from server.domain import audit, credentials, guard
from server.domain.access import ensure_visible
from server.domain.actors import Actor, student_actor
from server.domain.secrets import SecretBox, token_digest
from server.errors import NotAllowed, NotFound

LINK_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class ActivationLink:
    token: ActivationToken
    secret: str

    def url(self, issuer: str) -> str:
        return f"{issuer.rstrip('/')}/activate/{self.secret}"


def create_activation_link(
    session: Session,
    actor: Actor,
    user: User,
    *,
    lifetime: timedelta = LINK_LIFETIME,
    for_print: bool = False,
) -> ActivationLink:
    """A new one-time link for ``user``; the account becomes ``issued`` if it was ``pending``.

    Links are emailed, so the account needs an address, unless the link is printed as a QR
    code on a credential sheet (``for_print``): a lost sheet then holds no reusable secret.

    :raises NotAllowed: no email address (for email), SSO-linked or inactive account.
    """
    ensure_may_activate(session, actor, user, by_email=not for_print)
    now = utcnow()
    for old in session.scalars(
        select(ActivationToken).where(
            ActivationToken.user_id == user.id, ActivationToken.used_at.is_(None)
        )
    ):
        old.expires_at = min(old.expires_at, now)
    secret = secrets.token_urlsafe(32)
    row = ActivationToken(
        tenant_id=user.tenant_id,
        user_id=user.id,
        digest=token_digest(secret),
        expires_at=now + lifetime,
    )
    session.add(row)
    before = user.credential.state if user.credential is not None else None
    if user.credential is None:
        user.credential = Credential(user_id=user.id, state=CredentialState.ISSUED, issued_at=now)
    elif user.credential.state == CredentialState.PENDING:
        user.credential.state = CredentialState.ISSUED
        user.credential.issued_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "credential.activation_link",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        changes={"credential_state": [before, user.credential.state]},
        detail=f"Activation link created, valid until {row.expires_at:%Y-%m-%d %H:%M} UTC.",
    )
    return ActivationLink(row, secret)


def ensure_may_activate(session: Session, actor: Actor, user: User, *, by_email: bool) -> None:
    """:raises NotAllowed: inactive or SSO-linked account, or no address for an email."""
    ensure_visible(session, actor, user)
    if not user.active:
        raise NotAllowed("The account is inactive: reactivate it first.")
    if guard.is_sso_linked(user.connection):
        raise NotAllowed(f"This account signs in with {user.connection.provider_name}.")
    if not user.email and by_email:
        raise NotAllowed("Activation links are sent by email: the account has no address.")


def find_activation(session: Session, secret: str) -> tuple[ActivationToken, User] | None:
    """The unused, unexpired link and its (active, not SSO-linked) user, or None."""
    row = session.scalars(
        select(ActivationToken).where(ActivationToken.digest == token_digest(secret or ""))
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or guard.is_sso_linked(user.connection):
        return None
    return row, user


def activate(session: Session, secret: str, password: str, *, box: SecretBox) -> User:
    """Use a link: set the chosen password, activate the account, spend the link.

    :raises NotFound: unknown, used or expired link. :raises PasswordRejected: policy.
    """
    found = find_activation(session, secret)
    if found is None:
        raise NotFound("This activation link has expired or was already used.")
    row, user = found
    actor = student_actor(user.tenant_id, user.id, user.username)
    credentials.change_own_password(session, actor, user, password, box=box)
    row.used_at = utcnow()
    return user
