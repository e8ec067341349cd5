"""Attributes a record's own columns answer have no index rows (issue 15, migration
``0017_column_attribute_rows``).

A filter or sort on a User's ``userName`` or ``externalId``, or a Group's ``displayName`` or
``externalId``, compares the record's folded column (:func:`scim.filters.column_for`), never
``scim_values``; yet every create wrote their index rows, two of a created user's 14 entries
in ``ix_scim_values_lookup``. Counted, never timed: the rows a create writes; and the answers
of filters and sorts on those attributes, which must not change.
"""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Path
from sqlalchemy import text

from scim.filters import column_for
from scim.index import document_values
from scim.schemas import make_provider
from scim.values import COLUMN_PATHS  # new: ImportError on the old code
from server.db import Group, SchoolClass, User
from server.db.session import Database
from tests.scim.helpers import EDU_GROUP, GROUP, IdP
from tests.scim.test_idp_replays import entra_user

USER_PATHS = {
    "urn:ietf:params:scim:schemas:core:2.0:user:username",
    "urn:ietf:params:scim:schemas:core:2.0:user:externalid",
}
GROUP_PATHS = {
    "urn:ietf:params:scim:schemas:core:2.0:group:displayname",
    "urn:ietf:params:scim:schemas:core:2.0:group:externalid",
}


def _paths(database: Database, resource_id: str) -> list[str]:
    with database.engine.connect() as connection:
        query = text("SELECT path FROM scim_values WHERE resource_id = :r")
        return list(connection.execute(query, {"r": resource_id}).scalars())


def test_a_create_writes_no_rows_for_attributes_a_column_answers(
    idp: IdP, database: Database
) -> None:
    user = idp.post("/Users", entra_user("col.one@x.example", "C-1"))
    assert user.status_code == 201, user.text
    paths = _paths(database, user.json()["id"])
    assert not USER_PATHS & set(paths), paths
    # Entra ID's body: 18 rows before (userName and externalId among them), then 16, 15
    # (no `active` row either: scim.values.STATUS_PATHS), 12 now (no row of `schemas`, `name`
    # or `emails` themselves: their values answer `pr`, tests/scim/test_presence_rows.py)
    assert len(paths) == 12, paths
    group = idp.create_group("Staff", [user.json()["id"]], externalId="G-1")
    klass = idp.post(
        "/Groups",
        {
            "schemas": [GROUP, EDU_GROUP],
            "displayName": "Algebra",
            "externalId": "K-1",
            EDU_GROUP: {"school": "sch-1", "classCode": "ALG"},
        },
    )
    assert klass.status_code == 201, klass.text
    for made in (group["id"], klass.json()["id"]):
        paths = _paths(database, made)
        assert paths and not GROUP_PATHS & set(paths), paths


def test_every_attribute_left_out_of_the_index_is_a_column_of_every_table_searched() -> None:
    """The index may leave out only what :func:`column_for` answers on each table a search of
    the resource type reads (users; groups and classes)."""
    assert COLUMN_PATHS == USER_PATHS | GROUP_PATHS
    provider = make_provider(None)
    tables: dict[str, tuple[Any, ...]] = {"User": (User,), "Group": (Group, SchoolClass)}
    for resource_type in provider.resource_types:
        model = provider.model_for(resource_type)
        urn = model.__schema__.lower()  # type: ignore[attr-defined]
        for path in (p for p in COLUMN_PATHS if p.startswith(urn + ":")):
            attribute = path.rsplit(":", 1)[1]
            binding = Path[model](attribute).resolve()  # type: ignore[valid-type]
            assert binding is not None
            for table in tables[str(resource_type.name)]:
                assert column_for(binding, table) is not None, (path, table)


def test_the_index_of_the_benchmark_user_has_eight_rows() -> None:
    """The create the benchmark sends (:mod:`bench.scim_data`): 14 rows before, then 12
    (``userName``, ``externalId``: columns), 11 (``active``: the status column), 8 now (no
    row of ``schemas``, ``name`` or ``emails`` themselves, :func:`scim.index._presence`)."""
    from bench.scim_data import user_document

    provider = make_provider(None)
    model = next(provider.model_for(t) for t in provider.resource_types if t.name == "User")
    doc = model.model_validate(user_document(7)).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert len(document_values(model, "r", doc)) == 8


FILTERS = [
    ('userName eq "COL.A@X.EXAMPLE"', ["col.a@x.example"]),
    ('userName sw "col."', ["col.a@x.example", "col.b@x.example", "col.c@x.example"]),
    ('externalId eq "ext-a"', ["col.a@x.example"]),
    ('externalId co "B"', ["col.b@x.example"]),
    ("externalId pr", ["col.a@x.example", "col.b@x.example"]),
    ("not (externalId pr)", ["col.c@x.example"]),
    ('externalId ne "EXT-A"', ["col.b@x.example", "col.c@x.example"]),
    ("externalId eq null", ["col.c@x.example"]),
    ('userName gt "col.a@x.example" and externalId pr', ["col.b@x.example"]),
]


@pytest.mark.parametrize(("expression", "expected"), FILTERS)
def test_filters_on_column_attributes_answer_as_before(
    idp: IdP, expression: str, expected: list[str]
) -> None:
    idp.create_user("col.b@x.example", externalId="EXT-B")
    idp.create_user("col.a@x.example", externalId="Ext-A")
    idp.create_user("col.c@x.example")
    found = idp.get("/Users", params={"filter": expression, "sortBy": "userName"})
    assert found.status_code == 200, found.text
    assert [r["userName"] for r in found.json().get("Resources", [])] == expected


def test_sorts_and_group_filters_on_column_attributes_answer_as_before(idp: IdP) -> None:
    idp.create_user("col.b@x.example", externalId="EXT-A")
    idp.create_user("col.a@x.example", externalId="Ext-B")
    by_external = idp.get("/Users", params={"sortBy": "externalId", "sortOrder": "descending"})
    assert [r["userName"] for r in by_external.json()["Resources"]] == [
        "col.a@x.example",
        "col.b@x.example",
    ]
    idp.create_group("Teachers", [], externalId="T-1")
    idp.create_group("staff", [], externalId="S-1")
    klass = {
        "schemas": [GROUP, EDU_GROUP],
        "displayName": "Algebra",
        "externalId": "K-1",
        EDU_GROUP: {"school": "sch-1", "classCode": "ALG"},
    }
    assert idp.post("/Groups", klass).status_code == 201
    cases = {
        'displayName eq "STAFF"': ["staff"],
        'externalId eq "k-1"': ["Algebra"],
        'displayName sw "t" or externalId eq "S-1"': ["staff", "Teachers"],
    }
    for expression, expected in cases.items():
        found = idp.get("/Groups", params={"filter": expression, "sortBy": "displayName"})
        assert found.status_code == 200, found.text
        assert [r["displayName"] for r in found.json()["Resources"]] == expected, expression
    everything = idp.get("/Groups", params={"sortBy": "displayName"}).json()["Resources"]
    assert [r["displayName"] for r in everything] == ["Algebra", "staff", "Teachers"]
