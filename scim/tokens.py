"""Bearer tokens of SCIM connections, resolved once and kept for a few seconds.

Every SCIM request carries its connection's bearer token; resolving it (digest, token row,
connection, actor) cost a unit of work per request. :class:`TokenCache` keeps what a token
resolved to for :data:`TOKEN_CACHE_SECONDS`, and every request still checks, in its own
transaction, that the token is live (``scim.app._admitted``: one indexed read of the token
row, ``server.domain.connections.token_is_live``):

- a token rotated in any process (staff app, admin API, ``rollcall connection rotate-token``,
  another worker) is refused on the very next request; in this process the cache is also
  emptied when ``server.domain.connections.revocation_count`` moves;
- what is cached (the connection's tenant, name, schools and profile) is fixed when the
  connection is created: nothing in the domain changes it afterwards; what can change (its
  settings, e.g. default role and school) is read by the writes in their own transaction;
- unknown tokens are never cached, so a new token works at once;
- a token that is not cached (or whose entry expired) is resolved once for all the requests
  that ask for it meanwhile (:meth:`TokenCache.resolve`): the others wait for that answer
  instead of each reading the token too (8 at once every 5 seconds under 8 concurrent
  requests, issue 15). Each of them still checks the token is live in its own transaction.

Entries are keyed by the token's SHA-256 digest, as the database keys them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from server.domain.connections import revocation_count
from server.domain.secrets import token_digest

TOKEN_CACHE_SECONDS = 5.0
MAX_ENTRIES = 1024
Resolved = TypeVar("Resolved")


@dataclass
class _Flight(Generic[Resolved]):
    """One resolution of a token in progress, and its answer once ``done`` is set."""

    done: threading.Event = field(default_factory=threading.Event)
    resolved: Resolved | None = None
    failed: bool = False


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
        self._flights: dict[str, _Flight[Resolved]] = {}

    def get(self, token: str) -> Resolved | None:
        """What ``token`` resolved to, if it did less than ``ttl`` seconds ago."""
        with self._lock:
            self._forget_revoked()
            entry = self._entries.get(token_digest(token))
            if entry is None or entry[0] <= self.clock():
                return None
            return entry[1]

    def resolve(self, token: str, resolve: Callable[[str], Resolved | None]) -> Resolved | None:
        """What ``token`` resolves to: from the cache, else from ``resolve(token)``, called
        once for all the threads that ask meanwhile (they wait for its answer, also None,
        which is never cached). A waiter whose resolution failed resolves the token itself."""
        digest = token_digest(token)
        with self._lock:
            self._forget_revoked()
            entry = self._entries.get(digest)
            if entry is not None and entry[0] > self.clock():
                return entry[1]
            flight = self._flights.get(digest)
            leads = flight is None
            if flight is None:
                flight = self._flights[digest] = _Flight()
        if not leads:
            flight.done.wait()
            return resolve(token) if flight.failed else flight.resolved
        try:
            flight.resolved = resolve(token)
            if flight.resolved is not None:  # cached before the flight ends: none starts anew
                self.put(token, flight.resolved)
        except BaseException:
            flight.failed = True
            raise
        finally:
            with self._lock:
                del self._flights[digest]
            flight.done.set()
        return flight.resolved

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
