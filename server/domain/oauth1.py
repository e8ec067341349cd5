"""OAuth 1.0a consumer secrets and replay protection for OneRoster 1.1 signed requests.

Many 1.1 consumers sign each request with OAuth 1.0a (HMAC-SHA1 or HMAC-SHA256, RFC 5849) using
a consumer key and secret instead of fetching a bearer token. The consumer key is the API
client's ``client_id``. The consumer secret is separate from the OAuth 2 client secret: it is
issued by :func:`issue_consumer_secret` (shown once, like every secret) and kept sealed with a
:class:`~server.domain.secrets.SecretBox`, because checking an HMAC needs the clear secret while
OAuth 2 secrets are kept only as digests. Rotating it is issuing a new one.

A (nonce, timestamp) pair is accepted once per client (:func:`remember_nonce`); nonces older
than the timestamp window are forgotten as new ones arrive.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import OAuth1Nonce, OAuth1Secret, OAuthClient, OAuthClientKind, utcnow
from server.domain import audit
from server.domain.access import ensure_can_manage_connections
from server.domain.actors import Actor
from server.domain.oauth import AccessGrant
from server.domain.secrets import SecretBox
from server.errors import InvalidValue, NotFound

TIMESTAMP_WINDOW = timedelta(minutes=5)
BOX_PURPOSE = "oauth1-consumer-secret"


def consumer_box(secret_key: str | Sequence[str]) -> SecretBox:
    """The box that seals consumer secrets (its own key, derived from the server secret)."""
    return SecretBox(secret_key, BOX_PURPOSE)


def issue_consumer_secret(
    session: Session, actor: Actor, client: OAuthClient, box: SecretBox
) -> str:
    """Give an API client a new OAuth 1.0a consumer secret and return it (shown once).

    :raises NotAllowed: not a district admin. :raises InvalidValue: not an API client.
    """
    ensure_can_manage_connections(actor)
    if client.tenant_id != actor.tenant_id or client.kind != OAuthClientKind.API:
        raise InvalidValue("Only OneRoster API clients can sign requests with OAuth 1.0a.")
    secret = secrets.token_urlsafe(32)
    sealed = box.seal(secret, client.id)
    row = session.get(OAuth1Secret, client.id)
    if row is None:
        session.add(OAuth1Secret(client_id=client.id, sealed_secret=sealed))
    else:
        row.sealed_secret = sealed
        row.created_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "client.oauth1_secret",
        target_kind="client",
        target_id=client.id,
        target_label=client.name,
    )
    return secret


def consumer_secret(session: Session, client: OAuthClient, box: SecretBox) -> str | None:
    """The clear consumer secret of a client, or None if it has none."""
    row = session.get(OAuth1Secret, client.id)
    return box.open(row.sealed_secret, client.id) if row is not None else None


def remember_nonce(session: Session, client: OAuthClient, nonce: str, timestamp: int) -> bool:
    """Record a (nonce, timestamp) of a signed request; False if it was seen before (a replay)."""
    now = utcnow()
    session.execute(delete(OAuth1Nonce).where(OAuth1Nonce.seen_at < now - 2 * TIMESTAMP_WINDOW))
    seen = session.scalars(
        select(OAuth1Nonce).where(
            OAuth1Nonce.client_id == client.id,
            OAuth1Nonce.nonce == nonce,
            OAuth1Nonce.timestamp == timestamp,
        )
    ).first()
    if seen is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                OAuth1Nonce(client_id=client.id, nonce=nonce, timestamp=timestamp, seen_at=now)
            )
    except IntegrityError:
        return False  # another process took the same nonce a moment ago
    return True


def grant_for(client: OAuthClient) -> AccessGrant:
    """What a correctly signed request of ``client`` may do: its registered scopes and schools."""
    return AccessGrant(
        tenant_id=client.tenant_id,
        client_id=client.client_id,
        client_name=client.name,
        user_id=None,
        scopes=frozenset(client.scopes or ()),
        school_ids=tuple(client.school_ids or ()),
    )


def find_api_client(session: Session, tenant_id: str, name: str) -> OAuthClient:
    """The live API client called ``name`` in a tenant. :raises NotFound:"""
    client = session.scalars(
        select(OAuthClient).where(
            OAuthClient.tenant_id == tenant_id,
            OAuthClient.name == name,
            OAuthClient.kind == OAuthClientKind.API,
            OAuthClient.revoked_at.is_(None),
        )
    ).first()
    if client is None:
        raise NotFound(f"No OneRoster API client named {name!r}.")
    return client
