"""Users as their representations show them, read without building ORM objects.

A protocol that answers a lookup (SCIM ``userName eq``, ``externalId eq``, a read by id: the
requests identity providers make before every write, issue 15) needs a user's columns, its
roles with their schools' sourcedIds, its grades and its memberships. :func:`find_views`
reads the users with their roles and grades in **one** statement (JSON aggregates in
correlated subqueries, on the indexes of ``user_roles`` and ``user_grades``) and their
memberships in one more (:func:`server.domain.groups.memberships`); :func:`view_of` gives the
same view of a user already loaded, so a representation has one definition over both.

Which users an actor finds is :func:`server.domain.access.visible_records`, the rule every
surface uses: deleted users and other connections' or tenants' users are never found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    func,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import ScalarSelect

from server.db import Org, RecordStatus, Tenant, User, UserGrade, UserRole, fold
from server.domain import groups
from server.domain.access import visible_records
from server.domain.actors import Actor
from server.domain.connections import live_token_clause
from server.domain.new_user_rows import NewUserRows
from server.domain.search import page_offset

Key = Literal["id", "username", "external_id"]


@dataclass(frozen=True)
class RoleView:
    """A role of a user at an org, with the org's sourcedId."""

    role: str
    org_id: str
    org_sourced_id: str | None
    role_type: str


@dataclass(frozen=True)
class UserView:
    """What a representation of a user shows: its columns, roles, grades and memberships."""

    id: str
    sourced_id: str
    username: str
    external_id: str | None
    given_name: str
    family_name: str
    middle_name: str | None
    email: str | None
    identifier: str | None
    birth_date: date | None
    status: str
    extra: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int
    primary_role: str  # what a status change asks (a leaving student is kept a while)
    roles: list[RoleView] = field(default_factory=list)  # by (org id, role)
    grades: list[str] = field(default_factory=list)  # sorted
    memberships: list[groups.Membership] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status == RecordStatus.ACTIVE


COLUMNS = (
    "id",
    "sourced_id",
    "username",
    "external_id",
    "given_name",
    "family_name",
    "middle_name",
    "email",
    "identifier",
    "birth_date",
    "status",
    "extra",
    "created_at",
    "updated_at",
    "version",
    "primary_role",
)


def view_of(session: Session, user: User, memberships: list[groups.Membership]) -> UserView:
    """The view of a user already loaded (its roles' orgs read from the session)."""
    roles = [
        RoleView(role.role, role.org_id, _org_sourced_id(session, role.org_id), role.role_type)
        for role in user.roles
    ]
    return view_with(user, roles, user.grades, memberships)


def view_of_new(session: Session, rows: NewUserRows) -> UserView:
    """The view of a user just written as ``rows`` (:func:`server.domain.users.
    create_user_rows`), as :func:`view_of` gives it for the same user loaded: no groups yet."""
    roles = [
        RoleView(r["role"], r["org_id"], _org_sourced_id(session, r["org_id"]), r["role_type"])
        for r in rows.roles
    ]
    return UserView(
        **{name: rows.user[name] for name in COLUMNS},
        roles=sorted(roles, key=_role_order),
        grades=sorted(row["grade"] for row in rows.grades),
        memberships=[],
    )


def view_with(
    user: User, roles: list[RoleView], grades: list[str], memberships: list[groups.Membership]
) -> UserView:
    """The view of a loaded user with these roles and grades."""
    return UserView(
        **{name: getattr(user, name) for name in COLUMNS},
        roles=sorted(roles, key=_role_order),
        grades=sorted(grades),
        memberships=list(memberships),
    )


def find_views(
    session: Session,
    actor: Actor,
    key: Key,
    value: str,
    *,
    offset: int = 0,
    limit: int | None = None,
    token: str | None = None,
) -> list[UserView]:
    """The users ``actor`` may see whose ``key`` (id, or username or externalId compared
    case-insensitively, as SCIM compares them) is ``value``, by id, from ``offset``.

    ``token``: the digest of the bearer token the request came with; the users are found only
    while it is live (checked in the same statement, :func:`connections.token_is_live`), so
    a caller that finds none asks whether the token was revoked."""
    users, memberships = _statements(actor, key, token is not None)
    value = value if key == "id" else fold(value)
    parameters = {"value": value, "offset": page_offset(offset), "limit": _limit(limit)}
    if token is not None:
        parameters["digest"] = token
    return [view for _, view in _found(session, users, memberships, parameters)]


def find_view_to_change(
    session: Session, actor: Actor, user_id: str, *, token: str | None = None
) -> tuple[UserView, dict[str, Any]] | None:
    """The view of the user ``actor`` may see with this id (:func:`find_views`: the same two
    statements, ``token`` checked as there), with its tenant's ``settings`` read in the first:
    what a change of the user may ask (how long a leaver is kept), without a read of its own."""
    users, memberships = _statements(actor, "id", token is not None, settings=True)
    parameters = {"value": user_id, "offset": 0, "limit": 1}
    if token is not None:
        parameters["digest"] = token
    found = _found(session, users, memberships, parameters)
    if not found:
        return None
    row, view = found[0]
    return view, row[-1] or {}


def _found(
    session: Session, users: Select[Any], memberships: Select[Any], parameters: dict[str, Any]
) -> list[tuple[Any, UserView]]:
    """The rows of ``users`` with the views made of them and their ``memberships``."""
    # Core rows on the unit of work's connection: no ORM objects, no ORM result processing
    connection = session.connection()
    rows = connection.execute(users, parameters).all()
    found: dict[str, list[groups.Membership]] = {row.id: [] for row in rows}
    if found:
        for entry in connection.execute(memberships, {"user_ids": list(found)}):
            found[entry.user_id].append(groups.Membership(*entry))
    return [(row, _view(row, found[row.id])) for row in rows]


def count_views(session: Session, actor: Actor, key: Key, value: str) -> int:
    """How many users :func:`find_views` finds in all."""
    value = value if key == "id" else fold(value)
    query = select(func.count()).where(visible_records(actor, User), _matching(key))
    return int(session.scalar(query, {"value": value}) or 0)


# The statements of each (actor, key), built once: building a SELECT (comparisons, subqueries,
# the cache key) cost more CPU than running it. The values are bound at each execution.
_STATEMENTS: dict[tuple[Actor, Key, bool, bool], tuple[Select[Any], Select[Any]]] = {}
_MAX_STATEMENTS = 256
_NO_LIMIT = 2**31 - 1


def _statements(
    actor: Actor, key: Key, checked: bool, *, settings: bool = False
) -> tuple[Select[Any], Select[Any]]:
    """The users (``checked``: while the bound token is live; ``settings``: with their
    tenant's, last) and the memberships statements of :func:`find_views`."""
    built = _STATEMENTS.get((actor, key, checked, settings))
    if built is None:
        if len(_STATEMENTS) >= _MAX_STATEMENTS:
            _STATEMENTS.clear()
        ids: BindParameter[Any] = bindparam("user_ids", expanding=True)
        users = _users_statement(actor, key)
        if checked:
            users = users.where(live_token_clause())
        if settings:
            users = users.add_columns(_TENANT_SETTINGS)
        built = (users, groups.memberships_query(actor, ids))
        _STATEMENTS[(actor, key, checked, settings)] = built
    return built


_TENANT_SETTINGS = select(Tenant.settings).where(Tenant.id == User.tenant_id).scalar_subquery()


def _roles_column() -> ScalarSelect[Any]:
    """A user's roles with their orgs' sourcedIds, as a JSON array (correlated to ``users``)."""
    return (
        select(_JsonRows(UserRole.role, UserRole.org_id, Org.sourced_id, UserRole.role_type))
        .join(Org, Org.id == UserRole.org_id)
        .where(UserRole.user_id == User.id)
        .scalar_subquery()
    )


def _grades_column() -> ScalarSelect[Any]:
    return select(_JsonRows(UserGrade.grade)).where(UserGrade.user_id == User.id).scalar_subquery()


def _users_statement(actor: Actor, key: Key) -> Select[Any]:
    return (
        select(*(getattr(User, name) for name in COLUMNS), _roles_column(), _grades_column())
        .where(visible_records(actor, User), _matching(key))
        .order_by(User.id)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


def _matching(key: Key) -> ColumnElement[bool]:
    """``key`` equals the bound ``value`` (folded by the caller for username and externalId)."""
    value = bindparam("value", type_=String)
    if key == "id":
        return User.id == value
    column = User.username_folded if key == "username" else User.external_id_folded
    return column == value


def _limit(limit: int | None) -> int:
    return _NO_LIMIT if limit is None else limit


def _view(row: Any, memberships: list[groups.Membership]) -> UserView:
    values = dict(zip(COLUMNS, row, strict=False))
    values["extra"] = values["extra"] or {}
    roles_json, grades_json = row[len(COLUMNS)], row[len(COLUMNS) + 1]
    roles = sorted((RoleView(*entry) for entry in roles_json or []), key=_role_order)
    return UserView(
        **values,
        roles=roles,
        grades=sorted(entry[0] for entry in grades_json or []),
        memberships=memberships,
    )


def _role_order(role: RoleView) -> tuple[str, str]:
    return (role.org_id, role.role)


def _org_sourced_id(session: Session, org_id: str) -> str | None:
    org = session.get(Org, org_id)
    return org.sourced_id if org else None


class _JsonRows(FunctionElement[Any]):
    """An aggregate: a JSON array holding one array of the given columns per row (SQLite's
    ``json_group_array(json_array(…))``, PostgreSQL's ``json_agg(json_build_array(…))``)."""

    type = JSON()
    inherit_cache = True
    name = "json_rows"


@compiles(_JsonRows, "sqlite")
def _json_rows_sqlite(element: _JsonRows, compiler: Any, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


@compiles(_JsonRows, "postgresql")
def _json_rows_postgresql(element: _JsonRows, compiler: Any, **kw: Any) -> str:
    return f"json_agg(json_build_array({compiler.process(element.clauses, **kw)}))"
