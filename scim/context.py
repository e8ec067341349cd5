"""Who acts, in which unit of work: set per request by the application, read by the storage.

scim2-server never hands the request to the storage, so the acting connection and the
request's database session ride on context variables (copied into the worker thread).
"""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy.orm import Session

from server.domain.actors import Actor

current_session: ContextVar[Session] = ContextVar("scim_session")
current_actor: ContextVar[Actor] = ContextVar("scim_actor")
# the SHA-256 digest of the request's bearer token, checked live in each unit of work
current_token: ContextVar[str | None] = ContextVar("scim_token", default=None)
