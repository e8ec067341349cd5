"""The append-only audit log: one event per write and per credential reveal.

Append-only is enforced by the database (migration ``0013_audit_append_only``): an UPDATE or
DELETE of ``audit_events`` fails unless it runs inside :func:`amending`, which only erasure
(pseudonymising a purged user), retention (the audit window) and tenant deletion use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server.db import AuditAmendment, AuditEvent, User, utcnow
from server.db.bulk_insert import JSONText, insert_rows
from server.domain.actors import Actor
from server.errors import NotAllowed

_SECRET_FIELD = re.compile(r"pass(word)?|secret|token|hash|pin", re.IGNORECASE)
REDACTED = "[redacted]"


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    target_kind: str | None = None,
    target_id: str | None = None,
    target_label: str | None = None,
    changes: dict[str, Any] | None = None,
    detail: str | None = None,
    override: bool = False,
) -> AuditEvent:
    """Append an audit event; secret-looking fields in ``changes`` are redacted.

    ``changes`` maps a field to ``[before, after]``. A connection acting for a staff member
    (:func:`server.domain.actors.on_behalf_of`) is recorded as that person, ``via`` the
    connection.
    """
    person = actor.person_name is not None
    event = AuditEvent(
        tenant_id=actor.tenant_id,
        actor_kind="staff" if person else actor.kind,
        actor_id=actor.person_id if person else actor.id,
        actor_name=actor.person_name if person else actor.name,
        via=actor.name if person else None,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        target_label=target_label,
        changes=redact(changes or {}),
        detail=detail,
        override=override,
    )
    session.add(event)
    return event


@contextmanager
def amending(session: Session, reason: str) -> Iterator[None]:
    """Let the block change or delete audit events; everywhere else the database refuses.

    Only purge pseudonymisation, retention, tenant deletion and the minimisation of a declined
    account request's events call it (``reason`` names which). The block's changes are flushed
    inside it, and its marker row is removed before it returns, so the permission never outlives
    the block, let alone the transaction.

    >>> with amending(session, "retention"):
    ...     session.execute(delete(AuditEvent).where(AuditEvent.at < cut))
    """
    marker = AuditAmendment(reason=reason)
    session.add(marker)
    session.flush()
    try:
        yield
        session.flush()
    except BaseException:
        # the caller's unit of work rolls back (and the marker with it); if it catches the
        # error and carries on instead, the marker must still go
        with suppress(SQLAlchemyError):
            _remove(session, marker)
        raise
    _remove(session, marker)


def _remove(session: Session, marker: AuditAmendment) -> None:
    if session.is_active:
        session.delete(marker)
        session.flush()


def record_many(session: Session, actor: Actor, action: str, events: list[dict[str, Any]]) -> None:
    """Append many events of one action at once (one ``executemany``; imports, issue 15).

    Each of ``events`` holds the keyword arguments of :func:`record` (``target_kind``,
    ``target_id``, ``target_label``, ``changes``, ``detail``, ``override``); the rows are the
    ones :func:`record` would add, redaction included, and each event's ``changes`` is
    serialised once, to the very JSON text :func:`record` stores (:func:`changes_json`).
    """
    if not events:
        return
    common = _common(actor, action)
    rows = [
        (
            *common,
            event.get("target_kind"),
            event.get("target_id"),
            event.get("target_label"),
            changes_json(event.get("changes")),
            event.get("detail"),
            bool(event.get("override")),
        )
        for event in events
    ]
    insert_rows(session, AuditEvent.__table__, _MANY_COLUMNS, rows)


def record_created(
    session: Session,
    actor: Actor,
    action: str,
    target_kind: str,
    events: Sequence[tuple[str, str | None, JSONText]],
) -> None:
    """:func:`record_many` of creations: each of ``events`` is ``(target_id, target_label,
    changes)``, its changes made by :func:`created_json`; no detail, no override. The rows
    are those :func:`record_many` adds, without a dict per event (a first import records
    one per enrollment, a million in a district, issue 15)."""
    if not events:
        return
    head = (*_common(actor, action), target_kind)
    rows = [(*head, target_id, label, changes, None, False) for target_id, label, changes in events]
    insert_rows(session, AuditEvent.__table__, _MANY_COLUMNS, rows)


def _common(actor: Actor, action: str) -> tuple[Any, ...]:
    """The columns every event of one action by ``actor`` shares, now."""
    person = actor.person_name is not None
    return (
        actor.tenant_id,
        "staff" if person else actor.kind,
        actor.person_id if person else actor.id,
        actor.person_name if person else actor.name,
        actor.name if person else None,
        action,
        utcnow(),
    )


_MANY_COLUMNS = (
    *("tenant_id", "actor_kind", "actor_id", "actor_name", "via", "action", "at"),
    *("target_kind", "target_id", "target_label", "changes", "detail", "override"),
)
_EMPTY = JSONText("{}")
_REDACTED_PAIR = [REDACTED, REDACTED]
_dumps = json.JSONEncoder().encode  # what json.dumps does with its defaults, one encoder


def _made_once() -> Any:
    """``_dumps`` for what :func:`changes_json` builds, the same text, with the C encoder
    made once rather than per call (a third of the call; without its cycle check: the
    values :func:`_jsonable` gives hold none)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return _dumps
    default = json.JSONEncoder().default
    encode = make(None, default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                  False, False, True)  # fmt: skip
    return lambda value: "".join(encode(value, 0))


_encode = _made_once()


def changes_json(changes: dict[str, Any] | JSONText | None) -> JSONText:
    """The JSON text :func:`record` stores for ``changes`` (``json.dumps`` of
    :func:`redact`), built in one pass: a ``[before, after]`` of plain values, the usual
    change, is written as it is, without a copy.

    >>> changes_json({"password": ["a", "b"], "family_name": [None, "Ng"]})
    '{"password": ["[redacted]", "[redacted]"], "family_name": [null, "Ng"]}'
    """
    if not changes:
        return _EMPTY
    if isinstance(changes, JSONText):  # made already (:func:`created_json`)
        return changes
    plain: dict[Any, Any] = {}
    for key, value in changes.items():
        if _is_secret(key):
            plain[key] = _REDACTED_PAIR
        elif type(value) is list and len(value) == 2 and _PLAIN.issuperset(map(type, value)):
            plain[key] = value
        else:
            plain[key] = _jsonable(value)
    return JSONText(_encode(plain))


def created_json(fields: dict[str, Any]) -> JSONText:
    """:func:`changes_json` of ``{name: [None, value]}`` for each field (what a record's
    creation records), the same text written directly: no dict and list per field, no
    encoder (one event per created row of an import, issue 15). Other than str, int, bool
    and None values, or a secret-looking name, go through :func:`changes_json`.

    >>> created_json({"role": "student", "primary": False, "school_id": None})
    '{"role": [null, "student"], "primary": [null, false], "school_id": [null, null]}'
    """
    parts = []
    for name, value in fields.items():
        text = _ATOMS.get(type(value))
        if text is None or type(name) is not str or _is_secret(name):
            return changes_json({key: [None, given] for key, given in fields.items()})
        parts.append(f"{_quoted(name)}: [null, {text(value)}]")
    return JSONText("{" + ", ".join(parts) + "}") if parts else _EMPTY


_quoted = json.encoder.encode_basestring_ascii  # json.dumps's strings (ensure_ascii)


def created_row_json(names: tuple[str, ...], values: tuple[Any, ...]) -> JSONText:
    """:func:`created_json` of ``dict(zip(names, values))``, the same text, filled into a
    template made once per ``names``: no dict per event (a first import records one per
    enrollment, a million in a district, issue 15)."""
    template = _created_template(names)
    if template is None or not all(type(value) in _ATOMS for value in values):
        return created_json(dict(zip(names, values, strict=True)))
    return JSONText(template % tuple(_ATOMS[type(value)](value) for value in values))


@lru_cache(maxsize=64)
def _created_template(names: tuple[str, ...]) -> str | None:
    """The text :func:`created_json` writes for ``names``, each value a ``%s``; None when a
    name goes through :func:`changes_json` (a secret-looking one)."""
    if not names or any(_is_secret(name) for name in names):
        return None
    fields = (f"{_quoted(name).replace('%', '%%')}: [null, %s]" for name in names)
    return "{" + ", ".join(fields) + "}"


_ATOMS: dict[type, Any] = {
    str: _quoted,
    int: int.__repr__,  # as json.dumps writes an int
    bool: lambda value: "true" if value else "false",
    type(None): lambda _: "null",
}


def record_read(
    session: Session,
    actor: Actor,
    what: str,
    *,
    users: list[User],
    classes: list[str] | None = None,
    detail: str | None = None,
) -> AuditEvent:
    """Record a read of student data (issue 12, point 8): ``read.<what>`` with how many
    students and which classes; one student's read targets that student.

    >>> record_read(session, actor, "credential_pdf", users=cards, classes=["Maths 4B"])
    """
    one = users[0] if len(users) == 1 else None
    return record(
        session,
        actor,
        f"read.{what}",
        target_kind="user" if one else None,
        target_id=one.id if one else None,
        target_label=one.username if one else None,
        changes={"students": [None, len(users)], "classes": [None, sorted(set(classes or []))]},
        detail=detail,
    )


def relabel(session: Session, tenant_id: str, target_kind: str, target_id: str, label: str) -> None:
    """Replace the label of every event about one record (minimisation, issue 12: a declined
    account request's events keep the child's initials, not their name)."""
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.tenant_id == tenant_id,
            AuditEvent.target_kind == target_kind,
            AuditEvent.target_id == target_id,
        )
    ).all()
    with amending(session, "minimisation"):
        for event in events:
            event.target_label = label


CHANGED = "changed"
LARGE = 200  # characters of JSON: a longer value is logged as "changed"


def changed_only(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes an audit event keeps (issue 12, point 5): JSON fields (a provider's
    ``extra`` attributes, demographic flags) are diffed key by key, at every depth, so one
    phone change logs the phone only; large values are reduced to ``"changed"``.

    >>> changed_only({"extra": [{"phone": "1", "addr": "x"}, {"phone": "2", "addr": "x"}]})
    {'extra.phone': ['1', '2']}
    """
    out: dict[str, Any] = {}
    for field, (before, after) in changes.items():
        _diff_into(out, field, before, after)
    return out


def _diff_into(out: dict[str, Any], path: str, before: Any, after: Any) -> None:
    if isinstance(before, dict | None) and isinstance(after, dict | None) and (before or after):
        old, new = before or {}, after or {}
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                _diff_into(out, f"{path}.{key}", old.get(key), new.get(key))
        return
    out[path] = [_small(before), _small(after)]


def _small(value: Any) -> Any:
    return CHANGED if len(json.dumps(_jsonable(value))) > LARGE else value


def redact(changes: dict[str, Any]) -> dict[str, Any]:
    """Replace the values of secret-looking fields so no password or token reaches the log."""
    return {
        key: ([REDACTED, REDACTED] if _is_secret(key) else _jsonable(value))
        for key, value in changes.items()
    }


@lru_cache(maxsize=4096)
def _is_secret(key: str) -> bool:
    """Whether a field's name looks secret (a handful of names recur in every event of an
    import: asked once each, issue 15)."""
    return _SECRET_FIELD.search(key) is not None


_PLAIN = frozenset((str, int, float, bool, type(None)))


def _jsonable(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value  # the usual case, without the isinstance chain below
    if type(value) is list and len(value) == 2 and {type(value[0]), type(value[1])} <= _PLAIN:
        return list(value)  # [before, after] of plain values
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def search_events(
    session: Session,
    actor: Actor,
    *,
    target_id: str | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """The audit log as ``actor`` may read it, newest first.

    District admins read the tenant's log; school admins the events on users they can see;
    teachers and others nothing (:raises NotAllowed:).
    """
    from server.domain.access import visible_users
    from server.domain.search import page_offset
    from server.domain.vocabulary import check_texts

    check_texts([target_id or "", actor_name or "", action or ""], "filter")
    if actor.kind == "staff" and actor.role == "teacher":
        raise NotAllowed("Teachers cannot read the audit log.")
    query = select(AuditEvent).where(AuditEvent.tenant_id == actor.tenant_id)
    if not actor.is_district_admin:
        visible = select(User.id).where(visible_users(actor))
        query = query.where(AuditEvent.target_id.in_(visible))
    if target_id:
        query = query.where(AuditEvent.target_id == target_id)
    if actor_name:
        query = query.where(AuditEvent.actor_name == actor_name)
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at <= until)
    query = query.order_by(AuditEvent.id.desc()).limit(min(max(limit, 1), 500))
    query = query.offset(page_offset(offset))
    return list(session.scalars(query))
