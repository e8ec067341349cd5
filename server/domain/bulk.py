"""Set-based writes for imports (issue 15): a batch of records at once, every rule included.

:func:`create_users` creates a batch of users exactly as :func:`server.domain.users.create_user`
creates each (validation, the password-free credential state, ownership by the acting
connection, one audit event per user), but compares against the stored users once per batch:
one SELECT for the usernames, one for the sourcedIds, the orgs read once; then the rows of
:func:`server.domain.new_user_rows.new_user_rows` (users, roles, grades, credentials) and the audit
events go in with one ``executemany`` each, building no ORM object. A row that needs more
than a plain create (an ``externalId`` that may restore a deleted user, a username to
generate, a username or sourcedId already used) goes through ``create_user`` itself, which
raises the error the row deserves.

Domain code never commits: a row that fails raises, and the caller's savepoint drops the batch.

Example::

    made = create_users(session, actor, [{"sourced_id": "u1", "username": "ann", ...}, ...])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import User, fold, not_deleted
from server.domain import audit, new_user_rows, sync_hashes, users
from server.domain.actors import Actor

CHUNK = 900  # bound parameters per IN list


@dataclass(frozen=True)
class Created:
    """A user :func:`create_users` inserted (no ORM object is built for it)."""

    id: str
    sourced_id: str
    username: str
    version: int = 1


def create_users(
    session: Session,
    actor: Actor,
    batch: Sequence[Mapping[str, Any]],
    digests: Sequence[str | None] | None = None,
    *,
    keys_free: bool = False,
) -> list[User | Created]:
    """Create every user of ``batch`` (``create_user`` fields); returns them in order:
    :class:`Created` for a user made here, the ``User`` of one ``create_user`` made.

    ``digests``: an import's row digest of each (or None); a :class:`Created` user is
    inserted with its row hash (:func:`server.domain.sync_hashes.sealed` with the version
    written), so no second write stores it; a ``User`` gets none here.

    ``keys_free``: the caller read, in this transaction, that no user of the tenant has a
    sourcedId of ``batch`` (an import's first batch into a tenant without users), so they
    are not read again; a repeat within ``batch`` is still found.

    :raises: the first error :func:`server.domain.users.create_user` raises for a row.
    """
    owner = users.owning_connection(session, actor)
    orgs = users.org_ids_named(session, actor.tenant_id, batch)
    prepared = [users.prepared_for_create(session, actor, row, org_ids=orgs) for row in batch]
    tenant = actor.tenant_id
    usernames = _taken(session, tenant, User.username_folded, [_folded(v) for v in prepared])
    keys = [v.get("sourced_id") for v in prepared]
    sourced = set() if keys_free else _taken(session, tenant, User.sourced_id, keys)
    made: list[User | Created] = []
    fresh: list[tuple[new_user_rows.NewUserRows, dict[str, Any]]] = []
    digests = digests or [None] * len(batch)
    for row, values, digest in zip(batch, prepared, digests, strict=True):
        folded, key = _folded(values), values.get("sourced_id")
        special = not folded or not key or bool(values.get("external_id"))
        if special or key is None or folded in usernames or key in sourced:
            _insert(session, actor, fresh)  # create_user sees the batch's users so far
            fresh = []
            made.append(users.create_user(session, actor, row))
            continue
        rows = new_user_rows.new_user_rows(actor, owner, values, values["username"])
        if digest is not None:
            rows.user["content_hash"] = sync_hashes.sealed(digest, rows.user["version"])
        usernames.add(folded)
        sourced.add(key)
        fresh.append((rows, values))
        made.append(Created(rows.user["id"], key, rows.user["username"]))
    _insert(session, actor, fresh)
    return made


def _insert(
    session: Session, actor: Actor, fresh: list[tuple[new_user_rows.NewUserRows, Any]]
) -> None:
    """The new users, their roles, grades and credentials, one ``executemany`` each
    (:mod:`server.db.bulk_insert`: an ORM object per user and its flush were most of a first
    import, then SQLAlchemy's parameter processing per row, issue 15), and their
    ``user.create`` audit events."""
    if not fresh:
        return
    new_user_rows.write_new_users(session, [rows for rows, _ in fresh])
    events = [
        new_user_rows.creation_event(rows.user["id"], rows.user["username"], values)
        for rows, values in fresh
    ]
    audit.record_many(session, actor, "user.create", events)


def _folded(values: Mapping[str, Any]) -> str:
    return fold(values.get("username") or "")


def _taken(session: Session, tenant_id: str, column: Any, values: Iterable[str | None]) -> set[str]:
    """Which of ``values`` a user of the tenant already has in ``column`` (a deleted user
    keeps its sourcedId but frees its username)."""
    query = select(column).where(User.tenant_id == tenant_id)
    if column is User.username_folded:
        query = query.where(not_deleted(User.status))
    return _existing(session, query, column, sorted({v for v in values if v}))


def _existing(session: Session, query: Any, column: Any, wanted: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        found |= set(session.scalars(query.where(column.in_(wanted[start : start + CHUNK]))))
    return found
