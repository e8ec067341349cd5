"""The OpenAPI 3.1 description of the SCIM 2.0 endpoint (served at ``/scim/v2/openapi.json``).

It names every path and method Rollcall serves (RFC 7644 §3) with the SCIM media type and the
error schema; the resource schemas themselves stay in ``/scim/v2/Schemas``, which is SCIM's own
self-description.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

SCIM_JSON = "application/scim+json"
_ERROR = {
    "description": "A SCIM error (RFC 7644 §3.12)",
    "content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_RESOURCE = {"content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/Resource"}}}}
_LIST = {"content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/ListResponse"}}}}
_QUERY = [
    {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
    for name, kind in (
        ("filter", "string"),
        ("sortBy", "string"),
        ("sortOrder", "string"),
        ("startIndex", "integer"),
        ("count", "integer"),
        ("cursor", "string"),
        ("attributes", "string"),
        ("excludedAttributes", "string"),
    )
]


def _links(name: str) -> dict[str, Any]:
    """Link Objects (OpenAPI 3.1 §4.8.20) from a created resource to its member operations, so
    a client (and Schemathesis' stateful runs) can chain create → read → change → delete."""
    return {
        f"{verb.title()}{name}": {
            "operationId": f"{verb}{name}",
            "parameters": {"id": "$response.body#/id"},
        }
        for verb in ("get", "put", "patch", "delete")
    }


def _collection(name: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": f"list{name}",
            "summary": f"List or filter {name}",
            "parameters": _QUERY,
            "responses": {
                "200": {"description": "A list response", **_LIST},
                "400": _ERROR,
                "401": _ERROR,
            },
        },
        "post": {
            "operationId": f"create{name}",
            "summary": f"Create one of {name}",
            "requestBody": {
                "required": True,
                "content": {SCIM_JSON: {"schema": {"$ref": f"#/components/schemas/New{name}"}}},
            },
            "responses": {
                "201": {"description": "Created", **_RESOURCE, "links": _links(name)},
                "400": _ERROR,
                "409": _ERROR,
                "413": _ERROR,
            },
        },
    }


def _member(name: str) -> dict[str, Any]:
    if_match = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}}
    return {
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "get": {
            "operationId": f"get{name}",
            "summary": f"Read one of {name}",
            "responses": {"200": {"description": "The resource", **_RESOURCE}, "404": _ERROR},
        },
        "put": {
            "operationId": f"put{name}",
            "summary": f"Replace one of {name}",
            "parameters": [if_match],
            "requestBody": {"required": True, **_RESOURCE},
            "responses": {
                "200": {"description": "Replaced", **_RESOURCE},
                "400": _ERROR,
                "404": _ERROR,
                "409": _ERROR,
                "412": _ERROR,
            },
        },
        "patch": {
            "operationId": f"patch{name}",
            "summary": f"Change one of {name} (RFC 7644 §3.5.2); 200 with the resource",
            "parameters": [if_match],
            "requestBody": {
                "required": True,
                "content": {SCIM_JSON: {"schema": {"$ref": "#/components/schemas/PatchOp"}}},
            },
            "responses": {
                "200": {"description": "Changed", **_RESOURCE},
                "204": {"description": "Changed (Prefer: return=minimal)"},
                "400": _ERROR,
                "404": _ERROR,
                "409": _ERROR,
                "412": _ERROR,
            },
        },
        "delete": {
            "operationId": f"delete{name}",
            "summary": f"Delete one of {name} (users: soft delete with retention)",
            "parameters": [if_match],
            "responses": {"204": {"description": "Deleted"}, "404": _ERROR, "412": _ERROR},
        },
    }


SCIM_OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Rollcall SCIM 2.0",
        "version": "2.0",
        "description": "RFC 7643/7644 service provider. Resource schemas: /Schemas.",
    },
    "servers": [{"url": "/scim/v2"}],
    "security": [{"connectionToken": []}],
    "paths": {
        "/Users": _collection("Users"),
        "/Users/{id}": _member("Users"),
        "/Groups": _collection("Groups"),
        "/Groups/{id}": _member("Groups"),
        "/.search": {
            "post": {
                "summary": "Search every resource type (RFC 7644 §3.4.3)",
                "requestBody": {
                    "required": True,
                    "content": {SCIM_JSON: {"schema": {"type": "object"}}},
                },
                "responses": {"200": {"description": "A list response", **_LIST}, "400": _ERROR},
            }
        },
        "/Users/.search": {
            "post": {
                "summary": "Search users",
                "requestBody": {
                    "required": True,
                    "content": {SCIM_JSON: {"schema": {"type": "object"}}},
                },
                "responses": {"200": {"description": "A list response", **_LIST}, "400": _ERROR},
            }
        },
        "/Groups/.search": {
            "post": {
                "summary": "Search groups",
                "requestBody": {
                    "required": True,
                    "content": {SCIM_JSON: {"schema": {"type": "object"}}},
                },
                "responses": {"200": {"description": "A list response", **_LIST}, "400": _ERROR},
            }
        },
        "/Bulk": {
            "post": {
                "summary": "Bulk operations with bulkId references (RFC 7644 §3.7)",
                "requestBody": {
                    "required": True,
                    "content": {SCIM_JSON: {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": {"description": "A bulk response"},
                    "400": _ERROR,
                    "413": _ERROR,
                },
            }
        },
        "/Me": {
            "get": {
                "summary": "Not available: a provisioning token is not a user",
                "responses": {"501": _ERROR},
            }
        },
        "/ServiceProviderConfig": {
            "get": {
                "summary": "What this server supports",
                "responses": {"200": {"description": "ServiceProviderConfig"}},
            }
        },
        "/ResourceTypes": {
            "get": {
                "summary": "Resource types",
                "responses": {"200": {"description": "A list response", **_LIST}},
            }
        },
        "/Schemas": {
            "get": {
                "summary": "Schemas, with Rollcall's education extensions",
                "responses": {"200": {"description": "A list response", **_LIST}},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "connectionToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "A connection's token (rollcall connection add)",
            }
        },
        "schemas": {
            "Resource": {
                "type": "object",
                "required": ["schemas"],
                "properties": {
                    "schemas": {"type": "array", "items": {"type": "string"}},
                    "id": {"type": "string"},
                    "externalId": {"type": "string"},
                    "meta": {"type": "object"},
                },
                "additionalProperties": True,
            },
            # What a creation needs (RFC 7643 §4.1, §4.2): the core schema and its one required
            # attribute; every other attribute is described by /Schemas.
            **{
                f"New{name}": {
                    "type": "object",
                    "required": ["schemas", attribute],
                    "properties": {
                        "schemas": {"type": "array", "items": {"const": urn}, "minItems": 1},
                        attribute: {"type": "string", "minLength": 1},
                    },
                    "additionalProperties": True,
                }
                for name, urn, attribute in (
                    ("Users", "urn:ietf:params:scim:schemas:core:2.0:User", "userName"),
                    ("Groups", "urn:ietf:params:scim:schemas:core:2.0:Group", "displayName"),
                )
            },
            "ListResponse": {
                "type": "object",
                "properties": {
                    "schemas": {"type": "array", "items": {"type": "string"}},
                    "totalResults": {"type": "integer"},
                    "startIndex": {"type": "integer"},
                    "itemsPerPage": {"type": "integer"},
                    "nextCursor": {"type": "string"},
                    "Resources": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Resource"},
                    },
                },
            },
            "PatchOp": {
                "type": "object",
                "required": ["schemas", "Operations"],
                "properties": {
                    "schemas": {"type": "array", "items": {"type": "string"}},
                    "Operations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["op"],
                            "properties": {
                                "op": {"type": "string"},
                                "path": {"type": "string"},
                                "value": {},
                            },
                        },
                    },
                },
            },
            "Error": {
                "type": "object",
                "required": ["schemas", "status"],
                "properties": {
                    "schemas": {"type": "array", "items": {"type": "string"}},
                    "status": {"type": "string"},
                    "scimType": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(SCIM_OPENAPI)
