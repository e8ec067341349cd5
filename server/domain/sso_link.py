"""Linking an account to SSO (SPEC §4, §6): every local way in is voided.

An account adopted by an SSO connection signs in at its provider only, so at the moment of
linking its password hash, its temporary password, its unused activation links and its QR
badges all stop working, and one audit event says what was voided. Sign-in with a badge or a
link re-checks the guard as well (:func:`server.domain.guard.is_sso_linked`), so a credential
that escaped this sweep still cannot open the account.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import ActivationToken, Badge, Credential, CredentialState, User, utcnow
from server.domain import audit
from server.domain.actors import Actor


def void_local_credentials(session: Session, actor: Actor, user: User) -> dict[str, int]:
    """Make ``user`` an SSO account: no password, no temporary password, no link, no badge.

    Returns what was voided, e.g. ``{"badges": 1, "activation_links": 0, "password": 1}``.
    """
    now = utcnow()
    credential = user.credential or Credential(user_id=user.id)
    user.credential = credential
    voided = {"password": int(credential.password_hash is not None)}
    credential.state = CredentialState.SSO
    credential.password_hash = None
    credential.temporary_secret = None
    credential.must_change = False
    credential.updated_at = now
    badges = session.scalars(
        select(Badge).where(Badge.user_id == user.id, Badge.voided_at.is_(None))
    ).all()
    for badge in badges:
        badge.voided_at = now
    links = session.scalars(
        select(ActivationToken).where(
            ActivationToken.user_id == user.id,
            ActivationToken.used_at.is_(None),
            ActivationToken.expires_at > now,
        )
    ).all()
    for link in links:
        link.expires_at = now
    voided.update(badges=len(badges), activation_links=len(links))
    session.flush()
    if any(voided.values()):
        audit.record(
            session,
            actor,
            "credential.void",
            target_kind="user",
            target_id=user.id,
            target_label=user.username,
            detail="Linked to SSO: "
            + ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in voided.items())
            + " voided.",
        )
    return voided
