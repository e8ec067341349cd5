"""Reading the roster for apps (OneRoster REST): what a client may see, one page at a time.

A reading client is bound to one tenant and may be limited to some schools
(:class:`ReadScope`). :func:`visible` is the SQL condition that applies both limits and hides
deleted records (deactivated ones stay visible: consumers must see leavers). The protocol layer
builds its own filter and sort expressions and runs them through :func:`read_page` and
:func:`read_one`, so every limit is applied in SQL, never after the fact.

Paging uses a deferred join: the page's ids are chosen on the narrow ``(tenant_id, sourced_id,
status)`` index first, then only those rows are loaded, so offset 99,900 of 100,000 users costs
an index walk rather than loading 100,000 rows.

Kept totals (issue 15): a page's total (``X-Total-Count``) is counted once per roster state
and kept in the process, keyed by the tenant and the exact count statement (the client's school
limit and the filter are in it). The roster state (:mod:`server.domain.roster_state`) moves
with every committed write to a counted table, so a kept total is never used after a change,
in this process or another one. With it the same walk keeps an anchor every
:data:`ANCHOR_STEP` rows of the sourcedId order: a deep page starts from the anchor before it
(``sourcedId > anchor``) and walks at most ``ANCHOR_STEP`` rows, not the whole offset. A
school-limited client's records follow no index's order: up to ``PROBE_ABOVE`` of them, their
ids in sourcedId order are kept instead and a page is a slice of them (:func:`_page_ids`).
What is kept is published only when the unit of work that counted commits.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    event,
    exists,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
)
from server.db.roster import SyncedRecord
from server.domain import audit
from server.domain.access import users_at_schools
from server.domain.actors import Actor
from server.domain.completeness import served_users
from server.domain.roster_state import roster_state, wrote_roster

Model = TypeVar("Model", bound="SyncedRecord | User")
READABLE_STATUSES = (RecordStatus.ACTIVE, RecordStatus.INACTIVE)


@dataclass(frozen=True)
class ReadScope:
    """What a reading client may see: one tenant, and only these schools when any are given
    (our internal org ids); ``client_id``/``client_name`` name the app in the audit log."""

    tenant_id: str
    school_ids: tuple[str, ...] = ()
    demographics: bool = False
    client_id: str | None = None
    client_name: str = "app"


PERSONAL_KINDS = frozenset({"user", "demographics"})


def may_read_metadata(scope: ReadScope, kind: str) -> bool:
    """A person's ``metadata`` (what a provider sent beyond the standard fields: a home
    address, a medical note) is served only to clients holding the demographics scope
    (issue 12, point 5); the metadata of orgs, classes and the like to every reader."""
    return scope.demographics or kind not in PERSONAL_KINDS


# What an app reads about people: each request for these is one audited read.
AUDITED_KINDS = frozenset({"user", "demographics", "enrollment"})


def record_read(session: Session, scope: ReadScope, kind: str, request: str, count: int) -> None:
    """Audit one app request that served personal data (issue 12, point 8): a ``read.oneroster``
    event naming the app, the request (``GET /…/demographics?limit=4``) and how many records it
    returned; one event per request, whatever the page size, and nothing for orgs, classes and
    the like.

    >>> record_read(session, scope, "demographics", "GET /ims/…/demographics", 100)
    """
    if kind not in AUDITED_KINDS:
        return
    app = Actor(scope.tenant_id, "client", scope.client_name, id=scope.client_id)
    audit.record(
        session,
        app,
        "read.oneroster",
        target_kind=kind,
        changes={"records": [None, count]},
        detail=request[:2000],
    )


def visible(scope: ReadScope, model: type[Any], *, per_row: bool = False) -> ColumnElement[bool]:
    """The WHERE condition for records of ``model`` that ``scope`` may read.

    ``per_row``: a school-limited client's users as a probe of each user's roles and
    enrollments (a correlated EXISTS) rather than the set of the schools' users. A walk of all
    of them (a count) wants the set; a page that walks a few hundred users in sourcedId order
    from an anchor wants the probe, since the set of 20 schools' users is the whole district.

    School-limited clients see their schools and the orgs above them, the sessions and courses
    of those orgs (or of classes there), the classes and enrollments there, and the users with a
    role or an enrollment there. Users without a role at a school and without an active
    enrollment are hidden from everyone (:mod:`server.domain.completeness`).
    """
    base = and_(model.tenant_id == scope.tenant_id, model.status.in_(READABLE_STATUSES))
    if model is User:
        base = and_(base, served_users())  # incomplete users are never served (completeness.py)
    if not scope.school_ids:
        return base
    schools = scope.school_ids
    above = select(Org.parent_id).where(Org.id.in_(schools), Org.parent_id.is_not(None))
    if model is Org:
        limit = or_(Org.id.in_(schools), Org.id.in_(above))
    elif model is AcademicSession:
        limit = or_(
            AcademicSession.org_id.is_(None),
            AcademicSession.org_id.in_(schools),
            AcademicSession.org_id.in_(above),
        )
    elif model is Course:
        limit = or_(
            Course.org_id.in_(schools),
            Course.org_id.in_(above),
            exists().where(SchoolClass.course_id == Course.id, SchoolClass.school_id.in_(schools)),
        )
    elif model is SchoolClass:
        limit = SchoolClass.school_id.in_(schools)
    elif model is Enrollment:
        limit = Enrollment.school_id.in_(schools)
    elif model is User:
        limit = users_at_schools(schools, per_row=per_row)
    else:
        limit = false()
    return and_(base, limit)


@dataclass(frozen=True)
class Page:
    """One page of records and how many match in all."""

    items: list[Any]
    total: int


ANCHOR_STEP = 500
# Up to this many visible records a school-limited client's sourcedId order is kept (its ids,
# :func:`_kept_order`); past it a page probes each user it walks instead of gathering the
# schools' users (:func:`visible`, ``per_row``).
PROBE_ABOVE = 10_000
KEPT_ENTRIES = 512
KEPT_IDS = 250_000  # ids kept over all entries (~25 MB); least recently used dropped first
_PENDING = "rostering_kept"


@dataclass
class _Kept:
    """A count statement's total at one roster state, and once asked, in each sourcedId order
    (descending or not): its anchors, ``anchors[i]`` the sourcedId of row
    ``(i + 1) * ANCHOR_STEP`` (1-based), or for a small school-limited set every id in order."""

    state: tuple[Any, ...]
    total: int
    anchors: dict[bool, tuple[str, ...]]
    order: dict[bool, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ids(self) -> int:
        return sum(len(ids) for ids in self.order.values())


_kept: OrderedDict[tuple[Any, ...], _Kept] = OrderedDict()
_kept_lock = threading.Lock()


def _key(session: Session, tenant_id: str, statement: Select[Any]) -> tuple[Any, ...]:
    compiled = statement.compile(dialect=session.get_bind().dialect)
    params = tuple(sorted((name, repr(value)) for name, value in compiled.params.items()))
    return (tenant_id, compiled.string, params)


def _lookup(session: Session, key: tuple[Any, ...], state: tuple[Any, ...]) -> _Kept | None:
    pending: _Kept | None = session.info.get(_PENDING, {}).get(key)
    if pending is not None and pending.state == state:
        return pending
    with _kept_lock:
        kept = _kept.get(key)
        if kept is not None and kept.state == state:
            _kept.move_to_end(key)
            return kept
    return None


def _keep(session: Session, key: tuple[Any, ...], kept: _Kept) -> None:
    """Keep ``kept`` once the unit of work commits, unless it wrote to the roster itself (on
    SQLite its state moved at its first write only, so a count taken between two of its
    writes would be kept under its final state)."""
    if wrote_roster(session):
        return
    session.info.setdefault(_PENDING, {})[key] = kept


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    with _kept_lock:
        _kept.update(pending)
        for key in pending:
            _kept.move_to_end(key)
        while len(_kept) > KEPT_ENTRIES:
            _kept.popitem(last=False)
        ids = sum(kept.ids for kept in _kept.values())
        while ids > KEPT_IDS:
            ids -= _kept.popitem(last=False)[1].ids


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _anchors(
    session: Session, model: type[Any], conditions: list[Any], descending: bool
) -> tuple[str, ...]:
    """Every ``ANCHOR_STEP``-th sourcedId of the rows, in one walk."""
    order = model.sourced_id.desc() if descending else model.sourced_id.asc()
    numbered = (
        select(model.sourced_id.label("sid"), func.row_number().over(order_by=order).label("n"))
        .where(*conditions)
        .subquery()
    )
    chosen = select(numbered.c.sid).where(numbered.c.n % ANCHOR_STEP == 0).order_by(numbered.c.n)
    return tuple(session.scalars(chosen))


def _kept_order(
    session: Session,
    key: tuple[Any, ...],
    kept: _Kept,
    model: type[Any],
    conditions: list[Any],
    descending: bool,
) -> tuple[str, ...]:
    """Every visible id in sourcedId order, gathered once per roster state (one walk of the
    schools' records, as the count made) and kept with the total. A kept entry's orders are
    never changed in place: another thread may be summing them (:func:`_publish`)."""
    ids = kept.order.get(descending)
    if ids is None:
        order = model.sourced_id.desc() if descending else model.sourced_id.asc()
        ids = tuple(session.scalars(select(model.id).where(*conditions).order_by(order)))
        _keep(session, key, replace(kept, order={**kept.order, descending: ids}))
    return ids


def _page_ids(
    session: Session,
    scope: ReadScope,
    model: type[Any],
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    key: tuple[Any, ...],
    kept: _Kept,
    *,
    limit: int,
    offset: int,
    by_sourced_id: bool | None,
) -> list[str]:
    """The ids of one page. A school-limited client's records are not in an index's order, so
    its page would gather them all (issue 15: the one-school client at 1.6x from 1,000 to
    100,000 users): up to ``PROBE_ABOVE`` of them their order is kept, and a page is a slice of
    it; past that, a page walks the sourcedId index from a kept anchor, probing each user."""
    conditions = [visible(scope, model), *where]
    if scope.school_ids and by_sourced_id is not None and kept.total <= PROBE_ABOVE:
        return list(
            _kept_order(session, key, kept, model, conditions, by_sourced_id)[
                offset : offset + limit
            ]
        )
    walked = visible(scope, model, per_row=kept.total > PROBE_ABOVE)
    chosen = select(model.id).where(walked, *where)
    if by_sourced_id is not None and offset >= ANCHOR_STEP:
        if by_sourced_id not in kept.anchors:
            kept.anchors[by_sourced_id] = _anchors(session, model, conditions, by_sourced_id)
            _keep(session, key, kept)
        anchors = kept.anchors[by_sourced_id]
        step = min(offset // ANCHOR_STEP, len(anchors))
        if step:
            anchor = anchors[step - 1]
            after = model.sourced_id < anchor if by_sourced_id else model.sourced_id > anchor
            chosen, offset = chosen.where(after), offset - step * ANCHOR_STEP
    return list(session.scalars(chosen.order_by(*order_by).limit(limit).offset(offset)))


def read_page(
    session: Session,
    scope: ReadScope,
    model: type[Model],
    where: Sequence[ColumnElement[bool]] = (),
    order_by: Sequence[Any] = (),
    *,
    limit: int,
    offset: int,
    by_sourced_id: bool | None = None,
) -> Page:
    """Records of ``model`` visible to ``scope`` matching ``where``, sorted, one page of them.

    ``order_by`` should end with a unique key (the protocol adds ``sourced_id``) so pages never
    overlap or skip. ``by_sourced_id``: True (descending) or False (ascending) when
    ``order_by`` is the sourcedId alone, so a deep page may start from a kept anchor.
    """
    conditions = [visible(scope, model), *where]
    counting = select(func.count()).select_from(model).where(*conditions)
    state = roster_state(session, scope.tenant_id)
    key = _key(session, scope.tenant_id, counting)
    kept = _lookup(session, key, state)
    if kept is None:
        kept = _Kept(state, session.scalar(counting) or 0, {})
        _keep(session, key, kept)
    total = kept.total
    if total == 0 or offset >= total:
        return Page([], total)
    ids = _page_ids(
        session,
        scope,
        model,
        where,
        order_by,
        key,
        kept,
        limit=limit,
        offset=offset,
        by_sourced_id=by_sourced_id,
    )
    rows = {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}
    return Page([rows[i] for i in ids if i in rows], total)


def read_one(
    session: Session,
    scope: ReadScope,
    model: type[Model],
    sourced_id: str,
    where: Sequence[ColumnElement[bool]] = (),
) -> Model | None:
    """The visible record of ``model`` with this sourcedId (and matching ``where``), or None."""
    return session.scalars(
        select(model).where(visible(scope, model), model.sourced_id == sourced_id, *where)
    ).first()


def sourced_ids(session: Session, model: type[Any], ids: Iterable[str | None]) -> dict[str, str]:
    """Map our ids to sourcedIds (for the references a rendered object carries)."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    query = select(model.id, model.sourced_id).where(model.id.in_(wanted))
    return {row_id: sid for row_id, sid in session.execute(query)}


def children(
    session: Session, scope: ReadScope, model: type[Any], parent_ids: Iterable[str]
) -> dict[str, list[str]]:
    """For orgs and academic sessions: the visible children's sourcedIds of each parent."""
    wanted = set(parent_ids)
    if not wanted:
        return {}
    query = (
        select(model.parent_id, model.sourced_id)
        .where(visible(scope, model), model.parent_id.in_(wanted))
        .order_by(model.sourced_id)
    )
    found: dict[str, list[str]] = {}
    for parent_id, sid in session.execute(query):
        found.setdefault(parent_id, []).append(sid)
    return found


def enrolled_schools(session: Session, user_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """For each user: the (school id, role) pairs of their active enrollments, without repeats."""
    wanted = set(user_ids)
    if not wanted:
        return {}
    query = (
        select(Enrollment.user_id, Enrollment.school_id, Enrollment.role)
        .where(Enrollment.user_id.in_(wanted), Enrollment.status == RecordStatus.ACTIVE)
        .distinct()
        .order_by(Enrollment.user_id, Enrollment.school_id, Enrollment.role)
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for user_id, school_id, role in session.execute(query):
        found.setdefault(user_id, []).append((school_id, role))
    return found
