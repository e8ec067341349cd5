"""The authorization server's records (RFC 6749, OpenID Connect Core): codes, token families,
refresh rotation, revocation, introspection and the claims released about a user.

- Authorization codes are single-use and live :data:`CODE_LIFETIME`. Presenting a spent code
  revokes every token issued from it (RFC 6749 §4.1.2).
- Tokens issued from one code form a *family* (``OAuthToken.family_id``). Each refresh rotates
  the refresh token; presenting a rotated one again revokes the whole family (OAuth 2.0
  Security BCP §4.14).
- Access tokens are stored with :func:`server.domain.oauth.store_token` (digests only) so the
  OneRoster API checks them with :func:`server.domain.oauth.authenticate_access_token`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from server.db import (
    AuthorizationCode,
    ClientSigningPreference,
    Enrollment,
    OAuthClient,
    OAuthClientKind,
    OAuthToken,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    utcnow,
)
from server.domain import oauth
from server.domain.secrets import token_digest
from server.errors import InvalidValue

CODE_LIFETIME = timedelta(minutes=5)
REFRESH_LIFETIME = timedelta(days=30)
ROSTER_SCOPE = "roster"


@dataclass(frozen=True)
class CodeRequest:
    """What an authorization code remembers of its request."""

    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: datetime
    amr: str | None = None  # space-separated OIDC Core §2 ``amr`` values, e.g. "fed"
    acr: str | None = None


def find_client(session: Session, client_id: str | None) -> OAuthClient | None:
    """A live client by its public ``client_id``."""
    return oauth.find_client(session, client_id) if client_id else None


def id_token_algorithm(session: Session, client: OAuthClient) -> str:
    preference = session.get(ClientSigningPreference, client.id)
    return preference.id_token_alg if preference else "RS256"


def set_id_token_algorithm(session: Session, client: OAuthClient, alg: str) -> None:
    """Record the client's ``id_token_signed_response_alg`` (RS256 or ES256).

    :raises InvalidValue: another algorithm.
    """
    if alg not in ("RS256", "ES256"):
        raise InvalidValue("ID tokens are signed with RS256 or ES256.", field="id_token_alg")
    preference = session.get(ClientSigningPreference, client.id)
    if preference is None:
        session.add(ClientSigningPreference(client_id=client.id, id_token_alg=alg))
    else:
        preference.id_token_alg = alg
    session.flush()


def save_code(
    session: Session, client: OAuthClient, user: User, code: str, request: CodeRequest
) -> AuthorizationCode:
    row = AuthorizationCode(
        tenant_id=client.tenant_id,
        client_id=client.id,
        user_id=user.id,
        code_digest=token_digest(code),
        redirect_uri=request.redirect_uri,
        scope=request.scope,
        nonce=request.nonce,
        code_challenge=request.code_challenge,
        code_challenge_method=request.code_challenge_method,
        auth_time=request.auth_time,
        amr=request.amr,
        acr=request.acr,
        expires_at=utcnow() + CODE_LIFETIME,
    )
    session.add(row)
    session.flush()
    return row


def find_code(session: Session, client: OAuthClient, code: str) -> AuthorizationCode | None:
    """A live code of ``client``. A spent code revokes its tokens and answers None."""
    row = session.scalars(
        select(AuthorizationCode).where(AuthorizationCode.code_digest == token_digest(code))
    ).first()
    if row is None or row.client_id != client.id:
        return None
    if row.used_at is not None:
        revoke_family(session, row.family_id)
        return None
    if row.expires_at <= utcnow():
        return None
    return row


def spend_code(session: Session, row: AuthorizationCode) -> None:
    row.used_at = utcnow()


# A token's user is read for ``sub`` and the profile claims: its roles and grades load only
# when the ``roster`` scope asks for them, its credential never (issue 15: the eager loads
# were three of an exchange's eleven statements and a third of its CPU).
_CLAIMS_ONLY = (lazyload(User.roles), lazyload(User.grade_rows), lazyload(User.credential))


def _active_user(session: Session, user_id: str) -> User | None:
    user = session.get(User, user_id, options=_CLAIMS_ONLY)
    return user if user is not None and user.active else None


def code_user(session: Session, row: AuthorizationCode) -> User | None:
    return _active_user(session, row.user_id)


def find_refresh_token(session: Session, token: str) -> OAuthToken | None:
    """The live token row of a refresh token. A rotated one revokes its family (reuse)."""
    row = session.scalars(
        select(OAuthToken).where(OAuthToken.refresh_digest == token_digest(token))
    ).first()
    if row is None:
        return None
    if row.refresh_used_at is not None:
        revoke_family(session, row.family_id)
        return None
    if row.revoked_at is not None:
        return None
    if row.refresh_expires_at is not None and row.refresh_expires_at <= utcnow():
        return None
    return row


def retire_refresh_token(session: Session, row: OAuthToken) -> None:
    """Mark a refresh token rotated: presenting it again is reuse."""
    row.refresh_used_at = utcnow()


def token_user(session: Session, row: OAuthToken) -> User | None:
    if row.user_id is None:
        return None
    return _active_user(session, row.user_id)


def find_token(session: Session, token: str, hint: str | None = None) -> OAuthToken | None:
    """A token row by access or refresh token value (``hint`` decides which to try first)."""
    digest = token_digest(token or "")
    columns = [OAuthToken.access_digest, OAuthToken.refresh_digest]
    if hint == "refresh_token":
        columns.reverse()
    for column in columns:
        row = session.scalars(select(OAuthToken).where(column == digest)).first()
        if row is not None:
            return row
    return None


def token_client(session: Session, row: OAuthToken) -> OAuthClient | None:
    return session.get(OAuthClient, row.client_id)


def revoke_token(session: Session, row: OAuthToken, *, whole_family: bool) -> None:
    """RFC 7009: revoking a refresh token ends its family; an access token, itself."""
    if whole_family:
        revoke_family(session, row.family_id)
    elif row.revoked_at is None:
        row.revoked_at = utcnow()


def revoke_family(session: Session, family_id: str) -> int:
    """Revoke every token of a family (code reuse, refresh-token reuse). Returns how many."""
    count = 0
    now = utcnow()
    for row in session.scalars(
        select(OAuthToken).where(OAuthToken.family_id == family_id, OAuthToken.revoked_at.is_(None))
    ):
        row.revoked_at = now
        count += 1
    return count


def token_is_active(session: Session, row: OAuthToken, *, refresh: bool) -> bool:
    now = utcnow()
    if row.revoked_at is not None:
        return False
    if refresh:
        if row.refresh_used_at is not None:
            return False
        if row.refresh_expires_at is not None and row.refresh_expires_at <= now:
            return False
    elif row.expires_at <= now:
        return False
    if row.user_id is not None and token_user(session, row) is None:
        return False
    client = token_client(session, row)
    return client is not None and client.revoked_at is None


def client_kind_allows(client: OAuthClient, grant_type: str) -> bool:
    """OIDC clients use codes and refresh tokens; API clients the client-credentials grant."""
    if client.kind == OAuthClientKind.API:
        return grant_type == "client_credentials"
    return grant_type in ("authorization_code", "refresh_token")


def user_claims(session: Session, user: User, scopes: set[str]) -> dict[str, Any]:
    """The claims released for ``scopes`` (OpenID Connect Core §5.4, plus ``roster``).

    ``sub`` is the user's id: stable, and unique in the tenant (and beyond). ``roster`` adds
    OneRoster ``roles``, ``grades``, ``school_ids`` and ``class_ids`` (sourcedIds).
    """
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        given = user.preferred_given_name or user.given_name
        family = user.preferred_family_name or user.family_name
        claims.update(
            name=user.display_name,
            given_name=given,
            family_name=family,
            preferred_username=user.username,
        )
        if user.middle_name:
            claims["middle_name"] = user.middle_name
        claims["updated_at"] = int(user.updated_at.timestamp())
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = False
    if ROSTER_SCOPE in scopes:
        claims.update(roster_claims(session, user))
    return claims


def roster_claims(session: Session, user: User) -> dict[str, Any]:
    org_ids = {role.org_id for role in user.roles}
    schools = (
        sorted(session.scalars(select(Org.sourced_id).where(Org.id.in_(org_ids))))
        if org_ids
        else []
    )
    classes = sorted(
        session.scalars(
            select(SchoolClass.sourced_id)
            .join(Enrollment, Enrollment.class_id == SchoolClass.id)
            .where(
                Enrollment.user_id == user.id,
                Enrollment.status == RecordStatus.ACTIVE,
                SchoolClass.status == RecordStatus.ACTIVE,
            )
        ).unique()
    )
    roles = sorted({role.role for role in user.roles} | {user.primary_role})
    return {
        "roles": roles,
        "grades": list(user.grades),
        "school_ids": schools,
        "class_ids": classes,
    }


def store_issued_token(
    session: Session,
    client: OAuthClient,
    token: dict[str, Any],
    *,
    user: User | None,
    family_id: str | None,
    auth_time: datetime | None,
) -> OAuthToken:
    """Record a token response of the token endpoint (digests only)."""
    return oauth.store_token(
        session,
        client,
        token["access_token"],
        token.get("scope", ""),
        user_id=user.id if user else None,
        refresh_token=token.get("refresh_token"),
        expires_in=timedelta(seconds=int(token.get("expires_in", 3600))),
        refresh_expires_in=REFRESH_LIFETIME if token.get("refresh_token") else None,
        family_id=family_id,
        auth_time=auth_time,
    )


def logout_redirect_allowed(client: OAuthClient, uri: str) -> bool:
    """RP-initiated logout: only a registered ``post_logout_redirect_uri``, matched exactly."""
    return uri in (client.post_logout_redirect_uris or [])


def nonce_used(session: Session, client: OAuthClient, nonce: str) -> bool:
    """True when a code of ``client`` already carried ``nonce`` (a replayed request)."""
    return (
        session.scalars(
            select(AuthorizationCode.id).where(
                AuthorizationCode.client_id == client.id, AuthorizationCode.nonce == nonce
            )
        ).first()
        is not None
    )
