"""The SCIM 2.0 endpoint (RFC 7644) mounted at ``/scim``: scim2-server over Rollcall's storage.

scim2-server 0.8.3 (pinned) does the protocol work; this module adapts it where Rollcall needs
something else, each time by overriding one of its hooks:

- the storage is synchronous SQLAlchemy, so the *sync* handler runs in a worker thread with one
  unit of work per request (commit on success, rollback on error) and a savepoint per operation
  (``RollcallStorage.operation``); ``ASGIApplication`` would run an async handler instead;
- the storage never sees the request, so :class:`ScimEndpoint` resolves the bearer token to
  the connection (kept a few seconds, :mod:`scim.tokens`) and sets the acting Actor and the
  session in context variables;
- the tolerance profile (strict, ``entra``, ``okta``, ``google``) is a ``ScimPolicy`` on the
  provider, so each profile has its own application and :class:`ScimEndpoint` picks one per
  request from the connection's ``profile``;
- a member removal by value list matches members by ``value`` alone (:mod:`scim.members`);
- a successful PATCH answers 200 with the resource (the library answers 204), and 204 only to
  a client that asks for no body with ``Prefer: return=minimal``;
- a busy or unreachable database answers 503 (with ``Retry-After``), and inside a Bulk request
  that operation's own ``status: "503"``;
- ``/Me`` answers 501 with a SCIM error: a provisioning token has no user principal;
- any request body over :data:`MAX_BODY_SIZE` answers 413 (the library limits Bulk only);
- only a 201 carries ``Location`` (the library puts the request URL on every answer).

Mounted at ``/scim``: the library appends ``/v2`` itself, so URLs are ``/scim/v2/Users``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from http import HTTPStatus
from typing import Any, Union

import anyio.to_thread
from scim2_models import (
    BulkRequest,
    BulkResponse,
    Context,
    Error,
    ListResponse,
    NotImplementedException,
    PatchOp,
    PayloadTooLargeException,
    Resource,
    ResourceType,
    ResponseParameters,
    Schema,
    ScimProvider,
    SearchRequest,
    UnauthorizedException,
)
from scim2_server import routing
from scim2_server.applications.asgi import ASGIApplication, Receive, Scope, Send
from scim2_server.applications.base import BaseApplication
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Target
from scim2_server.service import ScimService
from sqlalchemy.orm import Session

from scim import lookups
from scim.context import current_actor, current_session, current_token
from scim.handler import PatchService, RollcallHandler
from scim.listing import IndexNeedsWrite
from scim.schemas import EDUCATION_GROUP, EDUCATION_USER, PROFILES, make_provider
from scim.storage import RollcallStorage
from scim.tokens import TokenCache
from server.auth import ACTOR_KEY
from server.context import AppContext
from server.db import AcademicSession, Course, Org
from server.db.session import Database
from server.domain import provider_attributes, roster_views
from server.domain.actors import Actor, connection_actor
from server.domain.connections import authenticate_token
from server.domain.secrets import token_digest
from server.errors import DatabaseUnavailable
from server.unavailable import MESSAGE, busy_or_unreachable, scim_unavailable

MAX_BODY_SIZE = 1024 * 1024
log = logging.getLogger("rollcall.scim")


class RollcallService(PatchService):
    """scim2-server's service with Rollcall's answers to PATCH, /Me and body sizes."""

    def __init__(self, provider: ScimProvider, secret: str) -> None:
        super().__init__(provider, secret=secret)
        self.generic_classes = generic_classes(self.get_models())

    def patch_response(
        self,
        base_url: str,
        resource: Resource[Any],
        response_parameters: ResponseParameters[Any],
    ) -> ScimResponse:
        # Identity providers (Entra, Okta) expect the resource back; RFC 7644 §3.5.2 allows it.
        return self.resource_response(
            self.publish(base_url, resource),
            Context.RESOURCE_REPLACEMENT_RESPONSE,
            response_parameters,
        )

    def publish(self, base_url: str, resource: Resource[Any]) -> Resource[Any]:
        """The resource as sent to the client, changed in place: the library deep-copies it
        first (its in-memory storage keeps the object it would change), but Rollcall's storage
        builds a new resource for every answer and keeps none, and the copy of a group of
        5,000 members cost more than the rest of the publishing."""
        assert resource.meta is not None and resource.id is not None
        resource_type = self.get_resource_type_of(resource)
        update: dict[str, Any] = {
            "location": self.resource_location(base_url, resource_type, resource.id)
        }
        if not self.etag_supported:
            update["version"] = None
        resource.meta = resource.meta.model_copy(update=update)
        self._publish_references(base_url, resource)
        return resource

    def me_target(self, request: ScimRequest) -> tuple[ResourceType, str]:
        raise NotImplementedException(
            detail="/Me is not available: a provisioning token stands for a connection, "
            "not for a user."
        )

    def schemas(self, location: str, query: Mapping[str, str]) -> ScimResponse:
        response = super().schemas(location, query)
        body = response.body or {}
        _add_district_values(body.get("Resources") or [])
        _only_kept_attributes(body.get("Resources") or [])
        unused = _unused_extensions()
        offered = [s for s in body.get("Resources") or [] if s.get("id") not in unused]
        body["Resources"] = offered
        body["totalResults"] = body["itemsPerPage"] = len(offered)
        return response

    def resource_types(self, location: str, query: Mapping[str, str]) -> ScimResponse:
        response = super().resource_types(location, query)
        _offer_kept_extensions((response.body or {}).get("Resources") or [])
        return response

    def resource_type(
        self, location: str, resource_type_id: str, query: Mapping[str, str]
    ) -> ScimResponse:
        response = super().resource_type(location, resource_type_id, query)
        _offer_kept_extensions([response.body or {}])
        return response

    def schema(self, location: str, schema_id: str, query: Mapping[str, str]) -> ScimResponse:
        response = super().schema(location, schema_id, query)
        _add_district_values([response.body or {}])
        _only_kept_attributes([response.body or {}])
        return response

    @staticmethod
    def error_of(exception: Exception) -> Error:
        """A busy or unreachable database is a 503, also for one operation of a Bulk request
        (RFC 7644 §3.7.3: each operation has its own status, and ``failOnErrors`` counts it)."""
        if busy_or_unreachable(exception):
            return Error(status=503, detail=MESSAGE)
        return ScimService.error_of(exception)

    def match(self, request: ScimRequest) -> Target:  # type: ignore[override]
        """The target of a request (``ScimService.match``), worked out once per method and
        path: scim2-server asks for it up to four times per request (the size of its body, its
        authentication, the handler, the operation), walking its route table each time."""
        return _target(request.method.upper(), request.path)

    def max_body_size(self, request: ScimRequest) -> int | None:
        if request.method.upper() == "GET":
            # never a Bulk request: skip routing it (done twice per request: ~5% of a lookup)
            return MAX_BODY_SIZE
        limit = super().max_body_size(request)
        return MAX_BODY_SIZE if limit is None else limit


@lru_cache(maxsize=4096)
def _target(method: str, path: str) -> Target:
    """:func:`scim2_server.routing.match`, kept for the paths in use (the engine asks up to
    four times per request), and worked out once per method and shape of path.

    A path that names a resource (``/Users/{id}``) can only match the resource route of its
    method, so its target is that of its endpoint, given the id: the route table is walked
    once per endpoint, not for each new user (each of 20,000 users' paths missed the cache
    by path). An unknown path raises each time.

    >>> _target("PATCH", "/Users/2819c223").resource_id
    '2819c223'
    """
    segments = path.strip("/").split("/")
    if len(segments) == 2 and _names_a_resource(*segments):
        endpoint, resource_id = segments
        return replace(_resource_target(method, endpoint), resource_id=resource_id)
    return routing.match(method, path)


def _names_a_resource(endpoint: str, resource_id: str) -> bool:
    """Whether ``/endpoint/resource_id`` can only match ``/{endpoint}/{resource_id}``."""
    literal = endpoint in routing.RESERVED_NAMES or ".search" in (endpoint, resource_id)
    return bool(endpoint and resource_id) and not literal


@lru_cache(maxsize=256)
def _resource_target(method: str, endpoint: str) -> Target:
    return routing.match(method, f"/{endpoint}/id")


def generic_classes(models: list[type[Resource[Any]]]) -> list[type[Any]]:
    """The pydantic classes the service parametrises per request, built once at start-up.

    scim2-server writes ``ListResponse[Union[User, Group]]``, ``SearchRequest[User]``,
    ``PatchOp[User]``… on every request. Pydantic caches a parametrised class only while
    something else holds it (a weak-value cache), so without these references the class was
    rebuilt, milliseconds each, whenever the garbage collector had run since the last request.
    """
    every: Any = Union[tuple(models)]  # noqa: UP007 (a runtime Union of a list of models)
    generic: list[Any] = [ListResponse, SearchRequest, BulkRequest, BulkResponse]
    built: list[type[Any]] = [cls[every] for cls in generic]
    built += [ListResponse[ResourceType], ListResponse[Schema]]
    per_model: list[Any] = [SearchRequest, ResponseParameters, PatchOp]
    for model in models:
        built += [cls[model] for cls in per_model]
    return built


def _add_district_values(schemas: list[dict[str, Any]]) -> None:
    """List the district's school, course and term sourcedIds as the canonicalValues of the
    education extensions' references, so an IdP engineer (and scim2-tester) sees valid ones."""
    session, actor = current_session.get(None), current_actor.get(None)
    if session is None or actor is None:
        return
    values = {
        "school": roster_views.list_sourced_ids(session, Org, actor.tenant_id),
        "course": roster_views.list_sourced_ids(session, Course, actor.tenant_id),
        "terms": roster_views.list_sourced_ids(session, AcademicSession, actor.tenant_id),
    }
    for schema in schemas:
        if schema.get("id") not in (EDUCATION_USER, EDUCATION_GROUP):
            continue
        for attribute in schema.get("attributes") or []:
            targets = [attribute, *(attribute.get("subAttributes") or [])]
            for target in targets:
                if target.get("name") in values and values[target["name"]]:
                    target["canonicalValues"] = values[target["name"]]


_RESOURCE_OF_SCHEMA = {
    "urn:ietf:params:scim:schemas:core:2.0:User": "User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": "User",
    EDUCATION_USER: "User",
    "urn:ietf:params:scim:schemas:core:2.0:Group": "Group",
    EDUCATION_GROUP: "Group",
}


def _allowed() -> frozenset[str]:
    session, actor = current_session.get(None), current_actor.get(None)
    if session is None or actor is None:
        return frozenset()
    return provider_attributes.allowed_paths(session, actor.tenant_id)


def _unused_extensions() -> set[str]:
    """The extensions of which the district keeps nothing (the enterprise one, by default)."""
    allowed = _allowed()
    return {
        urn
        for urn, resource in _RESOURCE_OF_SCHEMA.items()
        if ":core:" not in urn and not provider_attributes.keeps_extension(urn, resource, allowed)
    }


def _offer_kept_extensions(resource_types: list[dict[str, Any]]) -> None:
    """A resource type offers only the extensions of which something is kept."""
    unused = _unused_extensions()
    for resource_type in resource_types:
        extensions = resource_type.get("schemaExtensions") or []
        resource_type["schemaExtensions"] = [e for e in extensions if e.get("schema") not in unused]


def _only_kept_attributes(schemas: list[dict[str, Any]]) -> None:
    """List only the attributes the district keeps (:mod:`server.domain.provider_attributes`):
    a client (and scim2-tester) then sends only what is stored and returned."""
    allowed = _allowed()
    for schema in schemas:
        resource = _RESOURCE_OF_SCHEMA.get(str(schema.get("id")))
        if resource is not None:
            provider_attributes.kept_schema_attributes(schema, resource, allowed)


class ScimApplication(ASGIApplication):
    """One SCIM application (one tolerance profile) over the database."""

    def __init__(self, context: AppContext, profile: str | None) -> None:
        provider = make_provider(profile)
        service = RollcallService(provider, secret=context.settings.secret_key)
        # Skip ASGIApplication.__init__: it would build an async handler over an async storage.
        BaseApplication.__init__(self, provider, service)
        self.database = context.database
        storage = RollcallStorage(provider, context.box)
        # the base class declares the async storage and handler; this application is sync
        self.storage = storage  # type: ignore[assignment]
        self.sync_handler = RollcallHandler(service, storage, self._unit_of_work)
        self.handler = self.sync_handler  # type: ignore[assignment]

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        actor = current_actor.get(None)
        if actor is None and self.needs_auth(request):
            raise UnauthorizedException(detail="A valid connection bearer token is required.")
        if request.body is not None and len(request.body) > (
            self.service.max_body_size(request) or MAX_BODY_SIZE
        ):
            raise PayloadTooLargeException(
                detail=f"The request body exceeds {MAX_BODY_SIZE} bytes."
            )
        request.subject = actor
        # Lookups stay in the worker threads, also on SQLite: answered on the event loop's
        # thread they had a lower p99 in process (client and server sharing the GIL), but
        # over HTTP at load 15 the server used one core instead of overlapping SQLite's C
        # work with the loop: 74 -> 28 req/s, p99 0.65 -> 3.1 s (issue 15, scimread).
        return await anyio.to_thread.run_sync(self._serve_in_unit_of_work, request)

    def _look_up(self, request: ScimRequest, lookup: lookups.Lookup) -> ScimResponse | None:
        """A lookup (:mod:`scim.lookups`) answered without the engine, on a read-only Core
        connection: one SELECT, no ORM session (issue 15)."""
        with self.database.read_connection() as connection:
            return lookups.answer(self.service, connection, request.subject, request, lookup)

    def _serve_in_unit_of_work(self, request: ScimRequest) -> ScimResponse:
        """One unit of work; a GET reads without the write lock (it never waits for a writer),
        unless the search must first re-index records a staff change marked stale. A lookup
        is answered without the engine, unless it found nothing by id."""
        lookup = lookups.lookup_of(request) if request.subject is not None else None
        if lookup is not None:
            answered = self._look_up(request, lookup)
            if answered is not None:
                return answered
        if request.method == "GET":
            try:
                return self._serve(request, read_only=True)
            except IndexNeedsWrite:
                pass
        # a write: the handler opens the write unit of work around its storage steps only
        return self.sync_handler.handle(request)

    def _serve(self, request: ScimRequest, *, read_only: bool) -> ScimResponse:
        with self._unit_of_work(read_only=read_only):
            return ScimHandler.handle(self.sync_handler, request)

    @contextmanager
    def _unit_of_work(
        self, *, read_only: bool = False, admitted: bool = False
    ) -> Iterator[Session]:
        """A unit of work of the database, as the storage's session (:mod:`scim.context`),
        that first checks the request's token is live (unless ``admitted`` already)."""
        with self.database.session(read_only=read_only) as session:
            if not admitted:
                lookups.admitted(session)
            token = current_session.set(session)
            try:
                yield session
            finally:
                current_session.reset(token)

    def finalize_response(self, request: ScimRequest, response: ScimResponse) -> ScimResponse:
        # A client that asks for no body (RFC 7240 "Prefer: return=minimal") gets 204 to a PATCH.
        if (
            request.method == "PATCH"
            and response.status == HTTPStatus.OK
            and "return=minimal" in _preferences(request)
        ):
            response = ScimResponse(HTTPStatus.NO_CONTENT, None, dict(response.headers))
        response = super().finalize_response(request, response)
        # The library sets Location on every answer; only a 201 names a created resource
        # (RFC 7644 §3.3, RFC 9110 §10.2.2), so any other answer, errors first, carries none.
        if response.status != HTTPStatus.CREATED:
            response.headers.pop("Location", None)
        return response

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        if isinstance(exception, DatabaseUnavailable):
            log.warning("answered 503: database unavailable", extra={"reason": exception.reason})
            headers = {"Retry-After": str(exception.retry_after)}
            return ScimResponse(HTTPStatus.SERVICE_UNAVAILABLE, scim_unavailable(), headers)
        response = super().handle_exception(request, exception)
        if response.status == HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Bearer realm="rollcall"'
        return response


class ScimEndpoint:
    """The ASGI app mounted at ``/scim``: authenticates, then serves with the profile's app."""

    def __init__(self, context: AppContext) -> None:
        self.database: Database = context.database
        self.apps = {profile: ScimApplication(context, profile) for profile in PROFILES}
        self.tokens: TokenCache[tuple[Actor, str | None]] = TokenCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.apps[None](scope, receive, send)
            return
        token = _bearer_token(scope)
        resolved = await self._resolved(token) if token else None
        actor, profile = resolved if resolved else (None, None)
        reset = current_actor.set(actor)  # type: ignore[arg-type]
        checked = current_token.set(token_digest(token) if actor is not None and token else None)
        if actor is not None:
            scope[ACTOR_KEY] = actor  # so failures this connection causes are recorded for it
        try:
            await self.apps.get(profile, self.apps[None])(scope, receive, send)
        finally:
            current_token.reset(checked)
            current_actor.reset(reset)

    async def _resolved(self, token: str) -> tuple[Actor, str | None] | None:
        """The connection's actor and profile, from the cache or the database."""
        resolved = self.tokens.get(token)
        if resolved is None:  # resolved once for all the requests in flight with it
            resolved = await anyio.to_thread.run_sync(self.tokens.resolve, token, self._resolve)
        return resolved

    def _resolve(self, token: str) -> tuple[Actor, str | None] | None:
        """Read what a token stands for, without the write lock: every request whose token
        fell out of the cache waited for a turn at it, behind the writes (issue 15)."""
        with self.database.session(read_only=True) as session:
            connection = authenticate_token(session, token)
            if connection is None:
                return None
            return connection_actor(connection), connection.profile


def _preferences(request: ScimRequest) -> list[str]:
    """The request's ``Prefer`` preferences (RFC 7240), lowercase, without spaces."""
    return (request.header("Prefer") or "").replace(" ", "").lower().split(",")


def _bearer_token(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
