"""RFC 7644 §3.4.2.2 filters and §3.4.2.3 sorting translated to SQL over the attribute index.

:class:`FilterTranslator` walks a filter's AST (``scim2_models.path.FilterVisitor``) and builds
a SQLAlchemy condition on a resource table; it only *builds* SELECT conditions, which
``server.domain.scim_index`` executes. The meaning is exactly ``ScimFilter.match``'s:

- ``attr op value`` holds when any value of the attribute compares true, except ``ne``, which
  holds when no value equals the operand (a missing attribute is ``ne`` anything);
- ``eq null`` holds for a missing attribute and ``ne null`` for a present one, other operators
  against ``null`` never hold; ``pr`` wants a non-empty value;
- a value path compares the sub-attributes of one entry of the multi-valued attribute;
- an attribute the resource type does not declare matches nothing (RFC 7644 §3.4.2.1).

``id``, ``meta.created`` and ``meta.lastModified`` are compared on the table's own columns, and
so is a User's ``active`` (its status: a user created without ``active`` is active). A User's
read-only ``groups`` (RFC 7643 §4.1.2) are never indexed, since they change with every group and
class; ``groups.value``, ``groups.display``, ``groups.type`` and ``groups[…]`` compare the rows
of ``server.domain.groups.membership_rows`` (``value`` is the group's id, ``type`` "direct").
"""

from __future__ import annotations

import datetime
from typing import Any, TypeGuard

from scim2_models import (
    AttributeBinding,
    InvalidCursorException,
    InvalidFilterException,
    Resource,
    ScimFilter,
)
from scim2_models.path import (
    CompareOperator,
    Comparison,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from scim2_models.path.resolution import coerce_value
from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    and_,
    case,
    cast,
    false,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased

from scim.index import own_paths
from scim.values import CORE_GROUP, CORE_USER, comparison_form, datetime_text, path_key
from server.db import RecordStatus, ScimValue, fold
from server.domain.search import MAX_FILTER_TERMS, MAX_PATTERN_CHARS

Op = CompareOperator
STRING_OPS = {Op.co, Op.sw, Op.ew}


# Attributes that are indexed columns of the record itself, compared in their folded form:
# the lookups identity providers make before every write (userName, externalId, displayName).
# The index holds no rows of them (scim.values.COLUMN_PATHS): a test checks each is a column here.
FOLDED_COLUMNS = {
    f"{CORE_USER}:username": "username_folded",
    f"{CORE_USER}:externalid": "external_id_folded",
    f"{CORE_GROUP}:externalid": "external_id_folded",
}
GROUP_NAME_COLUMNS = {"groups": "display_name_folded", "classes": "title_folded"}
USER_GROUPS = f"{CORE_USER}:groups"
USER_ACTIVE = f"{CORE_USER}:active"
# a sub-attribute of User.groups -> the membership row's column (compared case-folded)
MEMBERSHIP_COLUMNS = {"": "group_id", "value": "group_id", "display": "display_folded"}
MEMBERSHIP_COLUMNS["type"] = "type"


def column_for(binding: AttributeBinding, table: Any) -> Any:
    """The table column that holds an attribute, for the few that are columns."""
    urn = binding.urn.lower()
    if urn.endswith(":id") and binding.sub_field_name is None:
        return table.id
    if urn.endswith(":meta.created"):
        return table.created_at
    if urn.endswith(":meta.lastmodified"):
        return table.updated_at
    if urn in FOLDED_COLUMNS:
        return getattr(table, FOLDED_COLUMNS[urn], None)
    if urn == f"{CORE_GROUP}:displayname":
        return getattr(table, GROUP_NAME_COLUMNS.get(table.__tablename__, ""), None)
    return None


class FilterTranslator(FilterVisitor[ColumnElement[bool]]):
    """Translate a filter bound to one resource model into a condition on ``table``.

    ``subject`` is the column the index rows are matched on: the table's id for a resource, or
    the ``element`` column of an entry inside a value path.
    """

    def __init__(
        self,
        scim_filter: ScimFilter[Any],
        table: Any,
        tenant_id: str,
        resource_type: str,
        dialect: str,
        *,
        subject: Any = None,
        element_of: Any = None,
        urn_prefix: str = "",
        memberships: Any = None,
    ) -> None:
        """``memberships``: the membership rows (a subquery) ``groups`` filters compare."""
        self.filter = scim_filter
        self.table = table
        self.tenant_id = tenant_id
        self.resource_type = resource_type
        self.dialect = dialect
        self.subject = subject if subject is not None else table.id
        self.element_of = element_of
        self.urn_prefix = urn_prefix
        self.memberships = memberships
        if element_of is None:
            check_filter_size(scim_filter.ast)

    def _bind(self, node: Any, *, comparison: bool) -> AttributeBinding | None:
        resolve = self.filter.resolve_comparison if comparison else self.filter.resolve
        binding = resolve(node.attr_path, strict=False)
        if binding is not None and self.urn_prefix:
            binding = binding._nested_in(self.urn_prefix)
        return binding

    def _values(self, path: str, *conditions: Any, held: bool | None = None) -> Any:
        """The subjects with an index row of ``path`` meeting ``conditions``; ``held``: whether
        the attribute is there at all (True: counting its entries, a null comparison) or
        present (False: ``pr``), read from its sub-attributes' rows too
        (:func:`scim.index.own_paths`)."""
        key = ScimValue.element if self.element_of is not None else ScimValue.resource_id
        paths: tuple[str, ...] = (path,)
        model = self.filter.model  # the resource's (a value path's filter holds its entries')
        if held is not None and self.element_of is None and _is_resource(model):
            paths = own_paths(model, path, entries=held)
        return select(key).where(
            ScimValue.tenant_id == self.tenant_id,
            ScimValue.resource_type == self.resource_type,
            ScimValue.path == path if len(paths) == 1 else ScimValue.path.in_(paths),
            *conditions,
        )

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        binding = self._bind(node, comparison=True)
        if binding is None:
            return false()
        expected = coerce_value(binding, node.value, node.op)
        if self.element_of is None and binding.urn.lower() == USER_ACTIVE:
            return _active(self.table, node.op, expected)
        if self.element_of is None and _is_user_groups(binding):
            return self._groups(_membership_column(self.memberships, binding), node.op, expected)
        column = None if self.element_of is not None else column_for(binding, self.table)
        if column is not None:
            if isinstance(expected, str) and column is not self.table.id:
                expected = fold(expected)
            return _compare_column(column, node.op, expected, self.dialect)
        path = path_key(binding)
        if expected is None:
            if node.op == Op.eq:
                return self.subject.not_in(self._values(path, held=True))
            if node.op == Op.ne:
                return self.subject.in_(self._values(path, held=True))
            return false()
        condition = self._value_condition(binding, node.op, expected)
        if node.op == Op.ne:
            return self.subject.not_in(self._values(path, condition))
        return self.subject.in_(self._values(path, condition))

    def _value_condition(self, binding: AttributeBinding, op: Op, expected: Any) -> Any:
        if op == Op.ne:
            op = Op.eq
        text, number = comparison_form(binding, expected)
        if isinstance(expected, bool):
            return ScimValue.text == text if op == Op.eq else false()
        if isinstance(expected, datetime.datetime):
            return false() if op in STRING_OPS else _ordered(ScimValue.text, op, text, self.dialect)
        if number is not None:
            return false() if op in STRING_OPS else _ordered(ScimValue.number, op, number, "")
        if text is None:
            return false()
        if op in STRING_OPS:
            return _like(ScimValue.text, op, text, self.dialect)
        return _ordered(ScimValue.text, op, text, self.dialect)

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        binding = self._bind(node, comparison=False)
        if binding is None:
            return false()
        if self.element_of is None and binding.urn.lower() == USER_ACTIVE:
            return true()
        if self.element_of is None and _is_user_groups(binding):
            return self.table.id.in_(self._members())
        column = None if self.element_of is not None else column_for(binding, self.table)
        if column is not None:
            return column.is_not(None)
        present = ScimValue.present.is_(True)
        return self.subject.in_(self._values(path_key(binding), present, held=False))

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        if self.element_of is not None:
            return false()  # nested value paths are forbidden by the errata
        binding = self.filter.resolve(node.attr_path, strict=False)
        if binding is None:
            return false()
        if not binding.is_multivalued:
            raise InvalidFilterException(detail=f"{node.attr_path} holds a single value.")
        if _is_user_groups(binding):
            return self.table.id.in_(self._members(self._membership_row(node.val_filter)))
        entry = aliased(ScimValue)
        item_model = binding.field_type
        if item_model is None or not isinstance(item_model, type):
            raise InvalidFilterException(detail=f"Cannot filter the entries of {node.attr_path}.")
        inner = FilterTranslator(
            ScimFilter[item_model](node.val_filter),  # type: ignore[valid-type]
            self.table,
            self.tenant_id,
            self.resource_type,
            self.dialect,
            subject=entry.element,
            element_of=entry,
            urn_prefix=binding.urn,
        )
        entries = select(entry.resource_id).where(
            entry.tenant_id == self.tenant_id,
            entry.resource_type == self.resource_type,
            entry.path == path_key(binding) + "#",
            inner.visit(node.val_filter),
        )
        return self.table.id.in_(entries)

    # -- User.groups: membership rows ------------------------------------------------------

    def _members(self, *conditions: Any) -> Any:
        """The ids of the users with a membership row meeting ``conditions``."""
        if self.memberships is None:
            return select(self.table.id).where(false())
        return select(self.memberships.c.user_id).where(*conditions)

    def _groups(self, column: Any, op: Op, expected: Any) -> ColumnElement[bool]:
        """``groups.<sub> op expected``: any membership compares true; ``ne``: none equals."""
        if expected is None:
            if op == Op.eq:
                return self.table.id.not_in(self._members())
            return self.table.id.in_(self._members()) if op == Op.ne else false()
        if column is None or not isinstance(expected, str):
            return false()
        if op == Op.ne:
            equal = _membership_compare(column, Op.eq, expected, self.dialect)
            return self.table.id.not_in(self._members(equal))
        return self.table.id.in_(
            self._members(_membership_compare(column, op, expected, self.dialect))
        )

    def _membership_row(self, node: Any) -> ColumnElement[bool]:
        """The filter inside ``groups[…]`` as a condition on one membership row."""
        if isinstance(node, LogicalExpr):
            terms = [self._membership_row(term) for term in node.terms]
            return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
        if isinstance(node, Not):
            return not_(self._membership_row(node.expr))
        if isinstance(node, Present | Comparison):
            name = (node.attr_path.attr or "").lower()
            column = None
            if self.memberships is not None and name in MEMBERSHIP_COLUMNS:
                column = getattr(self.memberships.c, MEMBERSHIP_COLUMNS[name])
            if isinstance(node, Present):
                return true() if column is not None else false()
            if column is not None and node.value is None:
                return true() if node.op == Op.ne else false()  # no row has a null one
            if column is None or not isinstance(node.value, str):
                return false()
            return _membership_compare(column, node.op, node.value, self.dialect)
        return false()  # nested value paths are forbidden by the errata


def _is_resource(model: Any) -> TypeGuard[type[Resource[Any]]]:
    return isinstance(model, type) and issubclass(model, Resource)


def _is_user_groups(binding: AttributeBinding) -> bool:
    urn = binding.urn.lower()
    return urn == USER_GROUPS or urn.startswith(USER_GROUPS + ".")


def _membership_column(memberships: Any, binding: AttributeBinding) -> Any:
    name = (binding.sub_field_name or "").lower()
    if memberships is None or name not in MEMBERSHIP_COLUMNS:
        return None
    return getattr(memberships.c, MEMBERSHIP_COLUMNS[name])


def _membership_compare(column: Any, op: Op, expected: str, dialect: str) -> ColumnElement[bool]:
    text = fold(expected) or ""
    if op in STRING_OPS:
        return _like(column, op, text, dialect)
    if op == Op.ne:
        return column != text
    return _ordered(column, op, text, "")


def _active(table: Any, op: Op, expected: Any) -> ColumnElement[bool]:
    """``active op expected`` on a user's status (deleted users are never searched)."""
    if expected is None:  # every user has an effective active
        return true() if op == Op.ne else false()
    if not isinstance(expected, bool) or op not in (Op.eq, Op.ne):
        return false()
    active = table.status == RecordStatus.ACTIVE
    holds = active if expected else not_(active)
    return holds if op == Op.eq else not_(holds)


def check_filter_size(ast: Any) -> None:
    """Refuse a filter of more than ``MAX_FILTER_TERMS`` nodes (400 ``invalidFilter``).

    Counted without recursion, so ``not (not (… ))`` nested thousands deep is refused too.
    """
    pending, count = [ast], 0
    while pending:
        node = pending.pop()
        count += not isinstance(node, LogicalExpr)  # and/or nest no deeper than their terms
        if count > MAX_FILTER_TERMS:
            raise InvalidFilterException(
                detail=f"The filter is too large: at most {MAX_FILTER_TERMS} terms "
                "(comparisons and nots) are allowed."
            )
        if isinstance(node, LogicalExpr):
            pending.extend(node.terms)
        elif isinstance(node, Not):
            pending.append(node.expr)
        elif isinstance(node, ValuePath):
            pending.append(node.val_filter)


def _compare_column(column: Any, op: Op, expected: Any, dialect: str) -> ColumnElement[bool]:
    if expected is None:
        return column.is_(None) if op == Op.eq else column.is_not(None) if op == Op.ne else false()
    textual = isinstance(column.type, String) and isinstance(expected, str)
    if op in STRING_OPS:
        return _like(column, op, expected, dialect) if textual else false()
    if op == Op.ne:  # a missing value is "ne" anything
        return or_(column.is_(None), column != expected)
    return _ordered(column, op, expected, dialect if textual else "")


def _like(column: Any, op: Op, text: str, dialect: str) -> ColumnElement[bool]:
    """``column LIKE pattern``. On SQLite a pattern bound as a bare parameter has the statement
    prepared again on every run (so that a ``sw`` prefix can bound an index range, with
    ``case_sensitive_like``: https://sqlite.org/optoverview.html#the_like_optimization); a
    ``co`` or ``ew`` pattern (leading ``%``) can bound none, so it is bound through a CAST,
    which SQLite prepares once (issue 15)."""
    if len(text) > MAX_PATTERN_CHARS:
        raise InvalidFilterException(
            detail=f"A {op.value} value can be at most {MAX_PATTERN_CHARS} characters long."
        )
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = {Op.co: f"%{escaped}%", Op.sw: f"{escaped}%", Op.ew: f"%{escaped}"}[op]
    if op != Op.sw and dialect == "sqlite":
        return column.like(cast(literal(pattern), String), escape="\\")
    return column.like(pattern, escape="\\")


def _ordered(column: Any, op: Op, value: Any, dialect: str) -> ColumnElement[bool]:
    # Python compares strings by code point; PostgreSQL's default collation does not.
    if dialect == "postgresql" and isinstance(value, str):
        column = column.collate("C")
    return {
        Op.eq: column == value,
        Op.gt: column > value,
        Op.ge: column >= value,
        Op.lt: column < value,
        Op.le: column <= value,
    }[op]


def sort_expression(
    binding: AttributeBinding | None, table: Any, tenant_id: str, resource_type: str, dialect: str
) -> tuple[Any, str]:
    """The SQL value a resource sorts by, and its kind (``text`` or ``number``)."""
    if binding is None:
        return null(), "text"
    column = column_for(binding, table)
    kind = "number" if _is_numeric(binding) else "text"
    if binding.urn.lower() == USER_ACTIVE and table.__tablename__ == "users":
        # the status column, in the form the index row held (scim.values.STATUS_PATHS)
        status: Any = case((table.status == RecordStatus.ACTIVE, "true"), else_="false")
        return (status.collate("C") if dialect == "postgresql" else status), "text"
    if column is not None:
        if dialect == "postgresql" and isinstance(column.type, String):
            column = column.collate("C")
        return column, "column"
    stored = ScimValue.number if kind == "number" else ScimValue.text
    value: Any = (
        select(stored)
        .where(
            # resource_id and path only, so the lookup uses ix_scim_values_resource (a record
            # id names one resource; tenant and type would steer the planner to a worse index).
            ScimValue.resource_id == table.id,
            ScimValue.path == path_key(binding),
            ScimValue.lead.is_(True),
            ScimValue.element.is_(None) if not binding.is_multivalued else true(),
        )
        .limit(1)
        .scalar_subquery()
    )
    if dialect == "postgresql" and kind == "text":
        value = value.collate("C")
    return value, kind


def typed_null(kind: str) -> Any:
    return cast(null(), Float if kind == "number" else String)


def _is_numeric(binding: AttributeBinding) -> bool:
    target = binding.target_type
    return isinstance(target, type) and issubclass(target, bool | int | float)


def encode_sort_value(value: Any) -> Any:
    """A sort value as a cursor position holds it (JSON)."""
    if isinstance(value, datetime.datetime):
        return {"datetime": datetime_text(value)}
    return value


def decode_sort_value(value: Any) -> Any:
    """The sort value :func:`encode_sort_value` gave. :raises InvalidCursorException:"""
    if not isinstance(value, dict):
        return value
    try:
        return datetime.datetime.fromisoformat(value["datetime"])
    except (KeyError, TypeError, ValueError):
        raise InvalidCursorException from None
