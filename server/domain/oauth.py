"""OAuth 2 clients and access tokens, as the domain sees them.

The OIDC provider (``oidc/``) issues tokens through Authlib and stores them here; the OneRoster
API and userinfo check them with :func:`authenticate_access_token`. Client secrets and tokens
are stored as SHA-256 digests and shown once.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Exists, Table, bindparam, exists, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import InstrumentedAttribute, Session

from server.db import OAuthClient, OAuthClientKind, OAuthToken, User, utcnow
from server.domain import audit
from server.domain.access import ensure_can_manage_connections
from server.domain.actors import Actor
from server.domain.schools import resolve_school_ids
from server.domain.secrets import token_digest
from server.errors import Conflict, InvalidValue

ACCESS_TOKEN_LIFETIME = timedelta(hours=1)

# OneRoster 1.1 and 1.2 scopes (API clients get the core and roster ones unless told).
ONEROSTER_SCOPES = [
    "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly",
    "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly",
    "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-demographics.readonly",
    "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly",
    "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly",
    "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-demographics.readonly",
]
DEFAULT_ONEROSTER_SCOPES = [s for s in ONEROSTER_SCOPES if "demographics" not in s]


@dataclass(frozen=True)
class NewClient:
    """A client with the secret that was just generated (None for public clients)."""

    client: OAuthClient
    secret: str | None


@dataclass(frozen=True)
class AccessGrant:
    """What a valid access token allows: its tenant, client, user (if any), scopes, schools."""

    tenant_id: str
    client_id: str
    client_name: str
    user_id: str | None
    scopes: frozenset[str]
    school_ids: tuple[str, ...]


def create_client(
    session: Session,
    actor: Actor,
    name: str,
    *,
    kind: str = OAuthClientKind.OIDC,
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    public: bool = False,
    scopes: list[str] | None = None,
    school_sourced_ids: list[str] | None = None,
) -> NewClient:
    """Register a client. OIDC clients need at least one exact redirect URI.

    :raises InvalidValue: missing redirect URI, or an unknown school. :raises Conflict:
    """
    ensure_can_manage_connections(actor)
    name = name.strip()
    if not name:
        raise InvalidValue("A client needs a name.", field="name")
    if kind == OAuthClientKind.OIDC and not redirect_uris:
        raise InvalidValue("An OIDC client needs at least one redirect URI.", field="redirect_uri")
    if kind == OAuthClientKind.API and public:
        raise InvalidValue("API clients use client credentials and cannot be public.")
    existing = session.scalars(
        select(OAuthClient).where(
            OAuthClient.tenant_id == actor.tenant_id, OAuthClient.name == name
        )
    ).first()
    if existing is not None:
        raise Conflict(f"A client named {name!r} already exists.")
    secret = None if public else secrets.token_urlsafe(32)
    client = OAuthClient(
        tenant_id=actor.tenant_id,
        # hex: safe as a command-line value (never starts with '-'), in URLs and Basic auth
        client_id=secrets.token_hex(16),
        secret_digest=token_digest(secret) if secret else None,
        name=name,
        kind=kind,
        public=public,
        redirect_uris=list(redirect_uris or []),
        post_logout_redirect_uris=list(post_logout_redirect_uris or []),
        scopes=list(scopes or []),
        school_ids=resolve_school_ids(session, actor.tenant_id, school_sourced_ids or []),
        token_endpoint_auth_method="none" if public else "client_secret_basic",
    )
    session.add(client)
    session.flush()
    audit.record(
        session,
        actor,
        "client.create",
        target_kind="client",
        target_id=client.id,
        target_label=name,
        changes={"kind": [None, kind]},
    )
    return NewClient(client, secret)


def check_client_secret(client: OAuthClient, secret: str) -> bool:
    if client.secret_digest is None:
        return False
    return hmac.compare_digest(client.secret_digest, token_digest(secret))


def list_clients(session: Session, actor: Actor) -> list[OAuthClient]:
    """The tenant's live clients (district admins only)."""
    ensure_can_manage_connections(actor)
    query = select(OAuthClient).where(
        OAuthClient.tenant_id == actor.tenant_id, OAuthClient.revoked_at.is_(None)
    )
    return list(session.scalars(query.order_by(OAuthClient.created_at, OAuthClient.name)))


def find_client(session: Session, client_id: str) -> OAuthClient | None:
    client = session.scalars(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    return client if client is not None and client.revoked_at is None else None


def store_token(
    session: Session,
    client: OAuthClient,
    access_token: str,
    scope: str,
    *,
    user_id: str | None = None,
    refresh_token: str | None = None,
    expires_in: timedelta = ACCESS_TOKEN_LIFETIME,
    refresh_expires_in: timedelta | None = None,
    family_id: str | None = None,
    auth_time: datetime | None = None,
) -> OAuthToken:
    """Record an issued token (digests only)."""
    now = utcnow()
    row = OAuthToken(
        tenant_id=client.tenant_id,
        client_id=client.id,
        user_id=user_id,
        access_digest=token_digest(access_token),
        refresh_digest=token_digest(refresh_token) if refresh_token else None,
        scope=scope,
        issued_at=now,
        expires_at=now + expires_in,
        refresh_expires_at=now + refresh_expires_in if refresh_expires_in else None,
        auth_time=auth_time,
    )
    if family_id:
        row.family_id = family_id
    session.add(row)
    session.flush()
    return row


def authenticate_access_token(session: Session, token: str) -> AccessGrant | None:
    """The grant behind a live, unexpired, unrevoked access token, or None."""
    if not token:
        return None
    row = session.scalars(
        select(OAuthToken).where(OAuthToken.access_digest == token_digest(token))
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    client = session.get(OAuthClient, row.client_id)
    if client is None or client.revoked_at is not None:
        return None
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            return None
    return AccessGrant(
        tenant_id=row.tenant_id,
        client_id=client.client_id,
        client_name=client.name,
        user_id=row.user_id,
        scopes=frozenset(row.scope.split()),
        school_ids=tuple(client.school_ids or ()),
    )


def revoke_user_tokens(session: Session, user_id: str) -> int:
    """Revoke every live token of a user (deactivation, deletion). Returns how many."""
    return revoke_tokens_of(session, [user_id])


def revoke_tokens_of(session: Session, user_ids: list[str]) -> int:
    """Revoke every live token of these users (one UPDATE per 900). Returns how many.

    One Core UPDATE built once (issue 15: building it per call, and the ORM's bulk-update
    path, were two thirds of a SCIM deactivation's revocation); tokens the session holds are
    expired so they read the new ``revoked_at``, as the ORM's synchronisation did."""
    session.flush()  # as the ORM's execute autoflushed: pending tokens are revoked too
    revoked = 0
    connection, now = session.connection(), utcnow()
    for start in range(0, len(user_ids), 900):
        result = connection.execute(
            _REVOKE, {"user_ids": user_ids[start : start + 900], "now": now}
        )
        revoked += cast("CursorResult[Any]", result).rowcount or 0
    if revoked:
        wanted = set(user_ids)
        for held in list(session.identity_map.values()):
            if isinstance(held, OAuthToken) and held.user_id in wanted:
                session.expire(held, ["revoked_at"])
    return revoked


def holds_unrevoked_tokens(user_id: ColumnElement[str] | InstrumentedAttribute[str]) -> Exists:
    """``EXISTS`` a token of the user ``user_id`` names that :func:`revoke_tokens_of` would
    revoke: a read of users tells whether a deactivation has any to revoke (issue 15)."""
    return exists().where(_TOKENS.c.user_id == user_id, _TOKENS.c.revoked_at.is_(None))


_TOKENS = cast(Table, OAuthToken.__table__)
_REVOKE = (
    update(_TOKENS)
    .where(
        _TOKENS.c.user_id.in_(bindparam("user_ids", expanding=True)),
        _TOKENS.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("now"))
)
