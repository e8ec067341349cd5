"""``pr`` and ``eq null`` on complex and multi-valued attributes answer the same whether or not
the index holds an attribute's own presence row (issue 15, scimcreate2).

A created user wrote a row for ``schemas``, ``name`` and ``emails`` themselves besides the rows
of their values: four of the benchmark user's ten index rows (each an entry in three indexes).
Such a row is written now only when the attribute's values do not answer for it (``name: {}``,
``emails: []``, a value that is present only through a sub-attribute the index leaves out), and
a filter on the attribute itself reads the rows of its sub-attributes too. Users with empty
objects, empty lists and empty strings are filtered through HTTP, before and after a PUT.
"""

from __future__ import annotations

from typing import Any

import pytest

from scim.index import document_values
from scim.schemas import make_provider
from tests.scim.helpers import ENTERPRISE, GROUP, USER, IdP

USERS: dict[str, dict[str, Any]] = {
    "full": {
        "name": {"givenName": "Ada", "familyName": "L"},
        "emails": [{"value": "ada@x.example", "type": "work", "primary": True}],
        ENTERPRISE: {"manager": {"value": "m-1", "$ref": "Users/m-1"}},
    },
    "empties": {"name": {}, "emails": [{}]},
    "blank": {"name": {"givenName": ""}, "emails": [{"display": "", "type": "home"}]},
    "nolist": {"emails": []},
    "typeonly": {"emails": [{"type": "work"}], "name": {"familyName": "T"}},
    "bare": {},
}

FILTERS = [
    ("name pr", ["full", "typeonly"]),
    ("not (name pr)", ["bare", "blank", "empties", "nolist"]),
    ("name eq null", ["bare", "blank", "empties", "nolist"]),
    ("name ne null", ["full", "typeonly"]),
    ("emails pr", ["blank", "full", "typeonly"]),
    ("not (emails pr)", ["bare", "empties", "nolist"]),
    # a comparison of a multi-valued attribute compares its ``value`` (RFC 7644 §3.4.2.2)
    ("emails eq null", ["bare", "blank", "empties", "nolist", "typeonly"]),
    ("emails ne null", ["full"]),
    ('emails[type eq "work"]', ["full", "typeonly"]),
    ("emails[value pr]", ["full"]),
    ("emails[not (value pr)]", ["blank", "typeonly"]),
    ("emails.value pr", ["full"]),
    ("name.givenName pr", ["full"]),
    ("schemas pr", ["bare", "blank", "empties", "full", "nolist", "typeonly"]),
    ("schemas eq null", []),
    (f'schemas eq "{USER}"', ["bare", "blank", "empties", "full", "nolist", "typeonly"]),
    (f"{ENTERPRISE}:manager pr", ["full"]),
    (f"{ENTERPRISE}:manager eq null", ["bare", "blank", "empties", "nolist", "typeonly"]),
    ('name pr and emails[type eq "home"]', []),
    ('not (name pr) or emails[type eq "home"]', ["bare", "blank", "empties", "nolist"]),
]


def _create(idp: IdP) -> dict[str, str]:
    ids = {}
    for login, attributes in USERS.items():
        schemas = [USER, ENTERPRISE] if ENTERPRISE in attributes else [USER]
        ids[login] = idp.create_user(login, schemas=schemas, **attributes)["id"]
    return ids


def _found(idp: IdP, expression: str) -> list[str]:
    answer = idp.get("/Users", params={"filter": expression, "sortBy": "userName"})
    assert answer.status_code == 200, (expression, answer.text)
    return [r["userName"] for r in answer.json().get("Resources", [])]


@pytest.mark.parametrize(("expression", "expected"), FILTERS)
def test_presence_filters_answer_as_before(idp: IdP, expression: str, expected: list[str]) -> None:
    _create(idp)
    assert _found(idp, expression) == expected


def test_presence_filters_answer_the_same_after_a_replace(idp: IdP) -> None:
    """A PUT re-indexes each user (:func:`server.domain.scim_index.replace_values`)."""
    for login, user_id in _create(idp).items():
        attributes = USERS[login]
        schemas = [USER, ENTERPRISE] if ENTERPRISE in attributes else [USER]
        body = {"schemas": schemas, "userName": login, **attributes}
        assert idp.put(f"/Users/{user_id}", body).status_code == 200
    assert [(e, _found(idp, e)) for e, _ in FILTERS] == FILTERS


def test_a_group_without_members_is_told_from_one_with(idp: IdP) -> None:
    member = idp.create_user("member")["id"]
    idp.create_group("With", [member])
    idp.create_group("Without", [])

    def found(expression: str) -> list[str]:
        answer = idp.get("/Groups", params={"filter": expression, "sortBy": "displayName"})
        assert answer.status_code == 200, answer.text
        return [r["displayName"] for r in answer.json().get("Resources", [])]

    assert found("members pr") == ["With"]
    assert found("not (members pr)") == ["Without"]
    assert found(f'members[value eq "{member}"]') == ["With"]
    assert found("schemas pr") == ["With", "Without"]
    assert found(f'schemas eq "{GROUP}"') == ["With", "Without"]


def _rows(document: dict[str, Any]) -> list[tuple[str, bool, bool]]:
    """``(path after the schema URN, present, is an entry row)`` of a user's index rows."""
    provider = make_provider(None)
    model = next(provider.model_for(t) for t in provider.resource_types if t.name == "User")
    rows = document_values(model, "r", {"schemas": [USER], **document})
    return [(row.path.rsplit(":", 1)[1], row.present, row.element is not None) for row in rows]


def test_an_attribute_its_values_do_not_answer_for_keeps_its_own_row() -> None:
    """Shapes a stored document may hold that no create above stores: the attribute's own row
    is written when nothing else says it is there (``eq null``) or present (``pr``)."""
    schemas = [("schemas", True, True)]
    assert _rows({}) == schemas
    assert _rows({"name": {}}) == [*schemas, ("name", False, False)]
    assert _rows({"emails": []}) == [*schemas, ("emails", False, False)]
    # an entry without values: its entry row says the attribute is there, none that it is present
    assert _rows({"emails": [{}]}) == [*schemas, ("emails#", True, True)]
    assert _rows({"name": {"givenName": ""}}) == [*schemas, ("name.givenname", False, False)]
    assert _rows({"name": {"givenName": "A"}}) == [*schemas, ("name.givenname", True, False)]
