"""OAuth 1.0a consumer secrets and nonces for OneRoster 1.1 signed requests.

HMAC signatures need the clear consumer secret on the server, so unlike OAuth 2 client secrets
(kept only as digests) it is kept encrypted: AES-GCM under a key derived from the server
secret, bound to the client's id (:class:`server.domain.secrets.SecretBox`). Nonces are kept
for the timestamp window so a captured request cannot be replayed, by any process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, utcnow
from server.db.people import User
from server.db.roster import Enrollment


class OAuth1Secret(Base):
    """The sealed OAuth 1.0a consumer secret of an API client (consumer key = ``client_id``)."""

    __tablename__ = "oauth1_secrets"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), primary_key=True
    )
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuth1Nonce(Base):
    """A nonce seen with its timestamp; a second request with the same pair is a replay."""

    __tablename__ = "oauth1_nonces"
    __table_args__ = (Index("ix_oauth1_nonces_seen_at", "seen_at"),)

    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


# Paging indexes for the OneRoster reads: the default order is sourcedId within a tenant and
# deleted rows are skipped, so the page's ids come from the index alone (see
# server.domain.roster_reads.read_page). Not duplicates of the unique (tenant, sourcedId) keys:
# the listing's count and its anchors read status from them (without it, at 80,000 enrollments
# the count scans the table: a page costs 1.3-1.6x the CPU), and the enrollments' costs a first
# import ~0.1 s of CPU per 80,000 rows (issue 15, session 8).
Index("ix_users_tenant_sourced_status", User.tenant_id, User.sourced_id, User.status)
Index(
    "ix_enrollments_tenant_sourced_status",
    Enrollment.tenant_id,
    Enrollment.sourced_id,
    Enrollment.status,
)
