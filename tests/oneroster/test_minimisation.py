"""Minimisation over OneRoster (issue 12, point 5): a person's ``metadata`` only under the
demographics scope, and a PUT replaces what an earlier push kept instead of merging."""

from __future__ import annotations

import pytest

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.district_settings import change_settings
from tests.conftest import stored_where
from tests.oneroster.conftest import V1P2, bearer, scope

CORE = [scope("v1p2", "roster-core.readonly")]
WITH_DEMOGRAPHICS = [*CORE, scope("v1p2", "roster-demographics.readonly")]


@pytest.fixture
def hub(database, district) -> str:
    with database.session() as session:
        return create_connection(
            session, system_actor(district.tenant_id), "Hub", "oneroster"
        ).token


@pytest.fixture
def keeps(database, district):
    """Set the district's allow-list of provider attributes (issue 12 item 1)."""

    def keep(*paths: str) -> None:
        with database.session() as session:
            change_settings(
                session, system_actor(district.tenant_id), {"keep_provider_attributes": list(paths)}
            )

    return keep


def _user(**extra) -> dict:
    org = {"href": "https://hub.example/north", "sourcedId": "north", "type": "org"}
    return {
        "user": {
            "status": "active",
            "givenName": "Eve",
            "familyName": "Easton",
            "roles": [{"roleType": "primary", "role": "student", "org": org}],
            **extra,
        }
    }


def _push(api, hub, **extra) -> None:
    answer = api.put(f"{V1P2}/users/east-s1", json=_user(**extra), headers=bearer(hub))
    assert answer.status_code in (200, 201), answer.text


def test_metadata_is_served_only_under_the_demographics_scope(api, hub, reader, keeps):
    keeps("metadata.homeAddress")
    _push(api, hub, metadata={"homeAddress": "4 Larch Close"})
    core = api.get(f"{V1P2}/users/east-s1", headers=bearer(reader(CORE))).json()["user"]
    assert "metadata" not in core
    listed = api.get(f"{V1P2}/users", headers=bearer(reader(CORE))).json()["users"]
    assert "4 Larch Close" not in str(listed)
    full = api.get(f"{V1P2}/users/east-s1", headers=bearer(reader(WITH_DEMOGRAPHICS))).json()
    assert full["user"]["metadata"] == {"homeAddress": "4 Larch Close"}


def test_a_second_put_without_phone_sms_or_metadata_drops_them(api, hub, reader, keeps):
    keeps("metadata.medical")
    _push(api, hub, phone="+1 555 0100", sms="+1 555 0101", metadata={"medical": "epipen"})
    _push(api, hub)
    user = api.get(f"{V1P2}/users/east-s1", headers=bearer(reader(WITH_DEMOGRAPHICS))).json()
    assert "phone" not in user["user"] and "sms" not in user["user"]
    assert "metadata" not in user["user"]


def test_metadata_a_district_does_not_keep_is_never_stored_or_served(
    api, hub, reader, keeps, database
):
    # issue 12 item 1: a hub's metadata is dropped on arrival unless the district keeps the key
    keeps("metadata.house")
    _push(api, hub, metadata={"homeAddress": "4 Larch Close", "house": "Red"})
    assert stored_where(database, "Larch Close") == []
    user = api.get(f"{V1P2}/users/east-s1", headers=bearer(reader(WITH_DEMOGRAPHICS))).json()
    assert user["user"]["metadata"] == {"house": "Red"}
