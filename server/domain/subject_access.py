"""Subject access: everything Rollcall holds about one person, in one JSON document (issue 12,
point 10; GDPR art. 15, FERPA's right to inspect records).

:data:`REGISTRY` names, for every table that can hold a user's data, how to find that user's
rows in it; :data:`NOT_ABOUT_A_USER` names every other table and why it holds nothing of a
user. Every table of the schema is in one of the two (a test checks it), so a new table cannot
be left out of the document by forgetting it.

Secrets never leave: password hashes, encrypted temporary passwords, token and code digests,
sealed badge tokens and PIN hashes are replaced by whether they are set. The export is audited
as a read (``read.subject_export``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, Text, cast, or_, select
from sqlalchemy.orm import Session

from server.db import (
    AccountRequest,
    ActivationToken,
    AuditEvent,
    AuthorizationCode,
    Badge,
    Base,
    BrowserSession,
    Connection,
    Credential,
    Enrollment,
    GroupMember,
    ImportRowResult,
    ImportRun,
    Job,
    OAuthToken,
    ProviderFailure,
    ScimValue,
    StaffAccount,
    User,
    UserGrade,
    UserRole,
)
from server.domain import audit, import_runs
from server.domain.actors import Actor
from server.domain.erasure import identifiers
from server.domain.users import get_user
from server.errors import NotAllowed

SECRET_COLUMNS = frozenset(
    {
        "password_hash",
        "temporary_secret",
        "digest",
        "code_digest",
        "access_digest",
        "refresh_digest",
        "token_digest",
        "sealed_token",
        "pin_hash",
        "code_challenge",
        "nonce",
    }
)

Finder = Callable[[User], Select[Any]]


def _mentions(column: Any, user: User) -> Any:
    return or_(*(cast(column, Text).contains(n, autoescape=True) for n in identifiers(user)))


def _in_tenant_connections(user: User) -> Any:
    return select(Connection.id).where(Connection.tenant_id == user.tenant_id)


REGISTRY: dict[str, tuple[str, Finder]] = {
    "users": ("user", lambda u: select(User).where(User.id == u.id)),
    "user_roles": ("roles", lambda u: select(UserRole).where(UserRole.user_id == u.id)),
    "user_grades": ("grades", lambda u: select(UserGrade).where(UserGrade.user_id == u.id)),
    "credentials": ("credential", lambda u: select(Credential).where(Credential.user_id == u.id)),
    "enrollments": ("enrollments", lambda u: select(Enrollment).where(Enrollment.user_id == u.id)),
    "group_members": (
        "group_memberships",
        lambda u: select(GroupMember).where(GroupMember.user_id == u.id),
    ),
    "badges": ("badges", lambda u: select(Badge).where(Badge.user_id == u.id)),
    "activation_tokens": (
        "activation_links",
        lambda u: select(ActivationToken).where(ActivationToken.user_id == u.id),
    ),
    "oauth_tokens": ("app_tokens", lambda u: select(OAuthToken).where(OAuthToken.user_id == u.id)),
    "oauth_codes": (
        "authorization_codes",
        lambda u: select(AuthorizationCode).where(AuthorizationCode.user_id == u.id),
    ),
    "browser_sessions": (
        "sign_in_sessions",
        lambda u: select(BrowserSession).where(BrowserSession.user_id == u.id),
    ),
    "account_requests": (
        "account_requests",
        lambda u: select(AccountRequest).where(AccountRequest.user_id == u.id),
    ),
    "staff_accounts": (
        "staff_account",
        lambda u: select(StaffAccount).where(StaffAccount.user_id == u.id),
    ),
    "audit_events": (
        "audit_history",
        lambda u: (
            select(AuditEvent)
            .where(
                AuditEvent.tenant_id == u.tenant_id,
                or_(
                    AuditEvent.target_id == u.id,
                    AuditEvent.actor_id == u.id,
                    _mentions(AuditEvent.changes, u),
                ),
            )
            .order_by(AuditEvent.id)
        ),
    ),
    "import_row_results": (
        "import_rows",
        lambda u: (
            select(ImportRowResult)
            .where(
                ImportRowResult.run_id.in_(
                    select(ImportRun.id).where(ImportRun.tenant_id == u.tenant_id)
                ),
                or_(
                    ImportRowResult.record_key.in_(identifiers(u)),
                    _mentions(ImportRowResult.changes, u),
                ),
            )
            .order_by(ImportRowResult.id)
        ),
    ),
    "jobs": (
        "queued_work",
        lambda u: select(Job).where(Job.tenant_id == u.tenant_id, _mentions(Job.payload, u)),
    ),
    "provider_failures": (
        "refused_requests",
        lambda u: select(ProviderFailure).where(
            ProviderFailure.connection_id.in_(_in_tenant_connections(u)),
            or_(_mentions(ProviderFailure.request_excerpt, u), _mentions(ProviderFailure.path, u)),
        ),
    ),
    "scim_values": (
        "scim_index",
        lambda u: select(ScimValue).where(
            ScimValue.tenant_id == u.tenant_id,
            or_(ScimValue.resource_id == u.id, ScimValue.text == u.id),
        ),
    ),
}
# Login throttle rows are keyed by a keyed hash of the typed username: nothing in them names
# the user (server.domain.signin.typed_name_digest); they are listed here for that reason.
NOT_ABOUT_A_USER: dict[str, str] = {
    "tenants": "the district",
    "roster_versions": "how often each district's roster changed (a counter)",
    "roster_changes": "which district's roster changed, one row per write (no content)",
    "form_submissions": "one-time staff form tokens (kept two days); a result link that names a "
    "user is removed when that user is purged",
    "connections": "sources of data",
    "connection_tokens": "connection credentials",
    "staff_tokens": "staff API credentials (of staff accounts, not of students)",
    "orgs": "schools",
    "academic_sessions": "terms",
    "courses": "courses",
    "classes": "classes",
    "class_terms": "class/term links",
    "groups": "groups (members are in group_members)",
    "oauth_clients": "apps",
    "oauth_client_signing": "apps' key preferences",
    "signing_keys": "server keys",
    "oauth1_nonces": "replay protection of apps' signatures",
    "oauth1_secrets": "apps' secrets",
    "login_throttles": "keyed hashes of typed names and addresses, no identifier",
    "import_runs": "file-level counts (rows are in import_row_results)",
    "purge_runs": "counts of the retention job",
    "audit_amendments": "the marker that lets purge and retention change the audit log, "
    "never kept past the transaction that wrote it",
}


def export_student(session: Session, actor: Actor, user_id: str) -> dict[str, Any]:
    """The subject-access document of one user (district admins, the CLI); audited as a read.

    :raises NotAllowed: staff other than district admins.
    :raises NotFound: no such user in the tenant.
    """
    if not actor.is_district_admin:
        raise NotAllowed("Only district admins can export a person's record.")
    user = get_user(session, actor, user_id, include_deleted=True)
    document: dict[str, Any] = {"about": user.id, "tenant_id": user.tenant_id}
    for table, (section, finder) in REGISTRY.items():
        found = list(session.scalars(finder(user)))
        if table == "import_row_results":  # their rows as later runs report them too
            found += import_runs.standing_for(session, found, identifiers(user))
        document[section] = [_row(row) for row in found]
    document["user"] = document["user"][0]
    document["credential"] = (document["credential"] or [None])[0]
    document["provider_data"] = dict(user.extra or {})
    audit.record(
        session,
        actor,
        "read.subject_export",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        detail=f"Subject-access export of {len(REGISTRY)} tables.",
    )
    return document


def _row(row: Base) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if column.name in SECRET_COLUMNS:
            values[f"{column.name}_set"] = value is not None
        else:
            values[column.name] = _plain(value)
    return values


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "(binary)"
    return value


def export_tenant(session: Session, actor: Actor) -> dict[str, Any]:
    """The final export before a tenant is deleted: the subject-access document of every user
    of the tenant (deleted ones included), keyed by user id."""
    ids = session.scalars(
        select(User.id).where(User.tenant_id == actor.tenant_id).order_by(User.created_at)
    ).all()
    return {user_id: export_student(session, actor, user_id) for user_id in ids}
