"""Erasure: purging one user leaves nothing of them but a stable pseudonym (issue 12, point 2).

When a deleted user's retention period is over, :func:`purge_user` removes every row that
holds their personal data and rewrites the rows that must stay:

- audit events keep their shape (who did what, when): the user, as target or as actor, is
  replaced by :func:`pseudonym` and the field values of events about them are dropped (the
  names of the changed fields stay); any other event that quotes one of their identifiers has
  that value replaced by the pseudonym;
- import row results about them keep their outcome and code, with the record key replaced by
  the pseudonym and the row's values and message dropped;
- jobs (queued or finished), refused-request excerpts, login throttle rows, SCIM index values
  (their own and their membership entries in groups), account requests, enrollments, group
  memberships, OAuth tokens and codes, browser sessions, badges, activation tokens and the
  credential are deleted with the user.

The pseudonym is an HMAC of the user id under the tenant's pseudonym key
(:mod:`server.domain.pseudonyms`): stable (the same user always gets the same one, so the log
still reads as one person, across key rotations too) and not reversible without the key.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Text, cast, delete, or_, select
from sqlalchemy.orm import Session

from server.db import (
    AccountRequest,
    ActivationToken,
    AuditEvent,
    AuthorizationCode,
    Badge,
    BrowserSession,
    Connection,
    Enrollment,
    FormSubmission,
    GroupMember,
    ImportRowResult,
    ImportRun,
    Job,
    LoginThrottle,
    OAuthToken,
    ProviderFailure,
    RosterChange,
    RosterVersion,
    ScimValue,
    User,
)
from server.domain import audit
from server.domain.pseudonyms import keyed_hash

PURGED = "[purged]"


def pseudonym(key: bytes, user_id: str) -> str:
    """The stable stand-in for a purged user: ``purged-`` and 16 hex digits of an HMAC under
    the tenant's pseudonym key (:func:`server.domain.pseudonyms.tenant_key`).

    >>> pseudonym(key, "8d0c…")  # doctest: +SKIP
    'purged-3f1a9c0e5b7d2a41'
    """
    return "purged-" + keyed_hash(key, "pseudonym", user_id)[:16]


def identifiers(user: User) -> list[str]:
    """The values that name ``user`` wherever they are quoted (ids, username, email…)."""
    values = {
        user.id,
        user.username,
        user.sourced_id,
        user.external_id,
        user.email,
        user.identifier,
    }
    texts = {v for v in values if v and len(v) >= 3}
    return sorted(texts | {v.casefold() for v in texts})


def purge_user(
    session: Session, user: User, *, pseudonym_key: bytes, throttle_keys: list[str]
) -> str:
    """Remove ``user`` and every trace of them; returns their pseudonym.

    ``throttle_keys`` are the login throttle keys that belong to the user (see
    :func:`server.domain.signin.account_keys`). Domain code never commits: the caller's unit of
    work makes the erasure all or nothing.
    """
    alias = pseudonym(pseudonym_key, user.id)
    needles = identifiers(user)
    requests = list(
        session.scalars(select(AccountRequest.id).where(AccountRequest.user_id == user.id))
    )
    enrollments = list(session.scalars(select(Enrollment.id).where(Enrollment.user_id == user.id)))
    with audit.amending(session, "purge"):
        _pseudonymise_audit(session, user, alias, needles, {user.id, *requests, *enrollments})
    _pseudonymise_import_rows(session, user, alias, needles)
    _delete_traces(session, user, needles, throttle_keys)
    session.delete(user)
    session.flush()
    return alias


def _mentions(column: Any, needles: list[str]) -> Any:
    return or_(*(cast(column, Text).contains(n, autoescape=True) for n in needles))


def _pseudonymise_audit(
    session: Session, user: User, alias: str, needles: list[str], targets: set[str]
) -> None:
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.tenant_id == user.tenant_id,
            or_(
                AuditEvent.target_id.in_(targets),
                AuditEvent.actor_id == user.id,
                _mentions(AuditEvent.changes, needles),
                _mentions(AuditEvent.detail, needles),
                _mentions(AuditEvent.target_label, needles),
                _mentions(AuditEvent.actor_name, needles),
            ),
        )
    )
    for event in events:
        if event.actor_id == user.id or _quotes(event.actor_name, needles):
            event.actor_id = alias if event.actor_id == user.id else event.actor_id
            event.actor_name = alias
        if event.target_id in targets:
            event.target_id = alias if event.target_id == user.id else event.target_id
            event.target_label = alias
            event.changes = {field: [PURGED, PURGED] for field in event.changes or {}}
            event.detail = None
            continue
        event.target_label = _scrub(event.target_label, needles, alias)
        event.changes = _scrub(event.changes, needles, alias)
        event.detail = _scrub(event.detail, needles, alias)


def _pseudonymise_import_rows(session: Session, user: User, alias: str, needles: list[str]) -> None:
    runs = select(ImportRun.id).where(ImportRun.tenant_id == user.tenant_id)
    rows = session.scalars(
        select(ImportRowResult).where(
            ImportRowResult.run_id.in_(runs),
            or_(
                ImportRowResult.record_key.in_(needles),
                _mentions(ImportRowResult.changes, needles),
                _mentions(ImportRowResult.message, needles),
            ),
        )
    )
    for row in rows:
        texts = [row.record_key, row.message, *_strings(row.changes)]
        if not any(_quotes(text, needles) for text in texts):
            continue  # the SQL match was part of a longer word: someone else's row
        row.record_key = alias
        row.changes = {field: [PURGED, PURGED] for field in row.changes or {}}
        row.message = None


def _delete_traces(
    session: Session, user: User, needles: list[str], throttle_keys: list[str]
) -> None:
    connections = select(Connection.id).where(Connection.tenant_id == user.tenant_id)
    # Their entries in groups' members: every sub-attribute of the entry that holds their id.
    members = select(ScimValue.id, ScimValue.resource_id, ScimValue.element).where(
        ScimValue.tenant_id == user.tenant_id,
        ScimValue.path.like("%members.value"),
        ScimValue.text.in_({user.id, user.id.casefold()}),
    )
    for row_id, resource_id, element in session.execute(members).all():
        same_entry = (
            (ScimValue.resource_id == resource_id) & (ScimValue.element == element)
            if element is not None
            else ScimValue.id == row_id
        )
        session.execute(delete(ScimValue).where(same_entry))
    statements = [
        delete(ScimValue).where(ScimValue.resource_id == user.id),
        delete(Job).where(
            or_(Job.tenant_id == user.tenant_id, Job.tenant_id.is_(None)),
            _mentions(Job.payload, needles),
        ),
        delete(ProviderFailure).where(
            ProviderFailure.connection_id.in_(connections),
            or_(
                _mentions(ProviderFailure.request_excerpt, needles),
                _mentions(ProviderFailure.path, needles),
                _mentions(ProviderFailure.error, needles),
            ),
        ),
        delete(LoginThrottle).where(LoginThrottle.key.in_(throttle_keys)),
        delete(AccountRequest).where(AccountRequest.user_id == user.id),
        delete(Enrollment).where(Enrollment.user_id == user.id),
        delete(GroupMember).where(GroupMember.user_id == user.id),
        delete(OAuthToken).where(OAuthToken.user_id == user.id),
        delete(AuthorizationCode).where(AuthorizationCode.user_id == user.id),
        delete(BrowserSession).where(BrowserSession.user_id == user.id),
        delete(Badge).where(Badge.user_id == user.id),
        delete(ActivationToken).where(ActivationToken.user_id == user.id),
        # a staff form's result link names the account it made or changed
        delete(FormSubmission).where(
            FormSubmission.result_location.contains(user.id, autoescape=True)
        ),
    ]
    for statement in statements:
        session.execute(statement.execution_options(synchronize_session=False))


def _quotes(text: str | None, needles: list[str]) -> bool:
    """Whether ``text`` holds one of ``needles`` as a whole word (any case): the username
    ``ann`` is quoted in "Reset for ann." but not in "joanna"."""
    folded = (text or "").casefold()
    return any(
        re.search(rf"(?<![\w@-])(?<!\w\.){re.escape(n.casefold())}(?![\w@-]|\.\w)", folded)
        for n in needles
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    return []


def _scrub(value: Any, needles: list[str], alias: str) -> Any:
    """``value`` with every string that quotes one of ``needles`` replaced by ``alias``."""
    if isinstance(value, str):
        return alias if _quotes(value, needles) else value
    if isinstance(value, list):
        return [_scrub(item, needles, alias) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, needles, alias) for key, item in value.items()}
    return value


def erase_tenant(session: Session, tenant_id: str) -> None:
    """Delete a whole district: every row of the tenant goes (the foreign keys cascade from
    ``tenants``), and so do the throttle rows keyed by its id. Nothing is pseudonymised: no
    audit log of the tenant is kept. Take the final export first
    (:func:`server.domain.subject_access.export_tenant`)."""
    from server.db import Tenant

    for prefix in (f"account:{tenant_id}:", f"staff:{tenant_id}:"):
        session.execute(
            delete(LoginThrottle)
            .where(LoginThrottle.key.startswith(prefix, autoescape=True))
            .execution_options(synchronize_session=False)
        )
    session.execute(
        delete(Job).where(Job.tenant_id == tenant_id).execution_options(synchronize_session=False)
    )
    tenant = session.get(Tenant, tenant_id)
    with audit.amending(session, "tenant deletion"):
        if tenant is not None:
            session.delete(tenant)
            session.flush()
    # Its roster state counters (no foreign key: the triggers that keep them run during
    # the cascade, after the tenant row is gone).
    for model in (RosterVersion, RosterChange):
        session.execute(
            delete(model)
            .where(model.tenant_id == tenant_id)
            .execution_options(synchronize_session=False)
        )
