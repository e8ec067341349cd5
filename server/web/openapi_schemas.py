"""The component schemas of the admin OpenAPI document (:mod:`server.web.openapi`): the
bodies the admin API takes and answers, its one ``Error`` body, and the staff token scheme.

Request bodies are checked against these (:mod:`server.web.bodies`)."""

from __future__ import annotations

from typing import Any

_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
# The user fields staff write as text; with ``grades`` they are what the admin API writes
# (server.web.api.USER_WRITABLE).
USER_TEXT_FIELDS = (
    "username",
    "given_name",
    "family_name",
    "middle_name",
    "preferred_given_name",
    "preferred_family_name",
    "email",
    "identifier",
    "birth_date",
    "gender",
    "ethnicity",
    "primary_role",
    "external_id",
)
_USER_TEXTS: dict[str, Any] = {name: {"type": ["string", "null"]} for name in USER_TEXT_FIELDS}

# The district settings (issue 14, item 7): what GET answers and PATCH takes.
_SETTINGS: dict[str, Any] = {
    "badge_grades": {"type": "array", "items": {"type": "string"}},
    "username_pattern": {"type": "string"},
    "password_policy": {"type": "string", "enum": ["default", "classic"]},
    "shrink_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "retention_days": {"type": "integer", "minimum": 1, "maximum": 3650},
    # provider attributes kept beyond those Rollcall uses (server/domain/provider_attributes.py)
    "keep_provider_attributes": {"type": "array", "items": {"type": "string", "maxLength": 300}},
}


COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"staffToken": {"type": "http", "scheme": "bearer"}},
    "schemas": {
        "Settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **_SETTINGS,
                "changed": {
                    "type": "object",
                    "description": "in a PATCH answer: each changed setting as [before, after]",
                },
            },
        },
        "SettingsChange": {
            "type": "object",
            "additionalProperties": False,
            "properties": _SETTINGS,
        },
        "Error": {
            "type": "object",
            "description": "Every refusal under /admin/api (imports and exports included), "
            "at the error's own status: 400 bad input, 401 no staff token, 403 not "
            "allowed, 404 unknown or hidden record, 409 conflict, 412 stale If-Match, "
            "413 upload over a limit, 503 database busy (with Retry-After).",
            "required": ["error", "detail"],
            "properties": {
                "error": {
                    "type": "string",
                    "description": "the kind of error: NotFound, NotAllowed, InvalidValue, "
                    "ManagedBySource, unauthorized, possible_duplicate, …",
                },
                "detail": {"type": "string", "description": "what went wrong, in words"},
                "code": {
                    "type": ["string", "null"],
                    "description": "the import status code (SPEC §10) when one applies",
                },
                "field": {
                    "type": ["string", "null"],
                    "description": "the request field at fault, when there is one",
                },
                "matches": {
                    "type": "array",
                    "description": "with error possible_duplicate: the active students "
                    "who may be this person",
                    "items": {
                        "type": "object",
                        "properties": {
                            k: {"type": ["string", "null"]}
                            for k in ("id", "username", "given_name", "family_name")
                        }
                        | {"birth_date": {"type": ["string", "null"], "format": "date"}},
                    },
                },
            },
        },
        "User": {
            "type": "object",
            "required": ["id", "username", "status"],
            "properties": {
                "id": {"type": "string"},
                "username": {"type": "string"},
                "given_name": {"type": "string"},
                "family_name": {"type": "string"},
                "email": {"type": ["string", "null"]},
                "status": {"type": "string"},
                "credential_state": {"type": ["string", "null"]},
                "sso_provider": {"type": ["string", "null"]},
                "version": {"type": "integer"},
            },
        },
        "UserPage": {
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "offset": {"type": "integer"},
                "limit": {"type": "integer"},
                "users": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
            },
        },
        "NewUser": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **_USER_TEXTS,
                "grades": _STRINGS,
                "schools": _STRINGS | {"description": "school sourcedIds"},
                "password": {"type": "string"},
                "temporary": {"type": "boolean"},
                "issue_password": {"type": "boolean"},
                "birth_date": {"type": "string", "format": "date"},
                "allow_duplicate": {
                    "type": "boolean",
                    "description": "create even when an active student may be the same "
                    "person (otherwise 409 possible_duplicate)",
                },
            },
        },
        "UserChange": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **_USER_TEXTS,
                "grades": _STRINGS,
                "active": {"type": "boolean"},
                "override": {"type": "boolean"},
            },
        },
        "PasswordReset": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "temporary": {"type": "boolean", "default": True},
                "password": {"type": ["string", "null"]},
                "email": {
                    "type": "boolean",
                    "default": False,
                    "description": "Email the new temporary password to the account's "
                    "address (needs ROLLCALL_SMTP_URL; 403 without it)",
                },
            },
        },
        "NewConnection": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "kind"],
            "properties": {
                "name": {"type": "string"},
                "kind": {"enum": ["scim", "oneroster", "oneroster_csv", "oneroster_rest", "csv"]},
                "sso_provider": {"type": ["string", "null"]},
                "profile": {"enum": ["entra", "okta", "google", None]},
                "adopt_by": {"enum": ["username", "email", "identifier", None]},
                "schools": _STRINGS,
            },
        },
        "NewClient": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "kind": {"enum": ["oidc", "api"]},
                "redirect_uris": _STRINGS,
                "post_logout_redirect_uris": _STRINGS,
                "public": {"type": "boolean"},
                "scopes": _STRINGS,
                "schools": _STRINGS,
            },
        },
    },
}
