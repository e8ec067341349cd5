"""Property tests (Hypothesis) of SCIM filters, RFC 7644 §3.4.2.2.

Any text sent as ``filter`` gets a list (200) or a SCIM error (400 with the error schema),
never a 500; filters built from the grammar print back to the same tree (the parser's printer,
``str(ast)``, round-trips). ``make soak`` runs many more examples with a fresh seed.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from scim2_models import SCIMException
from scim2_models.path import LogicalExpr, Not, ScimFilter, ValuePath

from tests.generated import fuzz_settings
from tests.scim.helpers import ENTERPRISE
from tests.wire import scim_error

# Real attribute paths of the User and Group schemas, plus names nobody declared (which match
# nothing, RFC 7644 §3.4.2.1).
ATTRIBUTES = st.one_of(
    st.sampled_from(
        [
            "userName",
            "name.givenName",
            "name.familyName",
            "displayName",
            "emails.value",
            "emails.type",
            "active",
            "externalId",
            "id",
            "meta.created",
            "meta.lastModified",
            "title",
            "members.value",
            f"{ENTERPRISE}:employeeNumber",
        ]
    ),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,12}(\.[A-Za-z][A-Za-z0-9_]{0,8})?", fullmatch=True),
)
VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
    st.datetimes().map(lambda moment: moment.isoformat() + "Z"),
)
OPERATORS = st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"])


def _comparison(attribute: str, op: str, value: Any) -> str:
    return f"{attribute} {op} {json.dumps(value)}"


ATTRIBUTE_FILTERS = st.one_of(
    st.builds(_comparison, ATTRIBUTES, OPERATORS, VALUES),
    ATTRIBUTES.map(lambda attribute: f"{attribute} pr"),
)


def _combined(leaves: Any) -> Any:
    """``and``/``or``, ``not ( )`` and plain parentheses over ``leaves``."""
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
            inner.map(lambda f: f"not ({f})"),
            inner.map(lambda f: f"({f})"),
        ),
        max_leaves=6,
    )


# A value path holds a filter without value paths of its own (RFC 7644 §3.4.2.2, valFilter).
VALUE_PATHS = st.tuples(
    st.sampled_from(["emails", "members", "addresses"]), _combined(ATTRIBUTE_FILTERS)
).map(lambda pair: f"{pair[0]}[{pair[1]}]")
FILTERS = _combined(st.one_of(ATTRIBUTE_FILTERS, VALUE_PATHS))
# Text that looks like filters but is mangled: a grammar filter with a piece cut or inserted.
MANGLED = st.tuples(FILTERS, st.integers(0, 60), st.text(max_size=4)).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + len(t[2]) :]
)


def _parsed(text: str) -> Any:
    try:
        return _flat(ScimFilter(text).ast)
    except SCIMException:
        return None


def _flat(node: Any) -> Any:
    """The tree with ``a and (b and c)`` read as ``a and b and c``: the printer leaves out the
    parentheses an associative operator does not need, so only this form round-trips."""
    if isinstance(node, LogicalExpr):
        terms: list[Any] = []
        for term in map(_flat, node.terms):
            same = isinstance(term, LogicalExpr) and term.op == node.op
            terms.extend(term.terms if same else [term])
        return LogicalExpr(node.op, tuple(terms))
    if isinstance(node, Not):
        return Not(_flat(node.expr))
    if isinstance(node, ValuePath):
        return ValuePath(node.attr_path, _flat(node.val_filter), node.sub_attr)
    return node


@given(text=st.one_of(st.text(max_size=80), MANGLED))
@fuzz_settings(300)
def test_any_text_parses_or_raises_the_protocols_own_error(text):
    ast = _parsed(text)
    if ast is not None:
        assert _parsed(str(ScimFilter(text).ast)) == ast, text


@given(text=FILTERS)
@fuzz_settings(300)
def test_a_grammar_filter_prints_back_to_the_same_tree(text):
    ast = ScimFilter(text).ast
    assert _parsed(str(ast)) == _flat(ast), (text, str(ast))


def _search(idp, text: str) -> None:
    for resource in ("Users", "Groups"):
        response = idp.get(f"/{resource}", params={"filter": text})
        if response.status_code != 200:
            scim_error(response, 400, "invalidFilter")


def test_a_filter_of_any_shape_gets_a_list_or_a_scim_error(idp):
    bart = idp.create_user("bart", emails=[{"value": "bart@example.org", "type": "work"}])
    idp.create_group("Maths 4B", [bart["id"]])

    @given(text=st.one_of(FILTERS, MANGLED, st.text(max_size=40)))
    @fuzz_settings(60)
    def search(text):
        _search(idp, text)

    search()
