"""SCIM searches (RFC 7644 §3.4.2) of :class:`scim.storage.RollcallStorage`, run in SQL.

The filter (:mod:`scim.filters`) and the sort read the attribute index; pages are
``LIMIT``/``OFFSET`` (§3.4.2.4) or keyset cursors (RFC 9865) over ``(sort value, id)``
(:mod:`scim.cursors`). What a connection may see is :func:`server.domain.access.
visible_records`, as for every read. Records a change outside SCIM left stale in the index
are indexed again first (:func:`refresh_stale_index`).
"""

from __future__ import annotations

from typing import Any, Protocol

from scim2_models import Resource, ResourceType, ScimFilter, ScimProvider, SearchRequest
from scim2_server.storage import SearchPage
from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session, lazyload

from scim import cursors
from scim.filters import FilterTranslator, sort_expression, typed_null
from server.db import Group, RecordStatus, SchoolClass, User
from server.db.session import READ_ONLY
from server.domain import access, groups, scim_index
from server.domain.actors import Actor
from server.domain.search import page_offset

# A SCIM representation never shows a credential: read it only if a write asks for it.
READ_USER = (lazyload(User.credential),)


class IndexNeedsWrite(Exception):
    """A read-only search found records to re-index first: serve it again in a write."""


class Storage(Protocol):
    """What a search needs of :class:`scim.storage.RollcallStorage`: its request's session and
    actor, and how it makes (and indexes) the resource of a record."""

    provider: ScimProvider

    @property
    def session(self) -> Session: ...

    @property
    def actor(self) -> Actor: ...

    def model_of(self, resource_type: ResourceType) -> type[Resource[Any]]: ...

    def resource_of(
        self, resource_type: ResourceType, record: Any, memberships: Any = None
    ) -> Resource[Any]: ...

    def stored(
        self, resource_type: ResourceType, record: Any, *, fresh: bool = False
    ) -> Resource[Any]: ...


def search(
    storage: Storage,
    resource_types: list[ResourceType],
    search_request: SearchRequest[Any],
    *,
    position: Any = None,
) -> SearchPage:
    """The page of ``resource_types`` a search asks for (``position``: a decoded cursor)."""
    session, actor = storage.session, storage.actor
    refresh_stale_index(storage)
    dialect = session.get_bind().dialect.name
    parts = []
    sort_kind = None
    for resource_type in resource_types:
        model = storage.model_of(resource_type)
        tables = (User,) if resource_type.name == "User" else (Group, SchoolClass)
        binding = search_request.sort_binding(model) if search_request.sort_by else None
        for table in tables:
            value, kind = sort_expression(
                binding, table, actor.tenant_id, str(resource_type.name), dialect
            )
            parts.append((resource_type, table, model, value, kind))
            if binding is not None:
                sort_kind = sort_kind or kind
    selects = []
    for resource_type, table, model, value, kind in parts:
        if (search_request.sort_by and value is None) or (kind != sort_kind and sort_kind):
            value = typed_null(sort_kind or "text") if kind != "column" else value
        where = [access.visible_records(actor, table)]
        if search_request.filter is not None:
            scim_filter = ScimFilter[model](search_request.filter.ast)  # type: ignore[valid-type]
            memberships = groups.membership_rows(actor).subquery() if table is User else None
            where.append(
                FilterTranslator(
                    scim_filter,
                    table,
                    actor.tenant_id,
                    str(resource_type.name),
                    dialect,
                    memberships=memberships,
                ).visit(scim_filter.ast)
            )
        selects.append(
            select(
                literal(resource_type.name).label("rt"),
                literal(table.__tablename__).label("tbl"),
                table.id.label("id"),
                value.label("sv"),
            ).where(*where)
        )
    found = union_all(*selects).subquery() if len(selects) > 1 else selects[0].subquery()
    descending = (
        search_request.sort_by is not None
        and search_request.sort_order == SearchRequest.SortOrder.descending
    )
    missing = found.c.sv.is_(None)
    order = [missing, found.c.sv, found.c.id]
    statement = select(found.c.rt, found.c.tbl, found.c.id, found.c.sv)
    if search_request.cursor is None:
        return _index_page(storage, statement, order, descending, search_request)
    total = scim_index.count(session, statement)
    return _cursor_page(
        storage, statement, found, order, descending, search_request, position, total
    )


def _index_page(
    storage: Storage,
    statement: Any,
    order: list[Any],
    descending: bool,
    search_request: SearchRequest[Any],
) -> SearchPage:
    """A ``startIndex``/``count`` page (RFC 7644 §3.4.2.4), counted only when the page does
    not tell the total itself: a lookup's short first page holds every match."""
    session = storage.session
    # RFC 7644 §3.4.2.4: a startIndex past the results gives an empty page
    start = page_offset(search_request.start_index_0 or 0)
    page = statement.order_by(*[c.desc() if descending else c for c in order]).offset(start)
    if search_request.count is not None:
        page = page.limit(search_request.count)
    rows = scim_index.fetch(session, page) if search_request.count != 0 else []
    short = search_request.count is None or len(rows) < search_request.count
    if start == 0 and short and search_request.count != 0:
        total = len(rows)
    else:
        total = scim_index.count(session, statement)
    return SearchPage(total, _load(storage, rows))


def _cursor_page(
    storage: Storage,
    statement: Any,
    found: Any,
    order: list[Any],
    descending: bool,
    search_request: SearchRequest[Any],
    position: Any,
    total: int,
) -> SearchPage:
    """A page of a cursored search (RFC 9865), read forwards or backwards from its anchor."""
    count = search_request.count
    if count == 0:
        return SearchPage(total, [])
    direction, anchor = cursors.read_position(position)
    forward = direction == "next"
    # Walking forward in a descending sort, or backward in an ascending one, reads the key
    # downwards.
    downwards = descending == forward
    if anchor is not None:
        statement = statement.where(cursors.beyond(found, anchor, downwards))
    statement = statement.order_by(*[c.desc() if downwards else c for c in order])
    if count is not None:
        statement = statement.limit(count + 1)
    rows = scim_index.fetch(storage.session, statement)
    more = count is not None and len(rows) > count
    rows = rows[:count] if count is not None else rows
    if not forward:
        rows.reverse()
    page = SearchPage(total, _load(storage, rows))
    if rows:
        after_last = more if forward else anchor is not None
        before_first = anchor is not None if forward else more
        if after_last:
            page.next = cursors.position("next", rows[-1])
        if before_first:
            page.previous = cursors.position("previous", rows[0])
    return page


def refresh_stale_index(storage: Storage) -> None:
    """Re-index the records a change outside SCIM marked stale (staff overrides).

    :raises IndexNeedsWrite: there are some, and this unit of work may only read.
    """
    session = storage.session
    by_name = {rt.name: rt for rt in storage.provider.resource_types}
    stale = scim_index.stale_records(session, storage.actor.tenant_id)
    if stale and session.info.get(READ_ONLY):
        raise IndexNeedsWrite
    for type_name, record_id in stale:
        resource_type = by_name[type_name]
        record = (
            session.get(User, record_id)
            if type_name == "User"
            else (session.get(SchoolClass, record_id) or session.get(Group, record_id))
        )
        if record is None or record.status == RecordStatus.DELETED:
            scim_index.remove_values(session, record_id)
        else:
            storage.stored(resource_type, record)


def _load(storage: Storage, rows: list[Any]) -> list[Resource[Any]]:
    """The resources of a page: each table's records in one query (users with their roles
    and grades), the users' memberships in one more."""
    session = storage.session
    by_name = {rt.name: rt for rt in storage.provider.resource_types}
    models: dict[str, Any] = {"users": User, "groups": Group, "classes": SchoolClass}
    records: dict[str, Any] = {}
    for table, model in models.items():
        ids = [row.id for row in rows if row.tbl == table]
        if ids:
            options = READ_USER if model is User else ()
            query = select(model).where(model.id.in_(ids)).options(*options)
            records.update((record.id, record) for record in session.scalars(query))
    user_ids = [row.id for row in rows if row.tbl == "users"]
    memberships = groups.memberships(session, storage.actor, user_ids)
    return [
        storage.resource_of(by_name[row.rt], records[row.id], memberships.get(row.id))
        for row in rows
    ]
