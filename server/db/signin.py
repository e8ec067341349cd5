"""Sign-in state of the OpenID Connect provider: authorization codes, signing keys, browser
sessions, login throttles, QR badges and activation links.

Everything a second app process needs lives here, never in process memory (SPEC §2). Codes,
session cookies, badge tokens and activation tokens are stored only as SHA-256 digests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, new_id, utcnow


class SigningKey(Base):
    """A key that signs ID tokens. Retired keys stay published until their tokens expire."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class ClientSigningPreference(Base):
    """The ID token algorithm a client asked for (``id_token_signed_response_alg``)."""

    __tablename__ = "oauth_client_signing"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), primary_key=True
    )
    id_token_alg: Mapped[str] = mapped_column(String(10), default="RS256")


class AuthorizationCode(Base):
    """A single-use, short-lived code; ``family_id`` names the tokens issued from it."""

    __tablename__ = "oauth_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(2000), default="")
    nonce: Mapped[str | None] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[datetime]
    # How the user signed in (OIDC Core §2 ``amr``/``acr``), e.g. "fed" and the upstream issuer.
    amr: Mapped[str | None] = mapped_column(String(100))
    acr: Mapped[str | None] = mapped_column(String(500))
    family_id: Mapped[str] = mapped_column(String(36), default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class BrowserSession(Base):
    """A signed-in browser. ``must_change`` sessions may only change the temporary password."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(20), default="password")
    # Set when the user signed in at an upstream identity provider (issue 17): its issuer.
    upstream_issuer: Mapped[str | None] = mapped_column(String(500))
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    auth_time: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Failed sign-ins for one key (an account or a client address) and the delay they earned."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow)
    blocked_until: Mapped[datetime | None]


class Badge(Base):
    """A QR badge: a random token bound to one student, with an optional PIN.

    The token is kept sealed (AES-GCM, bound to the badge id) so badge sheets can be printed
    again; lookups use the digest.
    """

    __tablename__ = "badges"
    __table_args__ = (Index("ix_badges_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    sealed_token: Mapped[bytes] = mapped_column(LargeBinary)
    pin_hash: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    voided_at: Mapped[datetime | None]


class ActivationToken(Base):
    """A one-time, expiring activation link (sent by email) that lands on a set-password page."""

    __tablename__ = "activation_tokens"
    __table_args__ = (Index("ix_activation_tokens_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
