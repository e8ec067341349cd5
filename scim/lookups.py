"""The lookups identity providers make before every write, answered without the engine.

Entra ID and Okta look a user up before they create or change it: ``GET /Users?filter=
userName eq "…"`` or ``externalId eq "…"`` (RFC 7644 §3.4.2.2), and read it by id (§3.4.1).
scim2-server answers them by validating the request, the stored user and the response into
pydantic models and dumping them again, which cost most of a lookup (issue 15). For exactly
these shapes this module reads the user with :func:`server.domain.user_views.find_views`
(visibility is :func:`server.domain.access.visible_records`, as for every read) and publishes
:func:`scim.mapping.user_json`, the same document the engine validates, with its ``id``,
``meta`` and references as the engine publishes them.

Any other request returns ``None`` from :func:`lookup_of` and is served by the engine:
another filter, ``attributes``/``excludedAttributes``, sorting, cursors, unknown parameters,
conditional headers (``If-None-Match``…), a value with an escape. A read by id that finds
nothing is served by the engine too, so its 404 is the engine's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol

from scim2_models import UnauthorizedException
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from sqlalchemy.orm import Session

from scim.context import current_token
from scim.mapping import user_json
from scim.schemas import DEFAULT_PAGE_SIZE, MAX_RESULTS
from server.db import Connection
from server.db.session import Reader
from server.domain.actors import Actor
from server.domain.connections import live_connection, token_is_live
from server.domain.user_views import Key, UserView, count_views, find_views

ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
# attrPath SP "eq" SP compValue, for the two attributes and a string without escapes
LOOKUP_FILTER = re.compile(r'\s*(userName|externalId)\s+eq\s+"([^"\\]*)"\s*', re.IGNORECASE)
KEYS: dict[str, Key] = {"username": "username", "externalid": "external_id"}
USER_ID = re.compile(r"/Users/([^/]+)")
CONDITIONAL = {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since"}
REVOKED = "The bearer token is not valid."


@dataclass(frozen=True)
class Lookup:
    """A read of users by one key: by id (``start`` None), or a search page."""

    key: Key
    value: str
    start: int | None = None  # startIndex, from 1
    count: int = DEFAULT_PAGE_SIZE


def lookup_of(request: ScimRequest) -> Lookup | None:
    """The lookup a request asks for, or ``None`` for the engine to serve it.

    >>> lookup_of(ScimRequest("GET", "http://h/scim/v2", "/Users",
    ...                       {"filter": 'userName eq "bart"', "count": "5"}))
    Lookup(key='username', value='bart', start=1, count=5)
    """
    if request.method != "GET" or _conditional(request):
        return None
    if "\x00" in request.path or any("\x00" in value for value in request.query.values()):
        return None  # PostgreSQL refuses NUL in text: the engine's answer, whatever it is
    matched = USER_ID.fullmatch(request.path)
    if matched:
        return None if request.query else Lookup("id", matched.group(1))
    if request.path != "/Users" or set(request.query) - {"filter", "startIndex", "count"}:
        return None
    found = LOOKUP_FILTER.fullmatch(request.query.get("filter", ""))
    start, count = _number(request.query, "startIndex", 1), _number(request.query, "count", None)
    if found is None or start is None or (count is None and "count" in request.query):
        return None
    # RFC 7644 §3.4.2.4: a startIndex below 1 is 1; count is at most maxResults (as the engine)
    bounded = DEFAULT_PAGE_SIZE if count is None else min(count, MAX_RESULTS)
    return Lookup(KEYS[found.group(1).lower()], found.group(2), max(start, 1), bounded)


def answer(
    service: ScimService, session: Reader, actor: Actor, request: ScimRequest, lookup: Lookup
) -> ScimResponse | None:
    """The answer to a lookup; ``None`` when a read by id finds nothing (the engine's 404).

    ``session``: a read-only connection (``Database.read_connection``): no ORM session."""
    token = current_token.get()
    if lookup.start is None:
        found = find_views(session, actor, "id", lookup.value, limit=1, token=token)
        if not found:
            token_admitted(session)
            return None
        return user_response(service, request.base_url, found[0])
    offset = lookup.start - 1
    views = (
        find_views(
            session, actor, lookup.key, lookup.value, offset=offset, limit=lookup.count, token=token
        )
        if lookup.count
        else []
    )
    if not views:  # none, or the token was revoked since it was resolved: which?
        token_admitted(session)
    total = len(views)
    if offset or total == lookup.count:  # a short first page counts itself (as the engine)
        total = count_views(session, actor, lookup.key, lookup.value)
    body = {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": lookup.start,
        "itemsPerPage": len(views),
        "Resources": [published(service, request.base_url, view) for view in views],
    }
    return ScimResponse(HTTPStatus.OK, body)


def admitted(session: Session, connection_id: str | None = None) -> Connection | None:
    """Refuse the request if its token was revoked since it was resolved (cached a few
    seconds, :mod:`scim.tokens`): one indexed read in the request's own transaction, so a
    rotation by any process (the CLI, another worker) counts on the very next request.

    With ``connection_id`` (a create: the connection owns the new user), that connection is
    read by the same statement and returned (:func:`server.domain.connections.
    live_connection`); None when the request carries no token.

    :raises UnauthorizedException: the token is no longer live.
    """
    digest = current_token.get()
    if digest is None:
        return None
    if connection_id is None:
        token_admitted(session)
        return None
    connection = live_connection(session, connection_id, digest)
    if connection is None:
        raise UnauthorizedException(detail=REVOKED)
    return connection


def token_admitted(reader: Reader) -> None:
    """:func:`admitted` without a connection to read, also on a read-only Core connection
    (a lookup's).

    :raises UnauthorizedException: the token is no longer live."""
    digest = current_token.get()
    if digest is not None and not token_is_live(reader, digest):
        raise UnauthorizedException(detail=REVOKED)


def user_response(
    service: ScimService, base_url: str, user: UserView, status: HTTPStatus = HTTPStatus.OK
) -> ScimResponse:
    """The answer carrying one user, with the headers the engine gives it (RFC 7643 §3.1:
    ``Content-Location`` is ``meta.location``; the ETag its version; a 201 its ``Location``,
    RFC 7644 §3.3): a read by id, and the answer to a create or a PATCH of the user
    (:mod:`scim.handler`)."""
    body = published(service, base_url, user)
    location = body["meta"]["location"]
    headers = {"Content-Location": location, "ETag": body["meta"]["version"]}
    if status == HTTPStatus.CREATED:
        headers["Location"] = location
    return ScimResponse(status, body, headers)


class Versioned(Protocol):
    """What a resource's ``meta`` is made of (a user's view, a group)."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def updated_at(self) -> datetime: ...

    @property
    def version(self) -> int: ...


def published_meta(
    service: ScimService, base_url: str, resource_type: str, resource: Versioned
) -> dict[str, str]:
    """A resource's ``meta`` as the engine publishes it: its type, times, location and
    version (a weak ETag)."""
    kind = service.get_resource_type(resource_type)
    return {
        "resourceType": resource_type,
        "created": timestamp(resource.created_at),
        "lastModified": timestamp(resource.updated_at),
        "location": service.resource_location(base_url, kind, resource.id),
        "version": f'W/"{resource.version}"',
    }


def published(service: ScimService, base_url: str, user: UserView) -> dict[str, Any]:
    """The user as the engine publishes it: id, meta with its location and version, and its
    references to other resources as URLs (``ScimService.publish``)."""
    doc = user_json(user)
    meta = published_meta(service, base_url, "User", user)
    for group in doc.get("groups") or []:
        group["$ref"] = service.reference_location(base_url, group["$ref"])
    enterprise = doc.get(ENTERPRISE_USER) or {}
    manager = enterprise.get("manager") or {}
    if manager.get("$ref"):
        reference = service.reference_location(base_url, manager["$ref"])
        doc[ENTERPRISE_USER] = {**enterprise, "manager": {**manager, "$ref": reference}}
    return {"id": user.id, **doc, "meta": meta}


def timestamp(moment: datetime) -> str:
    """A dateTime as pydantic writes it (RFC 7643 §2.3.5: xsd:dateTime, UTC as ``Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(query: Any, name: str, default: int | None) -> int | None:
    if name not in query:
        return default
    text = query[name]
    return int(text) if text.isascii() and text.isdigit() else None


def _conditional(request: ScimRequest) -> bool:
    """Whether the request has a conditional header: one pass over its headers (asking for
    each of the four by name walked them four times, issue 15)."""
    headers = request.headers
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return any(name.lower() in CONDITIONAL for name, _ in pairs)
