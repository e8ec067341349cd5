"""OAuth 2 clients and tokens, shared by the OIDC provider and the OneRoster API.

One authorization server issues every token: authorization-code tokens for people (OIDC) and
client-credentials tokens for apps reading rosters (OneRoster). Tokens are stored only as
SHA-256 digests.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, new_id, utcnow


class OAuthClientKind(StrEnum):
    OIDC = "oidc"
    API = "api"


class OAuthClient(Base):
    """A relying party (``oidc``) or a roster-reading app (``api``), bound to one tenant."""

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str]
    kind: Mapped[str] = mapped_column(String(10), default=OAuthClientKind.OIDC)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    school_ids: Mapped[list[str]] = mapped_column(default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(40), default="client_secret_basic"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class OAuthToken(Base):
    """An access token (and optional refresh token) issued to a client, maybe for a user.

    ``family_id`` ties rotated refresh tokens together: reuse of an old one revokes the family.
    """

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        Index("ix_oauth_tokens_user", "user_id"),
        Index("ix_oauth_tokens_family", "family_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    access_digest: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(2000), default="")
    family_id: Mapped[str] = mapped_column(String(36), default=new_id)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime | None]
    auth_time: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    refresh_used_at: Mapped[datetime | None]
