"""District SSO sign-in through an upstream OpenID Connect provider (issue 17).

An SSO connection ("Clever") may name the district's own OpenID Connect provider. Rollcall
then brokers its SSO-linked users: the browser signs in there, and Rollcall's own pending
authorization request continues for the Rollcall user the upstream identity maps to. The rules:

- **Configuration** (:func:`set_upstream_provider`): only an SSO connection has one; the
  client secret is sealed with a :class:`SecretBox` bound to the connection id and kept in
  ``Connection.settings["sign_in"]``; the link claim is ``sub`` (matched against the SSO
  subject recorded at provisioning: SCIM ``externalId`` or the OneRoster ``userIds`` entry of
  that provider), ``email`` or ``preferred_username``.
- **Mapping** (:func:`linked_user`): the identity maps to exactly one *active* user owned by
  that connection in that tenant, or nothing is issued (:class:`NotLinked`). Accounts are never
  created or linked on the fly: provisioning stays the connection's job.
- **Flow state** (:func:`seal_flow`/:func:`open_flow`): PKCE verifier, ``nonce`` and the
  Rollcall request to continue are sealed in a cookie bound to ``state``, so a tampered or
  foreign ``state`` opens nothing (stateless app processes, SPEC §2).
- **Success** (:func:`finish`) opens a browser session that remembers the upstream issuer
  (``amr``/``acr`` of the ID token) and audits the upstream and subject.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session

from server.db import BrowserSession, Connection, User, fold, not_deleted
from server.domain import audit, guard, signin
from server.domain.access import ensure_can_manage_connections
from server.domain.actors import Actor, student_actor
from server.domain.secrets import SecretBox
from server.errors import InvalidValue, NotFound, NotLinked

SETTINGS_KEY = "sign_in"
BOX_PURPOSE = "upstream-sign-in"
LINK_CLAIMS = ("sub", "email", "preferred_username")
DEFAULT_SCOPES = "openid profile email"
CALLBACK_PATH = "/login/upstream/callback"
FLOW_SECONDS = 600


@dataclass(frozen=True)
class UpstreamProvider:
    """An SSO connection's upstream provider; ``client_secret`` is clear text (never logged)."""

    connection_id: str
    tenant_id: str
    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: str = DEFAULT_SCOPES
    link_claim: str = "sub"


@dataclass(frozen=True)
class Flow:
    """One upstream sign-in in progress, sealed into the browser's cookie."""

    connection_id: str
    state: str
    nonce: str
    code_verifier: str
    next_path: str
    token_endpoint: str
    jwks_uri: str
    expires_at: int


def box_for(secret_keys: str | Sequence[str]) -> SecretBox:
    """The box of upstream client secrets and flow cookies (the key ring: old keys open)."""
    return SecretBox(secret_keys, BOX_PURPOSE)


def callback_url(issuer: str) -> str:
    """The one redirect URI of every upstream: ``{ROLLCALL_ISSUER}/login/upstream/callback``."""
    return issuer.rstrip("/") + CALLBACK_PATH


def set_upstream_provider(
    session: Session,
    actor: Actor,
    connection: Connection,
    *,
    box: SecretBox,
    issuer: str,
    client_id: str,
    client_secret: str,
    scopes: str = DEFAULT_SCOPES,
    link_claim: str = "sub",
) -> UpstreamProvider:
    """Give an SSO connection its upstream OpenID Connect provider (issuer already discovered).

    :raises NotFound: another tenant's connection. :raises InvalidValue: not an SSO
        connection, an issuer that is not http(s), an empty client id or secret, an unknown
        link claim, scopes without ``openid``.
    """
    ensure_can_manage_connections(actor)
    if connection.tenant_id != actor.tenant_id:
        raise NotFound("No such connection.")
    if not guard.is_sso_linked(connection):
        raise InvalidValue(
            "Only an SSO connection (one that names its sign-in provider) signs its users in "
            "upstream.",
            field="sso",
        )
    if not issuer.startswith(("http://", "https://")):
        raise InvalidValue(f"The issuer must be an http(s) URL, not {issuer!r}.", field="issuer")
    if not client_id.strip() or not client_secret:
        raise InvalidValue("The upstream needs a client id and a client secret.", field="client")
    if link_claim not in LINK_CLAIMS:
        raise InvalidValue(
            f"The link claim is one of {', '.join(LINK_CLAIMS)}, not {link_claim!r}.",
            field="link_claim",
        )
    if "openid" not in scopes.split():
        raise InvalidValue("The scopes must include 'openid'.", field="scopes")
    sealed = box.seal(client_secret, connection.id)
    connection.settings = {
        **(connection.settings or {}),
        SETTINGS_KEY: {
            "issuer": issuer.rstrip("/"),
            "client_id": client_id.strip(),
            "client_secret_sealed": base64.b64encode(sealed).decode("ascii"),
            "scopes": " ".join(scopes.split()),
            "link_claim": link_claim,
        },
    }
    audit.record(
        session,
        actor,
        "connection.set_sign_in_upstream",
        target_kind="connection",
        target_id=connection.id,
        target_label=connection.name,
        changes={"issuer": [None, issuer], "link_claim": [None, link_claim]},
    )
    provider = provider_of(connection, box)
    assert provider is not None
    return provider


def provider_of(connection: Connection, box: SecretBox) -> UpstreamProvider | None:
    """The connection's upstream provider with its secret unsealed, or None."""
    stored = (connection.settings or {}).get(SETTINGS_KEY)
    if not stored or not guard.is_sso_linked(connection):
        return None
    return UpstreamProvider(
        connection_id=connection.id,
        tenant_id=connection.tenant_id,
        name=connection.provider_name,
        issuer=stored["issuer"],
        client_id=stored["client_id"],
        client_secret=box.open(base64.b64decode(stored["client_secret_sealed"]), connection.id),
        scopes=stored.get("scopes") or DEFAULT_SCOPES,
        link_claim=stored.get("link_claim") or "sub",
    )


def tenant_providers(session: Session, tenant_id: str) -> list[tuple[str, str]]:
    """``(connection id, provider name)`` of every upstream of a tenant, for the buttons."""
    found = session.scalars(
        select(Connection).where(Connection.tenant_id == tenant_id, Connection.sso.is_(True))
    )
    return sorted(
        ((c.id, c.provider_name) for c in found if (c.settings or {}).get(SETTINGS_KEY)),
        key=lambda pair: pair[1],
    )


def find_provider(
    session: Session, connection_id: str, box: SecretBox, *, tenant_id: str | None = None
) -> UpstreamProvider:
    """:raises NotFound: no upstream by that connection id (in ``tenant_id`` when given)."""
    connection = session.get(Connection, connection_id)
    if connection is None or (tenant_id is not None and connection.tenant_id != tenant_id):
        raise NotFound("No such sign-in provider.")
    provider = provider_of(connection, box)
    if provider is None:
        raise NotFound("No such sign-in provider.")
    return provider


def route_for_username(session: Session, tenant_id: str, username: str) -> str | None:
    """The upstream connection id an SSO-linked username signs in at, or None.

    Only called once the password step was offered to everyone (issue 11 defect 8).
    """
    user = session.scalars(
        select(User).where(
            User.tenant_id == tenant_id, User.username_folded == fold(username.strip())
        )
    ).first()
    if user is None or not user.active:
        return None
    connection = session.get(Connection, user.connection_id)
    if connection is None or not (connection.settings or {}).get(SETTINGS_KEY):
        return None
    return connection.id if guard.is_sso_linked(connection) else None


def new_flow(
    provider: UpstreamProvider, next_path: str, token_endpoint: str, jwks_uri: str
) -> Flow:
    """A fresh flow: the connection travels in ``state``, PKCE verifier and nonce are random."""
    return Flow(
        connection_id=provider.connection_id,
        state=f"{provider.connection_id}.{secrets.token_urlsafe(24)}",
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
        next_path=next_path,
        token_endpoint=token_endpoint,
        jwks_uri=jwks_uri,
        expires_at=int(time.time()) + FLOW_SECONDS,
    )


def seal_flow(box: SecretBox, flow: Flow) -> str:
    sealed = box.seal(json.dumps(asdict(flow)), flow.state)
    return base64.urlsafe_b64encode(sealed).decode("ascii")


def open_flow(box: SecretBox, cookie: str | None, state: str | None) -> Flow | None:
    """The flow sealed under ``state``, or None (no cookie, wrong state, tampered, expired)."""
    if not cookie or not state:
        return None
    try:
        flow = Flow(**json.loads(box.open(base64.urlsafe_b64decode(cookie), state)))
    except (InvalidTag, ValueError, TypeError):
        return None
    if flow.state != state or flow.expires_at < time.time():
        return None
    return flow


def _subjects_of(user: User, provider_name: str) -> set[str]:
    """The SSO subjects recorded for ``user``: SCIM externalId, OneRoster userIds entries."""
    found = {user.external_id} if user.external_id else set()
    for entry in (user.extra or {}).get("userIds") or []:
        if isinstance(entry, dict):
            kind, identifier = entry.get("type", ""), entry.get("identifier", "")
        else:  # CSV form "{Clever:abc123}"
            kind, _, identifier = str(entry).strip("{}").partition(":")
        if fold(str(kind)) == fold(provider_name) and identifier:
            found.add(str(identifier))
    return found


def linked_user(session: Session, provider: UpstreamProvider, claims: dict[str, Any]) -> User:
    """The one active SSO-linked user of the provider's connection the identity maps to.

    :raises NotLinked: none, several, or the user is switched off.
    """
    value = claims.get(provider.link_claim)
    if not isinstance(value, str) or not value:
        raise NotLinked(f"The {provider.name} account sent no {provider.link_claim}.")
    owned = select(User).where(
        User.tenant_id == provider.tenant_id,
        User.connection_id == provider.connection_id,
        not_deleted(User.status),
    )
    if provider.link_claim == "email":
        candidates = list(session.scalars(owned.where(User.email_folded == fold(value))))
    elif provider.link_claim == "preferred_username":
        candidates = list(session.scalars(owned.where(User.username_folded == fold(value))))
    else:
        # The index finds externalIds; userIds sit in JSON, pre-filtered as text (portable).
        near = or_(
            User.external_id_folded == fold(value),
            cast(User.extra, String).contains(value, autoescape=True),
        )
        found = session.scalars(owned.where(near))
        candidates = [u for u in found if value in _subjects_of(u, provider.name)]
    active = [user for user in candidates if user.active]
    if len(active) != 1:
        raise NotLinked(
            f"Your {provider.name} account is not linked to a Rollcall account yet — "
            "ask your school."
        )
    return active[0]


def finish(
    session: Session, provider: UpstreamProvider, claims: dict[str, Any]
) -> tuple[BrowserSession, str]:
    """Open the browser session for a verified upstream identity; audited either way.

    :raises NotLinked: see :func:`linked_user`.
    """
    subject = str(claims.get("sub", ""))[:200]
    try:
        user = linked_user(session, provider, claims)
    except NotLinked:
        actor = Actor(
            tenant_id=provider.tenant_id, kind="student", name=f"{provider.name}:{subject}"
        )
        audit.record(
            session,
            actor,
            "signin.upstream_refused",
            target_label=subject,
            detail=f"{provider.name} ({provider.issuer}) subject {subject}: no linked account.",
        )
        raise
    row, cookie = signin.start_session(session, user, method="upstream")
    row.upstream_issuer = provider.issuer
    audit.record(
        session,
        student_actor(user.tenant_id, user.id, user.username),
        "signin.success",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        detail=f"Signed in at {provider.name} ({provider.issuer}) as subject {subject}.",
    )
    return row, cookie
