"""Plain views of domain records for pages and the JSON API (never a password or hash)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.db import Connection, ConnectionKind, OAuthClient, Org, SchoolClass, User
from server.domain import completeness, connection_defaults, guard, retention
from server.domain.actors import Actor


def user_view(user: User, classes: list[str] | None = None) -> dict[str, Any]:
    owner = user.connection
    sso = guard.is_sso_linked(owner)
    return {
        "id": user.id,
        "sourced_id": user.sourced_id,
        "username": user.username,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "middle_name": user.middle_name,
        "preferred_given_name": user.preferred_given_name,
        "display_name": user.display_name,
        "email": user.email,
        "identifier": user.identifier,
        "birth_date": user.birth_date.isoformat() if user.birth_date else None,
        "gender": user.gender,
        "role": user.primary_role,
        "grades": user.grades,
        "school_ids": user.school_ids,
        "classes": classes or [],
        "status": user.status,
        "active": user.active,
        "credential_state": user.credential.state if user.credential else None,
        "owner": owner.name,
        "owner_kind": owner.kind,
        "managed_by": owner.provider_name if owner.kind != ConnectionKind.MANUAL else None,
        "sso_provider": owner.provider_name if sso else None,
        "version": user.version,
        "updated_at": user.updated_at.isoformat(),
    }


def connection_view(connection: Connection, failures: list[Any] | None = None) -> dict[str, Any]:
    return {
        "failures": [
            {
                "at": f.at.isoformat(timespec="seconds"),
                "request": f"{f.method} {f.path}",
                "status": f.status,
                "error": f.error,
                "excerpt": f.request_excerpt,
            }
            for f in failures or []
        ],
        "name": connection.name,
        "kind": connection.kind,
        "sso_provider": connection.sso_provider,
        "profile": connection.profile,
        "adopt_by": connection.adopt_by,
        "tokens": [t.hint for t in connection.tokens if t.revoked_at is None],
        "created_at": connection.created_at.isoformat(timespec="seconds"),
        "last_sync_at": connection.last_sync_at.isoformat() if connection.last_sync_at else None,
        "last_sync_result": connection.last_sync_result,
    }


def client_view(client: OAuthClient) -> dict[str, Any]:
    """An OAuth client without its secret (shown once, at creation)."""
    return {
        "name": client.name,
        "client_id": client.client_id,
        "kind": client.kind,
        "public": client.public,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "scopes": client.scopes,
        "school_ids": client.school_ids,
        "created_at": client.created_at.isoformat(timespec="seconds"),
    }


def class_view(klass: SchoolClass) -> dict[str, Any]:
    return {
        "id": klass.id,
        "sourced_id": klass.sourced_id,
        "title": klass.title,
        "class_code": klass.class_code,
        "school_id": klass.school_id,
        "grades": klass.grades,
        "status": klass.status,
        "owner": klass.connection_id,
        "version": klass.version,
    }


def school_view(session: Session, org: Org) -> dict[str, Any]:
    """A school (or any org) as the staff app, the admin API and the CLI show it."""
    parent = session.get(Org, org.parent_id) if org.parent_id else None
    owner = session.get(Connection, org.connection_id)
    return {
        "sourced_id": org.sourced_id,
        "name": org.name,
        "type": org.type,
        "identifier": org.identifier,
        "parent": parent.sourced_id if parent else None,
        "status": org.status,
        "active": org.active,
        "owner": owner.name if owner else None,
        "managed_by": owner.provider_name
        if owner and owner.kind != ConnectionKind.MANUAL
        else None,
        "version": org.version,
        "updated_at": org.updated_at.isoformat(),
    }


def connection_defaults_view(
    session: Session, connection: Connection, incomplete: dict[str, int]
) -> dict[str, Any]:
    """A connection's default role and school, and how many of its users are incomplete."""
    return {
        "default_role": connection_defaults.defaults_of(connection).role,
        "default_school": completeness.default_school_sourced_id(session, connection),
        "incomplete": incomplete.get(connection.id, 0),
    }


def purge_view(session: Session, actor: Actor) -> dict[str, Any] | None:
    """When the retention job last ran in the tenant and what it removed (counts only), for
    district admins; None for others or before the first run."""
    if not actor.is_district_admin:
        return None
    run = retention.last_run(session, actor.tenant_id)
    if run is None:
        return {"at": None, "removed": []}
    removed = [(name.replace("_", " "), count) for name, count in run.counts.items() if count]
    return {"at": run.ran_at.isoformat(timespec="seconds"), "removed": removed}
