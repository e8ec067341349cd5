"""Bearer tokens of SCIM connections, resolved once and kept for a few seconds.

Every SCIM request carries its connection's bearer token; resolving it (digest, token row,
connection) cost a unit of work per request. :class:`TokenCache` keeps what a token resolved to
for :data:`TOKEN_CACHE_SECONDS`:

- a token rotated in this process (staff app, admin API) is refused at once: the cache is
  emptied when ``server.domain.connections.revocation_count`` moves;
- a token rotated by another process (``rollcall connection rotate-token``) is refused once the
  entry expires, at most :data:`TOKEN_CACHE_SECONDS` later; so are other changes to the
  connection (its profile, its schools);
- unknown tokens are never cached, so a new token works at once.

Entries are keyed by the token's SHA-256 digest, as the database keys them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from server.domain.connections import revocation_count
from server.domain.secrets import token_digest

TOKEN_CACHE_SECONDS = 5.0
MAX_ENTRIES = 1024
Resolved = TypeVar("Resolved")


class TokenCache(Generic[Resolved]):
    """What tokens resolved to, each kept ``ttl`` seconds.

    >>> cache = TokenCache[str](ttl=5.0, clock=lambda: 0.0)
    >>> cache.put("rc_secret", "Entra ID")
    >>> cache.get("rc_secret")
    'Entra ID'
    """

    def __init__(
        self, ttl: float = TOKEN_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, Resolved]] = {}
        self._revocations = revocation_count()
        self._lock = threading.Lock()

    def get(self, token: str) -> Resolved | None:
        """What ``token`` resolved to, if it did less than ``ttl`` seconds ago."""
        with self._lock:
            self._forget_revoked()
            entry = self._entries.get(token_digest(token))
            if entry is None or entry[0] <= self.clock():
                return None
            return entry[1]

    def put(self, token: str, resolved: Resolved) -> None:
        with self._lock:
            self._forget_revoked()
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token_digest(token)] = (self.clock() + self.ttl, resolved)

    def _forget_revoked(self) -> None:
        count = revocation_count()
        if count != self._revocations:
            self._entries.clear()
            self._revocations = count
