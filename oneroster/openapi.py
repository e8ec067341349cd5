"""The OpenAPI 3.1 description of the OneRoster surface (``/ims/oneroster/openapi.json``).

It is generated from the same endpoint tables the routes use, so it cannot drift from them.
Object schemas are described by their field lists per version (see :mod:`oneroster.render`);
the conformance suite holds the strict JSON Schemas written from the specification.
"""

from __future__ import annotations

from typing import Any

from oneroster.pushes import WRITABLE
from oneroster.read_endpoints import (
    COLLECTIONS,
    FULL,
    NESTED,
    PREFIXES,
    SCHOOL_CLASS_NESTED,
    SCOPE_PREFIX,
    Collection,
)
from oneroster.render import KEYS

_QUERY = [
    ("limit", {"type": "integer", "minimum": 1, "default": 100}),
    ("offset", {"type": "integer", "minimum": 0, "default": 0}),
    ("sort", {"type": "string"}),
    ("orderBy", {"type": "string", "enum": ["asc", "desc"]}),
    ("filter", {"type": "string"}),
    ("fields", {"type": "string"}),
]
_ERRORS = {
    "400": "invalid_filter_field or invalid_selection_field",
    "401": "unauthorisedrequest",
    "403": "forbidden",
    "404": "unknownobject",
    "503": "server_busy (the database is busy or unreachable; see Retry-After)",
}


def document(server_url: str) -> dict[str, Any]:
    """The whole OpenAPI document, with ``server_url`` as the server."""
    paths: dict[str, Any] = {}
    for version, prefix in PREFIXES.items():
        for c in COLLECTIONS.values():
            paths[f"{prefix}/{c.name}"] = _get(version, c, c.scopes, many=True, params=[])
            paths[f"{prefix}/{c.name}/{{sourcedId}}"] = _get(
                version, c, c.scopes, many=False, params=["sourcedId"]
            )
        for n in NESTED:
            paths[f"{prefix}/{n.parent}/{{{n.parent}SourcedId}}/{n.child}"] = _get(
                version, COLLECTIONS[n.child], (FULL,), many=True, params=[f"{n.parent}SourcedId"]
            )
        for child in SCHOOL_CLASS_NESTED:
            paths[f"{prefix}/schools/{{schoolSourcedId}}/classes/{{classSourcedId}}/{child}"] = (
                _get(
                    version,
                    COLLECTIONS[child],
                    (FULL,),
                    many=True,
                    params=["schoolSourcedId", "classSourcedId"],
                )
            )
    for name in WRITABLE:
        paths[f"{PREFIXES['v1p2']}/{name}/{{sourcedId}}"] |= _writes(COLLECTIONS[name])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Rollcall OneRoster 1.1 and 1.2 Rostering",
            "version": "1.2",
            "description": "OneRoster Rostering reads (both versions) with OAuth 2 client "
            "credentials; 1.1 also accepts OAuth 1.0a HMAC-SHA256/SHA1 signed requests.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "OAuth2CC": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{server_url}/oauth/token",
                            "scopes": {
                                prefix + scope: scope
                                for prefix in SCOPE_PREFIX.values()
                                for scope in (
                                    "roster-core.readonly",
                                    "roster.readonly",
                                    "roster-demographics.readonly",
                                )
                            },
                        }
                    },
                },
                "ConnectionBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A connection's token (pushes; a Rollcall extension).",
                },
                "OAuth1": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "OAuth 1.0a (RFC 5849) HMAC-SHA256 or HMAC-SHA1, 1.1 only.",
                },
            },
            "schemas": {"imsx_StatusInfo": _status_schema(), **_object_schemas()},
        },
    }


def _get(
    version: str, collection: Collection, scopes: tuple[str, ...], *, many: bool, params: list[str]
) -> dict[str, Any]:
    schema_ref = {"$ref": f"#/components/schemas/{collection.kind}_{version}"}
    envelope = collection.envelope if many else collection.single
    body = {"type": "array", "items": schema_ref} if many else schema_ref
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in params
    ]
    query = _QUERY if many else [q for q in _QUERY if q[0] == "fields"]
    parameters += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in query]
    security: list[dict[str, list[str]]] = [
        {"OAuth2CC": [SCOPE_PREFIX[version] + s for s in scopes]}
    ]
    if version == "v1p1":
        security.append({"OAuth1": []})
    ok: dict[str, Any] = {
        "description": "The " + ("page of " if many else "") + collection.name,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {envelope: body},
                    "required": [envelope],
                }
            }
        },
    }
    if many:
        ok["headers"] = {
            "X-Total-Count": {"schema": {"type": "integer"}},
            "Link": {"schema": {"type": "string"}},
        }
    responses: dict[str, Any] = {"200": ok}
    for code, minor in _ERRORS.items():
        responses[code] = {
            "description": minor,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/imsx_StatusInfo"}}
            },
        }
    return {
        "get": {
            "operationId": f"{version}_{'list' if many else 'get'}_{'_'.join(params) or ''}"
            f"{collection.name}",
            "tags": [version],
            "parameters": parameters,
            "security": security,
            "responses": responses,
        }
    }


def _writes(collection: Collection) -> dict[str, Any]:
    """PUT (upsert) and DELETE (mark tobedeleted): a Rollcall extension for pushing hubs."""
    ref = {"$ref": f"#/components/schemas/{collection.kind}_v1p2"}
    body = {
        "type": "object",
        "properties": {collection.single: ref},
        "required": [collection.single],
    }
    status = {"application/json": {"schema": {"$ref": "#/components/schemas/imsx_StatusInfo"}}}
    errors = {
        code: {"description": text, "content": status}
        for code, text in (
            ("401", "unauthorisedrequest"),
            ("404", "unknownobject"),
            ("409", "invaliddata (ownership, R109)"),
            ("422", "invaliddata"),
        )
    }
    path_param = [
        {"name": "sourcedId", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    security: list[dict[str, list[str]]] = [{"ConnectionBearer": []}]
    # Link Objects (OpenAPI 3.1 §4.8.20): the record a PUT wrote can be read and deleted next.
    sourced_id = {"sourcedId": "$request.path.sourcedId"}
    links = {
        "Read": {"operationId": f"v1p2_get_sourcedId{collection.name}", "parameters": sourced_id},
        "Delete": {"operationId": f"v1p2_delete_{collection.name}", "parameters": sourced_id},
    }
    return {
        "put": {
            "operationId": f"v1p2_put_{collection.name}",
            "summary": "Create or update one record (extension; not in OneRoster 1.2 Rostering)",
            "tags": ["v1p2 pushes"],
            "parameters": path_param,
            "security": security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {
                    "description": "Updated or unchanged",
                    "content": {"application/json": {"schema": body}},
                    "links": links,
                },
                "201": {
                    "description": "Created",
                    "content": {"application/json": {"schema": body}},
                    "links": links,
                },
                **errors,
            },
        },
        "delete": {
            "operationId": f"v1p2_delete_{collection.name}",
            "summary": "Mark one record tobedeleted (extension)",
            "tags": ["v1p2 pushes"],
            "parameters": path_param,
            "security": security,
            "responses": {"204": {"description": "Marked tobedeleted"}, **errors},
        },
    }


def _status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["imsx_codeMajor", "imsx_severity"],
        "properties": {
            "imsx_codeMajor": {"enum": ["success", "processing", "failure", "unsupported"]},
            "imsx_severity": {"enum": ["status", "warning", "error"]},
            "imsx_description": {"type": "string"},
            "imsx_CodeMinor": {
                "type": "object",
                "properties": {
                    "imsx_codeMinorField": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "imsx_codeMinorFieldName": {"type": "string"},
                                "imsx_codeMinorFieldValue": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
    }


def _object_schemas() -> dict[str, Any]:
    return {
        f"{kind}_{version}": {
            "type": "object",
            "properties": {key: {} for key in keys},
            "required": ["sourcedId", "status", "dateLastModified"],
            "additionalProperties": False,
        }
        for (kind, version), keys in KEYS.items()
    }
