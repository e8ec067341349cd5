"""Users as their representations show them, read without building ORM objects.

A protocol that answers a lookup (SCIM ``userName eq``, ``externalId eq``, a read by id: the
requests identity providers make before every write, issue 15) needs a user's columns, its
roles with their schools' sourcedIds, its grades and its memberships. :func:`find_views`
reads the users with all of these in **one** statement (JSON aggregates in correlated
subqueries, on the indexes of ``user_roles``, ``user_grades``, ``group_members`` and
``enrollments``; the memberships are :func:`server.domain.groups.memberships_of_user_row`);
:func:`view_of` gives the same view of a user already loaded, so a representation has one
definition over both.

Which users an actor finds is :func:`server.domain.access.visible_records`, the rule every
surface uses: deleted users and other connections' or tenants' users are never found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
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
from server.db.session import Reader, connection_of
from server.domain import groups
from server.domain.access import visible_records
from server.domain.actors import Actor
from server.domain.connections import live_token_clause
from server.domain.new_user_rows import NewUserRows
from server.domain.oauth import holds_unrevoked_tokens
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
    session: Reader,
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
    users = _statement(actor, key, token is not None)
    value = value if key == "id" else fold(value)
    parameters = {"value": value, "offset": page_offset(offset), "limit": _limit(limit)}
    if token is not None:
        parameters["digest"] = token
    return [_view(row) for row in _rows(session, users, parameters)]


@dataclass(frozen=True)
class ViewToChange:
    """A user as :func:`find_view_to_change` read it for a change."""

    view: UserView
    settings: dict[str, Any]  # its tenant's: how long a leaver is kept
    holds_tokens: bool  # whether it holds OIDC tokens a deactivation revokes


def find_view_to_change(
    session: Session, actor: Actor, user_id: str, *, token: str | None = None
) -> ViewToChange | None:
    """The view of the user ``actor`` may see with this id (:func:`find_views`: the same
    statement, ``token`` checked as there), with what a change of the user may ask read in it
    too: its tenant's settings and whether it holds live OIDC tokens."""
    users = _statement(actor, "id", token is not None, change=True)
    parameters = {"value": user_id, "offset": 0, "limit": 1}
    if token is not None:
        parameters["digest"] = token
    rows = _rows(session, users, parameters)
    if not rows:
        return None
    row = rows[0]
    return ViewToChange(_view(row), row[-2] or {}, bool(row[-1]))


def _rows(session: Reader, users: Select[Any], parameters: dict[str, Any]) -> list[Any]:
    # Core rows on the unit of work's connection: no ORM objects, no ORM result processing
    return list(connection_of(session).execute(users, parameters).all())


def count_views(session: Reader, actor: Actor, key: Key, value: str) -> int:
    """How many users :func:`find_views` finds in all."""
    value = value if key == "id" else fold(value)
    query = select(func.count()).where(visible_records(actor, User), _matching(key))
    return int(connection_of(session).scalar(query, {"value": value}) or 0)


# The statement of each (actor, key), built once: building a SELECT (comparisons, subqueries,
# the cache key) cost more CPU than running it. The values are bound at each execution.
_STATEMENTS: dict[tuple[Actor, Key, bool, bool], Select[Any]] = {}
_MAX_STATEMENTS = 256
_NO_LIMIT = 2**31 - 1


def _statement(actor: Actor, key: Key, checked: bool, *, change: bool = False) -> Select[Any]:
    """The users statement of :func:`find_views` (``checked``: while the bound token is live;
    ``change``: with their tenant's settings and whether they hold live tokens, last)."""
    built = _STATEMENTS.get((actor, key, checked, change))
    if built is None:
        if len(_STATEMENTS) >= _MAX_STATEMENTS:
            _STATEMENTS.clear()
        built = _users_statement(actor, key)
        if checked:
            built = built.where(live_token_clause())
        if change:
            built = built.add_columns(_TENANT_SETTINGS, holds_unrevoked_tokens(User.id))
        _STATEMENTS[(actor, key, checked, change)] = built
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


def _memberships_column(actor: Actor) -> ScalarSelect[Any]:
    """The user's memberships the actor may see, by display name, as a JSON array."""
    rows = groups.memberships_of_user_row(actor).subquery()
    return select(_JsonMemberships(rows.c.group_id, rows.c.display)).scalar_subquery()


def _users_statement(actor: Actor, key: Key) -> Select[Any]:
    shown = (_roles_column(), _grades_column(), _memberships_column(actor))
    return (
        select(*(getattr(User, name) for name in COLUMNS), *shown)
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


def _view(row: Any) -> UserView:
    values = dict(zip(COLUMNS, row, strict=False))
    values["extra"] = values["extra"] or {}
    roles_json, grades_json, memberships_json = row[len(COLUMNS) : len(COLUMNS) + 3]
    roles = sorted((RoleView(*entry) for entry in roles_json or []), key=_role_order)
    return UserView(
        **values,
        roles=roles,
        grades=sorted(entry[0] for entry in grades_json or []),
        memberships=[groups.Membership(row.id, *entry) for entry in memberships_json or []],
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
def _json_rows_sqlite(element: FunctionElement[Any], compiler: Any, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


@compiles(_JsonRows, "postgresql")
def _json_rows_postgresql(element: _JsonRows, compiler: Any, **kw: Any) -> str:
    return f"json_agg(json_build_array({compiler.process(element.clauses, **kw)}))"


class _JsonMemberships(FunctionElement[Any]):
    """:class:`_JsonRows` of ``(group_id, display)`` by display and id, as
    :func:`server.domain.groups.memberships` orders them: SQLite aggregates the rows in the
    order of its ordered subquery, PostgreSQL is told the order (it may aggregate in any)."""

    type = JSON()
    inherit_cache = True
    name = "json_memberships"


@compiles(_JsonMemberships, "sqlite")
def _json_memberships_sqlite(element: _JsonMemberships, compiler: Any, **kw: Any) -> str:
    return _json_rows_sqlite(element, compiler, **kw)  # the ordered subquery gives the order


@compiles(_JsonMemberships, "postgresql")
def _json_memberships_postgresql(element: _JsonMemberships, compiler: Any, **kw: Any) -> str:
    group_id, display = (compiler.process(c, **kw) for c in element.clauses.clauses)
    pair = f"json_build_array({group_id}, {display})"
    return f"json_agg({pair} ORDER BY {display}, {group_id})"
