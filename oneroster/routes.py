"""The HTTP edge of OneRoster: routes for both versions, paging headers, status reports.

``/ims/oneroster/v1p1/...`` and ``/ims/oneroster/rostering/v1p2/...`` serve the same reads in
each version's shapes; ``/ims/oneroster/openapi.json`` describes them. Each request is one unit
of work: authenticate, check the scope, read, render, in a worker thread. Everything below this
module takes plain values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, request_response

from oneroster import openapi, pushes
from oneroster.auth import Credentials, authenticate, ensure_scope
from oneroster.errors import (
    INVALID_DATA,
    UNAUTHORISED,
    StatusError,
    from_domain_error,
    not_found,
    status_info,
)
from oneroster.query import parse_query
from oneroster.read_endpoints import (
    COLLECTIONS,
    FULL,
    NESTED,
    PREFIXES,
    SCHOOL_CLASS_NESTED,
    Collection,
    ListResult,
    find_parent,
    read_collection,
    read_object,
    reader_scope,
    required_scopes,
)
from server import wirejson
from server.auth import ConnectionAuthMiddleware, actor_of
from server.context import AppContext
from server.domain.oauth1 import consumer_box
from server.domain.roster_reads import ReadScope, record_read
from server.errors import DomainError

log = logging.getLogger("rollcall.oneroster")

Work = Callable[[Session, ReadScope, str], Any]


class OneRosterAPI:
    """Both versions of the Rostering read service over one database."""

    def __init__(self, context: AppContext) -> None:
        self.database = context.database
        self.max_limit = context.settings.oneroster_max_limit
        self.box = consumer_box(context.settings.secret_keys)
        self.issuer = context.settings.issuer

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/ims/oneroster/openapi.json", self.describe, methods=["GET"])
        ]
        for version, prefix in PREFIXES.items():
            for collection in COLLECTIONS.values():
                routes.append(self._list_route(version, f"{prefix}/{collection.name}", collection))
                routes.append(
                    Route(
                        f"{prefix}/{collection.name}/{{sourced_id}}",
                        self._object_endpoint(version, collection),
                        methods=["GET"],
                    )
                )
            for nested in NESTED:
                path = f"{prefix}/{nested.parent}/{{parent_id}}/{nested.child}"
                routes.append(Route(path, self._nested_endpoint(version, nested), methods=["GET"]))
            for child in SCHOOL_CLASS_NESTED:
                path = f"{prefix}/schools/{{school_id}}/classes/{{class_id}}/{child}"
                routes.append(
                    Route(path, self._school_class_endpoint(version, child), methods=["GET"])
                )
        for name in pushes.WRITABLE:
            routes.append(self._push_route(name))
        routes.append(Route("/ims/oneroster/{rest:path}", self.unknown, methods=None))
        return routes

    async def describe(self, request: Request) -> Response:
        return JSONResponse(openapi.document(_origin(request)))

    async def unknown(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _status_response(StatusError(405, "invaliddata", "Method not allowed."))
        return _status_response(not_found("No such OneRoster endpoint."))

    def _list_route(self, version: str, path: str, collection: Collection) -> Route:
        async def endpoint(request: Request) -> Response:
            def work(session: Session, scope: ReadScope, base: str) -> ListResult:
                query = parse_query(request.query_params, self.max_limit)
                return read_collection(session, scope, version, base, collection, query)

            return await self._serve(request, version, collection.scopes, work, collection.kind)

        return Route(path, endpoint, methods=["GET"])

    def _object_endpoint(self, version: str, collection: Collection) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            sourced_id = request.path_params["sourced_id"]

            def work(session: Session, scope: ReadScope, base: str) -> dict[str, Any]:
                fields = parse_query(request.query_params, self.max_limit).fields
                return read_object(session, scope, version, base, collection, sourced_id, fields)

            return await self._serve(request, version, collection.scopes, work, collection.kind)

        return endpoint

    def _nested_endpoint(self, version: str, nested: Any) -> Callable[..., Any]:
        parent, child = COLLECTIONS[nested.parent], COLLECTIONS[nested.child]

        async def endpoint(request: Request) -> Response:
            parent_id = request.path_params["parent_id"]

            def work(session: Session, scope: ReadScope, base: str) -> ListResult:
                query = parse_query(request.query_params, self.max_limit)
                record = find_parent(session, scope, parent, parent_id)
                link = nested.link(record)
                return read_collection(session, scope, version, base, child, query, link)

            return await self._serve(request, version, (FULL,), work, child.kind)

        return endpoint

    def _school_class_endpoint(self, version: str, child_name: str) -> Callable[..., Any]:
        schools, classes = COLLECTIONS["schools"], COLLECTIONS["classes"]
        child = COLLECTIONS[child_name]

        async def endpoint(request: Request) -> Response:
            school_id = request.path_params["school_id"]
            class_id = request.path_params["class_id"]

            def work(session: Session, scope: ReadScope, base: str) -> ListResult:
                query = parse_query(request.query_params, self.max_limit)
                school = find_parent(session, scope, schools, school_id)
                klass = find_parent(session, scope, classes, class_id)
                if klass.school_id != school.id:
                    raise not_found(f"No class {class_id!r} at school {school_id!r}.")
                link = SCHOOL_CLASS_NESTED[child_name](klass)
                return read_collection(session, scope, version, base, child, query, link)

            return await self._serve(request, version, (FULL,), work, child.kind)

        return endpoint

    async def _serve(
        self, request: Request, version: str, scopes: tuple[str, ...], work: Work, kind: str
    ) -> Response:
        """Authenticate, check the scope, run ``work`` and render it; a read of ``kind`` that
        serves personal data is audited once (:func:`server.domain.roster_reads.record_read`)."""
        credentials = Credentials(
            method=request.method,
            url=f"{request.url.scheme}://{request.url.netloc}{request.url.path}",
            query=list(request.query_params.multi_items()),
            authorization=request.headers.get("authorization", ""),
            public_url=self.issuer + request.url.path,
        )
        base = _origin(request) + PREFIXES[version]
        accepted = required_scopes(version, scopes)

        def run() -> Any:
            with self.database.session() as session:
                grant = authenticate(
                    session, credentials, allow_oauth1=version == "v1p1", box=self.box
                )
                ensure_scope(grant, accepted)
                scope = reader_scope(grant, version)
                result = work(session, scope, base)
                count = _records(result)
                url = _unsigned(request)
                asked = f"GET {url.path}" + (f"?{url.query}" if url.query else "")
                record_read(session, scope, kind, asked, count)
                if isinstance(result, ListResult):
                    return _page_response(request, result)
                return JSONResponse(result)

        return await _answer(run)

    def _push_route(self, collection_name: str) -> Route:
        """``PUT``/``DELETE`` of one record by a connection (see :mod:`oneroster.pushes`)."""
        prefix = PREFIXES["v1p2"]

        async def endpoint(request: Request) -> Response:
            actor = actor_of(request)
            sourced_id = request.path_params["sourced_id"]
            base = _origin(request) + prefix
            payload: Any = None
            if request.method == "PUT":
                try:
                    payload = wirejson.loads(await request.body())
                except ValueError as error:
                    return _status_response(
                        StatusError(400, INVALID_DATA, f"The body is not JSON: {error}")
                    )

            def run() -> Response:
                with self.database.session() as session:
                    if request.method == "DELETE":
                        pushes.mark_tobedeleted(session, actor, collection_name, sourced_id)
                        return Response(status_code=204)
                    result = pushes.upsert(
                        session, actor, collection_name, sourced_id, payload, base
                    )
                    return JSONResponse(result.body, 201 if result.created else 200)

            return await _answer(run)

        guarded = ConnectionAuthMiddleware(
            request_response(endpoint),
            self.database,
            lambda status, detail: _status_response(StatusError(status, UNAUTHORISED, detail)),
        )
        return Route(
            f"{prefix}/{collection_name}/{{sourced_id}}", guarded, methods=["PUT", "DELETE"]
        )


async def _answer(run: Callable[[], Response]) -> Response:
    """Run a unit of work in a worker thread; refusals become status reports, never a 500."""
    try:
        return await run_in_threadpool(run)
    except StatusError as error:
        return _status_response(error)
    except DomainError as error:
        return _status_response(from_domain_error(error))
    except DataError:
        # A value the database cannot hold at all (a NUL character on PostgreSQL, say).
        return _status_response(
            StatusError(400, INVALID_DATA, "A value in the request is invalid.")
        )
    except OperationalError:
        # A busy or unreachable database arrives as DatabaseUnavailable (a 503 from
        # server/unavailable.py); what is left is a query the database cannot run at all
        # (too many terms, say): retrying would not help.
        log.warning("the database refused a OneRoster query", exc_info=True)
        return _status_response(
            StatusError(400, INVALID_DATA, "The request is too complex for the database.")
        )


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


def _status_response(error: StatusError) -> JSONResponse:
    response = JSONResponse(status_info(error.code_minor, error.description), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="oneroster"'
    return response


def _unsigned(request: Request) -> Any:
    """The request's URL without OAuth 1.0a signature parameters."""
    return request.url.remove_query_params(
        [key for key in request.query_params if key.startswith("oauth_")]
    )


def _records(result: ListResult | dict[str, Any]) -> int:
    """How many objects a read answered: the page's length, or 1 for a single object."""
    if isinstance(result, ListResult):
        return sum(len(v) for v in result.body.values() if isinstance(v, list))
    return 1


def _page_response(request: Request, result: ListResult) -> JSONResponse:
    """The page with ``X-Total-Count`` and a ``Link`` header (first, prev, next, last)."""
    url = _unsigned(request)
    limit, offset, total = result.limit, result.offset, result.total
    last = max(0, (total - 1) // limit * limit) if total else 0
    links = {"first": 0, "last": last}
    if offset + limit < total:
        links["next"] = offset + limit
    if offset > 0:
        links["prev"] = max(0, min(offset - limit, last))
    header = ", ".join(
        f'<{url.include_query_params(limit=limit, offset=at)}>; rel="{rel}"'
        for rel, at in links.items()
    )
    return JSONResponse(result.body, headers={"X-Total-Count": str(total), "Link": header})
