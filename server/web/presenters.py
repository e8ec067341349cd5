"""Plain views of domain records for pages and the JSON API (never a password or hash)."""

from __future__ import annotations

from typing import Any

from server.db import Connection, ConnectionKind, User
from server.domain import guard


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
