"""Connections (sources of records) and their bearer tokens.

A token is shown once, at creation or rotation; only its SHA-256 digest is kept, so a stolen
database does not hold usable tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Exists, Table, bindparam, event, exists, literal, select
from sqlalchemy.orm import Session

from server.db import Connection, ConnectionKind, ConnectionToken, ProviderFailure, utcnow
from server.db.session import Reader, connection_of
from server.domain import audit
from server.domain.access import ensure_can_manage_connections, own_import_scope
from server.domain.actors import Actor
from server.domain.schools import resolve_school_ids
from server.domain.secrets import new_token, token_digest, token_hint
from server.domain.vocabulary import check_texts
from server.errors import Conflict, InvalidValue, NotFound

KIND_ALIASES = {
    "scim": ConnectionKind.SCIM,
    "oneroster": ConnectionKind.ONEROSTER_CSV,
    "oneroster_csv": ConnectionKind.ONEROSTER_CSV,
    "oneroster_rest": ConnectionKind.ONEROSTER_REST,
    "csv": ConnectionKind.CSV,
}
PROFILES = ("entra", "okta", "google")
ADOPT_KEYS = ("username", "email", "identifier")


@dataclass(frozen=True)
class IssuedToken:
    """A connection with the clear-text token that was just created for it."""

    connection: Connection
    token: str


def create_connection(
    session: Session,
    actor: Actor,
    name: str,
    kind: str,
    *,
    sso_provider: str | None = None,
    profile: str | None = None,
    school_sourced_ids: list[str] | None = None,
    adopt_by: str | None = None,
) -> IssuedToken:
    """Add a connection and its first token.

    :raises Conflict: the name is taken. :raises InvalidValue: unknown kind, profile or school.
    """
    ensure_can_manage_connections(actor)
    check_texts(
        [
            name,
            kind,
            sso_provider or "",
            profile or "",
            adopt_by or "",
            *(school_sourced_ids or []),
        ],
        "connection",
    )
    name = name.strip()
    if not name:
        raise InvalidValue("A connection needs a name.", field="name")
    if kind not in KIND_ALIASES:
        raise InvalidValue(
            f"Unknown connection kind {kind!r}; expected one of scim, oneroster, csv.", field="kind"
        )
    if profile is not None and profile not in PROFILES:
        raise InvalidValue(
            f"Unknown profile {profile!r}; expected one of {', '.join(PROFILES)}.", field="profile"
        )
    if adopt_by is not None and adopt_by not in ADOPT_KEYS:
        raise InvalidValue(f"adopt_by must be one of {', '.join(ADOPT_KEYS)}.", field="adopt_by")
    if _find(session, actor.tenant_id, name):
        raise Conflict(f"A connection named {name!r} already exists.")
    connection = Connection(
        tenant_id=actor.tenant_id,
        name=name,
        kind=KIND_ALIASES[kind],
        sso=bool(sso_provider),
        sso_provider=sso_provider or None,
        profile=profile,
        adopt_by=adopt_by,
        school_ids=resolve_school_ids(session, actor.tenant_id, school_sourced_ids or []),
    )
    session.add(connection)
    session.flush()
    token = _add_token(session, connection)
    audit.record(
        session,
        actor,
        "connection.create",
        target_kind="connection",
        target_id=connection.id,
        target_label=name,
        changes={"kind": [None, connection.kind], "sso_provider": [None, sso_provider]},
    )
    return IssuedToken(connection, token)


def rotate_token(session: Session, actor: Actor, name: str) -> IssuedToken:
    """Revoke every token of the connection and issue a new one."""
    ensure_can_manage_connections(actor)
    connection = get_connection(session, actor.tenant_id, name)
    if connection.kind == ConnectionKind.MANUAL:
        raise InvalidValue("The manual connection has no tokens.")
    now = utcnow()
    for old in connection.tokens:
        if old.revoked_at is None:
            old.revoked_at = now
    # Once committed, caches of resolved tokens in this process drop what they hold.
    event.listen(session, "after_commit", _count_revocation, once=True)
    token = _add_token(session, connection)
    audit.record(
        session,
        actor,
        "connection.rotate_token",
        target_kind="connection",
        target_id=connection.id,
        target_label=connection.name,
    )
    return IssuedToken(connection, token)


def list_connections(session: Session, actor: Actor) -> list[Connection]:
    """The tenant's connections, oldest first. :raises NotAllowed: not a district admin."""
    ensure_can_manage_connections(actor)
    query = select(Connection).where(Connection.tenant_id == actor.tenant_id)
    return list(session.scalars(query.order_by(Connection.created_at, Connection.name)))


# the connections staff upload files through (the others are pushed to or pull by themselves)
FILE_IMPORT_KINDS = (ConnectionKind.MANUAL, ConnectionKind.CSV, ConnectionKind.ONEROSTER_CSV)


def file_import_connections(session: Session, actor: Actor) -> list[Connection]:
    """The connections ``actor`` may upload files through (any district or school admin).

    :raises NotAllowed: ``actor`` does not import (:func:`server.domain.access.own_import_scope`).
    """
    own_import_scope(actor)
    query = select(Connection).where(
        Connection.tenant_id == actor.tenant_id, Connection.kind.in_(FILE_IMPORT_KINDS)
    )
    return list(session.scalars(query.order_by(Connection.created_at, Connection.name)))


def file_import_connection(session: Session, actor: Actor, name: str) -> Connection:
    """The connection named ``name`` if ``actor`` may upload files through it.

    :raises NotFound: no such connection. :raises InvalidValue: it takes no file imports.
    """
    own_import_scope(actor)
    connection = get_connection(session, actor.tenant_id, name)
    if connection.kind not in FILE_IMPORT_KINDS:
        raise InvalidValue(f"{connection.name} does not take file imports.")
    return connection


def get_connection(session: Session, tenant_id: str, name: str) -> Connection:
    check_texts(name, "connection")
    connection = _find(session, tenant_id, name)
    if connection is None:
        raise NotFound(f"No connection named {name!r}.")
    return connection


_revocations = [0]


def revocation_count() -> int:
    """How many token rotations this process has committed: a cache of resolved tokens
    (``scim.tokens``) compares it to drop its entries as soon as a token is revoked here.
    Rotations in other processes (the CLI) reach such a cache only when its entries expire."""
    return _revocations[0]


def _count_revocation(session: Session) -> None:
    _revocations[0] += 1


def authenticate_token(session: Session, token: str) -> Connection | None:
    """The connection a live bearer token belongs to, or None."""
    if not token:
        return None
    row = session.scalars(
        select(ConnectionToken).where(
            ConnectionToken.digest == token_digest(token), ConnectionToken.revoked_at.is_(None)
        )
    ).first()
    return row.connection if row else None


def token_is_live(session: Reader, digest: str) -> bool:
    """Whether the token with this SHA-256 digest is live (not revoked), read in the caller's
    transaction: a cache of resolved tokens (``scim.tokens``) asks it on every request, so a
    token rotated in any process (``rollcall connection rotate-token``) is refused at once.
    One indexed read of the token row, built once."""
    return connection_of(session).execute(_LIVE_TOKEN, {"digest": digest}).first() is not None


def live_connection(session: Session, connection_id: str, digest: str) -> Connection | None:
    """Connection ``connection_id`` if the token with this digest is live (:func:`token_is_live`,
    the same rule), else None: one read for a write's live check of its token and the
    connection that owns what it writes (a SCIM create read them apart, issue 15)."""
    found = session.scalars(_LIVE_CONNECTION, {"connection_id": connection_id, "digest": digest})
    return found.first()


def live_token_clause() -> Exists:
    """``EXISTS`` a live token whose digest is bound as ``digest``: a read that should find
    nothing once the request's token is revoked adds it to its own ``WHERE``."""
    return exists(_LIVE_TOKEN)


_TOKENS = cast(Table, ConnectionToken.__table__)
_LIVE_TOKEN = select(literal(1)).where(
    _TOKENS.c.digest == bindparam("digest"), _TOKENS.c.revoked_at.is_(None)
)
# built once: building the ORM query was most of its cost (issue 15)
_LIVE_CONNECTION = select(Connection).where(
    Connection.id == bindparam("connection_id"), exists(_LIVE_TOKEN)
)

KEEP_FAILURES = 50


def record_failure(
    session: Session,
    connection_id: str,
    *,
    method: str,
    path: str,
    status: int,
    error: str,
    request_excerpt: str | None = None,
) -> None:
    """Remember a refused request of a connection for its admins (the latest 50 are kept).

    Call it in its own unit of work: the refused request's own transaction rolls back.
    The excerpt is scrubbed of secrets and cut to 1,000 characters.
    """
    from server.logs import scrub

    excerpt = scrub(request_excerpt)[:1000] if request_excerpt else None
    session.add(
        ProviderFailure(
            connection_id=connection_id,
            method=method,
            path=path[:500],
            status=status,
            error=error[:2000],
            request_excerpt=excerpt,
        )
    )
    session.flush()
    stale = session.scalars(
        select(ProviderFailure.id)
        .where(ProviderFailure.connection_id == connection_id)
        .order_by(ProviderFailure.at.desc(), ProviderFailure.id)
        .offset(KEEP_FAILURES)
    ).all()
    for failure_id in stale:
        session.delete(session.get(ProviderFailure, failure_id))


def recent_failures(
    session: Session, actor: Actor, connection: Connection, limit: int = 10
) -> list[ProviderFailure]:
    ensure_can_manage_connections(actor)
    if connection.tenant_id != actor.tenant_id:
        raise NotFound("No such connection.")
    return list(
        session.scalars(
            select(ProviderFailure)
            .where(ProviderFailure.connection_id == connection.id)
            .order_by(ProviderFailure.at.desc())
            .limit(limit)
        )
    )


def _find(session: Session, tenant_id: str, name: str) -> Connection | None:
    return session.scalars(
        select(Connection).where(Connection.tenant_id == tenant_id, Connection.name == name)
    ).first()


def _add_token(session: Session, connection: Connection) -> str:
    token = new_token()
    session.add(
        ConnectionToken(
            connection_id=connection.id, digest=token_digest(token), hint=token_hint(token)
        )
    )
    session.flush()
    return token


def sso_providers_at(session: Session, tenant_id: str, school_ids: list[str]) -> list[str]:
    """The SSO providers whose connections manage any of these schools (issue 14, item 14):
    a hand-made account there may duplicate the account the provider sends."""
    wanted = set(school_ids)
    found = session.scalars(
        select(Connection).where(Connection.tenant_id == tenant_id, Connection.sso.is_(True))
    )
    return sorted({c.provider_name for c in found if wanted & set(c.school_ids or [])})
