"""The OpenAPI 3.1 description of the admin JSON API (served at /admin/api/openapi.json)."""

from __future__ import annotations

from typing import Any

from server.web.openapi_schemas import COMPONENTS

_ERROR = {
    "description": "A domain error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ID = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}
# OpenAPI 3.1 §4.8.20 Link Objects: what a client (and Schemathesis' stateful runs) may call next
# with the id a creation answered.
_NEW_USER_LINKS = {
    name: {"operationId": operation, "parameters": {"user_id": "$response.body#/id"}}
    for name, operation in (
        ("ReadUser", "getUser"),
        ("ChangeUser", "patchUser"),
        ("ResetPassword", "resetPassword"),
        ("RevealPassword", "revealPassword"),
    )
}


def _json(schema_ref: str) -> dict[str, Any]:
    return {
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}
    }


ADMIN_OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Rollcall admin API", "version": "1"},
    "servers": [{"url": "/admin/api"}],
    "security": [{"staffToken": []}],
    "paths": {
        "/users": {
            "get": {
                "summary": "Search users",
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in ("q", "role", "school", "class", "grade", "include_inactive")
                ]
                + [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                ],
                "responses": {
                    "200": _json("UserPage") | {"description": "A page of users"},
                    "400": _ERROR,
                    "401": _ERROR,
                },
            },
            "post": {
                "summary": "Create a user",
                "operationId": "createUser",
                "requestBody": {"required": True, **_json("NewUser")},
                "responses": {
                    "201": _json("User") | {"description": "Created", "links": _NEW_USER_LINKS},
                    "400": _ERROR,
                    "403": _ERROR,
                    "409": _ERROR,
                },
            },
        },
        "/settings": {
            "get": {
                "summary": "The district settings (district admins)",
                "responses": {"200": _json("Settings"), "401": _ERROR, "403": _ERROR},
            },
            "patch": {
                "summary": "Change district settings (audited); answers them with `changed`",
                "requestBody": {"required": True, **_json("SettingsChange")},
                "responses": {
                    "200": _json("Settings"),
                    "400": _ERROR,
                    "401": _ERROR,
                    "403": _ERROR,
                },
            },
        },
        "/users/{user_id}": {
            "parameters": [_ID],
            "get": {
                "summary": "Read a user",
                "operationId": "getUser",
                "responses": {"200": _json("User") | {"description": "The user"}, "404": _ERROR},
            },
            "patch": {
                "operationId": "patchUser",
                "summary": "Change fields (If-Match supported; `override` for connection-owned fields)",  # noqa: E501
                "requestBody": {"required": True, **_json("UserChange")},
                "responses": {
                    "200": {"description": "Changed"},
                    "400": _ERROR,
                    "404": _ERROR,
                    "409": _ERROR,
                    "412": _ERROR,
                },
            },
            "delete": {
                "summary": "Delete the user (district admins): hidden at once, personal data "
                "erased after the tenant's retention period; `override=1` for connection-owned users",  # noqa: E501
                "parameters": [
                    {"name": "override", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {
                    "204": {"description": "Deleted"},
                    "403": _ERROR,
                    "404": _ERROR,
                    "409": _ERROR,
                },
            },
        },
        "/users/{user_id}/export": {
            "parameters": [_ID],
            "get": {
                "summary": "Everything stored about the user, as one JSON document (district "
                "admins; subject access; audited as a read; never a secret)",
                "responses": {"200": {"description": "The document"}, "403": _ERROR, "404": _ERROR},
            },
        },
        "/users/{user_id}/password": {
            "parameters": [_ID],
            "post": {
                "operationId": "resetPassword",
                "summary": "Reset the password (temporary by default); SSO-linked accounts get 409",
                "requestBody": {"required": False, **_json("PasswordReset")},
                "responses": {
                    "200": {"description": "Reset"},
                    "400": _ERROR,
                    "403": _ERROR,
                    "404": _ERROR,
                    "409": _ERROR,
                },
            },
        },
        "/users/{user_id}/password/reveal": {
            "parameters": [_ID],
            "post": {
                "operationId": "revealPassword",
                "summary": "Show the temporary password of an issued account (audited)",
                "responses": {"200": {"description": "The password"}, "403": _ERROR, "404": _ERROR},
            },
        },
        "/connections": {
            "get": {
                "summary": "List connections (district admins)",
                "responses": {"200": {"description": "Connections"}, "403": _ERROR},
            },
            "post": {
                "summary": "Add a connection; the token is in the answer, once",
                "requestBody": {"required": True, **_json("NewConnection")},
                "responses": {
                    "201": {
                        "description": "Created",
                        "links": {
                            "RotateToken": {
                                "operationId": "rotateConnectionToken",
                                "parameters": {"name": "$response.body#/name"},
                            }
                        },
                    },
                    "400": _ERROR,
                    "403": _ERROR,
                    "409": _ERROR,
                },
            },
        },
        "/connections/{name}/rotate": {
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "post": {
                "summary": "Replace the connection's token",
                "operationId": "rotateConnectionToken",
                "responses": {"200": {"description": "New token"}, "403": _ERROR, "404": _ERROR},
            },
        },
        "/imports": {
            "get": {
                "summary": "Recent import runs",
                "responses": {"200": {"description": "Runs"}, "401": _ERROR, "403": _ERROR},
            },
            "post": {
                "summary": "Import a file (trial run with dry_run=true); the answer is the row report",  # noqa: E501
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "dry_run": {"type": "string", "enum": ["true", "false"]},
                                    "mode": {"type": "string", "enum": ["full", "delta"]},
                                    "connection": {"type": "string"},
                                    "school": {"type": "string"},
                                    "skip_invalid": {"type": "string", "enum": ["true", "false"]},
                                    "allow_shrink": {"type": "string", "enum": ["true", "false"]},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "Applied, or a valid trial run"},
                    "400": _ERROR,
                    "401": _ERROR,
                    "403": _ERROR,
                    "422": {"description": "Refused: the report says why, row by row"},
                },
            },
        },
        "/imports/status-codes": {
            "get": {
                "summary": "The status codes of import report rows (SPEC §10) and their meaning",
                "responses": {"200": {"description": "Codes"}, "401": _ERROR},
            },
        },
        "/imports/{run_id}": {
            "parameters": [
                {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {
                "summary": "One stored import run with its rows",
                "responses": {"200": {"description": "The report"}, "404": _ERROR},
            },
        },
        "/exports": {
            "get": {
                "summary": "Export (school CSV, XLSX, OneRoster 1.1/1.2 zip)",
                "parameters": [
                    {
                        "name": "format",
                        "in": "query",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "enum": ["school-csv", "xlsx", "oneroster-1.1", "oneroster-1.2"],
                        },
                    },
                    {"name": "school", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "The file"}, "400": _ERROR, "403": _ERROR},
            },
        },
        "/clients": {
            "get": {
                "summary": "OIDC relying parties and OneRoster API clients (district admins)",
                "responses": {"200": {"description": "Clients, without secrets"}, "403": _ERROR},
            },
            "post": {
                "summary": "Register a client; the secret is in the answer, once",
                "requestBody": {"required": True, **_json("NewClient")},
                "responses": {
                    "201": {"description": "Created"},
                    "400": _ERROR,
                    "403": _ERROR,
                    "409": _ERROR,
                },
            },
        },
        "/classes": {
            "get": {
                "summary": "Classes the caller may see (teachers: their own)",
                "parameters": [{"name": "school", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Classes"}, "401": _ERROR},
            },
        },
        "/classes/{class_id}/students": {
            "parameters": [
                {"name": "class_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {
                "summary": "The active students of a class",
                "responses": {"200": {"description": "Students"}, "404": _ERROR},
            },
        },
        "/audit": {
            "get": {
                "summary": "Read the audit log",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": "string"}}
                    for n in ("target", "actor", "action")
                ],
                "responses": {"200": {"description": "Events, newest first"}, "403": _ERROR},
            }
        },
    },
    "components": COMPONENTS,
}

_SOURCED_ID = {
    "name": "sourced_id",
    "in": "path",
    "required": True,
    "schema": {
        "type": "string",
        "pattern": "^[0-9A-Za-z.\\-_/@]+$",
        "description": "use letters, digits and . - _ / @ only",
    },
}
_OVERRIDE = {"required": False, **_json("Override")}
_CHANGED_SCHOOL = _json("SchoolChanged") | {"description": "The school after the change"}

# Schools without a SIS file (issue 10, defect 5): district admins only for changes.
ADMIN_OPENAPI["paths"].update(
    {
        "/schools": {
            "get": {
                "summary": "List schools and other orgs (district first)",
                "parameters": [
                    {"name": "include_inactive", "in": "query", "schema": {"type": "boolean"}}
                ],
                "responses": {
                    "200": _json("SchoolList") | {"description": "Schools"},
                    "401": _ERROR,
                },
            },
            "post": {
                "summary": "Add a school, owned by the manual connection (district admins)",
                "requestBody": {"required": True, **_json("NewSchool")},
                "responses": {
                    "201": _json("School") | {"description": "Created"},
                    "400": _ERROR,
                    "403": _ERROR,
                    "409": _ERROR,
                },
            },
        },
        "/schools/{sourced_id}": {
            "parameters": [_SOURCED_ID],
            "get": {
                "summary": "Read a school",
                "responses": {
                    "200": _json("School") | {"description": "The school"},
                    "404": _ERROR,
                },
            },
            "patch": {
                "summary": "Rename, retype or re-parent a school (`override` for a synced one)",
                "requestBody": {"required": True, **_json("SchoolChange")},
                "responses": {
                    "200": _CHANGED_SCHOOL,
                    "400": _ERROR,
                    "403": _ERROR,
                    "404": _ERROR,
                    "409": _ERROR,
                },
            },
        },
        "/schools/{sourced_id}/deactivate": {
            "parameters": [_SOURCED_ID],
            "post": {
                "summary": "Deactivate a school (OneRoster `tobedeleted`)",
                "requestBody": _OVERRIDE,
                "responses": {"200": _CHANGED_SCHOOL, "403": _ERROR, "404": _ERROR, "409": _ERROR},
            },
        },
        "/schools/{sourced_id}/reactivate": {
            "parameters": [_SOURCED_ID],
            "post": {
                "summary": "Reactivate a school",
                "requestBody": _OVERRIDE,
                "responses": {"200": _CHANGED_SCHOOL, "403": _ERROR, "404": _ERROR, "409": _ERROR},
            },
        },
    }
)
_ORG_TYPE = {
    "enum": ["department", "district", "local", "national", "school", "state", "technicalCenter"]
}
ADMIN_OPENAPI["components"]["schemas"].update(
    {
        "School": {
            "type": "object",
            "required": ["sourced_id", "name", "type", "status"],
            "properties": {
                "sourced_id": {"type": "string"},
                "name": {"type": "string"},
                "type": _ORG_TYPE,
                "identifier": {"type": ["string", "null"]},
                "parent": {"type": ["string", "null"], "description": "the parent's sourcedId"},
                "status": {"enum": ["active", "inactive"]},
                "active": {"type": "boolean"},
                "owner": {"type": "string", "description": "the owning connection"},
                "managed_by": {"type": ["string", "null"], "description": "null when manual"},
                "version": {"type": "integer"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
        },
        "Override": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"override": {"type": "boolean"}},
        },
        "SchoolList": {
            "type": "object",
            "properties": {
                "schools": {"type": "array", "items": {"$ref": "#/components/schemas/School"}}
            },
        },
        "NewSchool": {
            "type": "object",
            "required": ["sourced_id", "name"],
            "additionalProperties": False,
            "properties": {
                "sourced_id": _SOURCED_ID["schema"],
                "name": {"type": "string", "minLength": 1},
                "type": _ORG_TYPE | {"default": "school"},
                "parent": {"type": ["string", "null"]},
                "identifier": {"type": ["string", "null"]},
            },
        },
        "SchoolChange": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "type": _ORG_TYPE,
                "parent": {"type": ["string", "null"]},
                "identifier": {"type": ["string", "null"]},
                "override": {"type": "boolean"},
            },
        },
        "SchoolChanged": {
            "type": "object",
            "properties": {
                "school": {"$ref": "#/components/schemas/School"},
                "changes": {"type": "object"},
                "changed": {"type": "boolean"},
            },
        },
    }
)

# A connection's default role and school (issue 10, defect 4).
_DEFAULTS = {
    "default_role": {"type": ["string", "null"], "description": "a OneRoster role"},
    "default_school": {"type": ["string", "null"], "description": "a school's sourcedId"},
}
ADMIN_OPENAPI["components"]["schemas"]["NewConnection"]["properties"].update(_DEFAULTS)
ADMIN_OPENAPI["components"]["schemas"]["ConnectionDefaults"] = {
    "type": "object",
    "additionalProperties": False,
    "properties": _DEFAULTS,
}
ADMIN_OPENAPI["paths"]["/connections/{name}"] = {
    "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
    "patch": {
        "summary": "Set the default role and school of users this connection pushes without one "
        "(null or empty clears); users it pushed before are completed at once",
        "requestBody": {"required": True, **_json("ConnectionDefaults")},
        "responses": {
            "200": {"description": "The connection and the change set"},
            "400": _ERROR,
            "403": _ERROR,
            "404": _ERROR,
        },
    },
}
